"""The HTML report of a real 2 x 2 x 2-batch sweep, opened in headless Chromium with
no network: no console error, no request leaves the file, every chart is drawn (its
series have a size in the DOM and their colours are in the screenshot), the table
sorts. Run by ``nox -s browser`` (which installs Debian's chromium)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from npf_core.results.store import resolve_results

from .cdp import count_colour, decode_png, page_url, visit, visit_offline

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ("chart-scaling", "chart-cdf", "chart-percentiles", "chart-windows", "chart-cost")

PROBE = """(() => {
  const boxes = {}, info = {};
  for (const svg of document.querySelectorAll("svg.chart")) {
    const r = svg.getBoundingClientRect();
    boxes[svg.id] = [Math.floor(r.x), Math.floor(r.y + window.scrollY), Math.ceil(r.width), Math.ceil(r.height)];
    const series = Array.from(svg.querySelectorAll(".series"));
    info[svg.id] = {
      series: series.length,
      drawn: series.filter(e => { const b = e.getBBox(); return b.width > 0 && b.height > 0; }).length,
      colours: Array.from(new Set(series.map(e => e.getAttribute("fill") !== "none" && e.getAttribute("fill")
                                               || e.getAttribute("stroke")))),
    };
  }
  const table = document.getElementById("summary");
  const col = Array.from(table.tHead.rows[0].cells).findIndex(c => c.textContent === "throughput/s");
  const read = () => Array.from(table.tBodies[0].rows).map(r => parseFloat(r.cells[col].getAttribute("data-v")));
  table.tHead.rows[0].cells[col].click();
  const asc = read();
  table.tHead.rows[0].cells[col].click();
  const desc = read();
  return {boxes, info, asc, desc, rows: table.tBodies[0].rows.length};
})()"""


def _hex(c: str) -> tuple[int, int, int]:
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


@pytest.fixture(scope="module")
def sweep_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``npf run`` of a 2 copies x 2 workers x 2 batch sizes sweep, then ``npf report --html``."""
    tmp = tmp_path_factory.mktemp("sweep")
    spec = {
        "name": "sweep",
        "model": {"framework": "python", "target": f"{ROOT / 'tests' / 'integration' / 'models.py'}:Sleepy"},
        "inputs": [{"shape": [1, 4], "dtype": "float32"}, {"shape": [4, 4], "dtype": "float32"}],
        "batch_sizes": [1, 4],
        "n_models": [1, 2],
        "workers_per_model": [1, 2],
        "duration_s": 0.6,
        "window_s": 0.1,
        "cost_per_hour": 1.25,
        "output": {"dir": "out", "reporters": ["json", "html"]},
    }
    (tmp / "spec.json").write_text(json.dumps(spec))

    def npf(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "npf_core", *args], cwd=tmp, capture_output=True, text=True,
                              timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip

    run = npf("run", "spec.json", "-q")
    assert run.returncode == 0, run.stderr
    assert (resolve_results(tmp / "out").parent / "report.html").is_file()  # the reporter's own page
    rep = npf("report", "out", "--html", "report.html")
    assert rep.returncode == 0, rep.stderr
    return tmp / "report.html"


def test_report_opens_offline_without_errors_and_draws_every_chart(sweep_report: Path) -> None:
    seen = visit_offline(sweep_report, PROBE, "report.png")
    probe = seen.evaluated
    assert probe["rows"] == 8
    assert probe["asc"] == sorted(probe["asc"]) and probe["desc"] == sorted(probe["asc"], reverse=True)
    assert set(probe["info"]) == set(CHARTS)
    for chart in CHARTS:
        info = probe["info"][chart]
        want = 8 if chart != "chart-scaling" else 2  # a line per configuration; scaling: a line per batch size
        assert info["series"] == want and info["drawn"] == want, (chart, info)
        x, y, w, h = probe["boxes"][chart]
        assert w > 300 and h > 150, (chart, probe["boxes"][chart])
        width, height, rows = decode_png(seen.clips[chart])
        assert (width, height) == (w, h)
        for colour in info["colours"]:  # every series' colour is on screen inside its chart
            assert count_colour(rows, (0, 0, width, height), _hex(colour)) >= 20, (chart, colour)


def test_the_harness_sees_errors_and_requests(tmp_path: Path) -> None:
    """The checks above can fail: a broken page is caught."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://192.0.2.1/x.png">'
                    '<script>console.error("boom"); notDefined();</script></body></html>')  # fmt: skip
    seen = visit(page_url(page), "1 + 1")
    assert seen.evaluated == 2
    assert any("boom" in e for e in seen.errors), seen.errors
    assert any("notDefined" in e for e in seen.errors), seen.errors
    assert "http://192.0.2.1/x.png" in seen.requests


def test_chromium_is_the_system_package() -> None:
    path = os.environ.get("NPF_CHROMIUM", "/usr/bin/chromium")
    assert shutil.which(path), f"{path} missing: run 'nox -s browser', which installs it with apt-get"


def test_a_capacity_report_draws_each_configurations_p99_curve_and_the_budget(tmp_path: Path) -> None:
    """Load mode "capacity": the chart of p99 against offered load has a curve per
    configuration and the budget's dashed red line, on screen."""
    spec = {
        "name": "capacity",
        "model": {"framework": "python", "target": f"{ROOT / 'tests' / 'integration' / 'models.py'}:Sleepy"},
        "inputs": [{"shape": [1, 4], "dtype": "float32"}],
        "n_models": [1],
        "workers_per_model": [1, 2],
        "load": {"mode": "capacity", "p99_ms": 10, "probe_s": 0.3, "probe_max_s": 0.6, "max_probes": 3},
        "output": {"dir": "out", "reporters": ["html"]},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    run = subprocess.run([sys.executable, "-m", "npf_core", "run", "spec.json", "-q"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)  # fmt: skip
    assert run.returncode == 0, run.stderr
    page = resolve_results(tmp_path / "out").parent / "report.html"
    seen = visit(page_url(page), PROBE)
    assert seen.errors == []
    info = seen.evaluated["info"]["chart-capacity"]
    assert info["series"] == info["drawn"] == 2, info
    width, height, rows = decode_png(seen.clips["chart-capacity"])
    assert count_colour(rows, (0, 0, width, height), _hex("#cc0000")) >= 20  # the budget line
    for colour in info["colours"]:
        assert count_colour(rows, (0, 0, width, height), _hex(colour)) >= 20, colour
