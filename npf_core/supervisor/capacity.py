"""The capacity search (``"load": {"mode": "capacity", "p99_ms": B}``), supervisor
side: for each configuration, the highest Poisson arrival rate whose p99 stays
within B, found on the loaded copies of that configuration.

Per configuration: a closed-loop probe (its throughput's upper bound is a rate no
open loop can sustain), then Poisson probes at rates chosen by
:func:`~npf_core.results.capacity.next_rate`, each measuring until its p99's interval
lies within or above the budget (at least ``probe_s``, at most ``probe_max_s``). The
copies stay loaded between probes: each probe is one more ``Go`` with its load
(:mod:`npf_core.wire.protocol`, jobs with ``repeat``).

Across configurations (:class:`CapacitySearch` lives as long as the run): the best
capacity found so far is the incumbent; a configuration whose closed-loop bound is
below it is not searched, and one whose bracket falls below it stops being searched
(neither can beat it); ``max_s`` bounds the whole search. The statistics are in
:mod:`npf_core.results.capacity`.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Awaitable, Callable, Sequence

import anyio.to_thread
import msgspec
import numpy as np
import structlog

from npf_core.results.capacity import (
    BOUND,
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
    side,
)
from npf_core.results.queueing import capacity_at, service_samples
from npf_core.results.report import Report, build_report
from npf_core.results.stats import Histogram
from npf_core.spec.config import RunConfig
from npf_core.spec.schema import Capacity
from npf_core.wire.protocol import Result

__all__ = ["CLOSED_CALLS", "CapacityOutcome", "CapacitySearch", "Probe", "StopRule"]

logger = structlog.get_logger("npf_core.supervisor.run")

#: calls the closed-loop probe gathers (within probe_s..probe_max_s): a supported p99
CLOSED_CALLS = 1000
#: with nothing passed yet, a failure at this fraction of the closed loop's bound
#: (or below) means the budget cannot be met at any useful rate
LIGHT_LOAD = 0.05
#: undecided probes (each probe_max_s long) after which a configuration's search ends
MAX_UNDECIDED = 3

#: a stop rule for a probe: (calls, calls over the budget) per window, seconds
#: measured -> a stop reason, or None to go on
StopRule = Callable[[Sequence[tuple[int, int]], float], "str | None"]
#: runs one probe on the loaded copies: (load mode, rate over all copies in calls/s,
#: (min_s, max_s, calls), stop rule) -> (the copies' Results, the per-window counts)
Probe = Callable[[str, float, tuple[float, float, int | None], StopRule | None],
                 Awaitable[tuple[list[Result], list[tuple[int, int]]]]]  # fmt: skip


class CapacityOutcome(msgspec.Struct, kw_only=True):
    """One configuration's search: what its report gets."""

    budget_ms: float
    probes: list[CapacityProbe]
    capacity: float | None
    low: float | None
    high: float | None
    how: str
    notes: list[str] = []

    def apply(self, report: Report) -> Report:
        reasons = [*report.validity_reasons, *self.notes]
        return msgspec.structs.replace(
            report, slo_p99_ms=self.budget_ms, slo_capacity_inf_s=self.capacity, slo_capacity_ci_low=self.low,
            slo_capacity_ci_high=self.high, slo_search=self.how, slo_probes=self.probes,
            valid=report.valid and not self.notes, validity_reasons=reasons,
        )  # fmt: skip


class _Incumbent(msgspec.Struct, frozen=True):
    capacity: float
    config_id: str


class CapacitySearch:
    """The capacity search of one run: the incumbent and the time spent, across
    its configurations (which run one at a time)."""

    def __init__(self, load: Capacity) -> None:
        self.load = load
        self.started: float | None = None
        self.best: _Incumbent | None = None

    def remaining_s(self) -> float:
        if self.load.max_s is None or self.started is None:
            return math.inf
        return self.load.max_s - (time.monotonic() - self.started)

    async def search(self, config: RunConfig, probe: Probe, window_s: float) -> tuple[list[Result], CapacityOutcome]:
        """Search one configuration; returns the closed-loop probe's Results (the
        report's ordinary figures) and the outcome."""
        load = self.load
        if self.started is None:
            self.started = time.monotonic()
        bs = config.batch_size
        budget = load.p99_ms
        results, _ = await probe("closed", 0.0, (load.probe_s, load.probe_max_s, CLOSED_CALLS), None)
        closed = build_report(config, results, [], window_s=window_s, load_mode="closed", target_rate=None,
                              resources={})  # fmt: skip
        upper = closed.throughput_ci95_high / bs  # calls/s no open loop sustains
        probes = [CapacityProbe(
            mode="closed", rate=closed.throughput_avg / bs, inf_s=closed.throughput_avg,
            achieved_inf_s=closed.throughput_avg, seconds=closed.total_s, calls=closed.total_calls,
            p99_ms=_finite(closed.latency_ms_p99), p99_ci_low_ms=closed.latency_ms_p99_ci_low,
            p99_ci_high_ms=closed.latency_ms_p99_ci_high, verdict=BOUND, stopped_by=closed.stopped_by,
        )]  # fmt: skip
        closed_over = sum(r.over for r in results)
        probes[0].over = closed_over
        probes[0].over_fraction = _finite(closed_over / closed.total_calls if closed.total_calls else math.nan)
        first = await self._predict(config, results)
        how = await self._search(config, probe, probes, upper, log_over(closed_over, closed.total_calls), first)
        point, low, high = estimate(probes, budget, closed.throughput_ci95_high)
        if point is not None and (self.best is None or point > self.best.capacity):
            self.best = _Incumbent(point, config.config_id)
        notes = [
            f"the capacity probe at {p.inf_s:,.0f} inf/s fell behind its schedule ({p.dropped} requests never "
            "started): its pass may be the generator's, not the model's"
            for p in probes if p.verdict == PASS and p.dropped > 0.01 * max(p.calls, 1)
        ]  # fmt: skip
        outcome = CapacityOutcome(budget_ms=budget, probes=probes, capacity=point, low=low, high=high, how=how,
                                  notes=notes)  # fmt: skip
        logger.debug("capacity", config=config.config_id, capacity=point, low=low, high=high, how=how,
                     probes=len(probes) - 1)  # fmt: skip
        return results, outcome

    async def _predict(self, config: RunConfig, results: list[Result]) -> float | None:
        """Where the first Poisson probe goes (calls/s): the rate at which each copy, an
        M/G/c queue (c its workers) fed its share of the arrivals and serving the
        closed loop's latencies as service times, would meet the budget. Computed in
        a worker thread (a fraction of a second). The latencies above their 99.5th
        percentile are clipped to it: one stall of the machine (a call of hundreds of
        ms), drawn again and again by the simulation, would put the first probe near 0."""
        hist = Histogram.merged(Histogram.from_wire(r.latency) for r in results)
        if not hist.n:
            return None
        service = service_samples(hist, 20_000)
        service = np.minimum(service, np.percentile(service, 99.5))
        run = functools.partial(capacity_at, service, self.load.p99_ms / 1000, servers=config.workers_per_model,
                                n=30_000, rel_tol=0.01)  # fmt: skip
        return config.n_models * await anyio.to_thread.run_sync(run)

    async def _search(self, config: RunConfig, probe: Probe, probes: list[CapacityProbe], upper: float,
                      idle_log_over: float, first: float | None = None) -> str:  # fmt: skip
        """The open-loop probes of one configuration (appended to ``probes``); returns
        how the search ended."""
        load = self.load
        bs = config.batch_size
        budget = load.p99_ms
        best = self.best
        if best is not None and upper * bs < best.capacity:
            return (f"not searched: its closed-loop throughput ({upper * bs:,.0f} inf/s at most) is below "
                    f"the capacity of {best.config_id} ({best.capacity:,.0f} inf/s)")  # fmt: skip
        if not (upper > 0):
            return "not searched: no call completed in the closed loop"
        while True:
            open_ = probes[1:]
            passed = [(p.rate, log_over(p.over, p.calls + p.dropped)) for p in open_ if side(p, budget) == PASS]
            failed = [(p.rate, log_over(p.over, p.calls + p.dropped)) for p in open_ if side(p, budget) == FAIL]
            if passed and failed:
                lo, hi = max(passed)[0], min(failed)[0]
                if hi - lo <= load.tolerance * lo:
                    decided = {p.rate for p in open_ if p.verdict in (PASS, FAIL)}
                    if lo in decided and hi in decided:
                        return f"converged: passes at {lo * bs:,.0f}, fails at {hi * bs:,.0f} inf/s"
                    return (f"resolved: between {lo * bs:,.0f} and {hi * bs:,.0f} inf/s the p99 is within "
                            "what the probes resolve of the budget")  # fmt: skip
            fails = [p.rate for p in open_ if p.verdict == FAIL]
            if fails and not passed and min(fails) <= LIGHT_LOAD * upper * (1 + 1e-9):
                return f"infeasible: p99 over {budget:g} ms even at {min(fails) * bs:,.0f} inf/s"
            hi_rate = min(fails, default=upper)
            if best is not None and hi_rate * bs <= best.capacity:
                return (f"cut short: cannot beat {best.config_id} ({best.capacity:,.0f} inf/s); "
                        f"it fails at {hi_rate * bs:,.0f} inf/s")  # fmt: skip
            if _resolved(open_[-2:], budget, load.tolerance):
                last = open_[-2:]
                return (f"resolved: the p99 cannot be told from {budget:g} ms at {last[0].inf_s:,.0f} "
                        f"and {last[1].inf_s:,.0f} inf/s, one on each side of it")  # fmt: skip
            if len(open_) >= load.max_probes:
                return f"stopped: max_probes ({load.max_probes}) spent"
            if sum(p.verdict == UNDECIDED for p in open_) >= MAX_UNDECIDED:
                return (f"resolved: {MAX_UNDECIDED} probes of probe_max_s could not tell the p99 from the "
                        f"budget")  # fmt: skip
            if self.remaining_s() < load.probe_s:
                return f"stopped: max_s ({load.max_s:g} s) spent"
            sides = [side(p, budget) for p in open_[-2:]]
            rate = next_rate(passed, failed, upper, idle_log_over, len(sides) == 2 and sides[0] == sides[1],
                             first=first)  # fmt: skip
            p = await self._probe(config, probe, rate)
            probes.append(p)
            logger.debug("capacity probe", config=config.config_id, inf_s=round(p.inf_s, 1), p99_ms=p.p99_ms,
                         over=p.over_fraction, verdict=p.verdict, seconds=round(p.seconds, 2))  # fmt: skip

    async def _probe(self, config: RunConfig, probe: Probe, rate: float) -> CapacityProbe:
        """One Poisson probe at ``rate`` calls/s over all copies, with its verdict."""
        load = self.load
        decided: list[str] = []

        def rule(windows: Sequence[tuple[int, int]], elapsed: float) -> str | None:
            if elapsed < load.probe_s:
                return None
            verdict = decide(windows, min_design_effect=BURSTS).verdict
            if verdict:
                decided.append(verdict)
                return "decided"
            return None

        results, windows = await probe("poisson", rate, (load.probe_s, load.probe_max_s, None), rule)
        hist = Histogram.merged(Histogram.from_wire(r.latency) for r in results)
        dropped = sum(r.dropped for r in results)
        over = sum(r.over for r in results) + dropped
        d = decide(windows, calls=hist.n + dropped, over=over, min_design_effect=BURSTS)
        verdict = d.verdict or (decided[-1] if decided else UNDECIDED)
        low, high = quantile_interval(hist, d, dropped)
        seconds = max((r.interval_ns for r in results), default=0) / 1e9
        achieved = sum(r.completed / (r.interval_ns / 1e9) for r in results if r.interval_ns > 0)
        bs = config.batch_size
        return CapacityProbe(
            mode="poisson", rate=rate, inf_s=rate * bs, achieved_inf_s=achieved * bs, seconds=seconds, calls=hist.n,
            p99_ms=_ms(hist.percentile(99)) if hist.n else None, p99_ci_low_ms=_ms(low), p99_ci_high_ms=_ms(high),
            over=over, over_fraction=_finite(d.fraction), design_effect=d.design_effect, verdict=verdict,
            stopped_by=results[0].stopped_by if results else "", dropped=dropped,
        )  # fmt: skip


def _resolved(last: Sequence[CapacityProbe], budget_ms: float, tolerance: float) -> bool:
    """The last two probes were undecided, on either side of the budget, and within
    twice the tolerance of each other: the measurement cannot place the capacity
    more closely between them."""
    if len(last) != 2 or any(p.verdict != UNDECIDED for p in last):
        return False
    a, b = last
    return side(a, budget_ms) != side(b, budget_ms) and abs(a.rate - b.rate) <= 2 * tolerance * min(a.rate, b.rate)


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _ms(ns: float) -> float | None:
    """ns -> ms; an unresolved interval end (infinity) is None in the report."""
    return ns / 1e6 if math.isfinite(ns) else None
