"""What one model copy can do to the others and to the machine (issue 20): the
run's object payload is sealed, so a copy cannot change what later copies read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import npf_core
from npf_core.wire import transfer

from .conftest import sweep_spec


def _payload_fd() -> int | None:
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("/memfd:npf-objects"):
                return int(name)
        except OSError:
            continue
    return None


def test_the_payload_cannot_be_written_resized_or_unsealed(tmp_path: Path) -> None:
    import fcntl
    import mmap

    payload = transfer.pack({"<object:model.target>": [1, 2, 3]}, [], "fresh")
    assert payload is not None
    try:
        with pytest.raises(PermissionError):
            os.pwrite(payload.fd, b"X", 0)
        with pytest.raises(PermissionError):
            os.ftruncate(payload.fd, 1)
        with pytest.raises(PermissionError):
            os.ftruncate(payload.fd, payload.size * 2)
        with pytest.raises(PermissionError):
            mmap.mmap(payload.fd, 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
        with pytest.raises(PermissionError):
            fcntl.fcntl(payload.fd, fcntl.F_ADD_SEALS, 0)  # F_SEAL_SEAL: no seal can be taken off
        assert transfer.load_objects(payload.fd) == {"<object:model.target>": [1, 2, 3]}
    finally:
        payload.close()


@pytest.mark.parametrize("method", ["fresh", "zygote"])
def test_a_copy_cannot_change_what_later_copies_read(method: str, tmp_path: Path) -> None:
    """Each copy tries to overwrite the payload it inherited, then reports what it read;
    every copy, of every configuration, reads the original."""
    marks = tmp_path / "marks"
    marks.mkdir()
    table = [7.0] * 1000  # travels in the payload with the model

    class Tamperer:
        def __init__(self) -> None:
            fd = _payload_fd()
            outcome = "no payload"
            if fd is not None:
                try:
                    os.pwrite(fd, b"\xff" * 4096, 4096)
                    outcome = "wrote"
                except OSError as exc:
                    outcome = f"refused {exc.errno}"
            (marks / f"{os.getpid()}.txt").write_text(f"{outcome} {sum(table)}")

        def __call__(self, *inputs: Any) -> int:
            return 1

    spec = sweep_spec(
        tmp_path / "out", model={"framework": "python", "target": Tamperer}, n_models=[2],
        workers_per_model=[1, 2], start_method=method, duration_s=0.05,
        reuse_copies=False,  # every configuration's copies start anew and read the payload
    )  # fmt: skip
    reports = npf_core.benchmark(spec)
    assert [r.status for r in reports] == ["ok", "ok"], [r.error for r in reports]
    seen = sorted(p.read_text() for p in marks.iterdir())
    assert len(seen) == 4
    assert all(s.startswith("refused") and s.endswith(" 7000.0") for s in seen), seen


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _helpers_gone(markers: Path, expected: int) -> list[int]:
    """The helpers that marked themselves and are still alive, after a moment for
    init to reap the orphans (expecting ``expected`` markers)."""
    import time

    helpers = [int(p.stem) for p in markers.glob("*.helper")]
    assert len(helpers) == expected, helpers
    deadline = time.monotonic() + 2
    while any(_alive(pid) for pid in helpers) and time.monotonic() < deadline:
        time.sleep(0.01)
    left = [pid for pid in helpers if _alive(pid)]
    for pid in left:  # a failing test leaves nothing behind either
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    return left


@pytest.mark.parametrize("how", ["session", "daemon"])
@pytest.mark.parametrize(
    ("method", "fault", "noterm"),
    [
        ("fork", "", False),  # the copy exits normally: it ends what it started
        ("zygote", "", True),  # ... even a helper that ignores SIGTERM
        ("fresh", "", False),
        ("zygote", "call-sigkill", False),  # the copy is killed: the supervisor ends the orphan
        ("fork", "call-sigkill", True),
        ("fresh", "call-hang", False),  # the copy is stopped with SIGTERM
    ],
)
def test_a_helper_in_a_session_of_its_own_ends_with_the_run(
    how: str, method: str, fault: str, noterm: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model that starts a helper with start_new_session=True (or a daemon that
    double-forks) leaves no process behind, however its copy ends."""
    from .conftest import MODELS

    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("NPF_MARKER_DIR", str(markers))
    monkeypatch.setenv("NPF_FAULT", fault)
    monkeypatch.setenv("NPF_HELPER_SESSION" if how == "session" else "NPF_HELPER_DAEMON", "1")
    if noterm:
        monkeypatch.setenv("NPF_HELPER_NOTERM", "1")
    spec = sweep_spec(
        tmp_path / "out", model={"framework": "python", "target": f"{MODELS}:Spawner"},
        n_models=[2], workers_per_model=[1, 2], start_method=method,
        reuse_copies=False,  # each configuration starts its copies, and they their helpers
    )  # fmt: skip
    reports = npf_core.benchmark(spec)
    assert [r.status for r in reports] == (["error", "ok"] if fault else ["ok", "ok"]), [r.error for r in reports]
    assert _helpers_gone(markers, 4) == []


def test_npf_run_ends_a_daemon_a_killed_copy_left(tmp_path: Path) -> None:
    """The command line, as a real process: the copy is killed after its helper
    daemonised; nothing of it is left once npf has exited."""
    import os
    import subprocess
    import sys

    from .conftest import MODELS, write_json

    markers = tmp_path / "markers"
    markers.mkdir()
    spec = write_json(tmp_path / "spec.json", sweep_spec(
        tmp_path / "out", model={"framework": "python", "target": f"{MODELS}:Spawner"},
        n_models=[1], workers_per_model=[1, 2], start_method="fork"))  # fmt: skip
    env = {**os.environ, "NPF_MARKER_DIR": str(markers), "NPF_FAULT": "call-sigkill", "NPF_HELPER_DAEMON": "1",
           "NPF_HELPER_NOTERM": "1"}  # fmt: skip
    res = subprocess.run([sys.executable, "-m", "npf_core", "run", str(spec), "-q"], env=env, capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert res.returncode == 1, res.stderr  # the killed copy's configuration failed; the other ran
    assert "Traceback" not in res.stderr
    assert _helpers_gone(markers, 2) == []
