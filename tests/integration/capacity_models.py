"""Models for the capacity search's integration tests, referenced as ``path:Name``."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any


class Recorder:
    """Sleeps 2 ms per call; appends to ``$NPF_RECORD_DIR/<pid>.txt`` a line when it is
    loaded and one for each thread that first calls it, so that a test can count the
    loads and the worker threads of each copy over a whole search."""

    def __init__(self) -> None:
        self.path = Path(os.environ["NPF_RECORD_DIR"]) / f"{os.getpid()}.txt"
        self.seen: set[int] = set()
        self.lock = threading.Lock()
        self._write("load")

    def _write(self, line: str) -> None:
        with self.lock, self.path.open("a") as f:
            f.write(line + "\n")

    def __call__(self, *inputs: Any) -> int:
        me = threading.get_ident()
        if me not in self.seen:
            self.seen.add(me)
            self._write(f"thread {me}")
        time.sleep(0.002)
        return len(inputs)


class Sleep2ms:
    """Sleeps 2 ms per call: an M/G/1 server when one worker calls it."""

    def __call__(self, *inputs: Any) -> None:
        time.sleep(0.002)


class FailsInTheOpenLoop:
    """Sleeps 2 ms per call and raises once 2 s have passed since its first call:
    after a closed-loop probe of at most 1.5 s (``probe_max_s``), during the Poisson
    probes that follow it on the same copy."""

    def __init__(self) -> None:
        self.first: float | None = None

    def __call__(self, *inputs: Any) -> None:
        now = time.monotonic()
        if self.first is None:
            self.first = now
        if now - self.first > 2.0:
            raise RuntimeError("the model broke during a probe")
        time.sleep(0.002)
