"""Process hygiene: no file descriptor leaks across configurations, every child
reaped, a forked benchmarker holds no other benchmarker's wire, and a benchmarker
whose wire hangs up exits even while the model is stuck."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import psutil
import pytest

import npf_core
from npf_core.supervisor import processes
from npf_core.supervisor.run import Supervisor
from npf_core.wire import protocol as pr

from .conftest import MODELS, sweep_spec


def open_fds() -> list[int]:
    return sorted(int(fd) for fd in os.listdir("/proc/self/fd"))


@pytest.mark.parametrize(("method", "n_configs"), [("zygote", 20), ("fork", 20), ("fresh", 2)])
def test_no_fd_leak_across_configurations(method: str, n_configs: int, tmp_path: Path) -> None:
    workers = list(range(1, n_configs // 2 + 1))
    spec = sweep_spec(
        tmp_path / "out", n_models=[1, 2], workers_per_model=workers, duration_s=0.05, start_method=method,
    )  # fmt: skip
    npf_core.benchmark({**spec, "workers_per_model": [1]})  # warm up: lazy imports, caches
    before = open_fds()
    reports = npf_core.benchmark(spec)
    after = open_fds()
    assert len(reports) == n_configs and all(r.status == "ok" for r in reports)
    assert after == before
    assert set() == processes.PARENT_FDS
    assert psutil.Process().children(recursive=True) == []  # reaped: no zombie either


def test_no_fd_leak_when_configurations_fail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPF_FAULT", "call-sigkill")
    monkeypatch.setenv("NPF_FAULT_CONFIG", "")  # every configuration
    spec = sweep_spec(
        tmp_path / "out", model={"framework": "python", "target": f"{MODELS}:Faulty"},
        n_models=[1, 2], workers_per_model=[1, 2, 3], start_method="fork",
    )  # fmt: skip
    npf_core.benchmark({**spec, "n_models": [1], "workers_per_model": [1]})
    before = open_fds()
    reports = npf_core.benchmark(spec)
    assert [r.status for r in reports] == ["error"] * 6
    assert open_fds() == before
    assert set() == processes.PARENT_FDS


def _inodes(pid: int) -> set[str]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def _sock_id(s: socket.socket) -> str:
    return f"socket:[{os.fstat(s.fileno()).st_ino}]"


def test_forked_benchmarker_holds_no_other_benchmarkers_wire(tmp_path: Path) -> None:
    """Otherwise a benchmarker would keep another one's wire open, and that one
    would never see the hang-up when the supervisor dies."""
    sup = Supervisor(sweep_spec(tmp_path / "out", start_method="fork"))
    a = processes.spawn(0, "fork", {}, {}, sup.plugins)
    b = processes.spawn(1, "fork", {}, {}, sup.plugins)
    try:
        assert a.out is not None and b.out is not None
        for child in (a, b):  # both are up: their Hello is on the wire
            child.sock.settimeout(10)
            assert isinstance(pr.Channel(child.sock).recv(10), pr.Hello)
        held_by_b = _inodes(b.pid)  # type: ignore[arg-type]
        assert _sock_id(a.sock) not in held_by_b
        assert _sock_id(a.out) not in held_by_b
    finally:
        _hang_up_and_reap([a, b])


@pytest.mark.parametrize("method", ["fork", "fresh"])
def test_benchmarker_exits_when_the_wire_hangs_up_during_a_hung_load(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The EOF watchdog: the supervisor is alive (so no parent-death signal), the
    model is stuck in load, and closing the wire still ends the benchmarker."""
    monkeypatch.setenv("NPF_FAULT", "load-hang")
    monkeypatch.setenv("NPF_FAULT_CONFIG", "")
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("NPF_MARKER_DIR", str(markers))
    model = {"framework": "python", "target": f"{MODELS}:Faulty"}
    spec = sweep_spec(tmp_path / "out", start_method=method, model=model)
    sup = Supervisor(spec)
    config = sup.plan[0]
    child = processes.spawn(0, method, {"NPF_CONFIG_ID": config.config_id}, {}, sup.plugins)
    try:
        child.sock.settimeout(10)
        channel = pr.Channel(child.sock)
        assert isinstance(channel.recv(10), pr.Hello)
        channel.send(pr.Setup(job=sup._runner._job(config, 0, {"env": {}})))
        deadline = time.monotonic() + 10
        while not list(markers.iterdir()):  # the model is loading, and will never finish
            assert time.monotonic() < deadline
            time.sleep(0.01)
        processes.PARENT_FDS.discard(child.sock.fileno())
        child.sock.close()  # the wire only: the output socket stays open
        t0 = time.monotonic()
        status = _wait_exit(child, timeout=2.0)
        assert status == 75, status  # the watchdog's exit code
        assert time.monotonic() - t0 < 1.0
    finally:
        _hang_up_and_reap([child])


def _wait_exit(child: processes.Child, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    return child.poll()


def _hang_up_and_reap(children: list[processes.Child]) -> None:
    for c in children:
        c.close()
    for c in children:
        if _wait_exit(c, 2.0) is None:
            c.signal(9)
            _wait_exit(c, 2.0)


def test_signal_to_a_just_forked_child_is_not_the_supervisors(tmp_path: Path) -> None:
    """The supervisor's Python signal handlers write to its wakeup fd (the CLI's
    SIGINT/SIGTERM watch works that way). A forked child shares that fd: until it
    drops the handlers, a SIGTERM to it (a reap right after the spawn) would reach
    the supervisor as its own SIGTERM and stop the whole run."""
    sup = Supervisor(sweep_spec(tmp_path / "out", start_method="fork"))
    r, w = socket.socketpair()
    w.setblocking(False)
    r.setblocking(False)
    old_wakeup = signal.set_wakeup_fd(w.fileno())
    old_handler = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        child = processes.spawn(0, "fork", {}, {}, sup.plugins)
        child.signal(signal.SIGTERM)  # at once: the child has barely started
        status = _wait_exit(child, timeout=5.0)
        child.close()
    finally:
        signal.signal(signal.SIGTERM, old_handler)
        signal.set_wakeup_fd(old_wakeup)
    try:
        leaked = r.recv(64)
    except BlockingIOError:
        leaked = b""
    r.close()
    w.close()
    assert leaked == b"", f"the child's signal reached the supervisor's wakeup fd: {leaked!r}"
    assert status == -signal.SIGTERM  # the default action, not the parent's handler


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize(
    ("method", "fault", "noterm"),
    [
        ("fork", "", False),  # the benchmarker exits normally, its helper still running
        ("fresh", "", False),
        ("zygote", "", False),
        ("zygote", "call-sigkill", False),
        ("fork", "call-sigkill", False),  # the benchmarker dies: the helper is orphaned
        ("fresh", "call-hang", True),  # stopped with SIGTERM; the helper ignores it
    ],
)
def test_processes_a_model_starts_end_with_its_benchmarker(
    method: str, fault: str, noterm: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No process outlives the run, even one the model started and left running,
    whether the benchmarker finished, crashed or was stopped."""
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("NPF_MARKER_DIR", str(markers))
    monkeypatch.setenv("NPF_FAULT", fault)
    if noterm:
        monkeypatch.setenv("NPF_HELPER_NOTERM", "1")
    spec = sweep_spec(
        tmp_path / "out", model={"framework": "python", "target": f"{MODELS}:Spawner"},
        n_models=[2], workers_per_model=[1, 2], start_method=method,
    )  # fmt: skip
    reports = npf_core.benchmark(spec)
    statuses = [r.status for r in reports]
    assert statuses == (["error", "ok"] if fault else ["ok", "ok"]), [r.error for r in reports]
    helpers = [int(p.stem) for p in markers.glob("*.helper")]
    # two copies, kept for the second configuration (reuse_copies); after a fault in the
    # first, its copies are not reused: the second loads two more
    assert len(helpers) == (4 if fault else 2)
    deadline = time.monotonic() + 2  # orphans are reaped by init: give it a moment
    while any(_alive(pid) for pid in helpers) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [pid for pid in helpers if _alive(pid)] == []
