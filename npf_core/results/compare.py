"""Compare two runs: each configuration's throughput, p50 and p99, with a verdict
from the data (``npf compare BASE NEW``, ``npf_core.compare(base, new)``).

Significance, at 95% confidence for the comparison as a whole:

- throughput: Welch's t test on the two runs' window throughputs (the batch means
  the throughput interval is built from); with fewer than three windows on a side,
  a z test on the reported intervals.
- p50, p99: from the latency histograms, the distribution-free (order-statistic)
  interval of each run's percentile, read as a standard error, and a z test on the
  difference; from the reports' stored intervals for older results files.
- capacity (load mode "capacity"): like throughput, a z test on the two runs'
  capacity intervals.
- Bonferroni: with m tests in the comparison (3 per configuration pair), each
  interval is at level 1 - 0.05/m, so the intervals hold simultaneously and two runs
  with no real difference are flagged, anywhere, at most 5% of the time.

A change is a *regression* (or an *improvement*) only when it is statistically
significant AND larger than the threshold: run-to-run drift of the machine is not
in either run's own noise, and the threshold is the change worth acting on. The
exit code of ``npf compare`` is 1 when any configuration regresses, else 0.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from npf_core.results.report import Report
from npf_core.results.stats import Histogram, t_quantile
from npf_core.results.store import Results, read_results

__all__ = ["Comparison", "ConfigComparison", "MetricChange", "compare", "welch"]

Z95 = 1.959964
CONFIDENCE = 0.95
DEFAULT_THRESHOLD_PCT = 5.0
METRICS = ("throughput", "p50", "p99", "capacity")
#: windows a run needs for the t test on them (as for its own batch-means interval)
MIN_WINDOWS = 3

#: the fields that define a configuration, to match runs whose ids differ (another model name)
DEFINING_FIELDS = (
    "input_idx", "batch_size", "pipeline_size", "n_models", "workers_per_model",
    "performance_level", "load_mode", "target_rate",
)  # fmt: skip

REGRESSION, IMPROVEMENT, NO_CHANGE, NOT_TESTED = "regression", "improvement", "no significant change", "not tested"


@dataclass
class MetricChange:
    """One metric of one configuration, base -> new."""

    metric: str
    unit: str
    base: float
    new: float
    #: (new - base) / base, in percent
    change_pct: float
    #: the interval of the change, in percent of base, simultaneous with the comparison's
    #: others at its confidence (None: no interval could be made)
    ci_pct: tuple[float, float] | None
    method: str
    statistically_significant: bool
    beyond_threshold: bool
    verdict: str

    @property
    def regression(self) -> bool:
        return self.verdict == REGRESSION


@dataclass
class ConfigComparison:
    config_id: str
    base_config_id: str
    matched_by: str
    metrics: list[MetricChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        verdicts = {m.verdict for m in self.metrics}
        for v in (REGRESSION, IMPROVEMENT, NO_CHANGE):
            if v in verdicts:
                return v
        return NOT_TESTED


@dataclass
class Comparison:
    """The result of :func:`compare`; ``exit_code`` is what ``npf compare`` returns."""

    base: str
    new: str
    threshold_pct: float
    confidence: float
    configs: list[ConfigComparison]
    only_in_base: list[str] = field(default_factory=list)
    only_in_new: list[str] = field(default_factory=list)
    #: the statistical tests made (the Bonferroni divisor)
    tests: int = 0

    @property
    def regressions(self) -> list[tuple[str, MetricChange]]:
        return [(c.config_id, m) for c in self.configs for m in c.metrics if m.regression]

    @property
    def improvements(self) -> list[tuple[str, MetricChange]]:
        return [(c.config_id, m) for c in self.configs for m in c.metrics if m.verdict == IMPROVEMENT]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    def summary(self) -> str:
        how = f"(threshold {self.threshold_pct:g}%, {self.confidence:.0%} confidence over {self.tests} tests)"
        if not self.configs:
            return f"no configuration to compare {how}"
        parts = []
        if self.regressions:
            parts.append(f"{len(self.regressions)} significant regression{'s' * (len(self.regressions) != 1)}: "
                         + ", ".join(f"{cid} {m.metric} {m.change_pct:+.1f}%" for cid, m in self.regressions))
        if self.improvements:
            parts.append(f"{len(self.improvements)} significant improvement{'s' * (len(self.improvements) != 1)}")
        if not parts:
            return f"no significant change {how}"
        return "; ".join(parts) + f" {how}"

    def render(self, fmt: str = "table") -> str:
        """``table``, ``markdown`` or ``json`` text, as ``npf compare --format`` prints it."""
        return render(self, fmt)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for c, d in zip(self.configs, out["configs"], strict=True):
            d["verdict"] = c.verdict
        out["summary"] = self.summary()
        out["exit_code"] = self.exit_code
        return _clean(out)


def _clean(value: Any) -> Any:
    """JSON-able: NaN and infinities become None, tuples lists."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------


def welch(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float]:
    """Welch's unequal-variance t: (mean(b) - mean(a), its standard error, degrees of freedom)."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    va, vb = xa.var(ddof=1) / xa.size, xb.var(ddof=1) / xb.size
    se = math.sqrt(va + vb)
    if se == 0:
        return float(xb.mean() - xa.mean()), 0.0, math.inf
    df = (va + vb) ** 2 / (va**2 / (xa.size - 1) + vb**2 / (xb.size - 1))
    return float(xb.mean() - xa.mean()), se, df


@dataclass
class _Test:
    """One metric's difference, before the verdict: its standard error and the
    degrees of freedom of its t statistic (inf: a z statistic)."""

    name: str
    unit: str
    base: float
    new: float
    se: float | None
    df: float
    method: str
    higher_is_better: bool

    @property
    def testable(self) -> bool:
        ok = math.isfinite(self.base) and math.isfinite(self.new) and self.base > 0
        return ok and self.se is not None and math.isfinite(self.se)


def _verdict(t: _Test, alpha: float, threshold_pct: float) -> MetricChange:
    """The metric's change, its interval at level ``1 - alpha`` and the verdict."""
    if not (math.isfinite(t.base) and math.isfinite(t.new)) or t.base <= 0:
        return MetricChange(t.name, t.unit, t.base, t.new, math.nan, None, t.method, False, False, NOT_TESTED)
    change = (t.new - t.base) / t.base * 100
    beyond = abs(change) > threshold_pct
    if not t.testable:
        return MetricChange(t.name, t.unit, t.base, t.new, change, None, t.method, False, beyond, NOT_TESTED)
    half = t_quantile(1 - alpha / 2, t.df) * t.se / t.base * 100  # type: ignore[operator]
    ci = (change - half, change + half)
    significant = ci[0] > 0 or ci[1] < 0
    verdict = NO_CHANGE
    if significant and beyond:
        worse = change < 0 if t.higher_is_better else change > 0
        verdict = REGRESSION if worse else IMPROVEMENT
    return MetricChange(t.name, t.unit, t.base, t.new, change, ci, t.method, significant, beyond, verdict)


def _throughput(a: Report, b: Report) -> _Test:
    wa, wb = a.throughput_windows, b.throughput_windows
    if len(wa) >= MIN_WINDOWS and len(wb) >= MIN_WINDOWS:
        _, se_w, df = welch(wa, wb)
        return _Test("throughput", "inf/s", a.throughput_avg, b.throughput_avg, se_w, df, "welch_windows", True)
    se = _combined(_se_from_interval(r.throughput_ci95_low, r.throughput_ci95_high) for r in (a, b))
    return _Test("throughput", "inf/s", a.throughput_avg, b.throughput_avg, se, math.inf, "z_intervals", True)


def _combined(ses: Iterable[float | None]) -> float | None:
    """The standard error of a difference of independent estimates (None if one is unknown)."""
    values = list(ses)
    known = [s for s in values if s is not None]
    return math.hypot(*known) if known and len(known) == len(values) else None


def _se_from_interval(low: float | None, high: float | None) -> float | None:
    """The standard error a 95% normal interval implies."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return None
    return (high - low) / (2 * Z95)


def _percentile(a: Report, b: Report, q: float) -> _Test:
    name = f"p{q:g}"
    values: list[float] = []
    ses: list[float | None] = []
    method = "quantile_ci_histogram"
    for r in (a, b):
        if r.latency_histogram is not None:
            h = Histogram.from_stored(r.latency_histogram)
            values.append(h.percentile(q) / 1e6)
            ci = h.percentile_ci(q, 0.95)
            ses.append(_se_from_interval(ci[0] / 1e6, ci[1] / 1e6) if ci else None)
        else:  # results format 1: the percentile's stored interval
            method = "quantile_ci_stored"
            values.append(getattr(r, f"latency_ms_{name}"))
            ses.append(_se_from_interval(getattr(r, f"latency_ms_{name}_ci_low", None),
                                         getattr(r, f"latency_ms_{name}_ci_high", None)))  # fmt: skip
    return _Test(name, "ms", values[0], values[1], _combined(ses), math.inf, method, False)


def _capacity(a: Report, b: Report) -> _Test:
    """Load mode "capacity": the capacity at the p99 budget, compared like a throughput
    (higher is better), its interval (highest rate passed .. lowest failed) read as a
    95% one; not tested when the two runs' budgets differ."""
    values = [math.nan if r.slo_capacity_inf_s is None else r.slo_capacity_inf_s for r in (a, b)]
    se = _combined(_se_from_interval(r.slo_capacity_ci_low, r.slo_capacity_ci_high) for r in (a, b))
    if a.slo_p99_ms != b.slo_p99_ms:
        se = None
    return _Test("capacity", "inf/s", values[0], values[1], se, math.inf, "z_intervals", True)


def _tests(a: Report, b: Report) -> list[_Test]:
    tests = [_throughput(a, b), _percentile(a, b, 50), _percentile(a, b, 99)]
    if a.slo_p99_ms is not None or b.slo_p99_ms is not None:
        tests.append(_capacity(a, b))
    return tests


def compare_reports(
    a: Report, b: Report, threshold_pct: float = DEFAULT_THRESHOLD_PCT, confidence: float = CONFIDENCE
) -> list[MetricChange]:
    """Throughput, p50 and p99 of one configuration, base ``a`` -> new ``b``, at
    ``confidence`` for the three together."""
    tests = _tests(a, b)
    alpha = (1 - confidence) / max(1, sum(t.testable for t in tests))
    return [_verdict(t, alpha, threshold_pct) for t in tests]


# ---------------------------------------------------------------------------
# matching and the entry point
# ---------------------------------------------------------------------------


def _key(r: Report) -> tuple[Any, ...]:
    return tuple(repr(getattr(r, f)) for f in DEFINING_FIELDS)


Pair = tuple[Report, Report, str]


def match(base: Sequence[Report], new: Sequence[Report]) -> tuple[list[Pair], list[str], list[str]]:
    """Pairs (base, new, "id" | "fields"), then the ids found only in base, only in new.
    By ``config_id`` first; the rest by the fields that define a configuration when
    that pairing is unambiguous (one of each)."""
    by_id = {r.config_id: r for r in base}
    pairs: list[tuple[Report, Report, str]] = []
    left_new = []
    used = set()
    for r in new:
        if r.config_id in by_id and r.config_id not in used:
            pairs.append((by_id[r.config_id], r, "id"))
            used.add(r.config_id)
        else:
            left_new.append(r)
    left_base = [r for r in base if r.config_id not in used]
    base_keys: dict[tuple[Any, ...], list[Report]] = {}
    for r in left_base:
        base_keys.setdefault(_key(r), []).append(r)
    new_keys: dict[tuple[Any, ...], int] = {}
    for r in left_new:
        new_keys[_key(r)] = new_keys.get(_key(r), 0) + 1
    only_new = []
    for r in left_new:
        cands = base_keys.get(_key(r), [])
        if len(cands) == 1 and new_keys[_key(r)] == 1:
            pairs.append((cands.pop(), r, "fields"))
        else:
            only_new.append(r.config_id)
    only_base = [r.config_id for rs in base_keys.values() for r in rs]
    return pairs, only_base, only_new


def _load(x: Results | Sequence[Report] | str | os.PathLike[str]) -> tuple[str, list[Report]]:
    if isinstance(x, Results):
        return str(x.path), x.reports
    if isinstance(x, (str, os.PathLike)):
        res = read_results(x)
        return str(res.path), res.reports
    return "<reports>", list(x)


def compare(
    base: Results | Sequence[Report] | str | os.PathLike[str],
    new: Results | Sequence[Report] | str | os.PathLike[str],
    *,
    threshold_pct: float = DEFAULT_THRESHOLD_PCT,
    threshold: float | None = None,
    confidence: float = CONFIDENCE,
) -> Comparison:
    """Compare two runs (results.json files, folders holding one, read :class:`Results`,
    or lists of reports). ``threshold_pct`` (or its alias ``threshold``, as on the
    command line) is the smallest change, in percent, that counts as a regression.
    Raises :class:`npf_core.errors.ResultsError` for a path that holds no readable
    results."""
    if threshold is not None:
        threshold_pct = threshold
    if not 0.5 <= confidence < 1:
        from npf_core.errors import UserError

        raise UserError(f"compare: confidence {confidence!r} must be in [0.5, 1)")
    if not (threshold_pct >= 0 and math.isfinite(threshold_pct)):
        from npf_core.errors import UserError

        raise UserError(f"compare: threshold {threshold_pct!r} must be a percentage >= 0")
    base_name, base_reports = _load(base)
    new_name, new_reports = _load(new)
    pairs, only_base, only_new = match(base_reports, new_reports)
    configs: list[ConfigComparison] = []
    tests: list[list[_Test]] = []
    for a, b, how in pairs:
        c = ConfigComparison(config_id=b.config_id, base_config_id=a.config_id, matched_by=how)
        if a.status != "ok" or b.status != "ok":
            c.notes.append("failed in " + " and ".join(n for n, r in (("base", a), ("new", b)) if r.status != "ok"))
            tests.append([])
        else:
            tests.append(_tests(a, b))
            for n, r in (("base", a), ("new", b)):
                if not r.valid:
                    c.notes.append(f"{n} figures to read with care: " + "; ".join(r.validity_reasons))
        configs.append(c)
    # Bonferroni: every interval at 1 - alpha/m, so that with no real change anywhere
    # the whole comparison flags nothing with probability >= confidence
    m = sum(t.testable for ts in tests for t in ts)
    alpha = (1 - confidence) / max(1, m)
    for c, ts in zip(configs, tests, strict=True):
        c.metrics = [_verdict(t, alpha, threshold_pct) for t in ts]
    return Comparison(base_name, new_name, threshold_pct, confidence, configs, only_base, only_new, tests=m)



# ---------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------

_HEAD = ("configuration", "metric", "base", "new", "change", "95% interval", "verdict")


def _rows(c: Comparison) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for cc in c.configs:
        name = cc.config_id if cc.matched_by == "id" else f"{cc.base_config_id} -> {cc.config_id}"
        if not cc.metrics:
            rows.append((name, "-", "-", "-", "-", "-", "; ".join(cc.notes) or NOT_TESTED))
        for m in cc.metrics:
            fmt = (lambda v: f"{v:,.1f}") if m.unit == "inf/s" else (lambda v: f"{v:.3f}")
            ci = f"[{m.ci_pct[0]:+.1f}%, {m.ci_pct[1]:+.1f}%]" if m.ci_pct else "-"
            change = f"{m.change_pct:+.1f}%" if math.isfinite(m.change_pct) else "-"
            rows.append((name, f"{m.metric} {m.unit}", fmt(m.base), fmt(m.new), change, ci, m.verdict))
    return rows


def render(c: Comparison, fmt: str = "table") -> str:
    """``table`` (aligned text), ``markdown`` (a pipe table) or ``json``."""
    if fmt == "json":
        import json

        return json.dumps(c.to_dict(), indent=1)
    rows = _rows(c)
    lines = []
    if fmt == "markdown":
        lines.append(f"**npf compare** `{c.base}` → `{c.new}`\n")
        lines.append("| " + " | ".join(_HEAD) + " |")
        lines.append("|" + "|".join("---:" if i in (2, 3, 4) else "---" for i in range(len(_HEAD))) + "|")
        lines += ["| " + " | ".join(r).replace("`", "") + " |" for r in rows]
        extra = _extras(c)
        if extra:
            lines.append("")
            lines += [f"- {e}" for e in extra]
        lines.append(f"\n**{c.summary()}**")
    else:
        widths = [max(len(x) for x in col) for col in zip(_HEAD, *rows, strict=True)]
        right = {2, 3, 4}
        for r in (_HEAD, *rows):
            cells = (x.rjust(w) if i in right else x.ljust(w) for i, (x, w) in enumerate(zip(r, widths, strict=True)))
            lines.append("  ".join(cells).rstrip())
        lines += _extras(c)
        lines.append(c.summary())
    return "\n".join(lines)


def _extras(c: Comparison) -> list[str]:
    out = [f"note {cc.config_id}: {n}" for cc in c.configs if cc.metrics for n in cc.notes]
    if c.only_in_base:
        out.append("only in base (not compared): " + ", ".join(c.only_in_base))
    if c.only_in_new:
        out.append("only in new (not compared): " + ", ".join(c.only_in_new))
    return out
