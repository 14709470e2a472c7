"""A results.json that was edited or cut short (issue 20): ``--resume`` reruns the
damaged reports instead of crashing on them or trusting them; ``report`` flags
them; a report that cannot be decoded is exit 2 naming its field."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

import npf_core
from npf_core.errors import ResultsError
from npf_core.results import store
from npf_core.results.store import ResultsFile, read_results, results_file

from .conftest import sweep_spec, write_json

IDS = ["Sleepy-b1-p1-n1-w1", "Sleepy-b1-p1-n1-w2"]


@pytest.fixture
def finished_run(tmp_path: Path) -> tuple[Path, Path]:
    """A finished two-configuration sweep: (its spec file, its results.json)."""
    spec = write_json(tmp_path / "spec.json", sweep_spec(tmp_path / "out", workers_per_model=[1, 2], duration_s=0.15))
    reports = npf_core.benchmark(str(spec))
    assert [r.config_id for r in reports] == IDS and all(r.status == "ok" for r in reports)
    return spec, results_file(tmp_path / "out")


def _edit_first_report(path: Path, edit: Any) -> None:
    doc = json.loads(path.read_text())
    edit(doc["reports"][0])
    path.write_text(json.dumps(doc))


def _put_raw(path: Path, key: str, raw: str) -> None:
    """Replace the first report's ``key`` by raw JSON text (``-1e999`` reads as -inf)."""
    text = path.read_text()
    text, n = re.subn(rf'"{key}": [^,\n]+', f'"{key}": {raw}', text, count=1)
    assert n == 1
    path.write_text(text)


@pytest.mark.parametrize("raw", ["-1e999", "1e999", "NaN", "Infinity"])
def test_resume_over_a_non_finite_number_reruns_that_report(
    raw: str, finished_run: tuple[Path, Path], run_cli, spawn_guard
) -> None:
    spec, path = finished_run
    _put_raw(path, "latency_ms_p50", raw)
    code, _out, err = run_cli("run", str(spec), "--resume")
    assert code == 0, err
    assert "Traceback" not in err and "ExceptionGroup" not in err, err
    assert len(spawn_guard) == 1  # the damaged one ran again; the sound one was kept
    assert "latency_ms_p50" in err  # the warning names what was wrong
    new = json.loads(results_file(path.parents[2]).read_text(), parse_constant=_no_constants)["reports"]
    assert [r["config_id"] for r in new] == IDS
    assert all(math.isfinite(r["latency_ms_p50"]) for r in new)


def _no_constants(name: str) -> Any:
    raise AssertionError(f"npf wrote {name}, which is not JSON")


@pytest.mark.parametrize("key", ["throughput_avg", "latency_ms_p99", "config_id", "total_infs", "latency_ms_p999"])
def test_resume_over_a_report_with_a_field_deleted_reruns_it(
    key: str, finished_run: tuple[Path, Path], run_cli, spawn_guard
) -> None:
    spec, path = finished_run
    _edit_first_report(path, lambda r: r.pop(key))
    code, _out, err = run_cli("run", str(spec), "--resume")
    assert code == 0, err
    assert "Traceback" not in err
    assert len(spawn_guard) == 1
    assert key in err


def test_resume_over_a_report_of_the_wrong_type_reruns_it(finished_run: tuple[Path, Path], spawn_guard) -> None:
    spec, path = finished_run
    _edit_first_report(path, lambda r: r.update(n_models="two", latency_histogram=[1, 2]))
    found = store.load_resumable(path)
    assert [r.config_id for r in found.reports] == IDS[1:]
    assert len(found.damaged) == 1 and IDS[0] in found.damaged[0]
    reports = npf_core.benchmark(str(spec), resume=True)
    assert [r.status for r in reports] == ["ok", "ok"]
    assert len(spawn_guard) == 1


def test_resume_over_a_file_that_is_not_results_is_exit_2(finished_run: tuple[Path, Path], run_cli) -> None:
    spec, path = finished_run
    path.write_text("[" * 100_000 + "]" * 100_000)
    code, _out, err = run_cli("run", str(spec), "--resume")
    assert code == 2, err
    assert "Traceback" not in err and "results file" in err


def test_report_flags_a_non_finite_number(finished_run: tuple[Path, Path], run_cli) -> None:
    _spec, path = finished_run
    _put_raw(path, "latency_ms_p50", "-1e999")
    code, out, err = run_cli("report", str(path))
    assert code == 0
    assert not re.search(r"inf m?s\b", out), out  # not shown as a measurement
    warned = [line for line in err.splitlines() if "damaged" in line]
    assert len(warned) == 1 and "latency_ms_p50 is -inf" in warned[0] and IDS[0] in warned[0], err
    assert "ok?" in out
    results = read_results(path)
    first = results.reports[0]
    assert math.isnan(first.latency_ms_p50) and not first.valid
    assert any("latency_ms_p50" in reason for reason in first.validity_reasons)
    assert not any("damaged" in reason for reason in results.reports[1].validity_reasons)
    assert len(results.damaged) == 1


def test_report_flags_a_missing_figure(finished_run: tuple[Path, Path], run_cli) -> None:
    _spec, path = finished_run
    _edit_first_report(path, lambda r: r.pop("throughput_avg"))
    code, _out, err = run_cli("report", str(path))
    assert code == 0
    assert "throughput_avg missing" in err


def test_report_of_an_undecodable_report_is_exit_2_naming_the_field(finished_run: tuple[Path, Path], run_cli) -> None:
    _spec, path = finished_run
    _edit_first_report(path, lambda r: r.update(batch_size="one"))
    code, _out, err = run_cli("report", str(path))
    assert code == 2
    assert "Traceback" not in err
    assert "reports[0]" in err and "batch_size" in err
    with pytest.raises(ResultsError, match="batch_size"):
        read_results(path)


def test_an_infinite_figure_is_written_as_null_not_a_crash(tmp_path: Path) -> None:
    from npf_core.results.report import Report

    f = ResultsFile(tmp_path / "results.json")
    f.start("run", {})
    f.record(0, Report(model_name="m", n_models=1, workers_per_model=1, pipeline_size=1, batch_size=1,
                       throughput_avg=math.inf, throughput_windows=[1.0, -math.inf]))  # fmt: skip
    doc = json.loads((tmp_path / "results.json").read_text(), parse_constant=_no_constants)
    assert doc["reports"][0]["throughput_avg"] is None
    assert doc["reports"][0]["throughput_windows"] == [1.0, None]


def test_results_csv_never_holds_a_row_results_json_lacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up as the last configuration's report is written: results.json
    keeps the first report only, and so does results.csv (which still has room)."""
    import errno

    import npf_core.results.store as store_module

    real = store_module.write_atomic

    def full_for_the_second_report(path: Path, data: bytes) -> None:
        if path.name == "results.json" and len(json.loads(data)["reports"]) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(store_module, "write_atomic", full_for_the_second_report)
    spec = sweep_spec(tmp_path / "out", workers_per_model=[1, 2], duration_s=0.1)
    reports = npf_core.benchmark(spec, reporters=["csv"])
    assert [r.status for r in reports] == ["ok", "ok"]
    path = results_file(tmp_path / "out")
    in_json = [r["config_id"] for r in json.loads(path.read_text())["reports"]]
    import csv

    with open(path.with_name("results.csv"), newline="") as f:
        in_csv = [row["config_id"] for row in csv.DictReader(f)]
    assert in_json == IDS[:1]
    assert in_csv == in_json
