"""The statistics of the capacity search (``"load": {"mode": "capacity"}``), as pure
functions: when a probe's p99 is decided against the budget, the p99's interval,
where to probe next, and the capacity the probes imply. The supervisor's side
(sending the probes, the incumbent across configurations) is
:mod:`npf_core.supervisor.capacity`; docs/capacity.md says what it all means.

**Deciding a probe.** The p99 is within a budget B exactly when at most 1% of the
calls take longer than B. A probe counts the calls over B in each measurement
window and tests the fraction over B against 1%. Its standard error is the larger
of the binomial one at 1% (``sqrt(0.01 * 0.99 / n)``) and the batch-means one over
the windows: a queue makes slow calls come in bursts, so that n calls carry less
information than n independent ones, and the windows see that. The p99's interval
is the one this standard error implies, the latencies at quantiles
``0.99 -+ crit * se``: the probe passes when the interval lies within the budget,
fails when it lies above, and is undecided when it straddles the budget after
``probe_max_s``.

Bursts are rare events: a short probe may see none, and then its windows cannot tell
how bursty the queue is. So a decision assumes at least the design effect
:data:`BURSTS` (3: simulated M/G/1 queues near their capacity show 2 to 9, M/G/2
queues 10 to 40; with 3 the whole search, simulated on both, finds their capacity
within about 7% and 3-4% (one standard deviation; benchmarks/capacity_sim.py) without making probes far from the
budget much longer). For the burstiest queues a short probe's pass can still be
luck, which is why the capacity's interval comes from the fit over all the probes
rather than from the bracket of single decisions.

**Where the capacity is.** The fraction of calls over B grows about exponentially
with the arrival rate (``log P(T > B)`` is linear in the rate; exact for the M/M/1
queue, whose ``P(T > B) = exp(-(mu - lambda) B)``, which reaches 1 where the rate
reaches the service rate). So the next rate and the capacity come from a line
through ``(rate, log fraction over B)`` crossing ``log 0.01``: for the next probe,
through the two probes that bracket the budget (anchored at the closed loop's
bound, where the fraction is 1, until a probe fails); for the capacity, fitted to
every informative probe, each weighted by its effective count of slow calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from npf_core.results.stats import Histogram, t95

__all__ = [
    "AT_Q",
    "BOUND",
    "FAIL",
    "PASS",
    "UNDECIDED",
    "CapacityProbe",
    "BURSTS",
    "Decision",
    "decide",
    "estimate",
    "log_over",
    "next_rate",
    "quantile_interval",
    "side",
]

#: the percentile the budget applies to, as a fraction
AT_Q = 0.99
#: windows a batch-means standard error needs
MIN_WINDOWS = 4
#: z for the decisions (95%, two-sided)
Z = 1.959964
#: the design effect a probe's decision assumes at least (see decide)
BURSTS = 3.0
#: the fit's standard error understates the capacity's (the line is a model, the
#: design effects are estimates): its interval is widened this much, which makes it
#: cover the true capacity in 228 of 240 searches simulated on M/G/1 and M/G/2 queues
#: (1 or 2 copies of 1 or 2 workers: benchmarks/capacity_sim.py)
FIT_WIDEN = 2.5
#: probes whose fraction over the budget is above this say little about where it is 1%
INFORMATIVE_MAX = 0.1

PASS, FAIL, UNDECIDED, BOUND = "pass", "fail", "undecided", "bound"


class CapacityProbe(msgspec.Struct, kw_only=True, omit_defaults=False):
    """One probe of a configuration's capacity search, as the report keeps it.

    The first probe is the closed loop (``mode`` ``"closed"``, verdict ``"bound"``):
    its throughput bounds the capacity from above. The others are Poisson open
    loops at an offered ``rate`` (requests per second over all copies; ``inf_s`` is
    that times the batch size), with the p99 of their latencies (from each request's
    scheduled arrival) and its interval, and the verdict against the budget."""

    mode: str
    rate: float
    inf_s: float
    achieved_inf_s: float
    seconds: float
    calls: int
    #: None: no call completed
    p99_ms: float | None
    p99_ci_low_ms: float | None = None
    #: None: beyond what the probe's calls resolve
    p99_ci_high_ms: float | None = None
    #: calls over the budget (requests that never started count as over), and how
    #: much more their count varies than independent calls' would (>= 1)
    over: int = 0
    over_fraction: float | None = None
    design_effect: float = 1.0
    #: "bound" (the closed loop), "pass", "fail" or "undecided"
    verdict: str = ""
    #: why the probe ended: "decided", "deadline" (probe_max_s), "enough-calls" (closed loop)
    stopped_by: str = ""
    dropped: int = 0


class Decision(msgspec.Struct, frozen=True):
    """A probe's fraction of calls over the budget and the test of it against 1%."""

    calls: int
    over: int
    fraction: float
    se: float
    crit: float
    #: the batch-means variance over the binomial one at the observed fraction (>= 1)
    design_effect: float
    #: "pass", "fail" or "" (undecided)
    verdict: str

    @property
    def half_width(self) -> float:
        return self.crit * self.se


def decide(window_counts: Sequence[tuple[int, int]], calls: int | None = None, over: int | None = None,
           q: float = AT_Q, min_design_effect: float = 1.0) -> Decision:  # fmt: skip
    """Test the fraction of calls over the budget against ``1 - q``.

    ``window_counts``: ``(calls, calls over the budget)`` of each measurement window
    (for the batch-means standard error); ``calls`` and ``over`` the totals when
    they are known apart from the windows (the probe's Result, with requests that
    never started counted as over). ``min_design_effect``: how bursty slow calls were
    in earlier probes of the same system: a probe too short to have seen a burst
    cannot measure its own, and its binomial error is widened by this much."""
    n = sum(c for c, _ in window_counts) if calls is None else calls
    x = sum(o for _, o in window_counts) if over is None else over
    p0 = 1.0 - q
    if n <= 0:
        return Decision(0, 0, math.nan, math.inf, Z, 1.0, "")
    f = x / n
    se = math.sqrt(max(min_design_effect, 1.0) * p0 * (1 - p0) / n)
    crit = Z
    deff = 1.0
    windows = [(c, o) for c, o in window_counts if c > 0]
    k = len(windows)
    if k >= MIN_WINDOWS:
        total = sum(c for c, _ in windows)
        wf = sum(o for _, o in windows) / total
        mean_calls = total / k
        se_bm = math.sqrt(sum((o - wf * c) ** 2 for c, o in windows) / (k * (k - 1) * mean_calls**2))
        if 0 < wf < 1:
            deff = max(1.0, se_bm**2 * total / (wf * (1 - wf)))
        if se_bm > se:
            se, crit = se_bm, t95(k - 1)
    verdict = PASS if f + crit * se < p0 else FAIL if f - crit * se > p0 else ""
    return Decision(n, x, f, se, crit, deff, verdict)


def quantile_interval(hist: Histogram, decision: Decision, never_started: int = 0,
                      q: float = AT_Q) -> tuple[float, float]:  # fmt: skip
    """The interval (ns) of the ``q`` quantile that ``decision``'s standard error
    implies: the latencies at quantiles ``q -+ crit * se``. Requests that never
    started count as infinitely slow; an end the sample cannot resolve is 0 (low)
    or infinity (high)."""
    n = hist.n + never_started
    if n <= 0 or not math.isfinite(decision.se):
        return 0.0, math.inf
    h = decision.half_width
    lo_rank = math.floor(n * (q - h)) - 1
    hi_rank = math.ceil(n * (q + h))
    low = 0.0 if lo_rank < 0 else hist.value_at_rank(lo_rank) if lo_rank < hist.n else math.inf
    high = hist.value_at_rank(hi_rank) if hi_rank < hist.n else math.inf
    return low, high


def side(probe: CapacityProbe, budget_ms: float) -> str:
    """Which side of the capacity a probe is on: its verdict, or for an undecided
    one, its point estimate's (the p99 within the budget or not)."""
    if probe.verdict in (PASS, FAIL):
        return probe.verdict
    return PASS if probe.p99_ms is not None and probe.p99_ms <= budget_ms else FAIL


def log_over(over: float, calls: float) -> float:
    """``log`` of the fraction over the budget, kept finite: half a call when none was over."""
    return math.log(max(over, 0.5) / max(calls, 1.0))


def next_rate(passed: Sequence[tuple[float, float]], failed: Sequence[tuple[float, float]], upper: float,
              idle_log_over: float, same_side: bool = False, q: float = AT_Q,
              first: float | None = None) -> float:  # fmt: skip
    """The next offered rate (calls/s) to probe, from the probes so far:
    ``(rate, log fraction over the budget)`` of those on the passing and on the
    failing side, the closed loop's bound on the rate (where the fraction is taken
    as 1), and the fraction over the budget of the closed loop's calls (as the idle
    system's, at rate 0).

    Before any probe, ``first`` (a queueing model's prediction, when there is one),
    kept within 5% .. 95% of the bound (0: the model says even an idle copy misses
    the budget, so a light load first, to confirm). Then where the line through the
    bracketing points crosses ``log (1 - q)``, kept 10% of the bracket away from its
    ends; the bracket's middle when the last two probes fell on the same side (so
    that a poor line cannot make the search creep)."""
    if not passed and not failed and first is not None:
        return min(max(first, 0.05 * upper), 0.95 * upper)
    lo_r, lo_y = max(passed) if passed else (0.0, idle_log_over)
    hi_r, hi_y = min(failed) if failed else (upper, 0.0)
    width = hi_r - lo_r
    if width <= 0:
        return lo_r
    target = math.log(1.0 - q)
    if not passed and lo_y >= target:  # even the idle system misses the budget: a light load first
        return lo_r + 0.05 * width
    secant = not same_side and hi_y > lo_y
    guess = lo_r + (target - lo_y) / (hi_y - lo_y) * width if secant else lo_r + width / 2
    return min(max(guess, lo_r + 0.1 * width), hi_r - 0.1 * width)


def estimate(probes: Sequence[CapacityProbe], budget_ms: float, bound: float | None,
             q: float = AT_Q) -> tuple[float | None, float, float | None]:  # fmt: skip
    """The capacity (inferences/s) the probes imply, with its interval: ``(point,
    low, high)``.

    The point is where the line fitted to the informative probes' ``(rate, log
    fraction over the budget)`` crosses ``log (1 - q)`` (weighted least squares,
    each probe weighing its effective count of slow calls), and its interval that
    fit's 95% one, widened by :data:`FIT_WIDEN`, within 0 .. ``bound`` (the closed
    loop's throughput's upper bound). Without a fit (fewer than two informative
    probes): the line through the highest probe on the passing side and the lowest
    on the failing side, or the highest rate on the passing side, None when there is
    none; and the interval from the highest rate that passed to the lowest that
    failed, each decided at 95% (0 when none passed; ``bound`` when none failed).
    The point is kept between the two sides (when noise has not crossed them) and
    within the interval."""
    open_ = [p for p in probes if p.mode != "closed" and p.over_fraction is not None]
    low = max((p.inf_s for p in open_ if p.verdict == PASS), default=0.0)
    high = min((p.inf_s for p in open_ if p.verdict == FAIL), default=bound)
    target = math.log(1.0 - q)
    useful = [p for p in open_ if p.over >= 1 and (p.over_fraction or 0.0) <= INFORMATIVE_MAX]
    fitted = _fit(useful, target)
    point = fitted[0] if fitted is not None else None
    if fitted is not None:  # the fit's 95% interval, within the closed loop's bound
        half = FIT_WIDEN * Z * fitted[1]
        low, high = max(0.0, fitted[0] - half), fitted[0] + half if bound is None else min(bound, fitted[0] + half)
    if point is None:
        ups = [p for p in open_ if side(p, budget_ms) == PASS]
        downs = [p for p in open_ if side(p, budget_ms) == FAIL]
        if ups and downs:
            a = max(ups, key=lambda p: p.inf_s)
            b = min(downs, key=lambda p: p.inf_s)
            ya, yb = log_over(a.over, a.calls + a.dropped), log_over(b.over, b.calls + b.dropped)
            if yb > ya and b.inf_s > a.inf_s:
                point = a.inf_s + (target - ya) / (yb - ya) * (b.inf_s - a.inf_s)
            else:
                point = a.inf_s
        elif ups:
            point = max(p.inf_s for p in ups)
    if point is None:
        return None, low, high
    # within the decided interval, and between the highest rate on the passing side
    # and the lowest on the failing side when those are in order (a line through noisy
    # fractions can land far off; noisy sides can also cross, and then say nothing)
    up = max((p.inf_s for p in open_ if side(p, budget_ms) == PASS), default=low)
    down = min((p.inf_s for p in open_ if side(p, budget_ms) == FAIL), default=high)
    bottom, top = (max(low, up), down) if down is None or up <= down else (low, high)
    point = max(point, bottom)
    if top is not None:
        point = min(point, top)
    return point, min(low, point), None if high is None else max(high, point)


def _fit(probes: Sequence[CapacityProbe], target: float) -> tuple[float, float] | None:
    """Weighted least squares of log fraction over the budget on the rate (inf/s),
    solved for ``target``: the rate and its standard error; None without two
    distinct rates or a rising line.

    The log of a probe's fraction has a variance of about ``design effect / over``
    (a count's relative variance, widened by the bursts), so each probe weighs the
    inverse of that; the rate's standard error is the inverse regression's
    ``sqrt(1 / sum(w) + (x* - mean x)^2 / Sxx) / slope``."""
    if len({p.inf_s for p in probes}) < 2:
        return None
    w = [p.over / max(p.design_effect, BURSTS) for p in probes]
    x = [p.inf_s for p in probes]
    y = [log_over(p.over, p.calls + p.dropped) for p in probes]
    sw = sum(w)
    mx = sum(wi * xi for wi, xi in zip(w, x, strict=True)) / sw
    my = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / sw
    sxx = sum(wi * (xi - mx) ** 2 for wi, xi in zip(w, x, strict=True))
    sxy = sum(wi * (xi - mx) * (yi - my) for wi, xi, yi in zip(w, x, y, strict=True))
    if sxx <= 0 or sxy <= 0:
        return None
    slope = sxy / sxx
    cross = mx + (target - my) / slope
    return cross, math.sqrt(1 / sw + (cross - mx) ** 2 / sxx) / slope
