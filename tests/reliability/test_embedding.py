"""Embedding the supervisor in an anyio program (asyncio and trio backends):
cancellation from the caller stops the run, reaps every child and propagates;
``Supervisor.cancel()`` ends it cleanly; failures arrive as typed events."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from npf_core import Supervisor, abenchmark
from npf_core.plugin import events as ev
from npf_core.results.store import results_file

from .conftest import MODELS, sweep_spec

pytestmark = pytest.mark.anyio

STOP_S, GRACE_S = 0.5, 0.5
#: cancellation to a finished reap: the grace period (twice when SIGTERM is
#: ignored), plus scheduling slack on a busy 2-core machine
MARGIN_S = 1.0


def long_spec(tmp_path: Path, **fields: Any) -> dict[str, Any]:
    """Two long configurations of two copies: cancellation always lands mid-run."""
    base: dict[str, Any] = {
        "n_models": [2], "workers_per_model": [1, 2], "duration_s": 30, "start_method": "fork",
        "timeouts": {"load_s": 30, "stop_s": STOP_S, "grace_s": GRACE_S},
    }  # fmt: skip
    return sweep_spec(tmp_path / "out", **{**base, **fields})


def children() -> list[psutil.Process]:
    return psutil.Process().children(recursive=True)


async def wait_measuring(sup: Supervisor) -> None:
    """Until the first configuration is measuring (its first progress event)."""
    async for event in sup.events():
        if isinstance(event, ev.Progress):
            return


@pytest.mark.parametrize("hang", ["", "call-hang-noterm"])
async def test_cancelling_the_callers_scope_reaps_and_propagates(
    hang: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fields: dict[str, Any] = {}
    if hang:  # a call that never returns, in a process that ignores SIGTERM
        monkeypatch.setenv("NPF_FAULT", hang)
        fields["model"] = {"framework": "python", "target": f"{MODELS}:Faulty"}
    sup = Supervisor(long_spec(tmp_path, **fields))
    cancelled_at = 0.0
    reached_end = False
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def cancel_when_measuring() -> None:
                nonlocal cancelled_at
                await wait_measuring(sup)
                if hang:
                    await anyio.sleep(0.1)  # the planted call is hanging by now
                assert len(children()) == 2
                cancelled_at = time.monotonic()
                scope.cancel()

            tg.start_soon(cancel_when_measuring)
            await sup.run()
            reached_end = True
    took = time.monotonic() - cancelled_at
    assert scope.cancelled_caught, "the cancellation did not reach the caller's scope"
    assert not reached_end, "run() returned instead of re-raising the cancellation"
    assert took < STOP_S + (2 if hang else 1) * GRACE_S + MARGIN_S, f"stopping took {took:.2f} s"
    assert children() == []
    assert sup.interrupted
    assert sup.reports == []  # nothing finished; nothing made up


async def test_caller_timeout_reaps_and_raises(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(1.0):
            await abenchmark(long_spec(tmp_path))
    assert time.monotonic() - t0 < 1.0 + GRACE_S + MARGIN_S
    assert children() == []


async def test_cancel_while_copies_are_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled as soon as the configuration starts: every copy started so far, hung
    in load, is terminated and reaped."""
    monkeypatch.setenv("NPF_FAULT", "load-hang")
    sup = Supervisor(long_spec(tmp_path, n_models=[4], model={"framework": "python", "target": f"{MODELS}:Faulty"}))
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def cancel_on_start() -> None:
                async for event in sup.events():
                    if isinstance(event, ev.ConfigStarted):
                        await anyio.sleep(0.3)
                        assert len(children()) == 4
                        scope.cancel()

            tg.start_soon(cancel_on_start)
            await sup.run()
    assert scope.cancelled_caught
    assert children() == []


async def test_supervisor_cancel_is_a_clean_interrupted_finish(tmp_path: Path) -> None:
    sup = Supervisor(sweep_spec(tmp_path / "out", workers_per_model=[1, 2, 3], duration_s=0.3, start_method="fork"))
    seen: list[ev.Event] = []
    async with anyio.create_task_group() as tg:

        async def cancel_after_first() -> None:
            async for event in sup.events():
                seen.append(event)
                if isinstance(event, ev.ConfigFinished):
                    sup.cancel()

        tg.start_soon(cancel_after_first)
        reports = await sup.run()  # returns: no exception
    assert [r.status for r in reports] == ["ok"]
    assert sup.interrupted
    finished = seen[-1]
    assert isinstance(finished, ev.RunFinished) and finished.interrupted and len(finished.reports) == 1
    assert children() == []


async def test_cancel_before_the_run_starts(tmp_path: Path, spawn_guard) -> None:
    sup = Supervisor(sweep_spec(tmp_path / "out", start_method="fork"))
    sup.cancel()
    assert await sup.run() == []
    assert sup.interrupted and spawn_guard == []


async def test_failures_arrive_as_typed_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPF_FAULT", "call-sigkill")
    spec = sweep_spec(
        tmp_path / "out", model={"framework": "python", "target": f"{MODELS}:Faulty"},
        n_models=[2], workers_per_model=[1, 2], start_method="fork",
    )  # fmt: skip
    events: list[ev.Event] = []
    async with Supervisor(spec) as sup:
        async for event in sup.events():
            events.append(event)
    kinds = [type(e).__name__ for e in events if not isinstance(e, ev.Progress)]
    assert kinds == ["RunStarted", "ConfigStarted", "ConfigFailed", "ConfigStarted", "ConfigFinished", "RunFinished"]
    failed = next(e for e in events if isinstance(e, ev.ConfigFailed))
    assert failed.config.workers_per_model == 1
    assert failed.report.status == "error"
    assert failed.report.error is not None
    assert failed.report.error.type == "BenchmarkerDied" and failed.report.error.exitcode == -9
    done = events[-1]
    assert isinstance(done, ev.RunFinished) and done.failed == 1 and not done.interrupted
    assert [r.status for r in sup.reports] == ["error", "ok"]
    assert children() == []


async def test_exception_in_the_embedding_body_stops_the_run(tmp_path: Path) -> None:
    """The body's own exception comes out as itself (not wrapped in a group), after
    the run is stopped and its children reaped."""
    t0 = time.monotonic()
    with pytest.raises(LookupError, match="the application failed"):
        async with Supervisor(long_spec(tmp_path)) as sup:
            await wait_measuring(sup)
            raise LookupError("the application failed")
    assert time.monotonic() - t0 < 5
    assert children() == []


async def test_a_failing_reporter_does_not_stop_the_run(tmp_path: Path) -> None:
    from npf_core.plugin.hookspecs import Reporter, hookimpl

    class Broken(Reporter):
        def on_event(self, event: ev.Event) -> None:
            if isinstance(event, ev.ConfigFinished):
                raise OSError(28, "No space left on device")

        def close(self) -> None:
            raise RuntimeError("cannot close")

    class BrokenPlugin:
        @hookimpl
        def npf_register_reporters(self, registry: Any) -> None:
            registry.add("broken", Broken)

    spec = sweep_spec(tmp_path / "out", workers_per_model=[1, 2], start_method="fork")
    spec["output"]["reporters"] = ["broken", "json"]
    sup = Supervisor(spec, extra_plugins=(BrokenPlugin(),))
    reports = await sup.run()
    assert [r.status for r in reports] == ["ok", "ok"]
    # remembered once per reporter (two events and the close failed)
    assert sup.reporter_errors == ["Broken: OSError: [Errno 28] No space left on device"]
    assert results_file(tmp_path / "out").exists()  # the other reporters still ran
    assert children() == []


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_asyncio_cancellation_reaps(tmp_path: Path, anyio_backend: str) -> None:
    """A plain asyncio application: ``asyncio.wait_for`` and ``Task.cancel()``
    cancel natively, not through an anyio scope; the children are reaped all the same."""
    import asyncio

    t0 = time.monotonic()
    with pytest.raises((TimeoutError, asyncio.TimeoutError)):  # the same class from 3.11 on
        await asyncio.wait_for(abenchmark(long_spec(tmp_path)), 1.0)
    assert time.monotonic() - t0 < 1.0 + GRACE_S + MARGIN_S
    assert children() == []

    task = asyncio.ensure_future(abenchmark(long_spec(tmp_path)))
    await asyncio.sleep(1.0)
    assert len(children()) == 2
    task.cancel()
    t0 = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - t0 < GRACE_S + MARGIN_S
    assert children() == []


async def test_a_group_signal_seen_first_in_a_child_is_an_interruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM to the process group kills the benchmarkers and stops the supervisor,
    in either order: when a child's death is seen first, the stop that follows
    still drops the configuration as interrupted, rather than recording a failure
    that ``--resume`` would not rerun."""
    monkeypatch.setenv("NPF_FAULT", "call-sigterm")
    spec = long_spec(tmp_path, model={"framework": "python", "target": f"{MODELS}:Faulty"})
    spec["output"]["reporters"] = ["json"]
    sup = Supervisor(spec)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:

            async def cancel_after_the_death() -> None:
                async for event in sup.events():
                    if isinstance(event, ev.ConfigStarted):
                        break
                with anyio.fail_after(10):  # the planted SIGTERM strikes at the 5th call
                    while len([c for c in children() if c.status() != psutil.STATUS_ZOMBIE]) == 2:
                        await anyio.sleep(0.005)
                await anyio.sleep(0.1)  # the supervisor has seen the death by now
                scope.cancel()

            tg.start_soon(cancel_after_the_death)
            await sup.run()
    assert scope.cancelled_caught
    assert sup.reports == []
    saved = results_file(tmp_path / "out")
    assert not saved.exists() or '"error"' not in saved.read_text()
    assert children() == []


FIRST_CALL = """
import asyncio, json, sys, time
import npf_core  # imported before the loop runs, as an application would
spec = {"model": {"framework": "python", "target": sys.argv[1]}, "inputs": [{"shape": [1, 4], "dtype": "float32"}],
        "batch_sizes": [1], "n_models": [1], "workers_per_model": [1], "duration_s": 0.3,
        "output": {"reporters": [], "results": False}}

async def main():
    gaps, stop = [], []
    async def beat():
        last = time.perf_counter()
        while not stop:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now
    task = asyncio.create_task(beat())
    await asyncio.sleep(0.05)
    loaded = "npf_core.supervisor.run" in sys.modules
    reports = await npf_core.abenchmark(spec)
    stop.append(1)
    await task
    print(json.dumps({"max_gap_ms": max(gaps) * 1e3, "status": [r.status for r in reports], "loaded": loaded}))

asyncio.run(main())
"""


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_first_abenchmark_does_its_imports_off_the_event_loop(tmp_path: Path) -> None:
    """The supervisor, psutil and structlog take over 100 ms to import: the first
    ``await npf_core.abenchmark(...)`` imports them in a worker thread, so a host's
    5 ms heartbeat never waits 50 ms."""
    import json
    import subprocess
    import sys

    script = tmp_path / "first_call.py"
    script.write_text(FIRST_CALL)
    seen: list[dict[str, Any]] = []
    # best of three fresh processes: an import on the loop stalls every run by 100 ms or
    # more (367 ms here before), while a busy machine's scheduling noise hits one run, not
    # three; on a quiet 2-core machine the largest gap is 10-40 ms, the goal 50 ms, and the
    # bound below leaves room for a loaded CI machine
    for _ in range(3):
        out = await anyio.to_thread.run_sync(lambda: subprocess.run(
            [sys.executable, str(script), f"{MODELS}:Sleepy"], capture_output=True, text=True, timeout=120,
            cwd=tmp_path, stdin=subprocess.DEVNULL))  # fmt: skip
        assert out.returncode == 0, out.stderr
        seen.append(json.loads(out.stdout.strip().splitlines()[-1]))
        assert seen[-1]["loaded"] is False  # the import really happened during the call
        assert seen[-1]["status"] == ["ok"]
        if seen[-1]["max_gap_ms"] < 50:
            break
    assert min(s["max_gap_ms"] for s in seen) < 75, seen
