"""What model copies started, seen from the supervisor: noted while they run, ended
after them.

A copy's helpers usually share its process group, and end with it. One started
in a session (and group) of its own, or a daemon that double-forks, does not: each
copy is a child subreaper (:func:`npf_core.child.process.become_subreaper`), so such
a helper stays its descendant, and the copy ends its descendants when it exits
(:func:`npf_core.child.process.end_descendants`). A copy that is killed or crashes
cannot, and neither can one ended by SIGTERM; for that, the supervisor notes every
copy's descendants (one read of the process table for all copies, in a worker
thread) once all are loaded, every few seconds while they measure, and before it
ends them (the copies to be ended are frozen with SIGSTOP meanwhile, so that none
dies and orphans its helpers while the table is read); after the copies are reaped
it ends whichever of those is still alive: SIGTERM, a grace period, SIGKILL. A process
is known by its pid and start time, so a reused pid is never hit. ``npf run`` itself
is a subreaper too: an orphan that escaped all this comes to it, and is ended when
the run is over (:func:`end_adopted`).
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import anyio
import psutil

from npf_core.child.process import end_processes
from npf_core.log import get_logger

if TYPE_CHECKING:
    from npf_core.supervisor.processes import Child

__all__ = ["end_adopted", "end_left", "note", "survivors"]

logger = get_logger(__name__)


def note(children: list[Child]) -> None:
    """Add each live copy's descendants now to its ``lineage`` (blocking: a worker thread)."""
    roots = {c.pid: c for c in children if c.pid is not None and c.returncode is None}
    if not roots:
        return
    kids: dict[int, list[int]] = {}
    started: dict[int, float] = {}
    for p in psutil.process_iter(["ppid", "create_time"]):
        ppid, created = p.info.get("ppid"), p.info.get("create_time")
        if ppid is None or created is None:
            continue
        kids.setdefault(ppid, []).append(p.pid)
        started[p.pid] = created
    for pid, child in roots.items():
        todo = list(kids.get(pid, ()))
        while todo:
            d = todo.pop()
            if d in started and d not in child.lineage:
                child.lineage[d] = started[d]
                todo.extend(kids.get(d, ()))


def survivors(children: list[Child]) -> list[psutil.Process]:
    """The noted descendants of ``children`` that are still running (the same
    processes: same pid and start time; zombies are not counted)."""
    alive = []
    for child in children:
        for pid, created in child.lineage.items():
            try:
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
            except psutil.Error:
                continue
    return alive


async def end_left(children: list[Child], grace_s: float) -> None:
    """End the noted descendants still running after their copies: SIGTERM,
    ``grace_s``, SIGKILL; reaped when they are this process's children (a subreaper
    adopts them). Call under a shielded scope, once the copies are reaped."""
    left = await anyio.to_thread.run_sync(survivors, children)
    if not left:
        return
    logger.warning("ending processes that model copies started and left behind", pids=[p.pid for p in left])
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in left:
            try:
                p.send_signal(sig)
            except psutil.Error:
                pass
        with anyio.move_on_after(grace_s if sig == signal.SIGTERM else 5.0):
            while left:
                await anyio.sleep(0.02)
                left = [p for p in left if _running(p)]
        if not left:
            break


def _running(p: psutil.Process) -> bool:
    """Whether ``p`` (the same process: psutil checks its start time) still runs; a
    zombie of it is reaped when it is this process's child."""
    try:
        if not p.is_running():
            return False
        if p.status() == psutil.STATUS_ZOMBIE:
            _reap(p.pid)
            return False
        return True
    except psutil.Error:
        return False


def _reap(pid: int) -> None:
    """Collect the exit status of ``pid`` if it is a child of this process."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def end_adopted(grace_s: float = 1.0) -> list[int]:
    """For a supervisor that is a subreaper (``npf run``) and whose run is over:
    every child process still here was adopted (an orphan of something a copy
    started). End and reap them all; their pids."""
    try:
        left = psutil.Process().children()
    except psutil.Error:
        return []
    if not left:
        return []
    logger.warning("ending processes that model copies started and left behind", pids=[p.pid for p in left])
    end_processes(left, grace_s, 5.0)  # for our children, this also reaps them
    return [p.pid for p in left]
