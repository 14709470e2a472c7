"""The capacity search's statistics (npf_core.results.capacity) and the queueing
models it is checked against (npf_core.results.queueing): pure functions, no process."""

from __future__ import annotations

import math

import numpy as np
import pytest

from npf_core.results.capacity import (
    BURSTS,
    FAIL,
    PASS,
    UNDECIDED,
    CapacityProbe,
    decide,
    estimate,
    log_over,
    next_rate,
    quantile_interval,
)
from npf_core.results.queueing import capacity_at, pk_mean_wait, sojourn_times
from npf_core.results.stats import Histogram

# -- deciding a probe ---------------------------------------------------------


def test_a_probe_far_below_the_budget_passes_and_far_above_fails() -> None:
    calm = decide([(250, 0)] * 8)  # 2,000 calls, none over the budget
    assert calm.verdict == PASS and calm.fraction == 0
    busy = decide([(250, 25)] * 8)  # 10% over
    assert busy.verdict == FAIL


def test_a_fraction_close_to_one_percent_is_undecided() -> None:
    assert decide([(250, 3)] * 8).verdict == ""  # 1.2% of 2,000 calls: within the binomial noise


def test_slow_calls_in_bursts_widen_the_interval() -> None:
    """The same 1.5% over the budget: spread evenly over the windows it fails; in
    bursts (queueing: one slow call delays those behind it) the windows disagree and
    the batch-means error leaves it undecided."""
    even = decide([(1000, 15)] * 16)
    bursty = decide([(1000, 0)] * 12 + [(1000, 60)] * 4)
    assert even.fraction == bursty.fraction == pytest.approx(0.015)
    assert even.verdict == FAIL
    assert bursty.verdict == ""
    assert bursty.se > even.se and bursty.design_effect > 10 * even.design_effect


def test_the_totals_override_the_windows_and_no_call_is_undecided() -> None:
    d = decide([(100, 0)] * 4, calls=1000, over=500)
    assert d.calls == 1000 and d.fraction == 0.5 and d.verdict == FAIL
    assert decide([]).verdict == ""


def test_the_p99_interval_is_the_latencies_at_the_decided_quantiles() -> None:
    h = Histogram()
    h.add(np.arange(1, 10_001) * 1000)  # 1 µs .. 10 ms, evenly
    d = decide([(10_000, 100)])  # exactly 1% over the 99th percentile
    low, high = quantile_interval(h, d)
    half = d.half_width
    assert low == pytest.approx((0.99 - half) * 10_000 * 1000, rel=0.01)
    assert high == pytest.approx((0.99 + half) * 10_000 * 1000, rel=0.01)
    assert low < h.percentile(99) < high
    # requests that never started are infinitely slow: with many, the upper end is unresolved
    assert quantile_interval(h, d, never_started=500)[1] == math.inf


# -- where to probe next, and the capacity ------------------------------------

MU, BUDGET_MS = 1000.0, 10.0  # an M/M/1 queue: P(T > B) = exp(-(mu - lambda) B)
TRUE_CAPACITY = MU - math.log(100) / (BUDGET_MS / 1000)  # 539.5/s: where P(T > B) = 1%


def mm1_log_over(rate: float) -> float:
    return -(MU - rate) * BUDGET_MS / 1000


def test_the_next_rate_lands_on_the_crossing_of_an_exponential_exceedance_curve() -> None:
    """For M/M/1 the log of the fraction over the budget is a line in the rate that
    reaches 0 at the service rate: anchored at the closed loop's bound, one probe's
    point lands exactly where the fraction is 1%."""
    first = next_rate([], [], upper=MU, idle_log_over=mm1_log_over(0.0))
    assert first == pytest.approx(TRUE_CAPACITY, rel=1e-9)
    after_a_pass = next_rate([(300.0, mm1_log_over(300.0))], [], upper=MU, idle_log_over=-30.0)
    assert after_a_pass == pytest.approx(TRUE_CAPACITY, rel=1e-9)


def test_the_next_rate_keeps_away_from_the_bracket_ends_and_halves_when_stuck() -> None:
    passed, failed = [(100.0, math.log(0.001))], [(200.0, math.log(0.5))]
    # a line that would land at the failing end is held 10% of the bracket away from it
    assert next_rate([(100.0, math.log(0.0099))], failed, 300.0, -9.0) == pytest.approx(110.0)
    assert next_rate(passed, failed, 300.0, -9.0, same_side=True) == pytest.approx(150.0)
    # the idle system already misses the budget: a light load first
    assert next_rate([], [], 1000.0, math.log(0.2)) == pytest.approx(50.0)


def probe(rate: float, verdict: str, calls: int = 4000, over: int | None = None) -> CapacityProbe:
    if over is None:
        over = round(calls * math.exp(mm1_log_over(rate)))
    return CapacityProbe(mode="poisson", rate=rate, inf_s=rate, achieved_inf_s=rate, seconds=8.0, calls=calls,
                         p99_ms=BUDGET_MS * (1.2 if verdict == FAIL else 0.8), over=over,
                         over_fraction=over / calls, verdict=verdict)  # fmt: skip


def test_the_capacity_is_where_the_fitted_exceedance_line_crosses_one_percent() -> None:
    closed = CapacityProbe(mode="closed", rate=MU, inf_s=MU, achieved_inf_s=MU, seconds=2, calls=1000, p99_ms=9.0,
                           verdict="bound")  # fmt: skip
    probes = [closed, probe(300.0, PASS), probe(450.0, PASS), probe(600.0, FAIL), probe(520.0, UNDECIDED)]
    point, low, high = estimate(probes, BUDGET_MS, bound=MU)
    assert point == pytest.approx(TRUE_CAPACITY, rel=0.02)
    assert high is not None and 0 < low < TRUE_CAPACITY < high < MU  # the fit's interval
    # with fewer probes the fit's interval is wider
    _, low3, high3 = estimate(probes[:4], BUDGET_MS, bound=MU)
    assert high3 is not None and high3 - low3 > high - low


def test_the_capacity_stays_between_the_sides_and_is_none_without_a_pass() -> None:
    # a line that would put the crossing above the lowest failing rate is clipped to it
    probes = [probe(30.0, PASS, over=3), probe(35.0, FAIL, over=200)]
    point, low, high = estimate(probes, BUDGET_MS, bound=MU)
    assert point is not None and 30.0 <= point <= 35.0 and low <= point <= (high or MU)
    # without a fit, the interval is the decided bracket
    point, low, high = estimate([probe(30.0, PASS, over=0), probe(35.0, FAIL, over=200)], BUDGET_MS, bound=MU)
    assert (low, high) == (30.0, 35.0)
    assert estimate([probe(50.0, FAIL)], BUDGET_MS, bound=MU) == (None, 0.0, 50.0)
    # with no failing probe the interval runs up to the closed loop's bound
    assert estimate([probe(0.0, PASS, over=0)], BUDGET_MS, bound=MU) == (0.0, 0.0, MU)


def test_log_over_is_finite_with_no_call_over() -> None:
    assert log_over(0, 1000) == pytest.approx(math.log(0.5 / 1000))


# -- the reference queueing models ----------------------------------------------


def test_the_mm1_simulation_matches_the_closed_form_sojourn_percentile() -> None:
    rng = np.random.default_rng(7)
    service = rng.exponential(1 / MU, 200_000)
    t = sojourn_times(service, 300.0, n=400_000, seed=1)[20_000:]
    assert float(np.percentile(t, 99)) == pytest.approx(math.log(100) / (MU - 300.0), rel=0.05)
    assert capacity_at(service, BUDGET_MS / 1000, n=400_000) == pytest.approx(TRUE_CAPACITY, rel=0.03)


def test_the_mg1_simulation_matches_pollaczek_khinchine() -> None:
    service = np.full(1000, 0.002)  # M/D/1
    t = sojourn_times(service, 300.0, n=400_000)
    assert float(t.mean()) - 0.002 == pytest.approx(pk_mean_wait(service, 300.0), rel=0.05)
    assert pk_mean_wait(service, 600.0) == math.inf  # rho > 1


def test_more_servers_sharing_one_queue_carry_more_than_that_many_single_queues() -> None:
    """The pooling that makes workers of one copy beat the same workers in separate copies."""
    service = np.random.default_rng(3).exponential(0.002, 50_000)
    one = capacity_at(service, 0.010, n=60_000)
    two = capacity_at(service, 0.010, servers=2, n=60_000)
    assert two > 2 * one
    assert capacity_at(np.full(10, 0.02), 0.010) == 0.0  # every call alone is over the budget


def test_the_mm2_simulation_matches_erlang_c() -> None:
    lam, mu, c = 600.0, 500.0, 2
    a, rho = lam / mu, lam / (c * mu)
    tail = a**c / math.factorial(c) / (1 - rho)
    p_wait = tail / (sum(a**k / math.factorial(k) for k in range(c)) + tail)
    service = np.random.default_rng(2).exponential(1 / mu, 300_000)
    t = sojourn_times(service, lam, servers=c, n=300_000, seed=4)
    assert float(t.mean()) - 1 / mu == pytest.approx(p_wait / (c * mu - lam), rel=0.06)


def test_a_model_prediction_places_the_first_probe_within_the_bound() -> None:
    assert next_rate([], [], 1000.0, -9.0, first=400.0) == 400.0
    assert next_rate([], [], 1000.0, -9.0, first=5000.0) == 950.0
    assert next_rate([], [], 1000.0, -9.0, first=1.0) == 50.0
    # the model says even an idle copy misses the budget: a light load, to confirm
    assert next_rate([], [], 1000.0, -9.0, first=0.0) == 50.0
    # once a probe ran, the prediction is not used again
    assert next_rate([(400.0, math.log(0.001))], [], 1000.0, -9.0, first=400.0) != 400.0


def test_a_short_probe_that_saw_no_burst_does_not_pass_on_binomial_luck() -> None:
    """760 calls, 2 of them over the budget, evenly spread: independent calls would
    pass, but near a queue's capacity slow calls come in bursts that a 2.5 s probe may
    simply not have met; with the floor on the design effect it goes on measuring."""
    windows = [(76, 0)] * 8 + [(76, 1)] * 2
    assert decide(windows).verdict == PASS
    assert decide(windows, min_design_effect=BURSTS).verdict == ""
    assert decide([(250, 0)] * 20, min_design_effect=BURSTS).verdict == PASS  # 5,000 calls, none over


def test_crossed_sides_do_not_pin_the_capacity_to_a_noisy_probe() -> None:
    """Noise can put a probe on the failing side below one on the passing side: the
    sides then bound nothing, and the fitted line decides."""
    probes = [probe(300.0, UNDECIDED, over=12), probe(450.0, PASS), probe(520.0, UNDECIDED),
              probe(600.0, FAIL)]  # fmt: skip
    probes[0].p99_ms = 12.0  # a burst: over the budget at a light load
    point, _, _ = estimate(probes, BUDGET_MS, bound=MU)
    assert point is not None and point > 450.0
