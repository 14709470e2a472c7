"""``npf compare`` (the CI gate), ``npf history`` and ``npf report`` on real runs of
tiny python models (10 ms per call, two worker threads; the "slower" one 10% slower).
Sleeping models: on a busy machine a CPU-bound model's speed changes with the load,
which would be a real difference between the runs, not the one these tests are about."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from npf_core.results.stats import Histogram, StoredHistogram
from npf_core.results.store import read_results, resolve_results


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "npf_core", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})  # fmt: skip


MODELS = '''
import os
import time

#: seconds per call; a new version of the model may be slower (the tests set it)
DELAY = float(os.environ.get("DELAY", "0.010"))

class Base:
    def __call__(self, *inputs):
        if os.environ.get("BROKEN"):
            raise RuntimeError("this version of the model is broken")
        time.sleep(DELAY)

class Hungry:
    """Another model: 100 MB and 20x slower than Base at its default."""
    def __init__(self):
        self.memory = bytearray(100 * 2**20)

    def __call__(self, *inputs):
        time.sleep(0.2)
'''


def _run(tmp: Path, name: str, model: str, delay: float = 0.010) -> Path:
    """Run the model; again (up to 3 times) when npf itself marks the run unstable —
    the machine stalled it, so it is not the like-for-like run these tests need."""
    spec = {
        "name": name,
        "model": {"framework": "python", "target": f"models.py:{model}"},
        "inputs": [{"shape": [1, 4], "dtype": "float32"}],
        "n_models": [1],
        "workers_per_model": [2],
        "duration_s": 2.0,
        "window_s": 0.2,
        "output": {"reporters": ["json", "html"]},
    }
    (tmp / f"{name}.json").write_text(json.dumps(spec))
    for attempt in range(3):
        out = tmp / f"out-{name}-{attempt}"
        res = run_cli("run", f"{name}.json", "-q", "--output-dir", str(out), cwd=tmp, env={"DELAY": str(delay)})
        assert res.returncode == 0, res.stderr
        report = read_results(out).reports[0]
        if not any(r.startswith("unstable") for r in report.validity_reasons):
            break
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("compare")
    (tmp / "models.py").write_text(MODELS)
    return {
        "base": _run(tmp, "base", "Base"),
        "again": _run(tmp, "again", "Base"),
        "slower": _run(tmp, "slower", "Base", delay=0.011),  # a new version of the model, 10% slower
    }


def test_two_runs_of_the_same_model_show_no_significant_change(runs: dict[str, Path]) -> None:
    res = run_cli("compare", str(runs["base"]), str(resolve_results(runs["again"])), "--threshold", "5",
                  cwd=runs["base"].parent)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().splitlines()[-1].startswith("no significant change"), res.stdout
    # matched by what they measured: the ids differ by the spec's name (the model is the same)
    assert "base-b1-p1-n1-w2 -> again-b1-p1-n1-w2" in res.stdout


def test_a_10_percent_slower_model_is_a_significant_regression(runs: dict[str, Path]) -> None:
    res = run_cli("compare", str(runs["base"]), str(runs["slower"]), "--threshold", "5", "--format", "json",
                  cwd=runs["base"].parent)  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr
    data = json.loads(res.stdout)
    metrics = {m["metric"]: m for m in data["configs"][0]["metrics"]}
    for name in ("throughput", "p50"):
        assert metrics[name]["verdict"] == "regression", metrics[name]
        assert metrics[name]["statistically_significant"] and metrics[name]["beyond_threshold"]
    assert metrics["throughput"]["change_pct"] < -5
    assert 5 < metrics["p50"]["change_pct"] < 14
    # the other way round it is an improvement, and no CI gate fails
    back = run_cli("compare", str(runs["slower"]), str(runs["base"]), "--format", "markdown", cwd=runs["base"].parent)
    assert back.returncode == 0, back.stdout
    assert "| improvement |" in back.stdout and "significant improvement" in back.stdout


def test_percentiles_recomputed_from_stored_histograms_match_the_report(runs: dict[str, Path]) -> None:
    for out in runs.values():
        doc = json.loads(resolve_results(out).read_text())
        assert doc["format"] == "npf-results" and doc["format_version"] == 2
        for r in doc["reports"]:
            stored = r["latency_histogram"]
            assert len(json.dumps(stored)) < 8_000
            h = Histogram.from_stored(msgspec.convert(stored, StoredHistogram))
            for q in (0, 50, 90, 95, 99, 99.9, 100):
                key = f"p{q:g}".replace(".", "")
                reported = r[f"latency_ms_{key}"]
                assert abs(h.percentile(q) / 1e6 - reported) <= 0.001 * reported, (key, reported)
            assert len(r["throughput_windows"]) >= 9


def test_report_html_writes_one_self_contained_page(runs: dict[str, Path], tmp_path: Path) -> None:
    page = tmp_path / "sub" / "r.html"
    res = run_cli("report", str(runs["base"]), "--html", str(page), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    html = page.read_text()
    for chart in ("chart-scaling", "chart-cdf", "chart-percentiles", "chart-windows"):
        assert f'id="{chart}"' in html
    assert "cost unknown" in html  # no cost_per_hour in this spec
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing to fetch
    assert (resolve_results(runs["base"]).parent / "report.html").is_file()  # the reporter's own copy


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "nowhere", "nowhere-either"], "no results"),
        (["compare", "{base}", "{base}", "--threshold", "-3"], "threshold"),
        (["compare", "{base}", "{base}", "--format", "html"], "invalid choice"),
        (["compare", "{base}", "{base}", "--confidence", "1.5"], "confidence"),
        (["compare", "{base}"], "required"),
        (["report", "nowhere", "--html", "x.html"], "no results"),
        (["report", "{base}", "--format", "xml"], "invalid choice"),
        (["history", "nowhere"], "no results"),
        (["history", "{base}", "--threshold", "-1"], "threshold"),
        (["history", "{base}", "--format", "csv"], "invalid choice"),
    ],
)
def test_usage_errors_exit_2(runs: dict[str, Path], tmp_path: Path, args: list[str], message: str) -> None:
    res = run_cli(*[a.format(base=runs["base"]) for a in args], cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr


# -- the gate fails closed; history; machine-readable reports ---------------------------
# A spec of two batch sizes in a git repository; its runs, as CI makes them.

GATE_SPEC = {
    "name": "gate",
    "model": {"framework": "python", "target": "models.py:Base"},
    "inputs": [{"shape": [1, 4], "dtype": "float32"}, {"shape": [2, 4], "dtype": "float32"}],
    "batch_sizes": [1, 2],
    "n_models": [1],
    "workers_per_model": [1],
    "duration_s": 1.0,
    "window_s": 0.1,
    "output": {"reporters": ["json"]},
}


def _git(tmp: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=tmp, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The runs (their results.json): three labelled full runs in one output folder
    (v1, v2 the same model, v3 30% slower), a broken one, narrowed ones, another model."""
    tmp = tmp_path_factory.mktemp("gate")
    (tmp / "models.py").write_text(MODELS)
    (tmp / "spec.json").write_text(json.dumps(GATE_SPEC))
    hungry = {**GATE_SPEC, "name": "hungry", "model": {"framework": "python", "target": "models.py:Hungry"}}
    (tmp / "hungry.json").write_text(json.dumps(hungry))
    _git(tmp, "init", "-q")
    _git(tmp, "add", "models.py", "spec.json", "hungry.json")
    _git(tmp, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "models")
    runs: dict[str, Path] = {}

    def run(key: str, *args: str, spec: str = "spec.json", out: str | None = None, code: int = 0,
            **env: str) -> None:  # fmt: skip
        folder = tmp / (out or key)

        def results() -> set[Path]:  # each run's own folder (not the 'latest' link)
            return {p for p in folder.glob("*/*/results.json") if not p.parent.is_symlink()}

        before = results()
        res = run_cli("run", spec, "-q", "--output-dir", str(folder), *args, cwd=tmp, env=env)
        assert res.returncode == code, res.stderr
        (runs[key],) = results() - before

    run("v1", "--label", "v1", out="history")
    run("v2", "--label", "v2", out="history")
    run("v3", "--label", "v3 (30% slower)", out="history", DELAY="0.013")
    run("broken", code=1, BROKEN="1")
    run("only1", "--batch-sizes", "1")
    run("only2", "--batch-sizes", "2")
    run("slower2", "--batch-sizes", "2", DELAY="0.013")
    run("hungry", spec="hungry.json")
    runs["commit"] = tmp / _git(tmp, "rev-parse", "HEAD")
    return runs


def compare_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli("compare", *args, cwd=cwd)


def test_gate_new_run_whose_configurations_failed_exits_1(gate: dict[str, Path]) -> None:
    res = compare_cli(str(gate["v1"]), str(gate["broken"]), cwd=gate["v1"].parent)
    assert res.returncode == 1, res.stdout + res.stderr
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("2 configurations ok in base failed in new: gate-b1-p1-n1-w1, gate-b2-p1-n1-w1"), last
    assert "this version of the model is broken" in res.stdout


def test_gate_runs_with_nothing_in_common_exit_2_with_one_line(gate: dict[str, Path]) -> None:
    res = compare_cli(str(gate["only1"]), str(gate["only2"]), cwd=gate["v1"].parent)
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stdout == "" and len(res.stderr.strip().splitlines()) == 1
    assert "nothing to compare" in res.stderr and "Traceback" not in res.stderr


def test_gate_a_narrowed_slower_rerun_is_compared_on_its_overlap(gate: dict[str, Path]) -> None:
    """``--batch-sizes 2`` makes batch 2 the run's first input: still compared with the
    full sweep's batch 2; the full sweep's batch 1 is listed, not held against it."""
    res = compare_cli(str(gate["v1"]), str(gate["slower2"]), "--format", "json", cwd=gate["v1"].parent)
    assert res.returncode == 1, res.stdout + res.stderr
    data = json.loads(res.stdout)
    (cfg,) = data["configs"]
    assert cfg["config_id"] == cfg["base_config_id"] == "gate-b2-p1-n1-w1" and cfg["matched_by"] == "id"
    metrics = {m["metric"]: m for m in cfg["metrics"]}
    assert metrics["throughput"]["verdict"] == "regression" and metrics["p50"]["verdict"] == "regression"
    assert 20 < metrics["p50"]["change_pct"] < 40
    assert data["only_in_base"] == ["gate-b1-p1-n1-w1"] and data["missing_in_new"] == []
    # a narrowed re-run of the same model passes the gate
    same = compare_cli(str(gate["v1"]), str(gate["only2"]), cwd=gate["v1"].parent)
    assert same.returncode == 0, same.stdout


def test_gate_different_models_exit_2_naming_the_fields(gate: dict[str, Path]) -> None:
    res = compare_cli(str(gate["v1"]), str(gate["hungry"]), cwd=gate["v1"].parent)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "model_name: 'gate' vs 'hungry'; model.target: 'models.py:Base' vs 'models.py:Hungry'" in res.stderr
    assert "--allow-different" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    allowed = compare_cli(str(gate["v1"]), str(gate["hungry"]), "--allow-different", "--format", "json",
                          cwd=gate["v1"].parent)  # fmt: skip
    assert allowed.returncode == 1, allowed.stdout + allowed.stderr
    data = json.loads(allowed.stdout)
    assert len(data["configs"]) == 2
    for cfg in data["configs"]:  # 20x slower: about -95%, and no interval below -100%
        thr = {m["metric"]: m for m in cfg["metrics"]}["throughput"]
        assert -97 < thr["change_pct"] < -92 and thr["verdict"] == "regression"
        for m in cfg["metrics"]:
            if m["ci_pct"] is not None:
                assert m["ci_pct"][0] > -100, m


def test_history_lists_three_labelled_runs_in_order_and_marks_the_slower(gate: dict[str, Path],
                                                                         tmp_path: Path) -> None:  # fmt: skip
    root = gate["v1"].parents[2]  # the output folder the three runs share
    res = run_cli("history", str(root), "--format", "json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert [r["label"] for r in data["runs"]] == ["v1", "v2", "v3 (30% slower)"]
    commit = gate["commit"].name
    assert all(r["commit"] == commit and r["commit_dirty"] is False for r in data["runs"])
    for r in data["runs"]:
        assert [c["config_id"] for c in r["configs"]] == ["gate-b1-p1-n1-w1", "gate-b2-p1-n1-w1"]
        assert all(c["status"] == "ok" and c["throughput_avg"] > 0 and c["latency_ms_p50"] > 0 for c in r["configs"])
    assert data["runs"][2]["significant_changes"] >= 2
    marked = {m["metric"] for c in data["runs"][2]["configs"] for m in c["changes"] if m["verdict"] == "regression"}
    assert "p50" in marked
    page = tmp_path / "history.html"
    table = run_cli("history", str(root / "gate"), "--html", str(page), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "v3 (30% slower)" in table.stdout and "run 3" in table.stdout
    html = page.read_text()
    assert 'id="chart-history-throughput"' in html and 'class="mark"' in html


def test_report_formats_and_the_results_schema(gate: dict[str, Path], tmp_path: Path) -> None:
    doc = json.loads(gate["v1"].read_text())
    assert doc["label"] == "v1" and doc["commit"] == gate["commit"].name and doc["started_at"] > 0
    assert [p["config_id"] for p in doc["plan"]] == ["gate-b1-p1-n1-w1", "gate-b2-p1-n1-w1"]
    assert [r["input_signature"] for r in doc["reports"]] == ["float32[1x4]", "float32[2x4]"]

    js = run_cli("report", str(gate["v1"]), "--format", "json", cwd=tmp_path)
    assert js.returncode == 0, js.stderr
    data = json.loads(js.stdout)
    assert data["label"] == "v1" and [r["batch_size"] for r in data["reports"]] == [1, 2]
    assert "latency_histogram" not in data["reports"][0]

    csv_out = run_cli("report", str(gate["v1"]), "--format", "csv", cwd=tmp_path)
    assert csv_out.returncode == 0, csv_out.stderr
    rows = list(csv.reader(io.StringIO(csv_out.stdout)))
    from npf_core.results.report import NEURONPERF_CSV_COLUMNS

    assert tuple(rows[0][: len(NEURONPERF_CSV_COLUMNS)]) == NEURONPERF_CSV_COLUMNS and len(rows) == 3
    assert rows[0][19] == "total_infs" and int(rows[1][19]) > 0

    md = run_cli("report", str(gate["v1"]), "--format", "markdown", cwd=tmp_path)
    assert md.returncode == 0 and md.stdout.count("\n| gate-b") == 2 and "label v1" in md.stdout

    schema = run_cli("schema", "--results", cwd=tmp_path)
    assert schema.returncode == 0, schema.stderr
    s = json.loads(schema.stdout)
    top = s["$defs"][s["$ref"].rsplit("/", 1)[1]]
    assert set(doc) <= set(top["properties"]) and set(top["required"]) <= set(doc)
    report_props = s["$defs"]["Report"]["properties"]
    for r in doc["reports"]:
        assert set(r) <= set(report_props), set(r) - set(report_props)
    assert report_props["throughput_avg"]["type"] == ["number", "null"]
