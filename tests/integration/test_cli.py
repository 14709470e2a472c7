"""``python -m npf_core run``: the issue's Done-when, through real processes."""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from npf_core.results.report import NEURONPERF_COLUMNS, NEURONPERF_CSV_COLUMNS
from npf_core.results.store import results_file

ROOT = Path(__file__).resolve().parents[2]


def read_results(folder: Path) -> tuple[dict[str, Any], list[dict[str, str]]]:
    doc = json.loads(results_file(folder).read_text())
    with results_file(folder).with_name("results.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return doc, rows


def assert_one_line_error(proc: Any, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    for needle in needles:
        assert needle in lines[0], lines[0]
    return str(lines[0])


def test_two_by_two_sweep_of_a_2ms_model(
    cli: Any, write_spec: Any, sleepy_spec: dict[str, Any], tmp_path: Path
) -> None:
    spec = {**sleepy_spec, "n_models": [1, 2], "workers_per_model": [1, 2]}
    proc = cli("run", str(write_spec(spec)), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc, rows = read_results(tmp_path / "out")
    assert set(doc) >= {"npf_version", "spec", "environment", "reports"}
    reports = doc["reports"]
    assert [(r["n_models"], r["workers_per_model"]) for r in reports] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert [r["reused_copies"] for r in reports] == [0, 1, 1, 2]
    for r in reports:
        assert r["status"] == "ok", r.get("error")
        assert set(NEURONPERF_COLUMNS) <= set(r)
        for field in (
            "throughput_avg",
            "throughput_peak",
            "latency_ms_p0",
            "latency_ms_p50",
            "latency_ms_p99",
            "latency_ms_p100",
            "e2e_avg_ms",
            "infer_avg_ms",
            "warmup_avg_ms",
            "total_s",
        ):
            assert isinstance(r[field], float) and r[field] > 0, (field, r[field])  # fmt: skip
        # the copies each configuration loaded (reuse_copies): copy 0 in the first, copy 1
        # when n_models grows; a configuration that reused every copy loaded none
        loaded = r["n_models"] - r["reused_copies"]
        assert (isinstance(r["load_avg_ms"], float) and r["load_avg_ms"] > 0) if loaded else r["load_avg_ms"] is None
        assert r["model_name"] == "Sleepy" and r["batch_size"] == 1 and r["pipeline_size"] == 1
        assert r["device_type"] == "cpu"
        assert r["total_infs"] > 0
        # a 2 ms sleep: each call takes at least 2 ms, and not absurdly more
        assert 2.0 <= r["latency_ms_p50"] < 50, r["latency_ms_p50"]
        assert r["latency_ms_p0"] <= r["latency_ms_p50"] <= r["latency_ms_p99"] <= r["latency_ms_p100"]
        # throughput is inferences over the measured interval, bounded by the concurrency
        concurrency = r["n_models"] * r["workers_per_model"]
        assert r["throughput_avg"] == pytest.approx(r["total_infs"] / r["total_s"], rel=0.05)
        assert r["throughput_avg"] <= concurrency * 500 * 1.05
        assert r["total_s"] == pytest.approx(spec["duration_s"], abs=0.1)
    # more concurrency, more throughput (a sleeping model does not need CPU)
    assert reports[3]["throughput_avg"] > 1.5 * reports[0]["throughput_avg"]

    with results_file(tmp_path / "out").with_name("results.csv").open(newline="") as f:
        header = next(csv.reader(f))
    assert tuple(header[: len(NEURONPERF_CSV_COLUMNS)]) == NEURONPERF_CSV_COLUMNS
    assert header[19] == "total_infs" and len(NEURONPERF_CSV_COLUMNS) == 26
    assert len(rows) == 4 and {row["status"] for row in rows} == {"ok"}
    assert [int(row["total_infs"]) for row in rows] == [r["total_infs"] for r in reports]


def test_default_sweep_on_cpu_is_1_and_max_by_1_and_2(
    cli: Any, write_spec: Any, sleepy_spec: dict[str, Any], tmp_path: Path
) -> None:
    cpus = min(2, len(os.sched_getaffinity(0)))  # max = the CPUs the process may use
    spec = {**sleepy_spec, "duration_s": 0.2}
    proc = cli("run", str(write_spec(spec)), cwd=tmp_path, cpus=cpus)
    assert proc.returncode == 0, proc.stderr
    doc, _ = read_results(tmp_path / "out")
    got = [(r["n_models"], r["workers_per_model"]) for r in doc["reports"]]
    assert got == [(n, w) for n in dict.fromkeys([1, cpus]) for w in (1, 2)]
    assert all(r["status"] == "ok" for r in doc["reports"])


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ({"duraton_s": 1}, ["spec $:", "unknown field 'duraton_s'", "did you mean 'duration_s'"]),
        ({"duration_s": -1}, ["spec $.duration_s:", "> 0"]),
        ({"model": {"target": "missing_model.py:Model"}}, ["spec $.model.target: file not found", "missing_model.py"]),
        ({"inputs": [{"shape": [1], "dtype": "float8"}]}, ["spec $.inputs[0].dtype:", "float8"]),
        ({"output": {"reporters": ["json", "nope"]}}, ["unknown reporter plugin 'nope'", "console, csv"]),
        ({"device": "tpu"}, ["spec $.device: unknown device plugin 'tpu'; installed device plugins: cpu"]),
    ],
    ids=[
        "misspelt-field",
        "negative-duration",
        "missing-target-file",
        "bad-dtype",
        "unknown-reporter",
        "unknown-device",
    ],
)
def test_bad_spec_exits_2_with_one_line(
    cli: Any, write_spec: Any, sleepy_spec: dict[str, Any], tmp_path: Path, change: dict[str, Any], needles: list[str]
) -> None:
    spec = copy.deepcopy(sleepy_spec)
    spec.update(change)
    proc = cli("run", str(write_spec(spec)), cwd=tmp_path)
    line = assert_one_line_error(proc, *needles)
    assert line.startswith("npf: error: ")
    assert not (tmp_path / "out").exists()  # nothing started, nothing written


def test_unreadable_and_invalid_spec_files_exit_2(cli: Any, tmp_path: Path) -> None:
    assert_one_line_error(cli("run", "absent.json", cwd=tmp_path), "cannot read spec file")
    (tmp_path / "broken.json").write_text('{"model": ')
    assert_one_line_error(cli("run", "broken.json", cwd=tmp_path), "spec $")


def test_usage_errors_exit_2(cli: Any, tmp_path: Path) -> None:
    assert cli("frobnicate", cwd=tmp_path).returncode == 2
    assert cli("run", cwd=tmp_path).returncode == 2


def test_fresh_interpreter_runs_a_file_target(
    cli: Any, write_spec: Any, sleepy_spec: dict[str, Any], tmp_path: Path
) -> None:
    # a relative "file.py:Class" target: relative to the spec's folder, not the cwd
    shutil.copy(Path(sleepy_spec["model"]["target"].rpartition(":")[0]), tmp_path / "models.py")
    spec = {**sleepy_spec, "model": {"target": "models.py:Sleepy"}, "start_method": "fresh",
            "n_models": [2], "workers_per_model": [1]}  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = cli("run", str(write_spec(spec)), cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    doc, rows = read_results(tmp_path / "out")
    (r,) = doc["reports"]
    assert r["status"] == "ok", r.get("error")
    assert (r["start_method"], r["multiinterpreter"], r["n_models"]) == ("fresh", True, 2)
    assert r["total_infs"] > 0 and r["latency_ms_p50"] >= 2.0
    assert rows[0]["multiinterpreter"] == "True"
    assert not (elsewhere / "out").exists()


def test_quickstart_example_from_another_folder(cli: Any, tmp_path: Path) -> None:
    example = tmp_path / "quickstart"
    shutil.copytree(ROOT / "examples" / "quickstart", example, ignore=shutil.ignore_patterns("npf-results"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = cli("run", str(example / "spec.json"), "--duration-s", "0.2", cwd=cwd, cpus=2)
    assert proc.returncode == 0, proc.stderr
    results = example / "npf-results"  # output.dir is relative to the spec file
    doc, rows = read_results(results)
    assert doc["spec"]["duration_s"] == 0.2
    assert len(doc["reports"]) >= 2 and all(r["status"] == "ok" for r in doc["reports"])
    example_spec = json.loads((example / "spec.json").read_text())
    name = example_spec.get("name") or example_spec["model"]["target"].rpartition(":")[2]
    assert {r["model_name"] for r in doc["reports"]} == {name}
    assert {r["batch_size"] for r in doc["reports"]} == set(example_spec.get("batch_sizes", [1]))
    assert len(rows) == len(doc["reports"])
    assert list(cwd.iterdir()) == []
    # the console table: NeuronPerf's printed columns
    assert "p50" in proc.stdout and name in proc.stdout


def test_output_dir_override_and_report_command(
    cli: Any, write_spec: Any, sleepy_spec: dict[str, Any], tmp_path: Path
) -> None:
    spec = {**sleepy_spec, "n_models": [1], "workers_per_model": [1], "duration_s": 0.2}
    proc = cli("run", str(write_spec(spec)), "--output-dir", "elsewhere", "--duration-s", "0.25", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc, _ = read_results(tmp_path / "elsewhere")
    assert doc["spec"]["duration_s"] == 0.25
    assert not (tmp_path / "out").exists()
    shown = cli("report", str(tmp_path / "elsewhere"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "Sleepy" in shown.stdout


def test_a_failing_configuration_exits_1_and_keeps_the_results(
    cli: Any, write_spec: Any, sleepy_spec: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "bad.py").write_text(
        "class Broken:\n    def __init__(self):\n        raise RuntimeError('no weights')\n"
    )
    spec = {**sleepy_spec, "model": {"target": "bad.py:Broken"}, "n_models": [1], "workers_per_model": [1]}
    proc = cli("run", str(write_spec(spec)), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    doc, rows = read_results(tmp_path / "out")
    (r,) = doc["reports"]
    assert r["status"] == "error"
    assert r["error"]["type"] == "RuntimeError" and "no weights" in r["error"]["message"]
    assert "no weights" in r["error"]["traceback"]
    assert rows[0]["status"] == "error"
