"""Benchmarker processes seen from the supervisor: starting them (a fork of a
zygote, see :mod:`npf_core.supervisor.zygote_keeper`; a fork of the supervisor; a fresh interpreter;
or a thread for debugging), the parent's ends of their sockets,
talking to them, keeping their output tail, and reaping them.

Nothing here decides time or policy: :mod:`npf_core.supervisor.run` does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel

import npf_core.wire.protocol as pr
from npf_core.child.process import child_pythonpath, group_members
from npf_core.log import get_logger
from npf_core.plugin.manager import Plugins

__all__ = ["PARENT_FDS", "Child", "child_pythonpath", "drain_output", "group_members", "read_wire", "send", "spawn"]

logger = get_logger(__name__)
OUTPUT_TAIL = 64 * 1024  # bytes of a child's stdout/stderr kept while it runs
TAIL_LINES, TAIL_CHARS = 200, 16 * 1024  # what an error report keeps of them

#: parent-side fds of live benchmarkers; a forked child closes the ones not its own
PARENT_FDS: set[int] = set()


def pid_stopped(pid: int) -> bool:
    """Whether process ``pid`` is stopped (state T or t in /proc: SIGSTOP, SIGTSTP, a
    debugger); False when it is gone or /proc cannot say."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2] in "Tt"
    except (OSError, ValueError, IndexError):
        return False


@dataclass
class Child:
    """One benchmarker: its process (or thread) and the parent's socket ends."""

    copy_index: int
    sock: socket.socket
    out: socket.socket | None
    pid: int | None = None
    popen: subprocess.Popen[bytes] | None = None
    thread: threading.Thread | None = None
    returncode: int | None = None
    output: bytearray = field(default_factory=bytearray)
    result: pr.Result | None = None
    ready: pr.Ready | None = None
    hello: bool = False
    loaded: bool = False  # sent Loaded: warming up
    was_stopped: bool = False  # found stopped (SIGSTOP, SIGTSTP) by someone else: resumed to be ended
    frozen: bool = False  # stopped by npf itself (freeze()) while it notes what the copy started
    job: Any = None
    failed: bool = False  # sent Failed: it is exiting on its own
    ended_by: str = ""  # how reap() ended it: "", "SIGTERM" or "SIGKILL"
    out_closed: bool = False  # its stdout/stderr reached EOF: the output tail is complete
    pidfd: int = -1  # Linux: readable once the process has ended (no polling)
    zygote: Any = None  # the npf_core.supervisor.zygote_keeper.Zygote that forked it (its parent, which reaps it)
    on_output: Any = None  # called with each chunk it writes (what the copy prints, shown and kept)
    #: processes it started, seen while it ran: pid -> start time (npf_core.supervisor.lineage)
    lineage: dict[int, float] = field(default_factory=dict)
    wire_buffer: bytearray = field(default_factory=bytearray)  # bytes of a frame not complete yet
    reused: bool = False  # kept from an earlier configuration (npf_core.supervisor.copy_pool)
    released: bool = False  # sent Release: it is exiting on its own
    ahead_key: Any = None  # loaded ahead for a later configuration: what it holds (a reuse.CopyKey)
    ahead_ready: pr.Ready | None = None  # its Ready then: the load a later configuration reports
    reconfigured: bool = False  # sent Reconfigure for the configuration under way

    def next_config(self) -> None:
        """A kept copy starts another configuration: nothing of the last one's
        messages is left on it."""
        self.result = None
        self.ready = None
        self.failed = False
        self.ended_by = ""
        self.reused = True
        self.reconfigured = False
        self.loaded = True  # it holds its model: a death now is in warm-up

    def idle_and_well(self) -> bool:
        """A kept copy is still alive and has said nothing since its Result (it has
        nothing to say while idle): safe to give another configuration."""
        if self.poll() is not None or self.sock.fileno() < 0:
            return False
        try:
            self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:  # nothing to read: the idle state
            return not self.wire_buffer
        except OSError:
            return False
        return False  # EOF (b""), or a message it should not have sent while idle

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if self.popen is not None:
            self.returncode = self.popen.poll()
        elif self.zygote is not None and self.pid is not None:
            self.returncode = self.zygote.child_returncode(self.pid)
        elif self.pid is not None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -255
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        elif self.thread is not None and not self.thread.is_alive():
            self.returncode = 0
        return self.returncode

    def signal(self, sig: int) -> None:
        """Signal the benchmarker and every process it started: it leads a process
        group of its own, which its children join unless they leave it on purpose."""
        if self.pid is None:
            return
        try:
            os.killpg(self.pid, sig)
            return
        except (ProcessLookupError, PermissionError):
            pass
        if self.poll() is None:  # not (yet) a group leader: the process alone
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def freeze(self) -> None:
        """Before it is ended: stop it (and its group) at once with SIGSTOP, so that
        what it started can be noted before its death orphans them; a stop by someone
        else is remembered first (``was_stopped``). reap() resumes it with its SIGTERM."""
        if self.pid is None or self.poll() is not None or self.result is not None or self.failed:
            return
        self.was_stopped = self.was_stopped or self.stopped()
        self.signal(signal.SIGSTOP)
        self.frozen = True

    def stopped(self) -> bool:
        """Whether the process is stopped (SIGSTOP, SIGTSTP, a debugger): it then runs
        no code, and acts on no signal but SIGKILL and SIGCONT."""
        return self.pid is not None and self.returncode is None and pid_stopped(self.pid)

    def left_behind(self) -> list[int]:
        """Live processes (not zombies) still in the benchmarker's group once it has
        ended: what the model or its libraries started and did not stop."""
        if self.pid is None or self.returncode is None:
            return []
        return group_members(self.pid)

    async def end_left_behind(self, grace_s: float) -> None:
        """Processes the benchmarker left in its group end with it: SIGTERM,
        ``grace_s`` for them to go, then SIGKILL."""
        left = self.left_behind()
        if not left:
            return
        logger.warning("ending processes a benchmarker left behind", pid=self.pid, pids=left)
        self.signal(signal.SIGTERM)
        with anyio.move_on_after(grace_s):
            while _group_alive(self.pid):  # one cheap syscall a tick, not a process-table scan
                await anyio.sleep(0.02)
        if self.left_behind():
            self.signal(signal.SIGKILL)

    def open_pidfd(self) -> None:
        """A pidfd for the process (Linux >= 5.3), so that its end is awaited, not polled."""
        if self.pid is not None and self.pidfd < 0 and hasattr(os, "pidfd_open"):
            try:
                self.pidfd = os.pidfd_open(self.pid)
            except OSError:  # an old kernel, or already gone: poll instead
                self.pidfd = -1

    async def wait(self) -> int:
        """Wait until the process (or thread) has ended; its exit code."""
        while self.poll() is None:
            if self.pidfd >= 0:
                await anyio.wait_readable(self.pidfd)
                if self.poll() is None:  # ended, but its exit status is not known yet (a zygote's child)
                    await anyio.sleep(0.01)
            else:
                await anyio.sleep(0.01)
        return self.poll()  # type: ignore[return-value]

    async def _wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the process to end; True if it has."""
        with anyio.move_on_after(timeout_s):
            await self.wait()
        return self.poll() is not None

    async def reap(self, grace_s: float) -> None:
        """End the process and collect its exit status; call under a shielded scope.

        One that finished its work (sent Result or Failed, or was released) first gets ``grace_s`` to
        exit on its own (device runtimes like to close cleanly); then SIGTERM,
        ``grace_s`` more, SIGKILL, and wait."""
        try:
            if self.pid is None:
                return
            if (self.result is not None or self.failed or self.released) and await self._wait(grace_s):
                return
            if self.poll() is None:
                self.signal(signal.SIGTERM)
                self.ended_by = "SIGTERM"
                if self.frozen or self.stopped():  # a stopped process acts on no signal but SIGKILL and SIGCONT
                    self.was_stopped = self.was_stopped or not self.frozen
                    self.signal(signal.SIGCONT)
                if await self._wait(grace_s):
                    return
                logger.warning("benchmarker ignored SIGTERM; killing it", pid=self.pid, grace_s=grace_s)
                self.signal(signal.SIGKILL)
                self.ended_by = "SIGKILL"
                await self.wait()
        finally:
            try:
                await self.end_left_behind(grace_s)
            finally:
                self.read_rest()
                self.close()

    def read_rest(self) -> None:
        """Take what output is left in the socket (the process has ended)."""
        if self.out is None or self.out.fileno() < 0 or self.out_closed:
            return
        for _ in range(64):
            try:
                chunk = self.out.recv(1 << 16)
            except OSError:  # BlockingIOError: nothing more for now
                return
            if not chunk:
                return
            self.keep_output(chunk)

    def keep_output(self, chunk: bytes) -> None:
        """Append to the output, keeping about the last OUTPUT_TAIL bytes."""
        if self.on_output is not None:
            self.on_output(chunk)
        self.output += chunk
        if len(self.output) > 2 * OUTPUT_TAIL:
            del self.output[:-OUTPUT_TAIL]

    def close(self) -> None:
        if self.pidfd >= 0:
            PARENT_FDS.discard(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = -1
        for s in (self.sock, self.out):
            if s is not None and s.fileno() >= 0:
                PARENT_FDS.discard(s.fileno())
                s.close()

    def describe_exit(self) -> str:
        code = self.returncode
        if code is None:
            return "is still running"
        if code < 0 and code != -255:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = " (out of memory? the OOM killer sends SIGKILL)" if -code == signal.SIGKILL else ""
            if self.zygote is not None and self.zygote.dead and -code == signal.SIGKILL and not self.ended_by:
                hint = f" with its zygote (pid {self.zygote.pid}), which {self.zygote.describe_exit()}"
            return f"was killed by {name}{hint}"
        named = pr.ChildExit.describe(code)
        return f"exited with code {code}" + (f" ({named})" if named else "")

    def output_tail(self, lines: int = TAIL_LINES) -> str:
        """The last lines the process wrote to stdout/stderr (enough to hold a
        faulthandler dump of every thread after a crash), at most TAIL_CHARS."""
        text = bytes(self.output[-TAIL_CHARS:]).decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def _group_alive(pgid: int | None) -> bool:
    """Whether process group ``pgid`` still has a member (zombies included)."""
    if pgid is None:
        return False
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def spawn(
    copy_index: int,
    method: str,
    env: dict[str, str],
    objects: dict[str, Any],
    plugins: Plugins,
    *,
    zygote: Any = None,
    payload: Any = None,
) -> Child:
    """Start one benchmarker. The caller owns the returned child and must reap it.

    ``zygote`` (an :class:`npf_core.supervisor.zygote_keeper.Zygote`, started) forks it for method
    ``"zygote"``; ``payload`` (an :class:`npf_core.wire.transfer.Payload`) carries the
    run's objects and plugins to a ``"fresh"`` interpreter."""
    if method == "zygote":
        return zygote.spawn(copy_index, env)
    parent_sock, child_sock = socket.socketpair()
    if method == "inline":
        from npf_core.child.benchmarker import serve

        def inline() -> None:
            try:
                serve(child_sock, objects, plugins, inline=True)
            finally:
                child_sock.close()

        t = threading.Thread(target=inline, daemon=True, name=f"npf-inline-{copy_index}")
        t.start()
        parent_sock.setblocking(False)
        return Child(copy_index, parent_sock, None, thread=t)
    out_r, out_w = socket.socketpair()
    try:
        if method == "fork":
            parent_pid = os.getpid()
            # Signals stay blocked across fork until the child has dropped the parent's
            # handlers: those write to the parent's wakeup fd, which the child shares, so
            # a SIGTERM to a just-forked child would look like a SIGTERM to the supervisor.
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
            pid = -1
            try:
                pid = _fork()
                if pid == 0:  # pragma: no cover - runs in the child
                    try:
                        _own_process_group()
                        _reset_signals_in_child(mask)
                        from npf_core.child.benchmarker import child_main

                        for fd in list(PARENT_FDS) + [parent_sock.fileno(), out_r.fileno()]:
                            try:
                                os.close(fd)
                            except OSError:
                                pass
                        os.environ.update(env)
                        child_main(child_sock, out_w.fileno(), parent_pid, objects, plugins)
                    finally:
                        os._exit(pr.ChildExit.ORPHANED)  # never return into the supervisor's code
            finally:
                if pid != 0:
                    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            if pid > 0:
                _own_process_group(pid)  # both sides, as shells do: no window where a signal misses it
            child = Child(copy_index, parent_sock, out_r, pid=pid)
        else:
            full_env = {**os.environ, **env, "PYTHONPATH": child_pythonpath()}
            extra = ["--payload", str(payload.fd)] if payload is not None else []
            popen = subprocess.Popen(
                [sys.executable, "-m", "npf_core.child.benchmarker", "--fd", str(child_sock.fileno()),
                 "--parent", str(os.getpid()), *extra],
                pass_fds=[child_sock.fileno()] + ([payload.fd] if payload is not None else []),
                stdin=subprocess.DEVNULL,
                stdout=out_w.fileno(),
                stderr=out_w.fileno(),
                env=full_env,
                **_NEW_GROUP,
            )  # fmt: skip
            child = Child(copy_index, parent_sock, out_r, pid=popen.pid, popen=popen)
    finally:
        child_sock.close()
        out_w.close()
    for s in (parent_sock, out_r):
        s.setblocking(False)
        PARENT_FDS.add(s.fileno())
    child.open_pidfd()
    if child.pidfd >= 0:
        PARENT_FDS.add(child.pidfd)
    return child


#: a fresh benchmarker leads a process group of its own from before it runs any code
_NEW_GROUP: dict[str, Any] = (
    {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
)


def _own_process_group(pid: int = 0) -> None:
    """Make the benchmarker ``pid`` (0: this process) the leader of a new process
    group. What it starts (data loaders, compilers, servers) joins that group, so
    the supervisor can end them all with it; and a signal to the supervisor's group
    (Ctrl-C, ``kill -- -PGID``) reaches the supervisor, which stops the run, rather
    than killing benchmarkers behind its back."""
    try:
        os.setpgid(pid, 0 if pid == 0 else pid)
    except OSError:  # the child already did it, or already exited
        pass


def _reset_signals_in_child(mask: set[int] | set[signal.Signals]) -> None:  # pragma: no cover - runs in the child
    """In a just-forked child: no wakeup fd, default handlers, SIGINT ignored (the
    supervisor decides when to stop), then the signal mask from before the fork."""
    try:
        signal.set_wakeup_fd(-1)
    except (ValueError, OSError):
        pass
    for sig in signal.valid_signals():
        try:
            if callable(signal.getsignal(sig)):  # a Python-level handler of the parent
                signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


_warned_threads = False


def _fork() -> int:
    """``os.fork()``. Python 3.12+ warns when the forking process has other threads
    (a child may inherit a lock some thread held); the supervisor itself starts none,
    but an embedding application may have. We say so once, with what to do, rather
    than let the interpreter's DeprecationWarning fire for every copy."""
    global _warned_threads
    if threading.active_count() > 1 and not _warned_threads:
        _warned_threads = True
        logger.warning(
            "forking benchmarkers from a process that has other threads; if a benchmarker hangs "
            "at start-up, use start_method 'fresh'",
            threads=threading.active_count(),
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*fork\(\) may lead to deadlocks", category=DeprecationWarning)
        return os.fork()


async def send(child: Child, msg: pr.Message) -> None:
    """Send a frame. A child that is gone (broken pipe) is not an error here: its
    wire reader sees the EOF and the supervisor reports how it died."""
    data = memoryview(pr.encode_frame(msg))
    while data:
        try:
            n = child.sock.send(data)
            data = data[n:]
        except BlockingIOError:
            await anyio.wait_writable(child.sock)
        except OSError as exc:  # EPIPE, ECONNRESET: the child has died
            logger.debug("benchmarker is gone; message not sent", pid=child.pid, msg=type(msg).__name__, error=str(exc))
            return


async def _recv(sock: socket.socket) -> bytes:
    """The next chunk from a non-blocking socket; b"" once the peer is gone."""
    while True:
        await anyio.wait_readable(sock)
        try:
            return sock.recv(1 << 16)
        except BlockingIOError:
            continue
        except OSError:
            return b""


async def read_wire(child: Child, sink: Any) -> None:
    """Frames from one child into the config's shared stream; EOF as None. The
    partial frame lives on the child, so a copy kept for the next configuration
    loses nothing when this reader is cancelled at the end of one."""
    buffer = child.wire_buffer
    try:
        while True:
            chunk = await _recv(child.sock)
            if not chunk:
                await sink.send((child, None))
                return
            buffer += chunk
            for msg in pr.decode_frames(buffer):
                await sink.send((child, msg))
    except Exception as exc:  # ProtocolError, or a bug: the config fails, the sweep goes on
        await sink.send((child, exc))


async def drain_output(child: Child) -> None:
    """Keep the last OUTPUT_TAIL bytes of what the child writes to stdout/stderr.
    Cancelled at the end of a configuration, it leaves the output open: a kept copy
    gets a new drain in its next configuration."""
    assert child.out is not None
    if child.out_closed:
        return
    while True:
        chunk = await _recv(child.out)
        if not chunk:
            child.out_closed = True
            return
        child.keep_output(chunk)
