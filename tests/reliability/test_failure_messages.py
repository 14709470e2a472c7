"""A failed configuration's reason says what happened (issue 20): a copy that exits
during warm-up is reported in warm-up, not in load; a copy stopped with SIGSTOP is
reported as stopped, resumed and ended, not as a call that ignored SIGTERM."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

import npf_core

from .conftest import MODELS, sweep_spec


@pytest.mark.parametrize("method", ["fork", "zygote", "fresh"])
def test_an_exit_during_warm_up_is_reported_in_warm_up(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NPF_FAULT", "warmup-exit")
    spec = sweep_spec(
        tmp_path / "out", model={"framework": "python", "target": f"{MODELS}:Faulty"},
        workers_per_model=[1, 2], warmup={"iterations": 1}, start_method=method,
    )  # fmt: skip
    failed, ok = npf_core.benchmark(spec)
    assert ok.status == "ok"
    assert failed.status == "error" and failed.error is not None
    assert failed.error.stage == "warmup", failed.error
    assert failed.error.message.endswith("exited with code 0 during warmup"), failed.error.message
    assert failed.error.exitcode == 0


class _Stopper:
    """Sends SIGSTOP to each copy that leaves a marker, ``after_s`` later."""

    def __init__(self, markers: Path, after_s: float) -> None:
        self.markers, self.after_s = markers, after_s
        self.stopped: list[int] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> _Stopper:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        for pid in self.stopped:  # never leave a stopped process behind
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def _watch(self) -> None:
        while not self.done.is_set():
            for marker in self.markers.glob("*.pid"):
                pid = int(marker.stem)
                if pid not in self.stopped:
                    time.sleep(self.after_s)
                    try:
                        os.kill(pid, signal.SIGSTOP)
                        self.stopped.append(pid)
                    except OSError:
                        pass
            time.sleep(0.01)


@pytest.mark.parametrize("method", ["fork", "zygote"])
def test_a_copy_stopped_while_measuring_is_reported_as_stopped(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("NPF_MARKER_DIR", str(markers))
    spec = sweep_spec(tmp_path / "out", duration_s=1.0, start_method=method)
    with _Stopper(markers, after_s=0.6):  # loaded at the marker; measuring 0.6 s later
        (report,) = npf_core.benchmark(spec)
    assert report.status == "error" and report.error is not None
    message = report.error.message
    assert "it is stopped (SIGSTOP or SIGTSTP)" in message, message
    assert "resumed it (SIGCONT) to end it with SIGTERM" in message, message
    assert "a call is still running" not in message and "ignored SIGTERM" not in message, message
    assert report.error.exitcode == -signal.SIGTERM


def test_a_copy_stopped_while_loading_is_reported_as_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("NPF_MARKER_DIR", str(markers))
    monkeypatch.setenv("NPF_FAULT", "load-hang")
    monkeypatch.setenv("NPF_FAULT_CONFIG", "")
    spec = sweep_spec(
        tmp_path / "out", model={"framework": "python", "target": f"{MODELS}:Faulty"}, start_method="fork",
        timeouts={"load_s": 2, "stop_s": 0.5, "grace_s": 0.5},
    )  # fmt: skip
    with _Stopper(markers, after_s=0.0):
        (report,) = npf_core.benchmark(spec)
    assert report.error is not None
    assert report.error.type == "LoadTimeout"
    assert "(is stopped (SIGSTOP or SIGTSTP))" in report.error.message, report.error.message
    assert "ignored SIGTERM" not in report.error.message


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_stopped_zygote_neither_hangs_the_run_nor_serves_the_next_configuration(tmp_path: Path) -> None:
    """SIGSTOP to the zygote while its copies measure: they still finish and are
    reaped (the stopped zygote cannot say how they ended: npf does not wait on it
    for ever), and the next configuration gets a new zygote."""
    import anyio
    import psutil

    import npf_core.plugin.events as ev
    from npf_core.supervisor.run import Supervisor

    def zygotes() -> list[psutil.Process]:
        return [p for p in psutil.Process().children() if "npf_core.child.zygote" in " ".join(p.cmdline())]

    spec = sweep_spec(tmp_path / "out", n_models=[2], workers_per_model=[1, 2], duration_s=1.0, start_method="zygote")
    stopped: list[psutil.Process] = []
    try:
        with anyio.fail_after(60):
            async with Supervisor(spec) as sup:
                async for event in sup.events():
                    if isinstance(event, ev.Progress) and event.index == 0 and not stopped:
                        (zygote,) = zygotes()
                        zygote.suspend()
                        stopped.append(zygote)
    finally:
        for z in stopped:
            try:
                z.kill()
            except psutil.Error:
                pass
    assert [r.status for r in sup.reports] == ["ok", "ok"], [r.error for r in sup.reports]
    assert stopped and not stopped[0].is_running() or stopped[0].status() == psutil.STATUS_ZOMBIE
    assert psutil.Process().children(recursive=True) == []
