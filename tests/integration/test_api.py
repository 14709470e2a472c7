"""The Python API: ``npf_core.benchmark``, ``abenchmark`` and the embeddable
``Supervisor`` with its typed event stream, under both anyio backends."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
import sniffio

import npf_core
from npf_core.errors import ObjectTransferError, SpecError
from npf_core.plugin import events as ev
from npf_core.results.store import results_file

pytestmark = pytest.mark.filterwarnings("error")


class InMemoryModel:
    """Defined in the test module: travels to a forked child as an object."""

    calls_in_parent = 0

    def __init__(self) -> None:
        self.pid = os.getpid()

    def __call__(self, x: Any) -> float:
        time.sleep(0.001)
        return float(x.sum())


def short(spec: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**spec, "n_models": [1], "workers_per_model": [1], "duration_s": 0.25, **fields}


@pytest.fixture
def api_spec(sleepy_file: Path) -> dict[str, Any]:
    return {"model": {"target": f"{sleepy_file}:Sleepy"}, "inputs": [{"shape": [1, 4]}]}


def test_benchmark_a_dict_returns_the_reports(api_spec: dict[str, Any], tmp_path: Path) -> None:
    reports = npf_core.benchmark(
        short(api_spec, workers_per_model=[1, 2]), output_dir=str(tmp_path), reporters=["json"]
    )
    assert [r.workers_per_model for r in reports] == [1, 2]
    assert all(isinstance(r, npf_core.Report) and r.status == "ok" for r in reports)
    assert all(r.total_infs > 0 and r.latency_ms_p50 >= 2.0 for r in reports)
    assert reports[0]["throughput_avg"] == reports[0].throughput_avg
    assert results_file(tmp_path).exists()


def test_overrides_and_no_reporters_write_nothing(api_spec: dict[str, Any], tmp_path: Path) -> None:
    (r,) = npf_core.benchmark(
        short(api_spec), duration_s=0.2, output_dir=str(tmp_path / "none"), reporters=[], results=False, n_models=[2]
    )
    assert r.status == "ok" and r.n_models == 2
    assert r.total_s == pytest.approx(0.2, abs=0.1)
    assert not (tmp_path / "none").exists()


def test_no_reporters_still_keep_the_cores_results_file(api_spec: dict[str, Any], tmp_path: Path) -> None:
    from npf_core.results.store import resolve_results

    (r,) = npf_core.benchmark(short(api_spec), duration_s=0.2, output_dir=str(tmp_path), reporters=[])
    saved = resolve_results(tmp_path)
    assert sorted(p.name for p in saved.parent.iterdir()) == ["results.json"]
    assert '"config_id": "' + r.config_id + '"' in saved.read_text()


def test_a_class_object_as_target_with_fork(tmp_path: Path) -> None:
    spec = short({"model": {"target": InMemoryModel}, "inputs": [{"shape": [2, 2], "fill": "ones"}]})
    (r,) = npf_core.benchmark(spec, start_method="fork", output_dir=str(tmp_path), reporters=[])
    assert r.status == "ok", r.error
    assert r.model_name == "InMemoryModel"
    assert r.total_infs > 0


def test_a_function_object_as_factory_with_fork(tmp_path: Path) -> None:
    spec = short({"model": {"target": lambda: InMemoryModel()}, "inputs": [{"shape": [1]}], "name": "lambda"})
    (r,) = npf_core.benchmark(spec, output_dir=str(tmp_path), reporters=[])
    assert r.status == "ok", r.error
    assert r.model_name == "lambda"


@pytest.mark.parametrize("method", ["zygote", "fresh", "fork", "inline"])
def test_python_objects_reach_copies_under_every_start_method(method: str, tmp_path: Path) -> None:
    """A closure over an in-memory array, a lambda as setup: serialised for zygote
    and fresh copies, inherited by fork, shared by inline."""
    import numpy as np

    weights = np.arange(1_000_000, dtype=np.float64)
    seen = tmp_path / "seen"
    seen.mkdir()

    def factory() -> Any:
        total = float(weights.sum())  # the array itself, not a reference to a module
        return lambda x: total + float(x.sum())

    spec = short({"model": {"target": factory}, "inputs": [{"shape": [1]}], "name": "closure",
                  "setup": lambda i, job, model: (seen / f"{os.getpid()}-{model(np.zeros(1))}").touch()},
                 start_method=method)  # fmt: skip
    (r,) = npf_core.benchmark(spec, output_dir=str(tmp_path / "out"), reporters=[])
    assert r.status == "ok", r.error
    assert r.start_method == method and r.total_infs > 0
    (mark,) = seen.iterdir()
    pid, value = mark.name.split("-", 1)
    assert float(value) == float(weights.sum())
    assert (int(pid) == os.getpid()) == (method == "inline")
    assert psutil.Process().children(recursive=True) == []


def test_an_object_that_cannot_be_serialised_is_a_clear_error(tmp_path: Path, spawn_guard: Any) -> None:
    import threading

    lock = threading.Lock()

    def factory() -> Any:
        return lambda x: lock  # a closure over a lock: cannot be pickled

    spec = short({"model": {"target": factory}, "inputs": [{"shape": [1]}]})
    with pytest.raises(ObjectTransferError) as info:
        npf_core.benchmark(spec, output_dir=str(tmp_path), reporters=[])
    message = str(info.value)
    assert message.startswith("spec $.model.target: the Python object at model.target cannot be serialised "
                              "for a 'zygote' benchmarker (TypeError: cannot pickle '_thread.lock' object)")
    assert "package.module:attr" in message and "start_method 'fork'" in message
    assert isinstance(info.value, SpecError)
    assert spawn_guard == [] and psutil.Process().children() == []  # refused before any process started
    (r,) = npf_core.benchmark(spec, start_method="fork", output_dir=str(tmp_path), reporters=[])
    assert r.status == "ok", r.error


def test_fresh_start_through_the_api(api_spec: dict[str, Any], tmp_path: Path) -> None:
    (r,) = npf_core.benchmark(short(api_spec, start_method="fresh"), output_dir=str(tmp_path), reporters=[])
    assert r.status == "ok", r.error
    assert r.start_method == "fresh" and r.multiinterpreter


def test_inline_start_method_runs_in_threads(api_spec: dict[str, Any], tmp_path: Path) -> None:
    spec = short({"model": {"target": InMemoryModel}, "inputs": [{"shape": [1]}]}, start_method="inline")
    (r,) = npf_core.benchmark(spec, output_dir=str(tmp_path), reporters=[])
    assert r.status == "ok", r.error
    assert (r.start_method, r.multiprocess) == ("inline", False)
    assert r.total_infs > 0
    assert psutil.Process().children() == []


def test_a_spec_file_path(api_spec: dict[str, Any], write_spec: Any, tmp_path: Path) -> None:
    path = write_spec(short(api_spec, output={"dir": "res", "reporters": ["csv"]}))
    (r,) = npf_core.benchmark(path)
    assert r.status == "ok"
    # one folder per spec name and run, beside the spec (docs/results.md)
    runs = [p for p in (tmp_path / "res").glob("*/*/results.csv") if p.parent.name != "latest"]
    assert len(runs) == 1
    assert (runs[0].parent.parent / "latest" / "results.csv").read_bytes() == runs[0].read_bytes()


def test_the_anyio_pytest_plugin_is_active(request: pytest.FixtureRequest) -> None:
    assert request.config.pluginmanager.has_plugin("anyio")


@pytest.mark.anyio
async def test_embedding_yields_typed_events_in_order(
    api_spec: dict[str, Any], tmp_path: Path, anyio_backend: str
) -> None:
    assert sniffio.current_async_library() == anyio_backend
    spec = short(api_spec, workers_per_model=[1, 2], duration_s=0.3)
    seen: list[ev.Event] = []
    with anyio.fail_after(60):
        async with npf_core.Supervisor(spec, output_dir=str(tmp_path), reporters=["json"]) as sup:
            async for event in sup.events():
                seen.append(event)
    kinds = [type(e).__name__ for e in seen]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    started = seen[0]
    assert isinstance(started, ev.RunStarted) and len(started.configs) == 2
    # per configuration: started, progress (one per window), finished
    body = [k for k in kinds[1:-1] if k != "Progress"]
    assert body == ["ConfigStarted", "ConfigFinished", "ConfigStarted", "ConfigFinished"]
    for i in (0, 1):
        mine = [e for e in seen if isinstance(e, (ev.ConfigStarted, ev.Progress, ev.ConfigFinished)) and e.index == i]
        assert isinstance(mine[0], ev.ConfigStarted) and isinstance(mine[-1], ev.ConfigFinished)
        progress = [e for e in mine if isinstance(e, ev.Progress)]
        assert len(progress) >= 2
        assert [p.completed for p in progress] == sorted(p.completed for p in progress)
        assert mine[-1].report.status == "ok"
    finished = seen[-1]
    assert isinstance(finished, ev.RunFinished)
    assert not finished.interrupted and finished.failed == 0
    assert [r.config_id for r in finished.reports] == [c.config_id for c in started.configs]
    assert sup.reports == finished.reports
    assert results_file(tmp_path).exists()


@pytest.mark.anyio
async def test_abenchmark(api_spec: dict[str, Any], tmp_path: Path, anyio_backend: str) -> None:
    with anyio.fail_after(60):
        (r,) = await npf_core.abenchmark(short(api_spec), output_dir=str(tmp_path), reporters=[])
    assert r.status == "ok"


@pytest.mark.anyio
async def test_cancelling_the_callers_scope_stops_the_run_and_reaps(
    api_spec: dict[str, Any], tmp_path: Path, anyio_backend: str
) -> None:
    spec = short(api_spec, n_models=[2], duration_s=30)
    kinds: list[str] = []
    t0 = time.monotonic()
    with anyio.fail_after(30):
        with anyio.CancelScope() as scope:
            async with npf_core.Supervisor(spec, output_dir=str(tmp_path), reporters=["json"]) as sup:
                async for event in sup.events():
                    kinds.append(type(event).__name__)
                    if isinstance(event, ev.Progress):
                        # the zygote (our child) and the two copies it forked
                        assert len(psutil.Process().children(recursive=True)) == 3
                        scope.cancel()
    assert scope.cancelled_caught
    assert time.monotonic() - t0 < 15
    assert "Progress" in kinds and "ConfigFinished" not in kinds
    assert psutil.Process().children(recursive=True) == []


@pytest.mark.anyio
async def test_cancelling_abenchmark_reaps_and_reraises(
    api_spec: dict[str, Any], tmp_path: Path, anyio_backend: str
) -> None:
    spec = short(api_spec, n_models=[2], duration_s=30)
    t0 = time.monotonic()
    with anyio.move_on_after(1.0) as scope:
        await npf_core.abenchmark(spec, output_dir=str(tmp_path), reporters=[])
    assert scope.cancelled_caught  # the cancellation reached the caller's scope
    assert time.monotonic() - t0 < 10
    assert psutil.Process().children(recursive=True) == []


@pytest.mark.anyio
async def test_supervisor_cancel_returns_what_finished(
    api_spec: dict[str, Any], tmp_path: Path, anyio_backend: str
) -> None:
    spec = short(api_spec, workers_per_model=[1, 2, 3], duration_s=0.3)
    kinds: list[str] = []
    with anyio.fail_after(30):
        async with npf_core.Supervisor(spec, output_dir=str(tmp_path), reporters=["json"]) as sup:
            async for event in sup.events():
                kinds.append(type(event).__name__)
                if isinstance(event, ev.ConfigStarted) and event.index == 1:
                    sup.cancel()
    assert kinds.count("ConfigFinished") == 1 and kinds[-1] == "RunFinished"
    assert sup.interrupted
    assert [r.workers_per_model for r in sup.reports] == [1]
    assert psutil.Process().children(recursive=True) == []


class Boom(Exception):
    pass


@pytest.mark.anyio
async def test_an_exception_in_the_block_stops_the_run(
    api_spec: dict[str, Any], tmp_path: Path, anyio_backend: str
) -> None:
    spec = short(api_spec, n_models=[2], duration_s=30)
    t0 = time.monotonic()
    with anyio.fail_after(30), pytest.raises(Boom):
        async with npf_core.Supervisor(spec, output_dir=str(tmp_path), reporters=[]) as sup:
            async for event in sup.events():  # leaving the loop early leaves nothing open (trio checks)
                if isinstance(event, ev.Progress):
                    raise Boom
    assert time.monotonic() - t0 < 15
    assert psutil.Process().children(recursive=True) == []
