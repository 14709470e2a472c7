"""Models for the benchmark scripts, referenced as ``benchmarks/bench_models.py:Name``.

Each is a class that npf instantiates in the benchmarker and that the bare loop
(``_bare_loop.py``) instantiates the same way, so both time the very same call.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any


class Noop:
    """Does nothing: the call's cost is the measuring loop's own."""

    def __call__(self, x: Any) -> Any:
        return x


class Sleep1ms:
    """Sleeps 1 ms (releases the GIL; the OS adds its wake-up latency)."""

    def __call__(self, x: Any) -> Any:
        time.sleep(0.001)
        return x


class Sleep2ms:
    """Sleeps 2 ms."""

    def __call__(self, x: Any) -> Any:
        time.sleep(0.002)
        return x


class SlowLoad:
    """A model with a load cost: loading sleeps ``NPF_BENCH_LOAD_S`` seconds (default
    2), as a large model or a device load does; each load leaves a file in
    ``NPF_BENCH_LOADS`` (when set), so a script counts loads. A call sleeps 2 ms."""

    def __init__(self) -> None:
        time.sleep(float(os.environ.get("NPF_BENCH_LOAD_S", "2")))
        folder = os.environ.get("NPF_BENCH_LOADS")
        if folder:
            Path(folder, f"{os.getpid()}-{id(self)}").touch()

    def __call__(self, *x: Any) -> Any:
        time.sleep(0.002)
        return x


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class Spin1ms:
    """Busy-waits 1 ms on perf_counter (holds the GIL, uses a core)."""

    def __call__(self, x: Any) -> Any:
        _spin(0.001)
        return x


class Spin2ms:
    """Busy-waits 2 ms."""

    def __call__(self, x: Any) -> Any:
        _spin(0.002)
        return x


def vm_status_kb(field: str, pid: int | str = "self") -> int:
    """A ``/proc/PID/status`` memory field (``VmRSS``, ``VmHWM``) in kB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def record_rss(copy_index: int, job: Any, model: Any) -> None:
    """An npf ``setup`` hook: notes the benchmarker's RSS once its model is loaded,
    in the folder named by ``NPF_BENCH_RSS_DIR`` (memory.py reads it)."""
    folder = os.environ.get("NPF_BENCH_RSS_DIR")
    if folder:
        Path(folder, f"setup-{copy_index}-{os.getpid()}.kb").write_text(str(vm_status_kb("VmRSS")))


class Hog:
    """Holds ``NPF_BENCH_HOG_MB`` MB (default 256) of memory of its own, written so
    that it is resident; calls sleep 1 ms. For the machine-limit figures (safety.py)."""

    def __init__(self) -> None:
        self.block = bytearray(int(float(os.environ.get("NPF_BENCH_HOG_MB", "256")) * 2**20))
        for i in range(0, len(self.block), 4096):
            self.block[i] = 1

    def __call__(self, x: Any) -> Any:
        time.sleep(0.001)
        return x
