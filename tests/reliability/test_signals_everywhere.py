"""SIGINT and SIGTERM honoured at every stage of ``npf run`` (issue 20): while the run
is built, while copies are being started, while it stops after a first Ctrl-C; the
exit code is 130 each time, never death by the signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from npf_core.results.store import results_file

from .conftest import Cli, sweep_spec, wait_for, write_json

#: the command line with one stage made slow (a stand-in for a device probe that
#: takes a minute, or for forks that each take a moment on a loaded machine)
WRAPPER = """
import os, sys, time
stage = os.environ["NPF_TEST_STAGE"]
if stage == "setup":
    import npf_core.supervisor.run as run
    real_plan = run.make_plan
    def slow_plan(*args, **kwargs):
        open("marker", "a").write("setup\\n")
        time.sleep(60)
        return real_plan(*args, **kwargs)
    run.make_plan = slow_plan
elif stage == "spawn":
    import npf_core.supervisor.processes as processes
    real_spawn = processes.spawn
    def slow_spawn(*args, **kwargs):
        child = real_spawn(*args, **kwargs)
        open("marker", "a").write("spawn\\n")
        time.sleep(0.25)  # blocks the event loop, as a slow fork would
        return child
    processes.spawn = slow_spawn
from npf_core.cli import main
sys.argv[0] = "npf"
raise SystemExit(main())
"""


def _start(cli: Cli, tmp_path: Path, stage: str, **fields: object) -> subprocess.Popen[str]:
    (tmp_path / "wrapper.py").write_text(WRAPPER)
    spec = write_json(tmp_path / "spec.json", sweep_spec(tmp_path / "out", **fields))  # type: ignore[arg-type]
    return subprocess.Popen(
        [sys.executable, str(tmp_path / "wrapper.py"), "run", str(spec), "-q"],
        env={**cli.env, "NPF_TEST_STAGE": stage},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        start_new_session=True,
    )


def _ends(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str, float]:
    t0 = time.monotonic()
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err, time.monotonic() - t0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_the_run_is_built_is_exit_130_at_once(signum: int, cli: Cli, tmp_path: Path) -> None:
    proc = _start(cli, tmp_path, "setup")
    wait_for(lambda: (tmp_path / "marker").exists(), 30, "the run to be built")
    os.kill(proc.pid, signum)
    code, err, took = _ends(proc, 15)
    assert code == 130, err
    assert took < 1.0
    assert "Traceback" not in err
    assert cli.survivors() == []


def test_sigterm_while_copies_are_started_stops_between_two_starts(cli: Cli, tmp_path: Path) -> None:
    """Twenty copies to start, each start blocking the loop for 0.25 s: SIGTERM after
    the first is honoured after the next start, not after all twenty (5 s)."""
    proc = _start(cli, tmp_path, "spawn", n_models=[20], start_method="fork", duration_s=5)
    wait_for(lambda: (tmp_path / "marker").exists(), 30, "the first copy to start")
    os.kill(proc.pid, signal.SIGTERM)
    code, err, took = _ends(proc, 30)
    assert code == 130, err
    assert took < 1.5, f"took {took:.1f} s"  # the start under way, then reaping
    starts = (tmp_path / "marker").read_text().split()
    assert len(starts) <= 2, starts  # the one under way when the signal came, at most one more
    assert cli.survivors() == []


@pytest.mark.parametrize("gap_s", [0.05, 0.075, 0.1])
@pytest.mark.parametrize("second", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_second_signal_soon_after_the_first_still_exits_130(
    gap_s: float, second: int, cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    spec = write_json(tmp_path / "spec.json", sweep_spec(out, workers_per_model=[1, 2], duration_s=1.0))
    proc = cli.start("run", str(spec), "-q")
    try:
        wait_for(lambda: _reports(results_file(out)), 30, "the first configuration in results.json")
        os.kill(proc.pid, signal.SIGINT)
        time.sleep(gap_s)
        os.kill(proc.pid, second)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert cli.survivors() == []


def _reports(path: Path) -> list[object]:
    try:
        return list(json.loads(path.read_text())["reports"])
    except (OSError, ValueError):
        return []
