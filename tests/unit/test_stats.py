"""npf_core.results.stats: the histogram's error bound, exact moments, merging, the wire
form, and confidence intervals that cover the truth on synthetic data.

Every random draw uses a fixed seed, so each test is deterministic; the coverage
tests repeat a synthetic experiment a few hundred times and check that the share
of intervals holding the true value is near the promised 95%.
"""

from __future__ import annotations

import math
import zlib

import msgspec
import numpy as np
import pytest

from npf_core.results.stats import Histogram, quantile_ci, rate_ci, windows_stable
from npf_core.wire.protocol import Hist

#: The promised bound on the relative error of every reported value.
REL = 1e-3
#: Slack for floating-point rounding in the interpolation itself.
ROUNDING = 1e-12

PERCENTILES = [0, 0.1, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100, *np.linspace(0, 100, 201).tolist()]


def log_uniform_ns(rng: np.random.Generator, n: int, lo: float = 1.0, hi: float = 1e12) -> np.ndarray:
    """Integer nanosecond durations spread evenly over twelve orders of magnitude."""
    return np.exp(rng.uniform(math.log(lo), math.log(hi), n)).astype(np.int64).clip(1)


def hist_of(values: np.ndarray, chunks: int = 1) -> Histogram:
    h = Histogram()
    for part in np.array_split(values, chunks):
        h.add(part)
    return h


def assert_same(a: Histogram, b: Histogram) -> None:
    assert (a.n, a.total, a.lo, a.hi) == (b.n, b.total, b.lo, b.hi)
    np.testing.assert_array_equal(a.counts, b.counts)


# -- the relative error bound -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "draw"),
    [
        ("log-uniform 1 ns .. 1000 s", lambda rng: log_uniform_ns(rng, 20_000)),
        ("heavy tail (lognormal)", lambda rng: rng.lognormal(math.log(2e6), 1.5, 20_000).astype(np.int64).clip(1)),
        ("few distinct values, far apart", lambda rng: rng.choice([7, 1_000, 1_000_003, 9_999_999_999], 5_000)),
        ("small sample", lambda rng: log_uniform_ns(rng, 7, 10, 1e9)),
        ("narrow: 1 ms +- 1 us", lambda rng: rng.integers(999_000, 1_001_000, 50_000)),
    ],
)
def test_percentiles_within_relative_bound_of_numpy(name: str, draw) -> None:
    """Interpolated percentiles are within 0.1% of numpy's on the same data.

    numpy's ``linear`` percentile is ``v = (1 - f) * x[k] + f * x[k + 1]``; ours
    interpolates between estimates ``x'[k]``, ``x'[k + 1]`` that are each within
    REL of the true order statistic. The error is
    ``(1 - f) * (x'[k] - x[k]) + f * (x'[k + 1] - x[k + 1])``, whose magnitude is at
    most ``REL * ((1 - f) * x[k] + f * x[k + 1]) = REL * v`` because every duration
    is positive. So the right bound is relative to numpy's own value — even where
    it interpolates across a wide gap — and needs no absolute term beyond rounding.
    """
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    data = draw(rng)
    h = hist_of(data, chunks=3)
    for q in PERCENTILES:
        ours = h.percentile(q)
        ref = float(np.percentile(data, q))
        assert abs(ours - ref) <= REL * ref + ROUNDING * ref, f"{name}: p{q}: ours {ours!r}, numpy {ref!r}"


def test_every_order_statistic_within_bound() -> None:
    rng = np.random.default_rng(1)
    data = log_uniform_ns(rng, 30_000)
    h = hist_of(data)
    srt = np.sort(data).astype(float)
    worst = 0.0
    for rank in range(0, data.size, 7):
        got = h.value_at_rank(rank)
        err = abs(got - srt[rank]) / srt[rank]
        worst = max(worst, err)
        assert err <= REL, f"rank {rank}: {got} vs {srt[rank]}"
    # Not vacuous: on data this spread some estimates use a good part of the bound
    # (a histogram that kept every value exactly would not have a bounded size).
    assert worst > REL / 4


def test_bucket_grid_error_bound_at_bucket_edges() -> None:
    """Values right at bucket edges (the worst case) stay within the bound."""
    from npf_core.results.stats import GAMMA

    edges = np.unique((GAMMA ** np.arange(100, 15_000, 97)).astype(np.int64))
    data = np.concatenate([edges - 1, edges, edges + 1]).clip(1)
    h = hist_of(data)
    srt = np.sort(data).astype(float)
    for rank in range(data.size):
        assert abs(h.value_at_rank(rank) - srt[rank]) <= REL * srt[rank]


# -- exact moments ------------------------------------------------------------


def test_count_sum_min_max_are_exact() -> None:
    rng = np.random.default_rng(2)
    data = log_uniform_ns(rng, 10_001, 50, 5e11)
    h = hist_of(data, chunks=5)
    assert h.n == data.size
    assert h.total == int(data.sum())  # exact integer sum, no rounding
    assert h.lo == int(data.min())
    assert h.hi == int(data.max())
    assert h.mean == int(data.sum()) / data.size
    assert h.percentile(0) == data.min()
    assert h.percentile(100) == data.max()
    assert int(h.counts.sum()) == data.size


def test_large_values_sum_exactly() -> None:
    """Sums of hour-long durations over many samples do not lose nanoseconds."""
    data = np.full(1_000, 3_600 * 10**9 + 1, dtype=np.int64)
    h = hist_of(data)
    assert h.total == 1_000 * (3_600 * 10**9 + 1)


def test_empty_histogram() -> None:
    h = Histogram()
    h.add([])
    assert h.n == 0 and h.total == 0
    assert math.isnan(h.mean)
    assert math.isnan(h.percentile(50))
    assert h.percentile_ci(50) is None


def test_single_value() -> None:
    h = hist_of(np.array([123_456]))
    for q in (0, 50, 99.9, 100):
        assert h.percentile(q) == 123_456


# -- merging and the wire -----------------------------------------------------


def test_merge_equals_histogram_of_concatenated_data() -> None:
    rng = np.random.default_rng(3)
    parts = [log_uniform_ns(rng, n, lo, hi) for n, lo, hi in ((5_000, 1, 1e4), (1, 1e9, 1e10), (7_000, 1e3, 1e8))]
    whole = hist_of(np.concatenate(parts))

    merged = Histogram()
    merged.merge(Histogram())  # an empty one changes nothing, even first
    for p in parts:
        merged.merge(hist_of(p))
    merged.merge(Histogram())
    assert_same(merged, whole)
    assert_same(Histogram.merged(hist_of(p) for p in reversed(parts)), whole)
    for q in PERCENTILES:
        assert merged.percentile(q) == whole.percentile(q)


def test_merge_into_empty_takes_the_other_minimum() -> None:
    h = Histogram()
    h.merge(hist_of(np.array([500, 900])))
    assert (h.lo, h.hi, h.n) == (500, 900, 2)


def test_wire_round_trip() -> None:
    rng = np.random.default_rng(4)
    h = hist_of(log_uniform_ns(rng, 20_000))
    wire = h.to_wire()
    assert isinstance(wire, Hist)
    assert len(wire.index) == int(np.count_nonzero(h.counts))  # sparse
    assert_same(Histogram.from_wire(wire), h)
    # ... and through the real encoding, as the benchmarker sends it
    raw = msgspec.msgpack.encode(wire)
    back = Histogram.from_wire(msgspec.msgpack.decode(raw, type=Hist))
    assert_same(back, h)
    for q in PERCENTILES:
        assert back.percentile(q) == h.percentile(q)


def test_wire_round_trip_empty() -> None:
    back = Histogram.from_wire(msgspec.msgpack.decode(msgspec.msgpack.encode(Histogram().to_wire()), type=Hist))
    assert back.n == 0 and int(back.counts.sum()) == 0


def test_wire_size_is_bounded_by_spread_not_count() -> None:
    """A million samples within one decade fit in a small message."""
    rng = np.random.default_rng(5)
    h = hist_of(rng.integers(1_000_000, 10_000_000, 1_000_000))
    assert len(msgspec.msgpack.encode(h.to_wire())) < 20_000


# -- order-statistic confidence bounds ----------------------------------------

TRIALS = 400


@pytest.mark.parametrize(("p", "n"), [(0.5, 200), (0.5, 2_000), (0.99, 2_000), (0.9, 500)])
def test_quantile_ci_covers_true_quantile(p: float, n: int) -> None:
    """Ranks from quantile_ci bracket the exponential's true p-quantile in about
    95% of repeated samples (neither much less — too narrow — nor much more)."""
    rng = np.random.default_rng(int(p * 1000) + n)
    truth = -math.log(1.0 - p)  # exponential(1) quantile
    ranks = quantile_ci(n, p)
    assert ranks is not None
    lo, hi = ranks
    assert 0 <= lo < hi <= n - 1
    samples = np.sort(rng.exponential(1.0, (TRIALS, n)), axis=1)
    covered = (samples[:, lo] <= truth) & (truth <= samples[:, hi])
    coverage = float(covered.mean())
    assert 0.92 <= coverage <= 0.98, f"p={p}, n={n}: coverage {coverage:.3f}"


def test_histogram_percentile_ci_covers_true_quantile() -> None:
    """The same, end to end through the histogram (bucket error included), for the
    p50 and p99 of a lognormal latency distribution in nanoseconds."""
    rng = np.random.default_rng(6)
    mu, sigma, n = math.log(1e6), 0.5, 3_000
    z = {50: 0.0, 99: 2.3263479}
    hits = {50: 0, 99: 0}
    for _ in range(TRIALS):
        h = hist_of(rng.lognormal(mu, sigma, n).astype(np.int64))
        for q in hits:
            bounds = h.percentile_ci(q)
            assert bounds is not None
            lo, hi = bounds
            assert lo <= h.percentile(q) <= hi
            hits[q] += lo <= math.exp(mu + sigma * z[q]) <= hi
    for q, k in hits.items():
        assert 0.92 <= k / TRIALS <= 0.98, f"p{q}: coverage {k / TRIALS:.3f}"


def test_quantile_ci_none_when_sample_too_small() -> None:
    assert quantile_ci(50, 0.99) is None  # a p99 from 50 samples cannot be bounded above
    assert quantile_ci(0, 0.5) is None
    assert quantile_ci(1, 0.5) is None
    assert quantile_ci(100, 0.5) is not None


def test_quantile_ci_narrows_with_more_samples() -> None:
    widths = []
    for n in (1_000, 10_000, 100_000):
        lo, hi = quantile_ci(n, 0.99)  # type: ignore[misc]
        widths.append((hi - lo) / n)
    assert widths[0] > widths[1] > widths[2]


# -- throughput confidence intervals ------------------------------------------


def test_rate_ci_poisson_counting_interval_covers_true_rate() -> None:
    """Few windows: the Poisson counting interval covers the true event rate."""
    rng = np.random.default_rng(7)
    rate, seconds = 400.0, 0.3
    hits = 0
    for count in rng.poisson(rate * seconds, TRIALS):
        low, high, method = rate_ci(int(count), seconds, [])
        assert method == "poisson"
        assert low <= count / seconds <= high
        hits += low <= rate <= high
    assert 0.92 <= hits / TRIALS <= 0.98, f"coverage {hits / TRIALS:.3f}"


@pytest.mark.parametrize("k", [5, 8, 20])
def test_rate_ci_batch_means_covers_true_rate_with_jitter(k: int) -> None:
    """Enough windows: the batch-means interval covers the true rate when each
    window's rate is jittered (the machine's speed varies from window to window)
    on top of Poisson counting noise."""
    rng = np.random.default_rng(8 + k)
    rate, window_s = 2_000.0, 0.5
    hits = 0
    for _ in range(TRIALS):
        jitter = rng.uniform(0.8, 1.2, k)  # mean 1: the true long-run rate is `rate`
        counts = rng.poisson(rate * window_s * jitter)
        window_rates = (counts / window_s).tolist()
        low, high, method = rate_ci(int(counts.sum()), k * window_s, window_rates)
        assert method == "batch_means"
        assert low < high
        hits += low <= rate <= high
    assert 0.92 <= hits / TRIALS <= 0.98, f"k={k}: coverage {hits / TRIALS:.3f}"


def test_rate_ci_width_shrinks_with_steadier_windows() -> None:
    steady = rate_ci(10_000, 5.0, [2_000, 2_001, 1_999, 2_000, 2_000])
    jumpy = rate_ci(10_000, 5.0, [1_500, 2_500, 1_800, 2_200, 2_000])
    assert steady[1] - steady[0] < jumpy[1] - jumpy[0]
    assert steady[0] <= 2_000 <= steady[1]


def test_rate_ci_never_negative() -> None:
    low, _, _ = rate_ci(1, 1.0, [])
    assert low >= 0.0
    low, _, _ = rate_ci(10, 5.0, [0.0, 0.0, 0.0, 0.0, 50.0])
    assert low >= 0.0


# -- stability ----------------------------------------------------------------


def test_windows_stable_needs_enough_windows() -> None:
    assert not windows_stable([], 3, 0.05)
    assert not windows_stable([100.0, 100.0], 3, 0.05)
    assert windows_stable([100.0, 100.0, 100.0], 3, 0.05)


def test_windows_stable_tolerance() -> None:
    assert windows_stable([100.0, 104.0, 97.0], 3, 0.05)  # all within 5% of the mean (100.33)
    assert not windows_stable([100.0, 100.0, 112.0], 3, 0.05)  # 112 is 7.7% above the mean
    assert not windows_stable([100.0, 104.0, 97.0], 3, 0.02)


def test_windows_stable_looks_at_the_last_windows_only() -> None:
    warming = [10.0, 50.0, 90.0]
    assert windows_stable([*warming, 100.0, 101.0, 99.0], 3, 0.05)
    assert not windows_stable([100.0, 101.0, 99.0, 50.0], 3, 0.05)  # a late drop breaks it


def test_windows_stable_rejects_idle() -> None:
    assert not windows_stable([0.0, 0.0, 0.0], 3, 0.05)
