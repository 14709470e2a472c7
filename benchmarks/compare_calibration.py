"""The calibration of ``npf compare``'s test: how often it flags two runs of one
model (false alarms, A/A), how often it finds a model 10% slower (power), and
whether the interval of a large change stays inside (-100%, +inf).

Synthetic runs with known truth (window throughputs and latency histograms drawn
as the benchmarker records them). The test npf uses (on the log ratio, results/
figures.py) is set side by side, on the same draws, with the test on the
difference that npf used before (a normal or Welch interval on new - base, in
percent of base), as the reference.

    python benchmarks/compare_calibration.py [--trials N] [--seed S]

Goals: A/A flags at most about 5% of comparisons at 95% confidence (1 and 4
configurations); a 10% slower model is flagged in >= 90%; a 20x slower model's
interval never reads below -100%.
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

from npf_core.results.compare import compare, welch
from npf_core.results.report import Report
from npf_core.results.stats import Histogram, t_quantile

Z95 = 1.959964


def report(rng: np.random.Generator, *, rate: float, rate_sd: float, windows: int, median_ms: float,
           sigma: float, n: int, n_models: int = 1) -> Report:  # fmt: skip
    h = Histogram()
    h.add(np.maximum(1, rng.lognormal(math.log(median_ms * 1e6), sigma, n)).astype(np.int64))
    w = rng.normal(rate, rate_sd, windows).tolist()
    return Report(model_name="m", n_models=n_models, workers_per_model=1, pipeline_size=1, batch_size=1,
                  config_id=f"m-b1-p1-n{n_models}-w1", throughput_avg=float(np.mean(w)), throughput_windows=w,
                  window_s=0.5, latency_ms_p50=h.percentile(50) / 1e6, latency_ms_p99=h.percentile(99) / 1e6,
                  latency_histogram=h.to_stored())  # fmt: skip


def difference_intervals(a: Report, b: Report, alpha: float) -> dict[str, tuple[float, float] | None]:
    """The reference: the interval of (new - base) / base, in percent, as npf read it
    before (Welch on the windows; the percentiles' order-statistic intervals as
    normal ones on the difference)."""
    out: dict[str, tuple[float, float] | None] = {}
    diff, se, df = welch(a.throughput_windows, b.throughput_windows)
    change = (b.throughput_avg - a.throughput_avg) / a.throughput_avg * 100
    half = t_quantile(1 - alpha / 2, df) * se / a.throughput_avg * 100
    out["throughput"] = (change - half, change + half)
    for q in (50, 99):
        vals, ses = [], []
        for r in (a, b):
            assert r.latency_histogram is not None
            h = Histogram.from_stored(r.latency_histogram)
            ci = h.percentile_ci(q, 0.95)
            vals.append(h.percentile(q))
            ses.append((ci[1] - ci[0]) / (2 * Z95) if ci else math.nan)
        change = (vals[1] - vals[0]) / vals[0] * 100
        half = t_quantile(1 - alpha / 2, math.inf) * math.hypot(*ses) / vals[0] * 100
        out[f"p{q}"] = (change - half, change + half) if math.isfinite(half) else None
    return out


def flagged(ci: tuple[float, float] | None) -> bool:
    return ci is not None and (ci[0] > 0 or ci[1] < 0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=400)
    ap.add_argument("--seed", type=int, default=20261206)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    noisy = dict(rate=1000.0, rate_sd=150.0, windows=10, median_ms=2.0, sigma=0.5, n=3000)
    print(f"{'case':<36} {'log ratio (npf)':>16} {'difference (before)':>20}")
    verdicts = []
    for configs in (1, 4):
        ours = ref = 0
        for _ in range(args.trials):
            base = [report(rng, n_models=i + 1, **noisy) for i in range(configs)]  # type: ignore[arg-type]
            new = [report(rng, n_models=i + 1, **noisy) for i in range(configs)]  # type: ignore[arg-type]
            c = compare(base, new, threshold_pct=0.0)
            ours += any(m.statistically_significant for cc in c.configs for m in cc.metrics)
            alpha = 0.05 / c.tests
            ref += any(flagged(ci) for a, b in zip(base, new, strict=True)
                       for ci in difference_intervals(a, b, alpha).values())  # fmt: skip
        print(f"{f'A/A false alarms, {configs} config(s)':<36} {ours / args.trials:>16.1%} {ref / args.trials:>20.1%}")
        verdicts.append((f"A/A false alarms, {configs} config(s), <= ~5% (7% allowing for the draw)",
                         ours / args.trials <= 0.07))  # fmt: skip
    ours = ref = 0
    trials = args.trials // 4
    for _ in range(trials):
        base = report(rng, rate=1000.0, rate_sd=50.0, windows=10, median_ms=2.0, sigma=0.3, n=3000)
        new = report(rng, rate=1000.0 / 1.1, rate_sd=50.0 / 1.1, windows=10, median_ms=2.2, sigma=0.3, n=3000)
        c = compare([base], [new], threshold_pct=5.0)
        ours += {m.metric: m for m in c.configs[0].metrics}["throughput"].statistically_significant
        ref += flagged(difference_intervals(base, new, 0.05 / 3)["throughput"])
    print(f"{'10% slower: throughput flagged':<36} {ours / trials:>16.1%} {ref / trials:>20.1%}")
    verdicts.append(("a 10% slower model flagged >= 90%", ours / trials >= 0.9))
    lowest_ours = lowest_ref = math.inf
    for _ in range(trials):
        base = report(rng, rate=1000.0, rate_sd=300.0, windows=3, median_ms=2.0, sigma=0.8, n=400)
        new = report(rng, rate=50.0, rate_sd=10.0, windows=3, median_ms=40.0, sigma=0.8, n=400)
        c = compare([base], [new])
        thr = {m.metric: m for m in c.configs[0].metrics}["throughput"]
        assert thr.ci_pct is not None
        lowest_ours = min(lowest_ours, thr.ci_pct[0])
        ci = difference_intervals(base, new, 0.05 / c.tests)["throughput"]
        lowest_ref = min(lowest_ref, ci[0] if ci else math.inf)
    print(f"{'20x slower: lowest interval bound':<36} {lowest_ours:>15.1f}% {lowest_ref:>19.1f}%")
    verdicts.append(("a 20x slower model's interval inside (-100%, +inf)", lowest_ours > -100))
    for goal, ok in verdicts:
        print(f"VERDICT {goal}: {'MET' if ok else 'MISSED'}")
    return 0 if all(ok for _, ok in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
