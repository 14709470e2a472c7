"""The HTML page and its SVG charts, without a browser (the browser session opens it)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from npf_core.results.compare import compare
from npf_core.results.report import ErrorInfo, Report
from npf_core.results.store import Results
from npf_plugins.reporters.html import render_html
from npf_plugins.reporters.svg import Series, line_chart, log_ticks, nice_ticks

from .test_compare import make_report

CHARTS = ("chart-scaling", "chart-cdf", "chart-percentiles", "chart-windows")


def sweep(rng: np.random.Generator, **extra: object) -> list[Report]:
    out = []
    for bs in (1, 4):
        for n in (1, 2):
            for w in (1, 2):
                out.append(make_report(rng, config_id=f"m-b{bs}-p1-n{n}-w{w}", batch_size=bs, n_models=n,
                                       workers_per_model=w, rate=1000.0 * bs * n * w, **extra))  # fmt: skip
    return out


def results(reports: list[Report], format_version: int = 2) -> Results:
    return Results(path=Path("results.json"), reports=reports, spec={"name": "m"}, environment={"python": "3.11"},
                   run_id="r1", npf_version="0.1.0", format_version=format_version)  # fmt: skip


def svgs(page: str) -> dict[str, ElementTree.Element]:
    """Each chart parsed as XML (so a malformed chart fails here)."""
    found = {}
    for m in re.finditer(r'<svg class="chart".*?</svg>', page, re.S):
        el = ElementTree.fromstring(m.group(0))
        found[el.get("id")] = el
    return found


def test_a_sweep_page_has_every_chart_with_a_line_per_configuration() -> None:
    rng = np.random.default_rng(1)
    reports = sweep(rng, cost_per_1m_inf=0.5)
    page = render_html(results(reports))
    charts = svgs(page)
    assert set(charts) == {*CHARTS, "chart-cost"}
    ns = "{http://www.w3.org/2000/svg}"
    lines = {k: [e for e in v.iter() if e.get("class") == "series"] for k, v in charts.items()}
    assert len(lines["chart-scaling"]) == 2  # one per batch size
    for k in ("chart-cdf", "chart-percentiles", "chart-windows", "chart-cost"):
        assert len(lines[k]) == 8, k
    # the scaling line of batch 4 rises with copies x workers, as its throughput does
    path = next(e for e in lines["chart-scaling"] if e.get("data-series") == "batch 4")
    ys = [float(p.split(",")[1]) for p in re.findall(r"[ML]([\d.]+,[\d.]+)", path.get("d", ""))]
    assert len(ys) == 4  # 1x1, 1x2, 2x1, 2x2 at rates 1, 2, 2, 4 (SVG y grows downwards)
    assert ys[0] > max(ys[1], ys[2]) and min(ys[1], ys[2]) > ys[3] and abs(ys[1] - ys[2]) < 10
    assert all(e.tag == f"{ns}path" for e in lines["chart-cdf"])
    assert len(page) < 250_000
    assert "<script src" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_text_from_the_run_is_escaped_and_failures_are_listed() -> None:
    rng = np.random.default_rng(2)
    bad = Report(model_name="m", n_models=1, workers_per_model=1, pipeline_size=1, batch_size=1,
                 config_id="<img src=x onerror=alert(1)>", status="error", valid=False,
                 error=ErrorInfo(type="RuntimeError", message="<script>alert(2)</script>"))  # fmt: skip
    page = render_html(results([make_report(rng), bad]))
    assert "<img src=x" not in page and "<script>alert" not in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page
    assert "<h2>Errors</h2>" in page
    assert svgs(page)  # the good configuration is still drawn


def test_format_1_results_render_with_a_note_instead_of_latency_charts() -> None:
    rng = np.random.default_rng(3)
    reports = [Report.from_dict({**r.to_dict(), "latency_histogram": None}) for r in sweep(rng)]
    page = render_html(results(reports, format_version=1))
    charts = svgs(page)
    assert "chart-cdf" not in charts and "chart-percentiles" not in charts
    assert "chart-scaling" in charts and "no latency histograms" in page
    assert "cost unknown" in page


def test_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(0, 7300) == [0, 2000, 4000, 6000, 8000]
    assert nice_ticks(0.5, 0.52)[0] <= 0.5 and nice_ticks(0.5, 0.52)[-1] >= 0.52
    assert log_ticks(2, 20) == [2, 5, 10, 20]
    t = log_ticks(0.07, 4.1)
    assert t[0] <= 0.07 and t[-1] >= 4.1


def test_a_chart_survives_nan_and_a_single_point() -> None:
    svg = line_chart("c", "t", [Series("a", [(1.0, math.nan), (2.0, 3.0)]), Series("b", [])], x_label="x",
                     y_label="y")  # fmt: skip
    el = ElementTree.fromstring(svg)
    assert el.get("id") == "c" and "nan" not in svg.lower()


def test_a_series_of_one_point_is_drawn_with_an_extent() -> None:
    """A configuration that ended after one measurement window (a busy machine) still shows:
    its series is a dot, not a zero-length path the browser draws as nothing."""
    svg = line_chart("c", "t", [Series("one", [(0.5, 100.0)]), Series("two", [(0.5, 90.0), (1.0, 95.0)])],
                     x_label="x", y_label="y")  # fmt: skip
    ns = {"s": "http://www.w3.org/2000/svg"}
    paths = {p.get("data-series"): p for p in ElementTree.fromstring(svg).iterfind(".//s:path[@class='series']", ns)}
    assert set(paths) == {"one", "two"}
    one = paths["one"]
    assert one.get("fill") not in (None, "none")  # a filled mark
    assert re.search(r"[aAlLhHvV]", one.get("d", "")), one.get("d")  # it moves away from its start point


def test_compare_falls_back_to_the_reported_intervals_with_few_windows() -> None:
    rng = np.random.default_rng(4)
    a = make_report(rng, windows=2, throughput_ci95_low=950.0, throughput_ci95_high=1050.0)
    b = make_report(rng, windows=2, rate=800.0, throughput_ci95_low=760.0, throughput_ci95_high=840.0)
    m = compare([a], [b], threshold=5).configs[0].metrics[0]
    assert m.method == "z_intervals" and m.verdict == "regression"
    assert m.ci_pct is not None and m.ci_pct[1] < 0


@pytest.mark.parametrize("fmt", ["table", "markdown", "json"])
def test_comparison_renders_from_the_object(fmt: str) -> None:
    rng = np.random.default_rng(5)
    c = compare([make_report(rng)], [make_report(rng)])
    assert "no significant change" in c.render(fmt)
