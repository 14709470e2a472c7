"""Process plumbing of a child (benchmarker or compile worker): die with the
supervisor, adopt and end what the child started (a subreaper, so that helpers in
sessions of their own are not lost to init), quiet the signals the supervisor owns."""

from __future__ import annotations

import ctypes
import os
import select
import signal
import socket
import sys
import threading

import psutil

from npf_core.wire.protocol import ChildExit

__all__ = [
    "end_processes",
    "become_subreaper",
    "end_descendants",
    "end_own_group",
    "group_members",
    "quiet_signals",
    "set_parent_death_signal",
    "start_eof_watchdog",
]


def set_parent_death_signal(parent_pid: int) -> None:
    """Die with the supervisor, even if it is killed with SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent_pid and os.getppid() != parent_pid:
        os._exit(ChildExit.ORPHANED)


PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Adopt the orphans of this process's descendants (Linux): a helper that a model
    starts in a session of its own, or a daemon that double-forks, stays a descendant
    of this process instead of going to init, so that it can be found and ended.
    True if done."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def end_own_group() -> None:
    """Kill what this benchmarker started (its process group and every descendant,
    in a session of its own or not), not itself."""
    me = os.getpid()
    try:
        victims = set(_descendants())
        if os.getpgrp() == me:
            victims.update(group_members(me, but=me))
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        _reap_children()
    except Exception:  # noqa: BLE001 - exiting anyway
        pass


def end_descendants(grace_s: float = 0.3) -> None:
    """At a copy's exit: every process it started (and, as a subreaper, every orphan
    of those) gets SIGTERM, ``grace_s`` to go, then SIGKILL; the dead are reaped, so
    that none is handed to another process as a zombie."""
    try:
        procs = psutil.Process().children(recursive=True)
        if not procs:
            return
        end_processes(procs, grace_s, 1.0)
        _reap_children()
    except Exception:  # noqa: BLE001 - exiting anyway
        pass


def end_processes(procs: list[psutil.Process], grace_s: float, kill_wait_s: float) -> None:
    """SIGTERM each, SIGKILL those still alive after ``grace_s``, then wait up to
    ``kill_wait_s`` for them (which also reaps those that are our children)."""
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _gone, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=kill_wait_s)


def _descendants() -> list[int]:
    try:
        return [p.pid for p in psutil.Process().children(recursive=True)]
    except psutil.Error:
        return []


def _reap_children() -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def start_eof_watchdog(sock: socket.socket) -> None:
    """A hung-up wire means the supervisor is gone: exit, whatever the model is
    doing (the parent-death signal covers SIGKILL on Linux; this covers the rest)."""
    rdhup = getattr(select, "POLLRDHUP", 0)
    if not rdhup:
        return

    def watch() -> None:
        poller = select.poll()
        poller.register(sock.fileno(), rdhup | select.POLLHUP)
        while True:
            for _, ev in poller.poll():
                if ev & (rdhup | select.POLLHUP):
                    end_own_group()
                    os._exit(ChildExit.SUPERVISOR_GONE)

    threading.Thread(target=watch, name="npf-eof-watchdog", daemon=True).start()


def quiet_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def group_members(pgid: int, but: int = 0) -> list[int]:
    """Live processes (not zombies) of process group ``pgid``, except ``but``."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return []  # the group is gone (the common case: nothing to look for)
    found = []
    for p in psutil.process_iter(["status"]):
        try:
            if p.pid != but and os.getpgid(p.pid) == pgid and p.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        except (OSError, psutil.Error):
            continue
    return found


def child_pythonpath() -> str:
    """The parent's import path, so that a fresh interpreter finds the same modules."""
    entries = []
    for p in sys.path:
        p = p or os.getcwd()
        if os.path.isdir(p) and p not in entries:
            entries.append(p)
    old = os.environ.get("PYTHONPATH")
    return os.pathsep.join(entries + ([old] if old else []))
