"""Reference queueing models, to check a capacity search against theory: given a
model's measured service times, what Poisson arrival rate keeps the p99 of the
time in system (waiting + service) within a budget?

- :func:`sojourn_times`: a FIFO queue with ``servers`` servers fed by Poisson
  arrivals, simulated on service times drawn from the measured ones (M/G/1 by
  Lindley's recursion ``W[k+1] = max(0, W[k] + S[k] - A[k+1])``, vectorised; M/G/c by
  the servers' next free times in a heap: each customer starts when it has arrived
  and the earliest server is free).
- :func:`capacity_at`: the highest rate whose simulated p99 stays within the budget,
  by bisection on common random numbers (the same unit arrival gaps and service
  draws at every rate, so the p99 grows monotonically with the rate).
- :func:`pk_mean_wait`: the Pollaczek-Khinchine mean wait of M/G/1,
  ``lambda E[S^2] / (2 (1 - rho))``, the closed form the simulation is checked against.
- :class:`SimulatedCopies`: a configuration's copies as such queues, answering the
  capacity search's probes, so that the search itself can be run against a queue
  whose capacity is known (``tests/unit/test_capacity_search.py``,
  ``benchmarks/capacity_sim.py``).

The capacity search uses :func:`capacity_at` once per configuration, on the closed
loop's latencies, to place its first Poisson probe; the probes then decide. The tests
and ``benchmarks/capacity.py`` use it to check the search against theory.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence

import numpy as np

from npf_core.results.stats import GAMMA, Histogram
from npf_core.wire.protocol import Result

__all__ = ["SimulatedCopies", "capacity_at", "pk_mean_wait", "service_samples", "sojourn_times"]


def pk_mean_wait(service_s: Sequence[float] | np.ndarray, rate: float) -> float:
    """The M/G/1 mean waiting time (seconds, before service) at ``rate`` arrivals/s."""
    s = np.asarray(service_s, dtype=float)
    rho = rate * float(s.mean())
    if rho >= 1:
        return math.inf
    return rate * float((s**2).mean()) / (2 * (1 - rho))


def _draws(service_s: Sequence[float] | np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit-mean exponential gaps and service times drawn (with replacement) from the samples."""
    rng = np.random.default_rng(seed)
    s = np.asarray(service_s, dtype=float)
    return rng.exponential(1.0, n), s[rng.integers(0, s.size, n)]


def _sojourn(gaps: np.ndarray, service: np.ndarray, rate: float, servers: int) -> np.ndarray:
    a = gaps / rate  # a[k]: the gap before arrival k (a[0] unused)
    if servers == 1:
        x = np.concatenate(([0.0], np.cumsum(service[:-1] - a[1:])))
        wait = x - np.minimum.accumulate(np.minimum(x, 0.0))
        return wait + service
    arrivals = np.cumsum(a).tolist()
    free = [0.0] * servers  # when each server is next free: a heap
    out = []
    for t, s in zip(arrivals, service.tolist(), strict=True):
        start = max(t, free[0])
        heapq.heapreplace(free, start + s)
        out.append(start + s - t)
    return np.asarray(out)


def service_samples(hist: Histogram, n: int = 50_000, seed: int = 0) -> np.ndarray:
    """``n`` service times (seconds) drawn from a latency histogram (ns), at its
    buckets' midpoints: e.g. a closed loop's, whose latencies are service times."""
    idx = np.flatnonzero(hist.counts)
    draws = np.random.default_rng(seed).choice(idx, n, p=hist.counts[idx] / hist.counts[idx].sum())
    return np.asarray(GAMMA ** (draws + 0.5) / 1e9)


def sojourn_times(service_s: Sequence[float] | np.ndarray, rate: float, *, servers: int = 1, n: int = 200_000,
                  seed: int = 0) -> np.ndarray:  # fmt: skip
    """Times in system (seconds) of ``n`` customers of a FIFO queue with ``servers``
    servers, Poisson arrivals at ``rate``/s and service times drawn from ``service_s``."""
    gaps, service = _draws(service_s, n, seed)
    return _sojourn(gaps, service, rate, servers)


def capacity_at(service_s: Sequence[float] | np.ndarray, budget_s: float, *, q: float = 99.0, servers: int = 1,
                n: int = 200_000, seed: int = 0, rel_tol: float = 1e-3) -> float:  # fmt: skip
    """The highest Poisson rate (per second) whose ``q``-th percentile of the time in
    system is at most ``budget_s``; 0 if even an idle server misses it."""
    gaps, service = _draws(service_s, n, seed)
    warm = n // 20  # the queue starts empty: leave its first customers out

    def p(rate: float) -> float:
        return float(np.percentile(_sojourn(gaps, service, rate, servers)[warm:], q))

    if float(np.percentile(service, q)) > budget_s:
        return 0.0
    lo, hi = 0.0, servers / float(service.mean())
    while hi - lo > rel_tol * hi:
        mid = (lo + hi) / 2
        if p(mid) <= budget_s:
            lo = mid
        else:
            hi = mid
    return lo


class SimulatedCopies:
    """The capacity search's ``probe`` (see :mod:`npf_core.supervisor.capacity`)
    answered by simulation instead of model copies: each copy an M/G/c queue (c
    workers, FIFO) fed its share of the Poisson arrivals, with service times drawn
    from ``service_s`` (seconds); a closed-loop probe's latencies are service times.
    Windows of ``window_s`` feed the probe's stop rule as the copies' Progress would.
    Set ``budget_ns`` (the p99 budget) before a search: slow calls are counted
    against it. ``probes`` records ``(mode, rate, seconds)`` of each probe."""

    def __init__(self, service_s: np.ndarray, copies: int, workers: int, seed: int, window_s: float = 0.25) -> None:
        self.window_s = window_s
        self.service = service_s
        self.copies, self.workers = copies, workers
        self.rng = np.random.default_rng(seed)
        self.budget_ns = 0
        self.probes: list[tuple[str, float, float]] = []  # (mode, rate, seconds)

    async def __call__(self, mode: str, rate: float, bounds: tuple[float, float, int | None],
                       rule: Callable[[Sequence[tuple[int, int]], float], str | None] | None,
                       ) -> tuple[list[Result], list[tuple[int, int]]]:  # fmt: skip
        min_s, max_s, calls = bounds
        if mode == "closed":
            per_copy = int(max(min_s, (calls or 0) / (self.copies * self.workers / self.service.mean())) /
                           self.service.mean() * self.workers)  # fmt: skip
            lat = [self.rng.choice(self.service, per_copy) for _ in range(self.copies)]
            seconds = per_copy * self.service.mean() / self.workers
            self.probes.append((mode, 0.0, seconds))
            return [self._result(x, seconds, self.budget_ns) for x in lat], []
        lat, ends = [], []
        for _ in range(self.copies):
            n = int(rate / self.copies * max_s * 1.2) + 10
            arrivals = np.cumsum(self.rng.exponential(self.copies / rate, n))
            service = self.rng.choice(self.service, n)
            free = [0.0] * self.workers
            done = np.empty(n)
            for k, (t, s) in enumerate(zip(arrivals, service, strict=True)):
                start = max(t, min(free))
                free[free.index(min(free))] = start + s
                done[k] = start + s
            lat.append(done - arrivals)
            ends.append(done)
        seconds = max_s
        windows: list[tuple[int, int]] = []
        for w in range(int(max_s / self.window_s)):
            lo, hi = w * self.window_s, (w + 1) * self.window_s
            inside = [(e >= lo) & (e < hi) for e in ends]
            windows.append((sum(int(m.sum()) for m in inside),
                            sum(int((x[m] * 1e9 > self.budget_ns).sum()) for x, m in zip(lat, inside, strict=True))))
            if rule is not None and rule(windows, hi) is not None:
                seconds = hi
                break
        self.probes.append((mode, rate, seconds))
        kept = [x[e < seconds] for x, e in zip(lat, ends, strict=True)]
        return [self._result(x, seconds, self.budget_ns) for x in kept], windows

    def _result(self, lat_s: np.ndarray, seconds: float, budget_ns: int = 0) -> Result:
        h = Histogram()
        ns = (lat_s * 1e9).astype(np.int64)
        h.add(ns)
        windows = [int(c) for c in np.bincount((np.arange(ns.size) * seconds / max(ns.size, 1) / self.window_s)
                                               .astype(int))] if ns.size else []  # fmt: skip
        return Result(completed=int(ns.size), interval_ns=int(seconds * 1e9), stages={}, latency=h.to_wire(),
                      windows=windows, over=int((ns > budget_ns).sum()) if budget_ns else 0)  # fmt: skip
