"""Capacity at a p99 SLO: the search against a fixed grid of open-loop rates, and
against an M/G/1 queue on the model's own service times.

    python benchmarks/capacity.py [--quick] [--reps N] [--budget MS] [--no-sweep]

Model: ``Sleep2ms`` (``time.sleep(0.002)``), budget ``--budget`` ms (10).

Per repetition, 1 copy x 1 worker (an M/G/1 server):

1. **Service times**: the bare timed loop in a fresh interpreter (``_bare_loop.py``,
   3 s just before and 3 s just after the search and the grid, pooled: the machine
   drifts), every call's time kept. The M/G/1 queue fed by those times
   (``npf_core.results.queueing.capacity_at``: Lindley's recursion on Poisson
   arrivals, the p99 of the time in system) gives the capacity theory predicts.
2. **The search**: ``"load": {"mode": "capacity", "p99_ms": B}``, one npf run: its
   capacity, the probes it took, the seconds it measured and its wall time.
3. **The grid**: what a user would do without the search, one npf run per Poisson
   rate (``"load": {"mode": "poisson", "rate": R}``), rates from 10% to 95% of the
   service rate (1 / the mean service time) in steps of ``--step`` of it (5%; 10% with --quick),
   each run as long as the search's longest probe (``probe_max_s``); its answer comes
   from the search's own rule (``npf_core.results.capacity.estimate``: the line
   fitted to ``log(fraction of calls over B)`` against the rate crosses 1%), on all
   its points. Its cost: the sum of its runs' wall times. The two agree when their
   answers are within one grid step.

The search and the grid alternate their order each repetition, next to one
service-time measurement. Then, unless --no-sweep, the issue's sweep: copies {1, 2}
x workers {1, 2} in one search, its wall time and the 2 x 2 / 1 x 1 capacity ratio.

Goals (issue 24): 1 x 1 within 15% of the M/G/1 capacity; 2 x 2 >= 3 x 1 x 1 with
the whole sweep's search <= 150 s; the search agrees with the grid (within the
grid's step) at a fraction of its cost.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import BARE_LOOP, banner, median, parse_args, progress, run_npf, spec, table, verdict

from npf_core.results.capacity import BURSTS, UNDECIDED, CapacityProbe, decide, estimate
from npf_core.results.queueing import capacity_at
from npf_core.results.stats import GAMMA, Histogram

MODEL = "Sleep2ms"
SERVICE_S = 3.0


def service_times() -> np.ndarray:
    """The bare loop's service times (s), in a fresh interpreter."""
    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "lat.npy"
        cmd = [sys.executable, str(BARE_LOOP), "--model", MODEL, "--duration", str(SERVICE_S),
               "--samples", str(samples)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"bare loop failed: {done.stderr[-2000:]}")
        return np.asarray(np.load(samples) / 1e9)


def service_capacity(lat: np.ndarray, budget_s: float) -> tuple[float, dict[str, float]]:
    """The M/G/1 capacity of those service times."""
    stats = {"mean_ms": float(lat.mean() * 1e3), "p99_ms": float(np.percentile(lat, 99) * 1e3)}
    return capacity_at(lat, budget_s), stats


def over_count(report: Any, budget_ms: float) -> tuple[int, int]:
    """(calls, calls over the budget) of an open-loop run, from its latency histogram."""
    h = Histogram.from_stored(report.latency_histogram)
    first = math.ceil(math.log(budget_ms * 1e6) / math.log(GAMMA))
    return h.n + (report.dropped or 0), int(h.counts[first:].sum()) + (report.dropped or 0)


def grid(budget_ms: float, upper: float, step: float, seconds: float, rep: int) -> dict[str, Any]:
    """One npf run per rate; the capacity by the search's own rule on all the points."""
    t0 = time.monotonic()
    points = []
    measured = 0.0
    for k, frac in enumerate(np.arange(0.10, 0.95 + 1e-9, step)):
        rate = float(frac * upper)
        r = run_npf(MODEL, duration_s=seconds, load={"mode": "poisson", "rate": rate}, name=f"grid-{rep}-{k}")
        calls, over = over_count(r, budget_ms)
        d = decide([], calls=calls, over=over, min_design_effect=BURSTS)
        points.append(CapacityProbe(mode="poisson", rate=rate, inf_s=rate, achieved_inf_s=r.throughput_avg,
                                    seconds=r.total_s, calls=calls, p99_ms=r.latency_ms_p99, over=over,
                                    over_fraction=over / max(calls, 1), design_effect=BURSTS,
                                    verdict=d.verdict or UNDECIDED))  # fmt: skip
        measured += r.total_s
        progress(f"grid {rate:.0f}/s: p99 {r.latency_ms_p99:.2f} ms, {over / max(calls, 1):.2%} over")
    answer = estimate(points, budget_ms, bound=None)[0]
    return {"capacity": math.nan if answer is None else answer, "runs": len(points), "measured_s": measured,
            "wall_s": time.monotonic() - t0}  # fmt: skip


def search(budget_ms: float, name: str, n_models: list[int], workers: list[int]) -> tuple[list[Any], float]:
    """One npf run of the capacity search (duration_s is not used by it)."""
    import npf_core

    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="npf-bench-") as out:
        s = spec(MODEL, duration_s=1.0, n_models=n_models, workers=workers, name=name,
                 load={"mode": "capacity", "p99_ms": budget_ms})  # fmt: skip
        reports = npf_core.benchmark(s, output_dir=out, reporters=[])
    return reports, time.monotonic() - t0


def main() -> None:
    sweep = "--no-sweep" not in sys.argv
    if not sweep:
        sys.argv.remove("--no-sweep")
    args = parse_args(__doc__, reps=(2, 1), budget=(10.0, 10.0), step=(0.05, 0.10))
    banner(f"capacity: {MODEL}, p99 <= {args.budget:g} ms; search vs grid vs M/G/1", args)
    rows, ratios, errors, costs, agreements = [], [], [], [], []
    for rep in range(args.reps):
        before = service_times()
        svc_rate = 1.0 / float(before.mean())  # the grid's rates are fractions of it
        found: dict[str, Any] = {}
        for what in (("search", "grid") if rep % 2 == 0 else ("grid", "search")):
            if what == "search":
                (r,), wall = search(args.budget, f"capacity-{rep}", [1], [1])
                probes = [p for p in r.slo_probes if p.mode != "closed"]
                found["search"] = {"capacity": r.slo_capacity_inf_s, "runs": len(probes), "wall_s": wall,
                                   "measured_s": sum(p.seconds for p in r.slo_probes), "how": r.slo_search,
                                   "interval": (r.slo_capacity_ci_low, r.slo_capacity_ci_high),
                                   "upper": r.throughput_ci95_high}  # fmt: skip
                progress(f"search: {r.slo_capacity_inf_s:.0f}/s in {wall:.0f} s ({r.slo_search})")
            else:
                found["grid"] = grid(args.budget, svc_rate, args.step, 4.0 if args.quick else 8.0, rep)
                progress(f"grid: {found['grid']['capacity']:.0f}/s in {found['grid']['wall_s']:.0f} s")
        predicted, svc = service_capacity(np.concatenate([before, service_times()]), args.budget / 1000)
        progress(f"rep {rep + 1}: service mean {svc['mean_ms']:.3f} ms, p99 {svc['p99_ms']:.2f} ms; "
                 f"M/G/1 capacity {predicted:.0f}/s")  # fmt: skip
        s, g = found["search"], found["grid"]
        err = s["capacity"] / predicted - 1 if s["capacity"] else math.nan
        errors.append(err)
        ratios.append(g["wall_s"] / s["wall_s"])
        costs.append((s["wall_s"], g["wall_s"]))
        agree = abs(s["capacity"] - g["capacity"]) / g["capacity"] if s["capacity"] and g["capacity"] else math.nan
        # the grid resolves the capacity to one step of the service rate
        agreements.append(abs(s["capacity"] - g["capacity"]) <= args.step * svc_rate
                          if s["capacity"] and g["capacity"] else False)  # fmt: skip
        rows.append([
            rep + 1, f"{svc['mean_ms']:.3f}", f"{svc['p99_ms']:.2f}", f"{predicted:.0f}",
            f"{s['capacity']:.0f}" if s["capacity"] else "-", f"{err:+.1%}",
            f"{s['interval'][0]:.0f}..{s['interval'][1]:.0f}", s["runs"], f"{s['measured_s']:.0f}",
            f"{s['wall_s']:.0f}",
            f"{g['capacity']:.0f}", f"{agree:.1%}", g["runs"], f"{g['measured_s']:.0f}", f"{g['wall_s']:.0f}",
            f"{g['wall_s'] / s['wall_s']:.1f}x",
        ])  # fmt: skip
    print()
    print(table(["rep", "svc mean ms", "svc p99 ms", "M/G/1 /s", "search /s", "vs M/G/1", "interval",
                 "probes", "probe s", "wall s", "grid /s", "search vs grid", "grid runs", "grid s", "grid wall s",
                 "grid/search cost"], rows))  # fmt: skip
    print()
    verdict("capacity-mg1", all(abs(e) <= 0.15 for e in errors),
            "1 x 1 capacity vs M/G/1 on the bare loop's service times: " + ", ".join(f"{e:+.1%}" for e in errors)
            + " (goal within 15%)")  # fmt: skip
    verdict("capacity-cost", median(ratios) >= 2 and all(agreements),
            f"the grid costs {median(ratios):.1f}x the search's wall time (median; "
            + ", ".join(f"{g:.0f} s vs {s:.0f} s" for s, g in costs) + "); answers within the grid's step: "
            + ", ".join("yes" if a else "no" for a in agreements))  # fmt: skip
    if sweep:
        reports, took = search(args.budget, "capacity-sweep", [1, 2], [1, 2])
        cap = {(r.n_models, r.workers_per_model): r.slo_capacity_inf_s for r in reports}
        print()
        print(table(["copies x workers", "closed-loop inf/s", "capacity inf/s", "interval", "probes", "search"],
                    [[f"{r.n_models} x {r.workers_per_model}", f"{r.throughput_avg:,.0f}",
                      "-" if r.slo_capacity_inf_s is None else f"{r.slo_capacity_inf_s:,.0f}",
                      f"{r.slo_capacity_ci_low or 0:,.0f}..{r.slo_capacity_ci_high or 0:,.0f}",
                      sum(p.mode != "closed" for p in r.slo_probes), r.slo_search] for r in reports]))  # fmt: skip
        ratio = (cap[(2, 2)] or 0) / cap[(1, 1)] if cap.get((1, 1)) else math.nan
        best = max(reports, key=lambda r: r.slo_capacity_inf_s or 0)
        print()
        verdict("capacity-sweep", ratio >= 3 and took <= 150 and (best.n_models, best.workers_per_model) == (2, 2),
                f"2 x 2 / 1 x 1 capacity {ratio:.1f}x (goal >= 3), best {best.n_models} x {best.workers_per_model}, "
                f"whole search {took:.0f} s (goal <= 150 s)")  # fmt: skip
    print(json.dumps({"errors_vs_mg1": errors, "grid_over_search_cost": ratios}))


if __name__ == "__main__":
    main()
