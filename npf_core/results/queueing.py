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

The capacity search uses :func:`capacity_at` once per configuration, on the closed
loop's latencies, to place its first Poisson probe; the probes then decide. The tests
and ``benchmarks/capacity.py`` use it to check the search against theory.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

import numpy as np

from npf_core.results.stats import GAMMA, Histogram

__all__ = ["capacity_at", "pk_mean_wait", "service_samples", "sojourn_times"]


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
