"""Fixtures for the fault tests: specs around the planted models, the CLI run in
this process, and the check that no process outlives a test."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from npf_core import cli
from npf_core.log import unconfigure

from .support import make_spec


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[..., Path]:
    """Write a spec (see :func:`make_spec`) to ``tmp_path/spec.json``; results go to
    ``tmp_path/out``."""

    def write(**fields: Any) -> Path:
        path = tmp_path / "spec.json"
        path.write_text(json.dumps(make_spec(tmp_path / "out", **fields)))
        return path

    return write


class CliResult:
    def __init__(self, code: int, out: str, err: str, elapsed: float) -> None:
        self.code, self.out, self.err, self.elapsed = code, out, err, elapsed


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., CliResult]]:
    """``npf_core.cli.main(argv)`` in this process (no interpreter start-up to pay),
    with the logging configuration it installs put back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level

    def run(*argv: str) -> CliResult:
        t0 = time.monotonic()
        code = cli.main(list(argv))
        elapsed = time.monotonic() - t0
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err, elapsed)

    yield run
    unconfigure()  # the npf logger as it was: no handler of the CLI's
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


@pytest.fixture(autouse=True)
def no_surviving_process() -> Iterator[Callable[[], None]]:
    """Every test here ends with no child process of this one alive (zombies included:
    psutil lists them too)."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}

    def check() -> None:
        left = [p for p in me.children(recursive=True) if p.pid not in before]
        assert not left, f"processes survived: {[(p.pid, _status(p)) for p in left]}"

    yield check
    check()


def _status(p: psutil.Process) -> str:
    try:
        return p.status()
    except psutil.Error:
        return "gone"
