"""A box for tests of inputs that could start thousands of processes: the command
runs in a cgroup of its own with a low ``pids.max`` (v2, or v1's pids controller),
so that even a broken npf cannot start more than that; or, where no cgroup can be
made, under a low ``RLIMIT_NPROC`` (which binds a user that is not root)."""

from __future__ import annotations

import os
import resource
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil


def _cgroup_parent() -> Path | None:
    """A cgroup folder we may make a child in, with the pids controller."""
    v2 = Path("/sys/fs/cgroup")
    if (v2 / "cgroup.controllers").exists():
        try:
            mine = Path("/proc/self/cgroup").read_text().split("::", 1)[1].strip()
        except (OSError, IndexError):
            return None
        here = v2 / mine.lstrip("/")
        for folder in (here.parent, here):
            if "pids" in (folder / "cgroup.subtree_control").read_text().split() and os.access(folder, os.W_OK):
                return folder
        return None
    v1 = Path("/sys/fs/cgroup/pids")
    if (v1 / "cgroup.procs").exists() and os.access(v1, os.W_OK):
        return v1
    return None


class Box:
    """Where a command runs: ``preexec`` puts the new process in the box; ``how``
    says which box it is; ``count()`` is how many processes are in it now."""

    def __init__(self, preexec: Callable[[], None], how: str, cgroup: Path | None) -> None:
        self.preexec = preexec
        self.how = how
        self.cgroup = cgroup

    def count(self) -> int:
        if self.cgroup is None:
            return 0
        try:
            return len((self.cgroup / "cgroup.procs").read_text().split())
        except OSError:
            return 0


@contextmanager
def process_box(max_tasks: int) -> Iterator[Box | None]:
    """A box of at most ``max_tasks`` processes and threads; None when this machine
    offers none that binds (root without a cgroup to make)."""
    parent = _cgroup_parent()
    if parent is not None:
        group = parent / f"npf-test-{uuid.uuid4().hex[:8]}"
        try:
            group.mkdir()
            (group / "pids.max").write_text(str(max_tasks))
        except OSError:
            shutil.rmtree(group, ignore_errors=True)
            group = None  # type: ignore[assignment]
        if group is not None:
            procs = group / "cgroup.procs"

            def enter() -> None:
                procs.write_text(str(os.getpid()))

            try:
                yield Box(enter, f"cgroup {group} (pids.max {max_tasks})", group)
            finally:
                _empty(group)
            return
    if os.getuid() != 0:
        used = sum(p.info["num_threads"] or 1 for p in psutil.process_iter(["uids", "num_threads"])
                   if p.info["uids"] is not None and p.info["uids"].real == os.getuid())  # fmt: skip
        limit = used + max_tasks

        def lower() -> None:
            resource.setrlimit(resource.RLIMIT_NPROC, (limit, resource.getrlimit(resource.RLIMIT_NPROC)[1]))

        yield Box(lower, f"RLIMIT_NPROC {limit}", None)
        return
    yield None


def _empty(group: Path) -> None:
    """Kill what is left in the cgroup, then remove it."""
    for _ in range(50):
        try:
            pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except OSError:
            break
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        live = []
        for pid in pids:
            try:
                live.append(psutil.Process(pid))
            except psutil.Error:
                continue
        psutil.wait_procs(live, timeout=0.2)
    try:
        group.rmdir()
    except OSError:
        pass
