"""Histograms, percentiles, confidence bounds and throughput statistics.

Latencies are folded into log-linear histograms: bucket ``i`` holds values in
``[GAMMA**i, GAMMA**(i+1))`` nanoseconds and is represented by its geometric
midpoint, so every reported percentile is within 0.1% of the true sample value
(``sqrt(GAMMA) - 1 < 0.001``), with a fixed memory cost however long a run is.
Count, sum, minimum and maximum are kept exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import msgspec
import numpy as np

from npf_core.wire.protocol import Hist

__all__ = [
    "GAMMA",
    "Histogram",
    "StoredHistogram",
    "normal_quantile",
    "quantile_ci",
    "rate_ci",
    "t95",
    "t_quantile",
]

GAMMA = 1.002
_INV_LOG_GAMMA = 1.0 / math.log(GAMMA)
N_BUCKETS = int(math.log(1e13) * _INV_LOG_GAMMA) + 2  # 1 ns .. ~2.8 hours


class Histogram:
    """A log-linear histogram of nanosecond durations with exact count/sum/min/max."""

    __slots__ = ("counts", "hi", "lo", "n", "total")

    def __init__(self) -> None:
        self.counts = np.zeros(N_BUCKETS, dtype=np.int64)
        self.n = 0
        self.total = 0
        self.lo = 0
        self.hi = 0

    def add(self, values: Sequence[int] | np.ndarray) -> None:
        """Fold a batch of durations (ns) in."""
        arr = np.asarray(values, dtype=np.int64)
        if arr.size == 0:
            return
        arr = np.maximum(arr, 1)
        idx = np.minimum((np.log(arr) * _INV_LOG_GAMMA).astype(np.int64), N_BUCKETS - 1)
        self.counts += np.bincount(idx, minlength=N_BUCKETS)
        lo, hi = int(arr.min()), int(arr.max())
        self.lo = lo if self.n == 0 else min(self.lo, lo)
        self.hi = max(self.hi, hi)
        self.n += int(arr.size)
        self.total += int(arr.sum())

    def merge(self, other: Histogram) -> None:
        if other.n == 0:
            return
        self.counts += other.counts
        self.lo = other.lo if self.n == 0 else min(self.lo, other.lo)
        self.hi = max(self.hi, other.hi)
        self.n += other.n
        self.total += other.total

    @classmethod
    def merged(cls, hists: Iterable[Histogram]) -> Histogram:
        out = cls()
        for h in hists:
            out.merge(h)
        return out

    def to_wire(self) -> Hist:
        nz = np.flatnonzero(self.counts)
        return Hist(nz.tolist(), self.counts[nz].tolist(), self.n, self.total, self.lo, self.hi)

    @classmethod
    def from_wire(cls, h: Hist) -> Histogram:
        out = cls()
        if h.index:
            out.counts[np.asarray(h.index, dtype=np.int64)] = np.asarray(h.counts, dtype=np.int64)
        out.n, out.total, out.lo, out.hi = h.n, h.total, h.lo, h.hi
        return out

    def to_stored(self) -> StoredHistogram:
        """The sparse form kept in results.json (see :class:`StoredHistogram`)."""
        nz = np.flatnonzero(self.counts)
        runs: list[tuple[int, list[int]]] = []
        for i in nz.tolist():
            if runs and i - (runs[-1][0] + len(runs[-1][1])) <= _MAX_INLINE_ZEROS:
                start, counts = runs[-1]
                counts.extend([0] * (i - start - len(counts)))
                counts.append(int(self.counts[i]))
            else:
                runs.append((i, [int(self.counts[i])]))
        return StoredHistogram(n=self.n, sum=self.total, min=self.lo, max=self.hi, runs=runs)

    @classmethod
    def from_stored(cls, h: StoredHistogram) -> Histogram:
        if h.gamma != GAMMA:
            raise ValueError(f"histogram bucket ratio {h.gamma} is not this npf's {GAMMA}")
        out = cls()
        for start, counts in h.runs:
            out.counts[start : start + len(counts)] = counts
        out.n, out.total, out.lo, out.hi = h.n, h.sum, h.min, h.max
        if int(out.counts.sum()) != h.n:
            raise ValueError(f"histogram counts add up to {int(out.counts.sum())}, not n={h.n}")
        return out

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else math.nan

    def value_at_rank(self, rank: int) -> float:
        """The ``rank``-th smallest sample (0-based), to within the bucket error."""
        if self.n == 0:
            return math.nan
        if rank <= 0:
            return float(self.lo)
        if rank >= self.n - 1:
            return float(self.hi)
        cum = np.cumsum(self.counts)
        i = int(np.searchsorted(cum, rank, side="right"))
        mid = GAMMA ** (i + 0.5)
        return min(max(mid, float(self.lo)), float(self.hi))

    def percentile(self, q: float) -> float:
        """The q-th percentile (0..100), interpolated between order statistics as
        numpy's default ``linear`` method does."""
        if self.n == 0:
            return math.nan
        h = (self.n - 1) * q / 100.0
        below = math.floor(h)
        a = self.value_at_rank(below)
        if h == below:
            return a
        b = self.value_at_rank(below + 1)
        return a + (b - a) * (h - below)

    def percentile_ci(self, q: float, confidence: float = 0.95) -> tuple[float, float] | None:
        """Distribution-free bounds on the q-th percentile from order statistics, or
        None when there are too few samples for them."""
        ranks = quantile_ci(self.n, q / 100.0, confidence)
        if ranks is None:
            return None
        return self.value_at_rank(ranks[0]), self.value_at_rank(ranks[1])


#: zero buckets kept inline inside a run rather than starting a new one (cheaper in JSON)
_MAX_INLINE_ZEROS = 3


class StoredHistogram(msgspec.Struct, kw_only=True, omit_defaults=False):
    """A latency histogram as results.json stores it (format version 2).

    Bucket ``i`` holds durations in ``[gamma**i, gamma**(i+1))`` nanoseconds. Only
    the buckets between the first and last non-empty one of each *run* are written:
    ``runs`` is a list of ``[first_bucket_index, [count, count, ...]]`` pairs, the counts of
    consecutive buckets from that index (a gap of up to three empty buckets is kept
    inline as zeros). ``n``, ``sum``, ``min`` and ``max`` are exact, in ns.
    """

    unit: str = "ns"
    gamma: float = GAMMA
    n: int
    sum: int
    min: int
    max: int
    runs: list[tuple[int, list[int]]] = []


_Z = {0.90: 1.6448536, 0.95: 1.9599640, 0.99: 2.5758293}


def quantile_ci(n: int, p: float, confidence: float = 0.95) -> tuple[int, int] | None:
    """0-based ranks (lower, upper) whose order statistics bracket the p-quantile
    with the given confidence (normal approximation to the binomial), or None when
    the sample is too small to bound it on both sides."""
    z = _Z[confidence]
    sd = math.sqrt(n * p * (1.0 - p))
    lower = math.floor(n * p - z * sd) - 1
    upper = math.ceil(n * p + z * sd)
    if lower < 0 or upper > n - 1 or sd == 0:
        return None
    return lower, upper


# Two-sided 95% Student t quantiles for 1..30 degrees of freedom.
_T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t95(df: int) -> float:
    """The two-sided 95% Student t quantile."""
    if df < 1:
        return math.inf
    return _T95[df - 1] if df <= len(_T95) else 1.960 + 2.4 / df


def normal_quantile(p: float) -> float:
    """The standard normal quantile (inverse CDF) at ``p`` in (0, 1), by bisection on erf."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability {p} is not in (0, 1)")
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2


_T_GRID = np.linspace(0.0, math.pi / 2, 20_001)


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile at ``p`` in (0, 1) for any ``df`` >= 1 (not only integers).

    With ``t = sqrt(df) tan(u)`` the t density becomes proportional to
    ``cos(u) ** (df - 1)`` on [0, pi/2): its integral, cumulated on a fine grid and
    inverted by interpolation, gives the quantile (to about 1e-6 relative)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"probability {p} is not in (0, 1)")
    if not math.isfinite(df) or df > 1e7:
        return normal_quantile(p)
    df = max(df, 1.0)
    f = np.cos(_T_GRID) ** (df - 1)
    cum = np.concatenate(([0.0], np.cumsum((f[1:] + f[:-1]) / 2 * np.diff(_T_GRID))))
    target = abs(2 * p - 1) * cum[-1]
    u = float(np.interp(target, cum, _T_GRID))
    t = math.sqrt(df) * math.tan(u)
    return t if p >= 0.5 else -t


def rate_ci(count: int, seconds: float, window_rates: Sequence[float]) -> tuple[float, float, str]:
    """A 95% interval for a throughput.

    With at least three full windows it is the batch-means interval (mean of the
    window rates +- t * standard error), which captures drift and jitter; with
    fewer it falls back to the counting interval of a Poisson process of ``count``
    events in ``seconds``. Returns (low, high, method).
    """
    k = len(window_rates)
    if k >= 3:
        arr = np.asarray(window_rates, dtype=float)
        mean = float(arr.mean())
        half = t95(k - 1) * float(arr.std(ddof=1)) / math.sqrt(k)
        return max(0.0, mean - half), mean + half, "batch_means"
    if seconds <= 0:
        return math.nan, math.nan, "none"
    half = 1.96 * math.sqrt(max(count, 1)) / seconds
    rate = count / seconds
    return max(0.0, rate - half), rate + half, "poisson"


def coefficient_of_variation(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    arr = np.asarray(values, dtype=float)
    mean = float(arr.mean())
    return float(arr.std(ddof=1)) / mean if mean > 0 else math.inf


def windows_stable(rates: Sequence[float], windows: int, tolerance: float) -> bool:
    """perf_analyzer's rule: the last ``windows`` window rates each lie within
    ``tolerance`` of their mean."""
    if len(rates) < windows:
        return False
    last = rates[-windows:]
    mean = sum(last) / windows
    return mean > 0 and all(abs(r - mean) <= tolerance * mean for r in last)
