"""The zygote: a clean process that has imported the framework, and forks copies.

``start_method: "zygote"`` (the default of the ``python`` and ``torch`` frameworks on
cpu and gpu). For each run the supervisor starts one zygote, a **fresh
interpreter** (``python -m npf_core.child.zygote``), which imports npf, the plugins and
what the framework plugin lists in :attr:`~npf_core.plugin.hookspecs.Framework.preimport`
(``torch`` for the torch framework) and then runs nothing else: no model, no thread
pool, no CUDA. For each model copy the supervisor sends it a ``Spawn`` request over
a Unix ``SOCK_SEQPACKET`` control socket, with the copy's two wires attached as
``SCM_RIGHTS`` file descriptors (the protocol socket and the stdout/stderr socket);
the zygote forks, and the child becomes a benchmarker exactly like a ``fork``
child of the supervisor, but one that starts from a clean, already-imported
process: copies start in milliseconds and never inherit the caller's state.

What holds for its children, as for every benchmarker:

- each leads its own process group (what the model starts ends with it);
- the zygote reports each child's pid (``Spawned``) and, since only it can
  ``waitpid`` them, each child's exit status (``Exited``): the supervisor's
  :class:`~npf_core.supervisor.processes.Child` takes its return code from there;
- death: the zygote dies with the supervisor (``PR_SET_PDEATHSIG`` and the EOF of
  its control socket); a child dies with the zygote (its own ``PR_SET_PDEATHSIG``,
  relative to the zygote) and with the supervisor (the EOF watchdog on its wire);
- a zygote that dies is a failed configuration, and the next one starts a new zygote.

Only the zygote process runs this module's :func:`main`; the supervisor's side
is :mod:`npf_core.supervisor.zygote_keeper`.
"""

from __future__ import annotations

import faulthandler
import os
import select
import signal
import socket
import sys
import time
import traceback
import warnings
from typing import Any, Union

import msgspec

__all__ = ["Exited", "Failed", "Ready", "Spawn", "Spawned", "decode", "encode", "main"]

MAX_MESSAGE = 1 << 20  # a Spawn carries the copy's environment


class Spawn(msgspec.Struct, tag="spawn", tag_field="msg"):
    """supervisor -> zygote: fork copy ``copy_index``; fds: its wire and its output."""

    copy_index: int
    env: dict[str, str]
    cwd: str


class Ready(msgspec.Struct, tag="ready", tag_field="msg"):
    """zygote -> supervisor: imports done; ``threads``: OS threads the framework's
    imports started (should be 0: a fork copies only the forking thread)."""

    pid: int
    imported: list[str]
    import_s: float
    threads: int


class Failed(msgspec.Struct, tag="failed", tag_field="msg"):
    """zygote -> supervisor: the zygote could not start (an import failed)."""

    type: str
    message: str
    traceback: str = ""


class Spawned(msgspec.Struct, tag="spawned", tag_field="msg"):
    copy_index: int
    pid: int


class Exited(msgspec.Struct, tag="exited", tag_field="msg"):
    """zygote -> supervisor: a child ended; ``code`` as ``Popen.returncode``."""

    pid: int
    code: int


Message = Union[Spawn, Ready, Failed, Spawned, Exited]
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Message)


def encode(msg: Message) -> bytes:
    return _encoder.encode(msg)


def decode(data: bytes) -> Message:
    return _decoder.decode(data)


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # pragma: no cover - not Linux
        import threading

        return threading.active_count()


def _start(args: Any) -> tuple[Any, list[str], int]:
    """Imports and plugins; returns the plugin registry copies will use."""
    import importlib

    import numpy  # noqa: F401 - every benchmarker needs it

    import npf_core.child.benchmarker  # noqa: F401
    import npf_core.wire.tensors  # noqa: F401
    from npf_core.plugin.manager import get_plugins
    from npf_core.wire.transfer import load_plugins

    extra = load_plugins(args.payload) if args.payload >= 0 else []
    plugins = get_plugins(extra)
    framework = plugins.framework(args.framework, msgspec.json.decode(args.options))
    imported = []
    before = _threads()
    for name in framework.preimport:
        importlib.import_module(name)
        imported.append(name)
    return plugins, imported, _threads() - before


def main(argv: list[str] | None = None) -> int:
    import argparse

    from npf_core.child.process import quiet_signals, set_parent_death_signal

    parser = argparse.ArgumentParser(prog="python -m npf_core.child.zygote")
    parser.add_argument("--fd", type=int, required=True, help="the control socket (SOCK_SEQPACKET)")
    parser.add_argument("--parent", type=int, default=0, help="the supervisor's pid")
    parser.add_argument("--payload", type=int, default=-1, help="the serialised objects and plugins")
    parser.add_argument("--framework", required=True)
    parser.add_argument("--options", default="{}", help="model.options as JSON")
    args = parser.parse_args(argv)
    quiet_signals()  # SIGINT ignored: the supervisor decides when to stop
    set_parent_death_signal(args.parent)
    faulthandler.enable(file=sys.stderr)
    ctl = socket.socket(fileno=args.fd)
    t0 = time.perf_counter()
    try:
        plugins, imported, threads = _start(args)
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the supervisor
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        try:
            ctl.send(encode(Failed(type=type(exc).__name__, message=str(exc), traceback=tb)))
        except OSError:
            pass
        return 1
    ctl.send(encode(Ready(pid=os.getpid(), imported=imported, import_s=time.perf_counter() - t0, threads=threads)))
    return _serve(ctl, plugins, args.parent, args.payload)


def _serve(ctl: socket.socket, plugins: Any, supervisor: int, payload: int) -> int:
    """Fork a child per Spawn; report pids and exit statuses; end with the control socket."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a Python handler, so that the wakeup fd is written
    poller = select.poll()
    rdhup = getattr(select, "POLLRDHUP", 0)
    poller.register(ctl.fileno(), select.POLLIN | rdhup)
    poller.register(wake_r, select.POLLIN)
    children: set[int] = set()
    while True:
        try:
            events = poller.poll()
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        for fd, _ev in events:
            if fd == wake_r:
                try:
                    while os.read(wake_r, 512):
                        pass
                except BlockingIOError:
                    pass
        _reap(ctl, children)
        if not any(fd == ctl.fileno() for fd, _ in events):
            continue
        try:
            data, fds, _flags, _addr = socket.recv_fds(ctl, MAX_MESSAGE, 2)
        except OSError:
            data, fds = b"", []
        if not data:  # the supervisor closed the control socket, or died
            for pid in children:  # normally none: the supervisor reaps every copy first
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
            return 0
        msg = decode(data)
        if not isinstance(msg, Spawn) or len(fds) != 2:
            for fd in fds:
                os.close(fd)
            continue
        pid = _fork(msg, fds, ctl, (wake_r, wake_w), plugins, supervisor, payload)
        children.add(pid)
        ctl.send(encode(Spawned(copy_index=msg.copy_index, pid=pid)))


def _reap(ctl: socket.socket, children: set[int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        children.discard(pid)
        try:
            ctl.send(encode(Exited(pid=pid, code=os.waitstatus_to_exitcode(status))))
        except OSError:
            pass


def _fork(
    msg: Spawn, fds: list[int], ctl: socket.socket, wake: tuple[int, int], plugins: Any, supervisor: int, payload: int
) -> int:
    wire, out = fds
    me = os.getpid()
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        with warnings.catch_warnings():
            # Python 3.12+ counts OS threads: numpy's BLAS pool is one, and safe to fork (it
            # re-creates itself in the child). The zygote itself runs no Python thread.
            warnings.filterwarnings("ignore", message=r".*fork\(\) may lead to deadlocks", category=DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                _child(msg, wire, out, ctl, wake, mask, plugins, payload, me)
            finally:
                os._exit(70)
        try:
            os.setpgid(pid, pid)  # both sides, as shells do: no window where a signal misses it
        except OSError:
            pass
        return pid
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(wire)
        os.close(out)


def _child(  # pragma: no cover - runs in the child
    msg: Spawn, wire: int, out: int, ctl: socket.socket, wake: tuple[int, int], mask: Any, plugins: Any, payload: int,
    zygote: int,
) -> None:
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    ctl.close()
    for fd in wake:
        os.close(fd)
    os.environ.clear()
    os.environ.update(msg.env)
    try:
        os.chdir(msg.cwd)
    except OSError:
        pass
    from npf_core.child.benchmarker import child_main

    def objects() -> dict[str, Any]:
        if payload < 0:
            return {}
        from npf_core.wire.transfer import load_objects

        return load_objects(payload)

    child_main(socket.socket(fileno=wire), out, zygote, objects, plugins)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # no interpreter teardown: with torch imported it takes half a second, and there
    # is nothing to clean up (every child is gone, the supervisor reads no more)
    os._exit(code)
