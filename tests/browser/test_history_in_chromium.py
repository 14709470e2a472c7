"""``npf history --html`` of three labelled real runs of one spec (the third 30%
slower), opened in headless Chromium with no network: no console error, no request
leaves the file, a trend chart per figure with a line per configuration (drawn: its
colour on screen), the runs named on the axis by their labels, and a ring on the
slower run's points. Run by ``nox -s browser`` (which installs Debian's chromium)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .cdp import count_colour, decode_png, visit_offline

pytestmark = pytest.mark.browser

FIGURES = ("throughput", "p50", "p99")
CONFIGS = 2

MODELS = '''
import os
import time

DELAY = float(os.environ.get("DELAY", "0.004"))

class Model:
    def __call__(self, *inputs):
        time.sleep(DELAY)
'''

PROBE = """(() => {
  const boxes = {}, info = {};
  for (const svg of document.querySelectorAll("svg.chart")) {
    const r = svg.getBoundingClientRect();
    boxes[svg.id] = [Math.floor(r.x), Math.floor(r.y + window.scrollY), Math.ceil(r.width), Math.ceil(r.height)];
    const series = Array.from(svg.querySelectorAll(".series"));
    const rings = Array.from(svg.querySelectorAll("circle.mark"));
    info[svg.id] = {
      series: series.length,
      drawn: series.filter(e => { const b = e.getBBox(); return b.width > 0 && b.height > 0; }).length,
      colours: Array.from(new Set(series.map(e => e.getAttribute("stroke")))),
      rings: rings.map(e => e.querySelector("title").textContent),
      ticks: Array.from(svg.querySelectorAll("text")).map(t => t.textContent),
    };
  }
  const runs = Array.from(document.querySelectorAll("#runs tbody tr")).map(r => r.cells[2].textContent);
  const marked = Array.from(document.querySelectorAll("#runs tbody tr.marked")).map(r => r.cells[0].textContent);
  return {boxes, info, runs, marked};
})()"""


def _hex(c: str) -> tuple[int, int, int]:
    return int(c[1:3], 16), int(c[3:5], 16), int(c[5:7], 16)


@pytest.fixture(scope="module")
def history_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three labelled ``npf run``s of a 2-configuration sweep into one folder, then
    ``npf history --html``."""
    tmp = tmp_path_factory.mktemp("history")
    (tmp / "models.py").write_text(MODELS)
    spec = {
        "name": "trend",
        "model": {"framework": "python", "target": "models.py:Model"},
        "inputs": [{"shape": [1, 4], "dtype": "float32"}],
        "n_models": [1],
        "workers_per_model": [1, 2],
        "duration_s": 1.0,
        "window_s": 0.1,
        "output": {"dir": "out", "reporters": ["json"]},
    }
    (tmp / "spec.json").write_text(json.dumps(spec))

    def npf(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "npf_core", *args], cwd=tmp, capture_output=True, text=True,
                              timeout=300, stdin=subprocess.DEVNULL, env={**os.environ, **env})  # fmt: skip

    for label, delay in (("v1", "0.004"), ("v2", "0.004"), ("v3 slower", "0.0052")):
        run = npf("run", "spec.json", "-q", "--label", label, DELAY=delay)
        assert run.returncode == 0, run.stderr
    res = npf("history", "out", "--html", "history.html")
    assert res.returncode == 0, res.stderr
    return tmp / "history.html"


def test_history_opens_offline_without_errors_and_draws_every_trend(history_page: Path) -> None:
    seen = visit_offline(history_page, PROBE, "history.png")
    probe = seen.evaluated
    assert probe["runs"] == ["v1", "v2", "v3 slower"]
    assert set(probe["info"]) == {f"chart-history-{f}" for f in FIGURES}
    for fig in FIGURES:
        chart = f"chart-history-{fig}"
        info = probe["info"][chart]
        assert info["series"] == CONFIGS and info["drawn"] == CONFIGS, (chart, info)
        assert {"v1", "v2", "v3 slower"} <= set(info["ticks"]), info["ticks"]  # the runs, by label
        x, y, w, h = probe["boxes"][chart]
        assert w > 300 and h > 150, (chart, probe["boxes"][chart])
        width, height, rows = decode_png(seen.clips[chart])
        assert (width, height) == (w, h)
        for colour in info["colours"]:  # each configuration's line is on screen inside its chart
            assert count_colour(rows, (0, 0, width, height), _hex(colour)) >= 20, (chart, colour)
    # the slower run is ringed on the p50 trend (a 30% slower sleep is always found), against v2
    rings = [r for r in probe["info"]["chart-history-p50"]["rings"] if "against run 2 (v2)" in r]
    assert rings and all("regression" in r for r in rings), probe["info"]["chart-history-p50"]["rings"]
    assert "3" in probe["marked"]
