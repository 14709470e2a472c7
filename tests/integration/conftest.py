"""Helpers for the integration tests: real processes, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: no single command of these tests should come near this
CLI_TIMEOUT_S = 120


def run_cli(
    *args: str, cwd: Path, cpus: int | None = None, timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """``python -m npf_core ARGS`` in ``cwd``; ``cpus`` limits the CPUs it may use (affinity)."""
    mine = sorted(os.sched_getaffinity(0))[:cpus] if cpus is not None else None

    def limit_cpus() -> None:
        if mine is not None:
            os.sched_setaffinity(0, mine)

    return subprocess.run(
        [sys.executable, "-m", "npf_core", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit_cpus,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write a spec dict as JSON (default ``tmp_path/spec.json``) and return its path."""

    def write(data: dict[str, Any], name: str = "spec.json") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1))
        return path

    return write


@pytest.fixture
def sleepy_spec(sleepy_file: Path) -> dict[str, Any]:
    """A short spec of the 2 ms model; copy and change it per test."""
    return {
        "model": {"framework": "python", "target": f"{sleepy_file}:Sleepy"},
        "inputs": [{"shape": [1, 4], "dtype": "float32"}],
        "duration_s": 0.3,
        "output": {"dir": "out", "reporters": ["json", "csv"]},
    }
