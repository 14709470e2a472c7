"""Models of the front-door tests, defined at module level (as NeuronPerf asks of a
model class) so that fresh interpreters can import them by file. No torch here."""

from __future__ import annotations

import json
import os
from typing import Any

RECORD_ENV = "NPF_TEST_RECORD"


def record(**fields: Any) -> None:
    """One JSON line (with the pid) to the file named by NPF_TEST_RECORD."""
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps({"pid": os.getpid(), **fields}, default=repr) + "\n").encode())
    finally:
        os.close(fd)


def read_records(path: Any) -> list[dict[str, Any]]:
    from pathlib import Path

    p = Path(path)
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


class Doubler:
    """A plain callable model: records its instantiation (pid, copy index)."""

    def __init__(self) -> None:
        record(event="init", copy=os.environ.get("NPF_COPY_INDEX"))

    def __call__(self, x: Any, *rest: Any) -> Any:
        return x * 2


class TwoInputs:
    """Adds its two inputs; records the shapes it was called with (once per copy)."""

    def __init__(self) -> None:
        self.seen = False

    def __call__(self, x: Any, y: Any) -> Any:
        if not self.seen:
            self.seen = True
            record(event="call", shapes=[list(x.shape), list(y.shape)])
        return x + y


class DictModel:
    """Takes one dict of arrays, as a TensorFlow model fed NeuronPerf's dict inputs."""

    def __call__(self, feed: dict[str, Any]) -> Any:
        if not isinstance(feed, dict):
            raise TypeError(f"expected a dict, got {type(feed).__name__}")
        return sum(v.sum() for v in feed.values())
