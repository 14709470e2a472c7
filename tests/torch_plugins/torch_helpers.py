"""Paths and helpers shared by the torch tests (no torch import here)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FAKES = HERE.parent / "fakes"
MODELS = HERE / "torch_models.py"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file (none when it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


RECORD_ENV = "NPF_TEST_RECORD"


def record(**fields: Any) -> None:
    """Append one JSON line (with this process's pid) to the file named by
    ``NPF_TEST_RECORD``: how benchmarker children tell the test what they saw."""
    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    line = (json.dumps({"pid": os.getpid(), **fields}) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
