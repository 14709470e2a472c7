"""Planted faults: a model that fails in one chosen way, in one chosen configuration.

The tests run these through real benchmarker processes (fork and fresh). Which fault
and where come from the environment, which both start methods pass on:

- ``NPF_FAULT``: the failure mode (see :data:`MODES`); empty or unset: healthy.
- ``NPF_FAULT_IMPORT``: a module to import while loading (in that configuration).
- ``NPF_MARKER_DIR``: where each benchmarker leaves a marker as it loads the model.
- ``NPF_FAULT_CONFIG``: the fault fires only in benchmarkers whose ``NPF_CONFIG_ID``
  (set by the supervisor) ends with this text; default ``-w1``, the first
  configuration of a ``workers_per_model: [1, 2]`` sweep. The other configuration
  of the same sweep runs healthy beside it.

A call fault fires on the benchmarker's ``FAULT_AT_CALL``-th call, after warm-up, so
that it hits during measurement. Nothing here is imported by the test process
itself: the benchmarkers load this file through ``model.target``.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import os
import resource
import signal
import sys
import time
from typing import Any

#: every planted failure mode, by where it strikes
MODES = (
    "load-raise",  # an exception while the model loads
    "load-hang",  # load never finishes (beyond timeouts.load_s)
    "setup-raise",  # an exception in the spec's setup hook
    "call-raise",  # an exception in a call
    "call-exit",  # the process exits (os._exit) in a call
    "call-abort",  # the process aborts (SIGABRT) in a call
    "call-sigkill",  # the process is killed (SIGKILL, as by the OOM killer) in a call
    "call-sigterm",  # the process is killed by a SIGTERM npf did not send (a stray kill)
    "call-segfault",  # the process dereferences NULL in a call
    "call-hang",  # a call never returns (beyond timeouts.stop_s); SIGTERM ends it
    "call-hang-noterm",  # the same, and the process ignores SIGTERM: only SIGKILL ends it
    "wire-garbage",  # undecodable bytes on the wire
    "wire-oversized",  # a frame header announcing more than MAX_FRAME bytes
    "wire-unexpected",  # a valid frame of a message the benchmarker must not send
    "warmup-exit",  # the process exits with code 0 (os._exit) on its first call: in warm-up
)
FAULT_AT_CALL = 5
CALL_S = 0.001


def targeted() -> bool:
    """Whether this benchmarker runs the configuration the faults target."""
    return os.environ.get("NPF_CONFIG_ID", "").endswith(os.environ.get("NPF_FAULT_CONFIG", "-w1"))


def armed() -> str:
    """The planted fault, if this benchmarker runs the configuration it targets."""
    mode = os.environ.get("NPF_FAULT", "")
    if mode and targeted():
        if mode not in MODES:
            raise ValueError(f"unknown planted fault {mode!r}")
        return mode
    return ""


def _no_core_dump() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _wire() -> Any:
    """The benchmarker's end of the wire, found without any hook in npf: the one
    open ``Channel`` object of this process."""
    from npf_core.wire.protocol import Channel

    # type(), not isinstance(): the latter reads __class__, which some objects of
    # imported libraries turn into a deprecation warning (an error under pytest)
    channels = [o for o in gc.get_objects() if type(o) is Channel and o.sock.fileno() >= 0]
    if len(channels) != 1:
        raise RuntimeError(f"expected one open wire channel, found {len(channels)}")
    return channels[0]


def _write_wire(data: bytes) -> None:
    channel = _wire()
    with channel._send_lock:
        channel.sock.sendall(data)


def write_marker() -> None:
    """With ``NPF_MARKER_DIR`` set, leave ``PID.pid`` there (holding the config id):
    tests see which benchmarkers got as far as loading the model."""
    marker = os.environ.get("NPF_MARKER_DIR")
    if marker:
        with open(os.path.join(marker, f"{os.getpid()}.pid"), "w") as f:
            f.write(os.environ.get("NPF_CONFIG_ID", ""))


class Faulty:
    """Sleeps ``CALL_S`` per call; fails as ``NPF_FAULT`` says, where it says. A copy
    kept for another configuration (reuse_copies) finds that configuration's id in its
    environment: a call fault is armed, and counted, per configuration."""

    def __init__(self) -> None:
        self.mode = armed()
        self.config = os.environ.get("NPF_CONFIG_ID", "")
        self.calls = 0
        write_marker()
        print(f"planted model loading in {os.environ.get('NPF_CONFIG_ID')} (fault: {self.mode or 'none'})")
        if os.environ.get("NPF_FAULT_IMPORT") and targeted():
            importlib.import_module(os.environ["NPF_FAULT_IMPORT"])  # may exist only in the supervisor
        if self.mode == "load-raise":
            raise RuntimeError("planted: load failed")
        if self.mode == "load-hang":
            time.sleep(3600)
        if self.mode == "call-hang-noterm":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def __call__(self, *inputs: Any) -> int:
        if os.environ.get("NPF_CONFIG_ID", "") != self.config:  # reused for the next configuration
            self.config = os.environ.get("NPF_CONFIG_ID", "")
            self.mode = armed() if armed() not in ("load-raise", "load-hang", "setup-raise") else ""
            self.calls = 0
        self.calls += 1
        if self.mode == "warmup-exit":
            os._exit(0)
        if self.mode and self.mode != "setup-raise" and self.calls == FAULT_AT_CALL:
            self._strike()
        time.sleep(CALL_S)
        return len(inputs)

    def _strike(self) -> None:
        mode = self.mode
        print(f"planted fault {mode} strikes now", file=sys.stderr, flush=True)
        if mode == "call-raise":
            raise ValueError("planted: call failed")
        if mode == "call-exit":
            os._exit(3)
        if mode == "call-abort":
            _no_core_dump()
            os.abort()
        if mode == "call-sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "call-sigterm":
            os.kill(os.getpid(), signal.SIGTERM)
        if mode == "call-segfault":
            _no_core_dump()
            ctypes.string_at(0)
        if mode in ("call-hang", "call-hang-noterm"):
            time.sleep(3600)
        if mode == "wire-garbage":
            _write_wire(b"\x00\x00\x00\x07garbage")
        if mode == "wire-oversized":
            _write_wire(b"\xff\xff\xff\xf0" + b"x" * 64)
        if mode == "wire-unexpected":
            from npf_core.wire.protocol import Go, encode_frame

            _write_wire(encode_frame(Go(go_at_ns=0, stop_at_ns=0)))


def setup(copy_index: int, job: Any, model: Any) -> None:
    """The spec's ``setup`` hook: fails when ``setup-raise`` is planted."""
    if armed() == "setup-raise":
        raise KeyError(f"planted: setup failed for copy {copy_index} of {job.config_id}")


class Noisy:
    """Writes binary garbage, including bytes that look like wire frames, to stdout
    and stderr on every call: output that must never disturb the wire."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *inputs: Any) -> int:
        self.calls += 1
        junk = b"\x00\x00\x00\x10\xff\xfe" + os.urandom(24) + b"\x81\xa3msg\xa5Ready\n"
        os.write(1, junk)
        os.write(2, junk[::-1])
        print("caf\u00e9 \x00 \u2603 text", flush=True)
        time.sleep(CALL_S)
        return len(inputs)


class Sleepy:
    """A call is ``NPF_SLEEP_S`` seconds (default 0.05) of sleep: throughput is
    exactly workers / sleep, whatever the machine's CPU count."""

    def __init__(self) -> None:
        self.sleep_s = float(os.environ.get("NPF_SLEEP_S", "0.05"))
        write_marker()

    def __call__(self, *inputs: Any) -> int:
        time.sleep(self.sleep_s)
        return len(inputs)


class Spawner:
    """Starts a helper process of its own while loading (as data loaders and model
    servers do) and never stops it; leaves ``PID.helper`` in ``NPF_MARKER_DIR``.
    ``NPF_HELPER_NOTERM=1``: the helper ignores SIGTERM. ``NPF_HELPER_SESSION=1``: it
    starts in a session (and process group) of its own, as some runtimes' daemons do;
    ``NPF_HELPER_DAEMON=1``: it double-forks into a new session, its parent exits, and
    the daemon is an orphan from the start. Faults as :class:`Faulty`."""

    def __init__(self) -> None:
        import subprocess

        daemon = bool(os.environ.get("NPF_HELPER_DAEMON"))
        code = "import os, signal, sys, time\n"
        if daemon:
            code += "if os.fork():\n    os.wait()\n    os._exit(0)\nos.setsid()\nif os.fork():\n    os._exit(0)\n"
        if os.environ.get("NPF_HELPER_NOTERM"):
            code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        marker = os.environ.get("NPF_MARKER_DIR")
        if marker:
            path = os.path.join(marker, "{}.helper")
            code += f"open({path!r}.format(os.getpid()), 'w').write({os.environ.get('NPF_CONFIG_ID', '')!r})\n"
        code += "print('helper up', flush=True)\ntime.sleep(300)\n"
        self.helper = subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE,
            start_new_session=bool(os.environ.get("NPF_HELPER_SESSION")),
        )  # fmt: skip
        assert self.helper.stdout is not None
        self.helper.stdout.readline()  # its SIGTERM handler (and marker) are in place
        self.faulty = Faulty()

    def __call__(self, *inputs: Any) -> int:
        return self.faulty(*inputs)


class Hog:
    """Holds ``NPF_HOG_MB`` MB (default 64) of memory of its own, written so that it
    is resident; calls sleep ``CALL_S``. Leaves a marker as it loads."""

    def __init__(self) -> None:
        self.block = bytearray(int(float(os.environ.get("NPF_HOG_MB", "64")) * 2**20))
        for i in range(0, len(self.block), 4096):
            self.block[i] = 1
        write_marker()

    def __call__(self, *inputs: Any) -> int:
        time.sleep(CALL_S)
class SlowLoading:
    """A model with a load cost: loading sleeps ``NPF_LOAD_S`` seconds (default 0.3);
    a call sleeps ``NPF_SLEEP_S`` (default 0.01). Each load leaves ``PID-N.load`` in
    ``NPF_MARKER_DIR``, holding the configuration it loaded for and its copy index:
    tests count loads and find a copy's process (N tells inline copies apart)."""

    def __init__(self) -> None:
        time.sleep(float(os.environ.get("NPF_LOAD_S", "0.3")))
        self.sleep_s = float(os.environ.get("NPF_SLEEP_S", "0.01"))
        marker = os.environ.get("NPF_MARKER_DIR")
        if marker:
            with open(os.path.join(marker, f"{os.getpid()}-{id(self)}.load"), "w") as f:
                f.write(f"{os.environ.get('NPF_CONFIG_ID', '')} {os.environ.get('NPF_COPY_INDEX', '')}")

    def __call__(self, *inputs: Any) -> int:
        time.sleep(self.sleep_s)
        return len(inputs)
