"""The sync entry points where an event loop already runs (a Jupyter cell, an async
application's callback, a thread running a loop of its own), and a module that runs a
benchmark when it is imported: each finishes (or says why) within seconds."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

import npf_core
from npf_core.supervisor.blocking import loop_running_here

from .conftest import sweep_spec

ROOT = Path(__file__).resolve().parents[2]
#: a run of one short configuration takes about two seconds; a hang is what this bounds
FINISH_S = 90


def test_no_loop_is_seen_in_plain_code() -> None:
    assert not loop_running_here()

    async def inside() -> bool:
        return loop_running_here()

    assert asyncio.run(inside())


def test_benchmark_from_a_coroutine_of_a_running_asyncio_loop(tmp_path: Path) -> None:
    """A Jupyter cell: sync code running inside the kernel's asyncio loop."""

    async def cell() -> list[Any]:
        return npf_core.benchmark(sweep_spec(tmp_path / "out"))

    reports = asyncio.run(cell())
    assert [r.status for r in reports] == ["ok"]
    assert reports[0].total_calls > 0


def test_benchmark_from_a_callback_of_a_thread_whose_loop_runs(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    got: dict[str, Any] = {}
    done = threading.Event()

    def callback() -> None:  # runs on the loop's thread, while the loop runs
        try:
            got["reports"] = npf_core.benchmark(sweep_spec(tmp_path / "out"))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            got["error"] = exc
        finally:
            done.set()

    try:
        loop.call_soon_threadsafe(callback)
        assert done.wait(FINISH_S), "the benchmark did not finish"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
    assert "error" not in got, got.get("error")
    assert [r.status for r in got["reports"]] == ["ok"]


def test_benchmark_from_trio(tmp_path: Path) -> None:
    trio = pytest.importorskip("trio")

    async def main() -> list[Any]:
        return npf_core.benchmark(sweep_spec(tmp_path / "out"))

    assert [r.status for r in trio.run(main)] == ["ok"]


def test_neuronperf_call_in_a_running_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NeuronPerf's front door in a notebook cell: ``npf.cpu.benchmark`` is sync."""
    import npf_core as npf

    monkeypatch.chdir(tmp_path)

    async def cell() -> list[dict[str, Any]]:
        return npf.cpu.benchmark(npf.DummyModel, [np.array([[1, 2, 3, 4]])], duration=0.5,
                                 n_models=1, workers_per_model=1)  # fmt: skip

    reports = asyncio.run(cell())
    assert [r["status"] for r in reports] == ["finished"]


def test_abenchmark_awaited_in_a_running_loop(tmp_path: Path) -> None:
    """``await npf_core.abenchmark(...)`` in a notebook cell."""
    reports = asyncio.run(npf_core.abenchmark(sweep_spec(tmp_path / "out")))
    assert [r.status for r in reports] == ["ok"]


# ---------------------------------------------------------------------------
# A module that benchmarks when imported
# ---------------------------------------------------------------------------

IMPORTED = '''
import npf_core

class Model:
    def __call__(self, x):
        return x

reports = npf_core.benchmark({{
    "model": {{"framework": "python", "target": {target}}},
    "inputs": [{{"shape": [1, 4], "dtype": "float32"}}],
    "start_method": {method!r},
    "duration_s": 0.3, "n_models": [1], "workers_per_model": [1], "warmup": {{"iterations": 1}},
    "output": {{"dir": "out", "reporters": []}},
}})
r = reports[0]
print("STATUS", r.status, r.error.message if r.error else "", flush=True)
'''


def _import_in_subprocess(tmp_path: Path, code: str, how: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "bench_at_import.py").write_text(code)
    importer = {
        "plain": "import bench_at_import",
        # the import inside a running event loop (a notebook cell that imports it)
        "loop": "import asyncio\nasync def cell():\n    import bench_at_import\nasyncio.run(cell())",
    }[how]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    return subprocess.run([sys.executable, "-c", importer], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=FINISH_S)  # fmt: skip


@pytest.mark.parametrize("how", ["plain", "loop"])
@pytest.mark.parametrize("method", ["zygote", "fresh", "fork", "inline"])
def test_module_that_benchmarks_its_own_class_when_imported(tmp_path: Path, method: str, how: str) -> None:
    """The class travels by value (its module is still being imported): nothing waits
    for the import lock, and no copy imports the module (which would benchmark again)."""
    proc = _import_in_subprocess(tmp_path, IMPORTED.format(target="Model", method=method), how)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "STATUS ok" in proc.stdout, proc.stdout + proc.stderr[-3000:]


@pytest.mark.parametrize("method", ["fresh", "inline"])
def test_module_that_benchmarks_itself_by_reference_when_imported(tmp_path: Path, method: str) -> None:
    """By reference: a fresh copy must import the module, which would start a benchmark
    of its own: the copy refuses and the report says why; an inline copy (a thread of
    the caller) uses the module being imported."""
    proc = _import_in_subprocess(tmp_path, IMPORTED.format(target='"bench_at_import:Model"', method=method), "plain")
    assert proc.returncode == 0, proc.stderr[-3000:]
    if method == "inline":
        assert "STATUS ok" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    else:
        assert "STATUS error" in proc.stdout, proc.stdout
        assert "started inside a model copy" in proc.stdout
        assert 'if __name__ == "__main__"' in proc.stdout


def test_benchmark_refused_inside_a_copy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NPF_CONFIG_ID", "M-i0-b1-p1-n1-w1")
    with pytest.raises(npf_core.UserError, match="inside a model copy"):
        npf_core.benchmark(sweep_spec(tmp_path / "out"))


# ---------------------------------------------------------------------------
# An interrupt while a run waits in a helper thread
# ---------------------------------------------------------------------------

INTERRUPTED = '''
import asyncio, os, sys
import npf_core

class Model:
    def __init__(self):
        open({pidfile!r}, "w").write(str(os.getpid()))

    def __call__(self, x):
        return x

async def cell():
    return npf_core.benchmark({{
        "model": {{"framework": "python", "target": Model}},
        "inputs": [{{"shape": [1, 4], "dtype": "float32"}}],
        "duration_s": 60, "n_models": [1], "workers_per_model": [1],
        "output": {{"dir": "out", "reporters": []}},
    }})

loop = asyncio.new_event_loop()  # as a kernel: a loop that leaves SIGINT to Python's default handler
try:
    loop.run_until_complete(cell())
    print("FINISHED", flush=True)
except KeyboardInterrupt:
    print("INTERRUPTED", flush=True)
'''


def test_interrupt_in_a_running_loop_cancels_the_run_and_reaps(tmp_path: Path) -> None:
    """The notebook's stop button (SIGINT) while the run goes on in a helper thread:
    the run is cancelled, its copies are gone, and KeyboardInterrupt reaches the cell."""
    pidfile = tmp_path / "copy.pid"
    script = tmp_path / "cell.py"
    script.write_text(INTERRUPTED.format(pidfile=str(pidfile)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + FINISH_S
        while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        copy_pid = int(pidfile.read_text())
        time.sleep(0.5)  # measuring by now
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "INTERRUPTED" in out, out + err[-3000:]
    assert not psutil.pid_exists(copy_pid) or psutil.Process(copy_pid).status() == psutil.STATUS_ZOMBIE
