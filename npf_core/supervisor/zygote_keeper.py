"""The supervisor's side of a zygote (see :mod:`npf_core.child.zygote`): start one,
ask it for benchmarkers, learn their exit statuses, and end it.

The supervisor is not the parent of a zygote's children, so it cannot ``waitpid``
them: a :class:`~npf_core.supervisor.processes.Child` started here takes its return code from
the zygote's ``Exited`` messages (:meth:`Zygote.pump`). If the zygote dies, its
children die with it (their parent-death signal); they are then reported as killed
with their zygote, and the supervisor starts a new zygote for the next
configuration.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import anyio
import msgspec
import psutil

import npf_core.child.zygote as zg
from npf_core.child.process import child_pythonpath
from npf_core.errors import ZygoteFailed
from npf_core.log import get_logger
from npf_core.supervisor.processes import _NEW_GROUP, OUTPUT_TAIL, PARENT_FDS, Child, pid_stopped

__all__ = ["SPAWN_TIMEOUT_S", "ZYGOTE_START_S", "Zygote", "ZygoteKeeper"]

logger = get_logger(__name__)
ZYGOTE_START_S = 60.0  # the least time a zygote gets for its imports (the run's timeouts.load_s if longer)
SPAWN_TIMEOUT_S = 30.0  # a fork and one reply: anything near this means the zygote is stuck


class ZygoteKeeper:
    """The zygote of one run: started on first use, replaced when it died (the
    configuration it died in has failed), ended with the run."""

    def __init__(self, framework: str, options: dict[str, Any], payload: Any) -> None:
        self.framework, self.options, self.payload = framework, options, payload
        self.zygote: Zygote | None = None

    async def get(self, load_s: float) -> Zygote:
        if self.zygote is not None and self.zygote.alive() and not self.zygote.stopped():
            return self.zygote  # (a stopped one, SIGSTOP, would answer nothing: it is replaced)
        await self.close(1.0)
        self.zygote = Zygote(self.framework, self.options, self.payload)
        try:
            # its imports are not a copy's load: at least ZYGOTE_START_S, whatever load_s is
            await self.zygote.start(max(load_s, ZYGOTE_START_S))
        except ZygoteFailed:
            self.zygote = None  # start() has ended it
            raise
        return self.zygote

    async def close(self, grace_s: float) -> None:
        """Call under a shielded scope, once every copy is reaped."""
        if self.zygote is not None:
            zygote, self.zygote = self.zygote, None
            await zygote.close(grace_s)


class Zygote:
    """One zygote process, for one framework (and its options) of one run."""

    def __init__(self, framework: str, options: dict[str, Any], payload: Any = None) -> None:
        self.framework = framework
        self.options = options
        self.payload = payload
        self.ctl: socket.socket | None = None
        self.out: socket.socket | None = None
        self.popen: subprocess.Popen[bytes] | None = None
        self.ready: zg.Ready | None = None
        self.failed: zg.Failed | None = None
        self.output = bytearray()
        self.exits: dict[int, int] = {}  # child pid -> return code
        self._spawned: dict[int, int] = {}  # copy index -> pid, until spawn() takes it
        self.dead = False

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    # -- life ------------------------------------------------------------------

    def _launch(self) -> None:
        ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        out_r, out_w = socket.socketpair()
        pass_fds = [theirs.fileno()]
        argv = [sys.executable, "-m", "npf_core.child.zygote", "--fd", str(theirs.fileno()),
                "--parent", str(os.getpid()), "--framework", self.framework,
                "--options", msgspec.json.encode(self.options).decode()]  # fmt: skip
        if self.payload is not None:
            pass_fds.append(self.payload.fd)
            argv += ["--payload", str(self.payload.fd)]
        try:
            self.popen = subprocess.Popen(
                argv,
                pass_fds=pass_fds,
                stdin=subprocess.DEVNULL,
                stdout=out_w.fileno(),
                stderr=out_w.fileno(),
                env={**os.environ, "PYTHONPATH": child_pythonpath()},
                **_NEW_GROUP,  # Ctrl-C reaches the supervisor, which ends the zygote
            )
        except BaseException:
            ctl.close()
            out_r.close()
            raise
        finally:
            theirs.close()
            out_w.close()
        for s in (ctl, out_r):
            s.setblocking(False)
            PARENT_FDS.add(s.fileno())  # a fork-method benchmarker closes them
        self.ctl, self.out = ctl, out_r

    async def start(self, timeout_s: float) -> None:
        """Start the zygote and wait until it has imported what it should; raises
        :class:`ZygoteFailed` (after ending it) if it cannot."""
        t0 = time.monotonic()
        self._launch()
        with anyio.move_on_after(timeout_s):
            while self.ready is None and not self.dead and self.failed is None:
                self.pump()
                if self.ready is None and not self.dead and self.failed is None:
                    assert self.ctl is not None
                    with anyio.move_on_after(0.05):
                        await anyio.wait_readable(self.ctl)
        if self.ready is not None:
            logger.debug("zygote ready", pid=self.pid, imported=self.ready.imported,
                         import_s=round(self.ready.import_s, 3), start_s=round(time.monotonic() - t0, 3))  # fmt: skip
            if self.ready.threads > 0:
                logger.warning("the framework's imports started threads in the zygote; forks of it may hang",
                               threads=self.ready.threads, imported=self.ready.imported)  # fmt: skip
            return
        with anyio.CancelScope(shield=True):
            await self.close(1.0)
        if self.failed is not None:
            raise ZygoteFailed(
                f"the zygote (framework {self.framework!r}) could not start: {self.failed.type}: {self.failed.message}",
                type=self.failed.type, traceback=self.failed.traceback, output_tail=self.output_tail(),
            )  # fmt: skip
        if self.dead:
            raise ZygoteFailed(f"the zygote {self.describe_exit()} while starting", output_tail=self.output_tail(),
                               exitcode=self.returncode())  # fmt: skip
        raise ZygoteFailed(f"the zygote was not ready after {timeout_s:g} s (its imports hung?)",
                           type="LoadTimeout", output_tail=self.output_tail())  # fmt: skip

    def alive(self) -> bool:
        self.pump()
        return self.ready is not None and not self.dead

    def stopped(self) -> bool:
        """Whether the zygote is stopped (SIGSTOP, SIGTSTP): it forks nothing and
        reaps nothing until it is resumed."""
        return self.popen is not None and self.popen.poll() is None and pid_stopped(self.popen.pid)

    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    def describe_exit(self) -> str:
        code = self.returncode()
        if code is None:
            return "hung up" if self.dead else "is running"
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited with code {code}"

    async def close(self, grace_s: float) -> None:
        """End the zygote: hang up its control socket (it exits), then SIGTERM and
        SIGKILL if it does not; call under a shielded scope, after its children are
        reaped."""
        if self.ctl is not None:
            PARENT_FDS.discard(self.ctl.fileno())
            self.ctl.close()
            self.ctl = None
        if self.popen is not None:
            for sig in (None, signal.SIGTERM, signal.SIGKILL):
                if sig is not None and self.popen.poll() is None:
                    try:
                        os.killpg(self.popen.pid, sig)
                    except OSError:
                        pass
                with anyio.move_on_after(grace_s):
                    while self.popen.poll() is None:
                        await anyio.sleep(0.01)
                if self.popen.poll() is not None:
                    break
        self.dead = True
        self._read_output()
        if self.out is not None:
            PARENT_FDS.discard(self.out.fileno())
            self.out.close()
            self.out = None

    # -- messages ----------------------------------------------------------------

    def pump(self) -> None:
        """Take every message the zygote has sent, without waiting."""
        self._read_output()
        while self.ctl is not None and not self.dead:
            try:
                data = self.ctl.recv(zg.MAX_MESSAGE)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self.dead = True
                logger.warning("the zygote is gone", pid=self.pid, how=self.describe_exit())
                return
            msg = zg.decode(data)
            if isinstance(msg, zg.Exited):
                self.exits[msg.pid] = msg.code
            elif isinstance(msg, zg.Spawned):
                self._spawned[msg.copy_index] = msg.pid
            elif isinstance(msg, zg.Ready):
                self.ready = msg
            elif isinstance(msg, zg.Failed):
                self.failed = msg

    def _read_output(self) -> None:
        while self.out is not None:
            try:
                chunk = self.out.recv(1 << 16)
            except OSError:  # BlockingIOError: nothing more for now
                return
            if not chunk:
                return
            self.output += chunk
            if len(self.output) > 2 * OUTPUT_TAIL:
                del self.output[:-OUTPUT_TAIL]

    def output_tail(self) -> str:
        return "\n".join(bytes(self.output[-16384:]).decode("utf-8", errors="replace").splitlines()[-200:])

    # -- copies -------------------------------------------------------------------

    def spawn(self, copy_index: int, env: dict[str, str]) -> Child:
        """Fork benchmarker ``copy_index`` from the zygote; its environment is the
        supervisor's now plus ``env``. Blocks for the zygote's reply (a fork: ms)."""
        if not self.alive() or self.ctl is None:
            raise ZygoteFailed(f"the zygote {self.describe_exit()}", output_tail=self.output_tail(),
                               exitcode=self.returncode())  # fmt: skip
        parent_sock, child_sock = socket.socketpair()
        out_r, out_w = socket.socketpair()
        try:
            request = zg.Spawn(copy_index=copy_index, env={**os.environ, **env}, cwd=os.getcwd())
            socket.send_fds(self.ctl, [zg.encode(request)], [child_sock.fileno(), out_w.fileno()])
        except OSError:
            parent_sock.close()
            out_r.close()
            raise
        finally:
            child_sock.close()
            out_w.close()
        deadline = time.monotonic() + SPAWN_TIMEOUT_S
        while copy_index not in self._spawned:
            self.pump()
            if copy_index in self._spawned:
                break
            stopped = self.stopped()
            if self.dead or stopped or time.monotonic() > deadline:
                parent_sock.close()
                out_r.close()
                what = "is stopped (SIGSTOP or SIGTSTP)" if stopped else (
                    "did not answer" if not self.dead else self.describe_exit())  # fmt: skip
                raise ZygoteFailed(f"the zygote {what} when asked for benchmarker {copy_index}",
                                   output_tail=self.output_tail(), exitcode=self.returncode())  # fmt: skip
            assert self.ctl is not None
            _wait_readable(self.ctl, deadline)
        pid = self._spawned.pop(copy_index)
        for s in (parent_sock, out_r):
            s.setblocking(False)
            PARENT_FDS.add(s.fileno())
        return Child(copy_index, parent_sock, out_r, pid=pid, zygote=self)

    def child_returncode(self, pid: int) -> int | None:
        """A child's return code once the zygote reported it; if the zygote died,
        -SIGKILL once the child is gone (its parent-death signal)."""
        self.pump()
        code = self.exits.get(pid)
        if code is not None:
            return code
        if not self.dead:
            if self.stopped() and _zombie(pid):  # ended, but its stopped parent cannot reap it or say how
                return UNKNOWN_EXIT
            return None
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return None
        except psutil.Error:
            pass
        return -signal.SIGKILL


#: the return code of a copy that has ended in a way nobody can tell (its parent, the zygote, is stopped)
UNKNOWN_EXIT = -255


def _zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True  # gone altogether


def _wait_readable(sock: socket.socket, deadline: float) -> None:
    import select

    select.select([sock], [], [], max(0.0, min(0.1, deadline - time.monotonic())))
