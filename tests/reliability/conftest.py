"""Fixtures for the reliability tests: the planted models of tests/faults, the CLI
run in this process or as a real subprocess, and the check that no process
outlives a test."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from npf_core.log import unconfigure

MODELS = Path(__file__).resolve().parents[1] / "faults" / "models.py"


def sweep_spec(out_dir: Path, **fields: Any) -> dict[str, Any]:
    """A sweep of the sleeping model (0.05 s a call), short timeouts; ``fields``
    replace or add spec fields."""
    spec: dict[str, Any] = {
        "model": {"framework": "python", "target": f"{MODELS}:Sleepy"},
        "inputs": [{"shape": [1, 4]}],
        "n_models": [1],
        "workers_per_model": [1],
        # the sleeping model leaves the cores idle: several copies per CPU are fine here
        "device": {"type": "cpu", "options": {"oversubscribe": True}},
        "duration_s": 0.2,
        "warmup": {"iterations": 0},
        "timeouts": {"load_s": 5, "stop_s": 0.5, "grace_s": 0.5},
        "output": {"dir": str(out_dir), "reporters": ["json", "csv"]},
    }
    spec.update(fields)
    return spec


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., tuple[int, str, str]]]:
    """``npf_core.cli.main(argv)`` in this process -> (exit code, stdout, stderr),
    with the logging configuration it installs put back afterwards."""
    from npf_core import cli

    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    yield run
    unconfigure()  # the npf logger as it was: no handler of the CLI's
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


@pytest.fixture(autouse=True)
def no_surviving_process() -> Iterator[None]:
    """Every test here ends with no child process of this one alive (zombies
    included: psutil lists them too)."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    left = [p for p in me.children(recursive=True) if p.pid not in before]
    assert not left, f"processes survived: {left}"


class Cli:
    """The CLI as a real subprocess, tagged so that every process it starts (fork or
    fresh) can be found afterwards by the token in its environment."""

    def __init__(self, tmp_path: Path) -> None:
        self.token = uuid.uuid4().hex
        self.tmp_path = tmp_path
        self.env = {**os.environ, "NPF_TEST_TOKEN": self.token}

    def start(self, *argv: str, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "npf_core", *argv],
            env={**self.env, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.tmp_path,
            start_new_session=True,  # its own process group, as a shell job would be
        )

    def run(self, *argv: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "npf_core", *argv],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            cwd=self.tmp_path,
            timeout=timeout,
        )

    def survivors(self) -> list[psutil.Process]:
        """Live processes (not zombies) started under this token."""
        found = []
        for p in psutil.process_iter():
            try:
                mine = p.pid != os.getpid() and p.environ().get("NPF_TEST_TOKEN") == self.token
                if mine and p.status() != psutil.STATUS_ZOMBIE:
                    found.append(p)
            except psutil.Error:
                continue
        return found


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    c = Cli(tmp_path)
    yield c
    for p in c.survivors():  # never leave a process behind, even when a test fails
        try:
            p.kill()
        except psutil.Error:
            pass


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)
