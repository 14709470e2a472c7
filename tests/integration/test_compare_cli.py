"""``npf compare`` and ``npf report --html`` on real runs of a tiny python model
(10 ms per call, two worker threads; the "slower" one 10% slower). Sleeping models:
on a busy machine a CPU-bound model's speed changes with the load, which would be a
real difference between the runs, not the one these tests are about."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from npf_core.results.stats import Histogram, StoredHistogram
from npf_core.results.store import read_results, resolve_results


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "npf_core", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)  # fmt: skip


MODELS = '''
import time

class Base:
    def __call__(self, *inputs):
        time.sleep(0.010)

class Slower:
    """10% slower than Base."""
    def __call__(self, *inputs):
        time.sleep(0.011)
'''


def _run(tmp: Path, name: str, model: str) -> Path:
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
        res = run_cli("run", f"{name}.json", "-q", "--output-dir", str(out), cwd=tmp)
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
        "slower": _run(tmp, "slower", "Slower"),
    }


def test_two_runs_of_the_same_model_show_no_significant_change(runs: dict[str, Path]) -> None:
    res = run_cli("compare", str(runs["base"]), str(resolve_results(runs["again"])), "--threshold", "5",
                  cwd=runs["base"].parent)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().splitlines()[-1].startswith("no significant change"), res.stdout
    # matched by the defining fields: the ids differ by the spec's name
    assert "base-i0-b1-p1-n1-w2 -> again-i0-b1-p1-n1-w2" in res.stdout


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
    ],
)
def test_usage_errors_exit_2(runs: dict[str, Path], tmp_path: Path, args: list[str], message: str) -> None:
    res = run_cli(*[a.format(base=runs["base"]) for a in args], cwd=tmp_path)
    assert res.returncode == 2, res.stdout + res.stderr
    assert message in res.stderr and "Traceback" not in res.stderr
