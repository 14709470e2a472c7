"""Signals to the command line, as a real subprocess: SIGINT and SIGTERM stop a
sweep cleanly (exit 130, finished configurations kept, no process left) and
``--resume`` completes it; SIGKILL to the supervisor takes its benchmarkers down."""

from __future__ import annotations

import csv
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from npf_core.results.store import results_file

from .conftest import MODELS, Cli, sweep_spec, wait_for, write_json

CONFIG_IDS = [f"Sleepy-b1-p1-n{n}-w{w}" for n in (1, 2) for w in (1, 2)]


def finished(path: Path) -> list[dict[str, Any]]:
    try:
        return list(json.loads(path.read_text())["reports"])
    except (OSError, ValueError):
        return []


@pytest.mark.parametrize(
    ("signum", "target", "resume", "method"),
    [
        pytest.param(signal.SIGINT, "process", True, "fork", id="SIGINT-then-resume"),
        # Ctrl-C in a terminal: the whole process group gets it
        pytest.param(signal.SIGINT, "group", False, "fork", id="SIGINT-to-group"),
        pytest.param(signal.SIGTERM, "process", True, "fork", id="SIGTERM-then-resume"),
        pytest.param(signal.SIGTERM, "group", False, "fork", id="SIGTERM-to-group"),
        pytest.param(signal.SIGINT, "group", True, "zygote", id="SIGINT-to-group-zygote-then-resume"),
        pytest.param(signal.SIGTERM, "process", False, "zygote", id="SIGTERM-zygote"),
    ],
)
def test_signal_stops_sweep_and_resume_completes_it(
    signum: int, target: str, resume: bool, method: str, cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    spec = write_json(
        tmp_path / "spec.json",
        sweep_spec(out, n_models=[1, 2], workers_per_model=[1, 2], duration_s=0.6, start_method=method),
    )
    proc = cli.start("run", str(spec), "-q")
    try:
        wait_for(lambda: finished(results_file(out)), 30, "the first configuration in results.json")
        if target == "group":
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)
        t0 = time.monotonic()
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 3.0  # stop, reap (grace 0.5 s), write
    assert "Traceback" not in err, err
    assert "--resume" in err, err  # the interrupt message says how to go on
    assert cli.survivors() == []

    kept = finished(results_file(out))
    assert 1 <= len(kept) < 4
    assert [r["config_id"] for r in kept] == CONFIG_IDS[: len(kept)]
    assert all(r["status"] == "ok" for r in kept)
    with open(results_file(out).with_name("results.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok"] * len(kept)
    if not resume:
        return

    done = cli.run("run", str(spec), "-q", "--resume")
    assert done.returncode == 0, done.stderr
    assert cli.survivors() == []
    reports = finished(results_file(out))
    assert [r["config_id"] for r in reports] == CONFIG_IDS
    assert all(r["status"] == "ok" for r in reports)
    # the configurations finished before the signal were skipped, not run again
    assert reports[: len(kept)] == kept
    with open(results_file(out).with_name("results.csv"), newline="") as f:
        assert [r["config_id"] for r in csv.DictReader(f)] == CONFIG_IDS


def test_resume_of_a_complete_run_starts_nothing(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = write_json(tmp_path / "spec.json", sweep_spec(out, workers_per_model=[1, 2]))
    first = cli.run("run", str(spec), "-q")
    assert first.returncode == 0, first.stderr
    before = finished(results_file(out))
    assert len(before) == 2
    markers = tmp_path / "markers"
    markers.mkdir()
    again = cli.run("run", str(spec), "-q", "--resume", NPF_MARKER_DIR=str(markers))
    assert again.returncode == 0, again.stderr
    assert list(markers.iterdir()) == []  # no model was loaded
    assert finished(results_file(out)) == before


def test_resume_refuses_another_spec(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    spec = write_json(tmp_path / "spec.json", sweep_spec(out))
    assert cli.run("run", str(spec), "-q").returncode == 0
    write_json(spec, sweep_spec(out, inputs=[{"shape": [1, 8]}]))
    again = cli.run("run", str(spec), "-q", "--resume")
    assert again.returncode == 2
    assert "different spec" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.parametrize(
    ("method", "phase"),
    [("zygote", "measure"), ("fork", "measure"), ("fresh", "measure"),
     ("zygote", "load"), ("fork", "load"), ("fresh", "load")],
)  # fmt: skip
def test_sigkill_to_the_supervisor_takes_its_children_down(method: str, phase: str, cli: Cli, tmp_path: Path) -> None:
    """Nothing can catch SIGKILL: the benchmarkers (and the zygote) must notice on
    their own (the parent-death signal, or the EOF watchdog on the wire)."""
    markers = tmp_path / "markers"
    markers.mkdir()
    fields: dict[str, Any] = {"n_models": [3], "duration_s": 30, "start_method": method}
    env = {"NPF_MARKER_DIR": str(markers)}
    if phase == "load":  # copies hang in load, after writing their marker
        fields["model"] = {"framework": "python", "target": f"{MODELS}:Faulty"}
        fields["timeouts"] = {"load_s": 60}
        env.update(NPF_FAULT="load-hang", NPF_FAULT_CONFIG="")
    spec = write_json(tmp_path / "spec.json", sweep_spec(tmp_path / "out", **fields))
    proc = cli.start("run", str(spec), "-q", **env)
    try:
        wait_for(lambda: len(list(markers.iterdir())) == 3, 30, "three benchmarkers loading their model")
        time.sleep(0.2)  # into measurement (or deep in the hung load)
        children = [psutil.Process(int(m.stem)) for m in markers.iterdir()]
        others = [p for p in cli.survivors() if p.pid != proc.pid and p.pid not in {c.pid for c in children}]
        if method == "zygote":  # the copies' parent: it must die too
            assert [p.ppid() for p in others] == [proc.pid] and "npf_core.child.zygote" in others[0].cmdline()
            assert {c.ppid() for c in children} == {others[0].pid}
            children += others
        else:
            assert others == []
        proc.kill()
        proc.wait()
        t0 = time.monotonic()
        alive = wait_for_death(children, timeout=2.0)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert alive == [], f"benchmarkers outlived a SIGKILLed supervisor: {alive}"
    assert elapsed < 2.0
    assert cli.survivors() == []


def wait_for_death(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has ended (a zombie has: only its exit status is left
    for whoever adopted it); returns those still alive after ``timeout``."""

    def alive(p: psutil.Process) -> bool:
        try:
            return p.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in procs if alive(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.01)
