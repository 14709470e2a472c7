"""The per-configuration figures that ``compare`` and ``history`` judge, each with
its estimate and standard error, and the test of a change between two runs.

One entry of :data:`FIGURES` per figure: adding a figure (one that a report
carries with an interval) to ``npf compare``, ``npf history`` and their charts is
one more :class:`Figure` here.

The change of a figure is tested on the **log of the ratio** new / base: its
standard error is ``hypot(se_base / base, se_new / new)`` (the delta method), its
degrees of freedom Welch-Satterthwaite's on those relative variances (a z test when
both sides' errors come from normal intervals), and the interval of the change,
``exp(log ratio +- t * se) - 1``, lies within (-100%, +inf) however large the
change: a model 20x slower reads about -95%, never below -100%.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from npf_core.results.report import Report
from npf_core.results.stats import Histogram, t_quantile

__all__ = [
    "FIGURES", "MIN_WINDOWS", "Estimate", "Figure", "LogRatio", "interval", "log_ratio", "percentile", "throughput",
]  # fmt: skip

Z95 = 1.959964
#: windows a run needs for its window throughputs to be the sample (as for its own
#: batch-means interval); fewer: the report's interval is read as a normal one
MIN_WINDOWS = 3


@dataclass(frozen=True)
class Estimate:
    """One run's value of a figure and the standard error of its logarithm."""

    value: float
    #: standard error of log(value); None: unknown (the change is then not tested)
    log_se: float | None
    #: degrees of freedom of ``log_se`` (inf: from a normal interval)
    df: float
    method: str


def _from_interval(value: float, low: float | None, high: float | None, method: str) -> Estimate:
    """A value with its 95% normal interval (the log scale where both ends are > 0)."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)) or high < low:
        return Estimate(value, None, math.inf, method)
    if low > 0:
        return Estimate(value, (math.log(high) - math.log(low)) / (2 * Z95), math.inf, method)
    return Estimate(value, (high - low) / (2 * Z95) / value if value > 0 else None, math.inf, method)


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def throughput(r: Report) -> Estimate | None:
    """The window throughputs as the sample (their mean's standard error), else the
    report's 95% interval."""
    value = _number(r.throughput_avg)
    if value is None:
        return None
    w = np.asarray(r.throughput_windows, dtype=float)
    if w.size >= MIN_WINDOWS and value > 0:
        mean = float(w.mean())
        se = float(w.std(ddof=1)) / math.sqrt(w.size)
        return Estimate(value, se / mean if mean > 0 else None, w.size - 1.0, "welch_windows")
    return _from_interval(value, r.throughput_ci95_low, r.throughput_ci95_high, "z_intervals")


def percentile(q: float) -> Callable[[Report], Estimate | None]:
    """A latency percentile: from the latency histogram, the distribution-free
    (order-statistic) interval; from the report's stored interval in files without
    histograms."""
    name = f"p{q:g}"

    def estimate(r: Report) -> Estimate | None:
        if r.latency_histogram is not None and r.latency_histogram.n:
            h = Histogram.from_stored(r.latency_histogram)
            ci = h.percentile_ci(q, 0.95)
            lo, hi = (ci[0] / 1e6, ci[1] / 1e6) if ci else (None, None)
            return _from_interval(h.percentile(q) / 1e6, lo, hi, "quantile_ci_histogram")
        value = _number(getattr(r, f"latency_ms_{name}", None))
        if value is None:
            return None
        return _from_interval(value, getattr(r, f"latency_ms_{name}_ci_low", None),
                              getattr(r, f"latency_ms_{name}_ci_high", None), "quantile_ci_stored")  # fmt: skip

    return estimate


def interval(field: str, low: str, high: str, method: str = "z_intervals") -> Callable[[Report], Estimate | None]:
    """A figure a report carries as ``field`` with its 95% interval ``low`` .. ``high``
    (None where the report has no such figure)."""

    def estimate(r: Report) -> Estimate | None:
        value = _number(r.get(field))
        if value is None:
            return None
        return _from_interval(value, _number(r.get(low)), _number(r.get(high)), method)

    return estimate


@dataclass(frozen=True)
class Figure:
    """A figure of a configuration that runs are compared on."""

    name: str
    unit: str
    higher_is_better: bool
    #: the report field that holds the value (what ``history`` lists)
    field: str
    estimate: Callable[[Report], Estimate | None]
    #: whether two reports' values may be compared at all (e.g. measured against the
    #: same budget); when it says no the change is shown, not tested
    comparable: Callable[[Report, Report], bool] | None = None


FIGURES: tuple[Figure, ...] = (
    Figure("throughput", "inf/s", True, "throughput_avg", throughput),
    Figure("p50", "ms", False, "latency_ms_p50", percentile(50)),
    Figure("p99", "ms", False, "latency_ms_p99", percentile(99)),
    # load mode "capacity": the highest rate within the p99 budget, compared only at the same budget
    Figure("capacity", "inf/s", True, "slo_capacity_inf_s",
           interval("slo_capacity_inf_s", "slo_capacity_ci_low", "slo_capacity_ci_high"),
           comparable=lambda a, b: a.get("slo_p99_ms") == b.get("slo_p99_ms")),  # fmt: skip
)


@dataclass(frozen=True)
class LogRatio:
    """A change base -> new on the log scale, before it is judged."""

    base: float
    new: float
    #: log(new / base), NaN where either is not a positive number
    value: float
    se: float | None
    df: float
    method: str

    @property
    def testable(self) -> bool:
        return math.isfinite(self.value) and self.se is not None and math.isfinite(self.se)

    @property
    def change_pct(self) -> float:
        return math.expm1(self.value) * 100 if math.isfinite(self.value) else math.nan

    def interval_pct(self, alpha: float) -> tuple[float, float] | None:
        """The interval of the change at level ``1 - alpha``, in percent of base:
        always within (-100, +inf)."""
        if not self.testable:
            return None
        assert self.se is not None
        half = t_quantile(1 - alpha / 2, self.df) * self.se if self.se > 0 else 0.0
        return math.expm1(self.value - half) * 100, math.expm1(self.value + half) * 100


def log_ratio(a: Estimate, b: Estimate) -> LogRatio:
    """The change from ``a`` (base) to ``b`` (new)."""
    method = a.method if a.method == b.method else f"{a.method}/{b.method}"
    if not (a.value > 0 and b.value > 0 and math.isfinite(a.value) and math.isfinite(b.value)):
        return LogRatio(a.value, b.value, math.nan, None, math.inf, method)
    value = math.log(b.value / a.value)
    if a.log_se is None or b.log_se is None:
        return LogRatio(a.value, b.value, value, None, math.inf, method)
    se = math.hypot(a.log_se, b.log_se)
    # Welch-Satterthwaite on the relative variances (a side from a normal interval adds no term)
    denom = sum(s**4 / df for s, df in ((a.log_se, a.df), (b.log_se, b.df)) if math.isfinite(df) and df > 0)
    df = se**4 / denom if denom > 0 else math.inf
    return LogRatio(a.value, b.value, value, se, df, method)
