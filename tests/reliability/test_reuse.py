"""Copies outlive a configuration (reuse_copies, issue 23), with real benchmarker
processes: a sweep loads each copy once and says so; a copy that failed, or whose
configuration failed, is never reused; a kept copy that died while idle is loaded
again; an idle copy takes no CPU from the configuration being measured; and Ctrl-C,
SIGKILL and --resume keep every guarantee while copies are kept."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

import npf_core
from npf_core.plugin import events as ev
from npf_core.results.store import results_file

from .conftest import MODELS, Cli, sweep_spec, wait_for, write_json

SLOW = {"framework": "python", "target": f"{MODELS}:SlowLoading"}


def loads(markers: Path) -> list[tuple[int, str, int]]:
    """(pid, configuration id, copy index) of every model load, oldest first."""
    out = []
    for f in sorted(markers.glob("*.load"), key=lambda p: p.stat().st_mtime_ns):
        config_id, _, index = f.read_text().partition(" ")
        out.append((int(f.name.split("-")[0]), config_id, int(index or -1)))
    return out


@pytest.fixture
def markers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "markers"
    d.mkdir()
    monkeypatch.setenv("NPF_MARKER_DIR", str(d))
    return d


def eight(out: Path, **fields: Any) -> dict[str, Any]:
    """copies {1, 2} x workers {1, 2} x batch sizes {1, 2}: 8 configurations."""
    return sweep_spec(out, model=SLOW, inputs=[{"shape": [1, 4]}, {"shape": [2, 4]}], batch_sizes=[1, 2],
                      n_models=[1, 2], workers_per_model=[1, 2], **fields)  # fmt: skip


def run_with_events(spec: dict[str, Any]) -> tuple[list[Any], list[ev.Event]]:
    seen: list[ev.Event] = []

    async def main() -> list[Any]:
        async with npf_core.Supervisor(spec) as sup:
            async for event in sup.events():
                seen.append(event)
        return sup.reports

    return anyio.run(main), seen


@pytest.mark.parametrize("method", ["zygote", "fork", "fresh", "inline"])
def test_a_sweep_loads_each_copy_once_and_each_report_says_what_it_reused(
    method: str, markers: Path, tmp_path: Path
) -> None:
    reports, seen = run_with_events(eight(tmp_path / "out", start_method=method))
    assert [r.status for r in reports] == ["ok"] * 8, [r.error for r in reports]
    assert len(loads(markers)) == 2  # copy 0, then copy 1 when n_models grows
    started = seen[0]
    assert isinstance(started, ev.RunStarted) and started.loads == 2 and started.reuse
    assert [(r.batch_size, r.n_models, r.workers_per_model) for r in reports] == [
        (b, n, w) for b in (1, 2) for n in (1, 2) for w in (1, 2)
    ]  # NeuronPerf's order: nothing to gain by another
    assert [r.reused_copies for r in reports] == [0, 1, 1, 2, 1, 1, 2, 2]
    # load_avg_ms: the loads of the copies each configuration loaded, none where it loaded none
    loaded_ms = [r.load_avg_ms for r in reports]
    assert loaded_ms[0] >= 250 and loaded_ms[2] >= 250, loaded_ms
    assert all(math.isnan(ms) for i, ms in enumerate(loaded_ms) if i not in (0, 2)), loaded_ms
    # every configuration warmed up and measured on its own
    assert all(r.warmup_avg_ms > 0 and r.total_infs > 0 for r in reports)
    if method != "inline":  # (inline copies are threads of this process)
        assert {index for _, _, index in loads(markers)} == {0, 1}
    # copy 1 loaded beside copy 0, during the first configuration's load (one load time,
    # not two), and was loaded before that configuration started measuring
    copy1_loaded = max(f.stat().st_mtime for f in markers.glob("*.load"))
    first = reports[0]
    assert copy1_loaded <= when(first.stop_dts) - first.total_s + 0.05


def when(dts: str) -> float:
    return datetime.strptime(dts, "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def test_reuse_copies_false_loads_every_configurations_copies(markers: Path, tmp_path: Path) -> None:
    reports, seen = run_with_events(eight(tmp_path / "out", reuse_copies=False))
    assert [r.status for r in reports] == ["ok"] * 8, [r.error for r in reports]
    assert len(loads(markers)) == 12
    started = seen[0]
    assert isinstance(started, ev.RunStarted) and started.loads == 12 and not started.reuse
    assert [r.reused_copies for r in reports] == [0] * 8
    assert all(r.load_avg_ms >= 250 for r in reports)


@pytest.mark.parametrize("method", ["zygote", "fork", "fresh"])
def test_copies_of_a_configuration_that_failed_are_not_reused(
    method: str, markers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy crashes in configuration k (copies reused from k - 1): k + 1 loads new
    copies, the one that crashed and the one beside it."""
    monkeypatch.setenv("NPF_FAULT", "call-sigkill")
    monkeypatch.setenv("NPF_FAULT_CONFIG", "-w2")
    spec = sweep_spec(tmp_path / "out", model={"framework": "python", "target": f"{MODELS}:Faulty"},
                      n_models=[2], workers_per_model=[1, 2, 3], start_method=method)  # fmt: skip
    reports = npf_core.benchmark(spec)
    assert [r.status for r in reports] == ["ok", "error", "ok"], [r.error for r in reports]
    assert [r.reused_copies for r in reports] == [0, 2, 0]
    assert reports[1].error is not None and "killed by SIGKILL" in reports[1].error.message
    configs = sorted(Path(m).read_text() for m in markers.glob("*.pid"))
    assert configs == ["Faulty-b1-p1-n2-w1"] * 2 + ["Faulty-b1-p1-n2-w3"] * 2


def test_an_idle_copy_takes_no_cpu_and_one_that_died_idle_is_loaded_again(
    markers: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """n_models 2 then 1, three times: copy 1 idles through each one-copy configuration.
    It uses no CPU meanwhile; killed while idle, it is loaded again for the next."""
    monkeypatch.setenv("NPF_SLEEP_S", "0")  # copy 0 calls as fast as it can: the CPU is contended
    spec = sweep_spec(tmp_path / "out", model=SLOW, inputs=[{"shape": [1, 4]}, {"shape": [2, 4]}, {"shape": [3, 4]}],
                      batch_sizes=[1, 2, 3], n_models=[2, 1], workers_per_model=[1], duration_s=0.5)  # fmt: skip
    idle_cpu: list[float] = []
    killed: list[int] = []

    def copy1() -> psutil.Process:
        (pid,) = [pid for pid, _, index in loads(markers) if index == 1 and pid not in killed]
        return psutil.Process(pid)

    def cpu_s(p: psutil.Process) -> float:
        t = p.cpu_times()
        return float(t.user + t.system)

    async def main() -> list[Any]:
        before = 0.0
        async with npf_core.Supervisor(spec) as sup:
            async for event in sup.events():
                if isinstance(event, ev.ConfigStarted) and event.index == 1:
                    before = cpu_s(copy1())
                elif isinstance(event, ev.ConfigFinished) and event.index == 1:
                    idle_cpu.append(cpu_s(copy1()) - before)
                elif isinstance(event, ev.ConfigStarted) and event.index == 3:
                    victim = copy1()
                    victim.kill()
                    killed.append(victim.pid)
        return sup.reports

    reports = anyio.run(main)
    assert [r.status for r in reports] == ["ok"] * 6, [r.error for r in reports]
    assert idle_cpu and idle_cpu[0] < 0.05, idle_cpu  # 0.5 s of a busy configuration beside it
    # copy 1: loaded in the first configuration, reused by the third, loaded again for the fifth
    assert [r.reused_copies for r in reports] == [0, 1, 2, 1, 1, 1]
    assert [index for _, _, index in loads(markers)].count(1) == 2


def finished(path: Path) -> list[dict[str, Any]]:
    try:
        return list(json.loads(path.read_text())["reports"])
    except (OSError, ValueError):
        return []


@pytest.mark.parametrize("method", ["zygote", "fork"])
def test_ctrl_c_while_a_copy_is_kept_then_resume(method: str, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    markers = tmp_path / "markers"
    markers.mkdir()
    spec = write_json(tmp_path / "spec.json", sweep_spec(
        out, model=SLOW, inputs=[{"shape": [1, 4]}, {"shape": [2, 4]}], batch_sizes=[1, 2], n_models=[2, 1],
        duration_s=0.6, start_method=method))  # fmt: skip
    proc = cli.start("run", str(spec), "-q", NPF_MARKER_DIR=str(markers))
    try:
        wait_for(lambda: finished(results_file(out)), 30, "the first configuration in results.json")
        os.kill(proc.pid, signal.SIGINT)  # copy 1 is kept, idle, beside the one-copy configuration
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert cli.survivors() == []  # the kept copies too
    kept = finished(results_file(out))
    assert 1 <= len(kept) < 4 and all(r["status"] == "ok" for r in kept)

    done = cli.run("run", str(spec), "-q", "--resume", NPF_MARKER_DIR=str(markers))
    assert done.returncode == 0, done.stderr
    assert cli.survivors() == []
    reports = finished(results_file(out))
    assert [r["status"] for r in reports] == ["ok"] * 4
    assert reports[: len(kept)] == kept  # finished configurations are never run again, nor lost


@pytest.mark.parametrize("method", ["zygote", "fork", "fresh"])
def test_sigkill_to_the_supervisor_takes_kept_copies_down(method: str, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    markers = tmp_path / "markers"
    markers.mkdir()
    spec = write_json(tmp_path / "spec.json", sweep_spec(
        out, model=SLOW, n_models=[2, 1], duration_s=3.0, start_method=method,
        inputs=[{"shape": [1, 4]}, {"shape": [2, 4]}], batch_sizes=[1, 2]))  # fmt: skip
    proc = cli.start("run", str(spec), "-q", NPF_MARKER_DIR=str(markers))
    try:
        wait_for(lambda: finished(results_file(out)), 60, "the first configuration in results.json")
        time.sleep(0.5)  # into the one-copy configuration: copy 1 idles
        copies = [psutil.Process(pid) for pid, _, _ in loads(markers)]
        assert len(copies) == 2
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and any(_alive(p) for p in copies):
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert [p.pid for p in copies if _alive(p)] == []
    wait_for(lambda: cli.survivors() == [], 3.0, "every process of the run to end")


def test_no_reuse_flag_and_the_plans_first_line(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    markers = tmp_path / "markers"
    markers.mkdir()
    spec = write_json(tmp_path / "spec.json", eight(out, duration_s=0.1, output={"dir": str(out),
                                                                                "reporters": ["console"]}))
    done = cli.run("run", str(spec), NPF_MARKER_DIR=str(markers))
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert "8 configurations, 2 model loads (copies kept between configurations)" in first, first
    assert len(list(markers.iterdir())) == 2
    again = cli.run("run", str(spec), "--no-reuse", NPF_MARKER_DIR=str(markers))
    assert again.returncode == 0, again.stderr
    assert "8 configurations, 12 model loads (reuse_copies off)" in again.stdout.splitlines()[0]
    assert len(list(markers.iterdir())) == 2 + 12


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return False


def test_kept_copies_across_early_stops_and_in_open_loop(markers: Path, tmp_path: Path) -> None:
    """Configurations stopped early (stable windows: the Stop may cross a copy's Result
    on the wire) and an open-loop load run on the same kept copy, each on its own."""
    spec = sweep_spec(tmp_path / "out", model=SLOW, workers_per_model=[1, 2, 3], duration_s=5.0, window_s=0.05,
                      stability={"windows": 2, "tolerance": 0.9, "min_s": 0.2})  # fmt: skip
    reports = npf_core.benchmark(spec)
    assert [r.status for r in reports] == ["ok"] * 3, [r.error for r in reports]
    assert [r.stopped_by for r in reports] == ["stable"] * 3
    assert [r.reused_copies for r in reports] == [0, 1, 1]
    assert len(loads(markers)) == 1
    open_loop = sweep_spec(tmp_path / "out2", model=SLOW, workers_per_model=[1, 2], duration_s=0.5,
                           load={"mode": "poisson", "rate": 40})  # fmt: skip
    reports = npf_core.benchmark(open_loop)
    assert [r.status for r in reports] == ["ok"] * 2, [r.error for r in reports]
    assert [r.reused_copies for r in reports] == [0, 1]
    assert all(r.load_mode == "poisson" and r.scheduled for r in reports)
