"""More copies than the machine can take (issue 20) are refused before they start:
exit 2 naming ``n_models`` and the bound (processes and threads the user may start,
memory measured on the first copy). The dangerous cases run in a box (a cgroup with
a low pids.max, or a low RLIMIT_NPROC) so that a broken npf cannot harm the machine."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import npf_core
from npf_core.errors import MachineLimit, SpecError
from npf_core.supervisor import limits

from .conftest import MODELS, Cli, sweep_spec, write_json
from .containment import process_box


def _run_boxed(cli: Cli, argv: list[str], preexec: Any, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str],
                                                                                       float]:  # fmt: skip
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "npf_core", *argv], env=cli.env, capture_output=True, text=True,
                         cwd=cli.tmp_path, timeout=timeout, preexec_fn=preexec)  # fmt: skip
    return res, time.monotonic() - t0


def _markers(folder: Path) -> int:
    return len(list(folder.glob("*.pid")))


@pytest.mark.parametrize("method", ["zygote", "fork", "fresh"])
def test_100000_copies_are_refused_before_anything_starts(method: str, cli: Cli, tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    cli.env["NPF_MARKER_DIR"] = str(markers)
    spec = write_json(tmp_path / "spec.json", sweep_spec(tmp_path / "out", n_models=[100_000], start_method=method))
    with process_box(200) as box:
        if box is None:
            pytest.skip("no cgroup to make and running as root: nothing would stop a runaway npf here")
        res, took = _run_boxed(cli, ["run", str(spec), "-q"], box.preexec)
    assert res.returncode == 2, res.stderr
    assert took < 15
    assert "Traceback" not in res.stderr
    line = res.stderr.strip()
    assert line.startswith("npf: error: spec $.n_models: 100000 copies") and "at most" in line, line
    assert len(res.stderr.strip().splitlines()) == 1
    assert _markers(markers) == 0  # not one copy loaded
    assert cli.survivors() == []


def test_a_cgroup_pids_limit_bounds_the_copies(cli: Cli, tmp_path: Path) -> None:
    spec = write_json(tmp_path / "spec.json", sweep_spec(tmp_path / "out", n_models=[40], start_method="fork"))
    with process_box(100) as box:
        if box is None or box.cgroup is None:
            pytest.skip("no cgroup can be made here")
        res, _took = _run_boxed(cli, ["run", str(spec), "-q"], box.preexec)
    assert res.returncode == 2, res.stderr
    assert "$.n_models" in res.stderr and "cgroup pids.max 100" in res.stderr, res.stderr
    fit = int(res.stderr.split("at most ")[1].split()[0])
    assert 0 < fit < 40


def test_rlimit_nproc_bounds_the_copies(cli: Cli, tmp_path: Path) -> None:
    """The user's process limit (counted with threads) is honoured, even for root, whom
    the kernel lets past it: 40 copies of 3 tasks each do not fit in 100."""
    import psutil

    used = sum(p.info["num_threads"] or 1 for p in psutil.process_iter(["uids", "num_threads"])
               if p.info["uids"] is not None and p.info["uids"].real == os.getuid())  # fmt: skip
    limit = used + 100

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, resource.getrlimit(resource.RLIMIT_NPROC)[1]))

    spec = write_json(tmp_path / "spec.json", sweep_spec(tmp_path / "out", n_models=[40], start_method="fork"))
    res, _took = _run_boxed(cli, ["run", str(spec), "-q"], lower)
    assert res.returncode == 2, res.stderr
    assert "$.n_models: 40 copies" in res.stderr and f"RLIMIT_NPROC {limit}" in res.stderr, res.stderr


def _little_memory(monkeypatch: pytest.MonkeyPatch, megabytes: int) -> None:
    """The machine as one with ``megabytes`` of memory left (and no process limit)."""
    monkeypatch.setattr(limits, "headroom", lambda: limits.Headroom(
        tasks=None, tasks_by="", memory=megabytes * 2**20, memory_by=f"{megabytes} MB (test)"))  # fmt: skip


def _hog(tmp_path: Path, **fields: Any) -> dict[str, Any]:
    return sweep_spec(tmp_path / "out", model={"framework": "python", "target": f"{MODELS}:Hog"},
                      timeouts={"load_s": 60, "stop_s": 5, "grace_s": 0.5}, **fields)  # fmt: skip


@pytest.mark.parametrize("method", ["zygote", "fork", "fresh"])
def test_memory_measured_on_the_first_copy_bounds_the_others(
    method: str, spawn_guard: list[tuple[int, str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each copy holds 64 MB: with 600 MB left, 20 copies cannot fit. The first few
    start together (as a small configuration would), the first is measured once
    loaded, and the other 16 are never started."""
    monkeypatch.setenv("NPF_HOG_MB", "64")
    _little_memory(monkeypatch, 600)
    with pytest.raises(MachineLimit) as info:
        npf_core.benchmark(_hog(tmp_path, n_models=[20], start_method=method))
    message = str(info.value)
    assert info.value.path == "$.n_models"
    assert "20 copies" in message and "measured on the first copy" in message, message
    fit = int(message.split("at most ")[1].split()[0])
    assert 1 <= fit < 20, message
    assert spawn_guard == [(i, method) for i in range(limits.UNMEASURED_COPIES)]


def test_a_later_configuration_is_refused_before_any_of_its_copies_starts(
    spawn_guard: list[tuple[int, str]], monkeypatch: pytest.MonkeyPatch, run_cli: Any, tmp_path: Path
) -> None:
    """The first configuration (one copy) measures what a copy takes; the second (20
    copies) is refused with that figure, before it starts anything: exit 2, and the
    first configuration's report is kept."""
    monkeypatch.setenv("NPF_HOG_MB", "64")
    _little_memory(monkeypatch, 600)
    spec = write_json(tmp_path / "spec.json", _hog(tmp_path, n_models=[1, 20], start_method="fork"))
    code, _out, err = run_cli("run", str(spec), "-q")
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("npf: error: ")]
    assert len(errors) == 1 and "spec $.n_models: 20 copies" in errors[0], err
    assert "Traceback" not in err
    assert spawn_guard == [(0, "fork")]
    from npf_core.results.store import read_results

    kept = read_results(tmp_path / "out").reports
    assert [(r.n_models, r.status) for r in kept] == [(1, "ok")]


def test_copies_that_fit_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NPF_HOG_MB", "16")
    _little_memory(monkeypatch, 2000)
    reports = npf_core.benchmark(_hog(tmp_path, n_models=[4], start_method="zygote"))
    assert [r.status for r in reports] == ["ok"]


def test_the_floor_and_the_bound_in_numbers() -> None:
    from npf_core.spec.config import RunConfig

    config = RunConfig(config_id="m-n10-w2", model_name="m", framework="python", model_kind="target",
                       model_ref="m.py:M", model_filename="m.py:M", input_idx=0, batch_size=1, n_models=10,
                       workers_per_model=2, pipeline_size=1, start_method="fork", device_type="cpu")  # fmt: skip
    floor = limits.floor_cost("fork")
    assert floor.tasks(2) == 4
    room = limits.Headroom(tasks=limits.RESERVE_TASKS + 39, tasks_by="test", memory=None, memory_by="")
    with pytest.raises(MachineLimit, match=r"need 40 more processes and threads .* at most 9 copies"):
        limits.check_copies(config, floor, room)
    limits.check_copies(config, floor, limits.Headroom(limits.RESERVE_TASKS + 40, "test", None, ""))
    assert isinstance(MachineLimit("x"), SpecError)
