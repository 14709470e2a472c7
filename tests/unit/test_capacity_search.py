"""The capacity search's logic (npf_core.supervisor.capacity) against a simulated
queue: probes answered by an M/G/c queue fed Poisson arrivals (no process), so that
the search's answer can be held against the queue's true capacity, and its rules
(the incumbent, max_s) tested exactly."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import anyio
import numpy as np
import pytest

from npf_core.results.queueing import SimulatedCopies, capacity_at
from npf_core.results.stats import Histogram
from npf_core.spec.config import RunConfig
from npf_core.spec.schema import Capacity
from npf_core.supervisor.capacity import CapacitySearch

WINDOW_S = 0.25


def config(copies: int = 1, workers: int = 1, batch: int = 1, cid: str = "") -> RunConfig:
    return RunConfig(config_id=cid or f"m-n{copies}-w{workers}-b{batch}", model_name="m", framework="python",
                     model_kind="target", model_ref="m.py:M", model_filename="m", input_idx=0, batch_size=batch,
                     n_models=copies, workers_per_model=workers, pipeline_size=1, start_method="fork",
                     device_type="cpu")  # fmt: skip


def run_search(search: CapacitySearch, cfg: RunConfig, copies: SimulatedCopies) -> Any:
    copies.budget_ns = int(search.load.p99_ms * 1e6)

    async def go() -> Any:
        return await search.search(cfg, copies, WINDOW_S)

    return anyio.run(go)[1]


SERVICE = np.random.default_rng(0).gamma(16.0, 2.1e-3 / 16, 50_000)  # about 2.1 ms, a little spread


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_search_finds_the_capacity_of_an_mg1_queue(seed: int) -> None:
    truth = capacity_at(SERVICE, 0.010, n=400_000)
    copies = SimulatedCopies(SERVICE, 1, 1, seed)
    out = run_search(CapacitySearch(Capacity(p99_ms=10.0)), config(), copies)
    # (over 60 seeds the search's error has a standard deviation of about 7%: benchmarks/capacity_sim.py)
    assert out.capacity == pytest.approx(truth, rel=0.15), (out.how, out.probes)
    assert out.low <= out.capacity <= out.high
    assert copies.probes[0][0] == "closed" and len(copies.probes) <= 11
    measured = sum(s for _, _, s in copies.probes)
    assert measured < 60, measured


def test_two_copies_of_two_workers_carry_the_pooled_capacity() -> None:
    truth = 2 * capacity_at(SERVICE, 0.010, servers=2, n=200_000)
    out = run_search(CapacitySearch(Capacity(p99_ms=10.0)), config(2, 2), SimulatedCopies(SERVICE, 2, 2, 5))
    assert out.capacity == pytest.approx(truth, rel=0.10), (out.how, out.probes)


def test_batch_counts_in_the_capacity() -> None:
    out = run_search(CapacitySearch(Capacity(p99_ms=10.0)), config(batch=8), SimulatedCopies(SERVICE, 1, 1, 6))
    truth = 8 * capacity_at(SERVICE, 0.010, n=400_000)
    assert out.capacity == pytest.approx(truth, rel=0.10)
    assert all(p.inf_s == pytest.approx(8 * p.rate) for p in out.probes)


def test_a_configuration_below_the_incumbent_is_not_searched_or_cut_short() -> None:
    search = CapacitySearch(Capacity(p99_ms=10.0))
    best = run_search(search, config(2, 2), SimulatedCopies(SERVICE, 2, 2, 7))
    assert search.best is not None and search.best.capacity == best.capacity
    small = SimulatedCopies(SERVICE, 1, 1, 8)
    out = run_search(search, config(1, 1), small)
    assert out.how.startswith("not searched") and [m for m, _, _ in small.probes] == ["closed"]
    assert out.capacity is None and out.high is not None and out.high < best.capacity
    # cut short: its closed-loop bound is above the incumbent, its capacity below
    search.best = type(search.best)(capacity=0.9 * 2 / SERVICE.mean(), config_id="other")
    middle = SimulatedCopies(SERVICE, 1, 2, 9)
    out = run_search(search, config(1, 2), middle)
    assert out.how.startswith("cut short"), out.how
    # it stopped at its first failing probe below the incumbent
    assert out.probes[-1].verdict == "fail" and out.probes[-1].inf_s <= search.best.capacity
    assert [p.verdict for p in out.probes[1:-1]].count("fail") == 0


def test_max_s_stops_the_search_between_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    search = CapacitySearch(Capacity(p99_ms=10.0, max_s=10.0))
    clock = [1000.0]
    monkeypatch.setattr("npf_core.supervisor.capacity.time.monotonic", lambda: clock[0])
    copies = SimulatedCopies(SERVICE, 1, 1, 10)
    original = copies.__call__

    async def timed(*args: Any) -> Any:
        out = await original(*args)
        clock[0] += copies.probes[-1][2]
        return out

    out = run_search(search, config(), timed)  # type: ignore[arg-type]
    assert out.how.startswith("stopped: max_s"), out.how
    assert clock[0] - 1000.0 < 10.0 + 8.0  # no probe started with less than probe_s left


def test_an_unreachable_budget_is_found_infeasible_quickly() -> None:
    slow = np.full(1000, 0.012)  # every call alone takes longer than the budget
    copies = SimulatedCopies(slow, 1, 1, 11)
    out = run_search(CapacitySearch(Capacity(p99_ms=10.0)), config(), copies)
    assert out.capacity is None and out.how.startswith("infeasible"), out.how
    assert len(copies.probes) == 2


def windows_sum(windows: Sequence[tuple[int, int]]) -> int:
    return sum(n for n, _ in windows)


def test_the_simulated_probe_is_a_queue() -> None:
    """The fake itself: at a light load latencies are the service times, near the
    service rate they grow (so the search is tested against a real queue)."""
    copies = SimulatedCopies(SERVICE, 1, 1, 12)
    copies.budget_ns = 10_000_000

    async def go(rate: float) -> float:
        (r,), windows = await copies("poisson", rate, (2.0, 4.0, None), None)
        assert windows_sum(windows) == r.completed
        return Histogram.from_wire(r.latency).percentile(99) / 1e6

    light, heavy = anyio.run(go, 20.0), anyio.run(go, 420.0)
    assert light == pytest.approx(float(np.percentile(SERVICE, 99)) * 1e3, rel=0.2)
    assert heavy > 5 * light and math.isfinite(heavy)
