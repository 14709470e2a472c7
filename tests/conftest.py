"""Suite-wide fixtures.

Every test runs under :func:`no_child_processes_left`: a test that leaves a child
process of the pytest process alive (or unreaped, a zombie) fails, and the
leftovers are killed and reaped so that later tests start clean.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

pytest_plugins = ["pytester"]
# No test asks the EC2 metadata service (reports' instance_type); tests/frontdoor/test_imds.py
# points it at a local server instead
os.environ.setdefault("NPF_IMDS_DISABLE", "1")

ROOT = Path(__file__).resolve().parents[1]
#: how long a test's children get to finish on their own after the test ends
CHILD_GRACE_S = float(os.environ.get("NPF_TEST_CHILD_GRACE_S", "2.0"))


def _describe(proc: psutil.Process) -> str:
    try:
        status = proc.status()
        cmd = " ".join(proc.cmdline()) if status != psutil.STATUS_ZOMBIE else ""
    except psutil.Error:
        return f"pid {proc.pid} (gone)"
    return f"pid {proc.pid} [{status}] {cmd or proc.name()}".rstrip()


def _reap(pid: int) -> None:
    """Collect a direct child's exit status, if it has one (no-op otherwise)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def leftover_children(grace_s: float = CHILD_GRACE_S) -> list[str]:
    """Children of this process still there after ``grace_s``: describe them, then
    kill and reap them. An empty list means the process tree is clean."""
    me = psutil.Process()
    deadline = time.monotonic() + grace_s
    while True:
        children = me.children(recursive=True)
        if not children or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    if not children:
        return []
    found = [_describe(c) for c in children]
    for c in children:
        try:
            c.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(children, timeout=5)
    for c in children:
        _reap(c.pid)  # zombies of ours: wait_procs only waits for direct children it can
    return found


@pytest.fixture(autouse=True)
def no_child_processes_left() -> Iterator[None]:
    """Fail a test that leaves a child process (or a zombie) behind."""
    yield
    found = leftover_children()
    if found:
        pytest.fail("test left child processes behind (killed now): " + "; ".join(found), pytrace=False)


@pytest.fixture
def spawn_guard(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Every benchmarker the supervisor starts, as (copy index, start method)."""
    from npf_core.supervisor import processes

    started: list[tuple[int, str]] = []
    real = processes.spawn

    def spawn(copy_index: int, method: str, *args: Any, **kwargs: Any) -> Any:
        started.append((copy_index, method))
        return real(copy_index, method, *args, **kwargs)

    monkeypatch.setattr(processes, "spawn", spawn)
    return started


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Async tests (``@pytest.mark.anyio``) run under both anyio backends."""
    return str(request.param)


@pytest.fixture
def sleepy_file() -> Path:
    """A model file with ``Sleepy`` (2 ms per call) and friends (tests/integration/models.py)."""
    return ROOT / "tests" / "integration" / "models.py"


def spec_structs() -> dict[str, Any]:
    """Every Struct reachable from ``npf_core.spec.schema.Spec`` (name -> msgspec StructType)."""
    import msgspec

    from npf_core.spec.schema import Spec

    found: dict[str, Any] = {}

    def walk(info: Any) -> None:
        if isinstance(info, msgspec.inspect.StructType):
            if info.cls.__name__ in found:
                return
            found[info.cls.__name__] = info
            for f in info.fields:
                walk(f.type)
        for attr in ("types", "item_type", "key_type", "value_type"):
            inner = getattr(info, attr, None)
            if isinstance(inner, tuple):
                for t in inner:
                    walk(t)
            elif inner is not None:
                walk(inner)

    walk(msgspec.inspect.type_info(Spec))
    return found


@pytest.fixture(scope="session")
def spec_struct_types() -> dict[str, Any]:
    """Every Struct of the spec format, by class name (see :func:`spec_structs`)."""
    return spec_structs()
