"""Load mode "capacity" outside the search itself: the spec and its overrides, the
console's summary, the HTML chart and probe table, and compare."""

from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from rich.console import Console

from npf_core.errors import FlagError, SpecError
from npf_core.results.capacity import CapacityProbe
from npf_core.results.compare import compare
from npf_core.results.report import Report
from npf_core.results.store import Results
from npf_core.spec.overrides import prepare
from npf_core.spec.schema import Capacity, decode_spec
from npf_plugins.reporters.console import best_lines, print_summary, result_line
from npf_plugins.reporters.html import render_html

from .test_compare import make_report

SPEC = {"model": {"framework": "python", "target": "npf_core:__version__"}, "inputs": [{"shape": [1]}]}


# -- the spec -------------------------------------------------------------------


def test_a_capacity_load_decodes_with_its_defaults() -> None:
    load = decode_spec({**SPEC, "load": {"mode": "capacity", "p99_ms": 10}}).spec.load
    assert load == Capacity(p99_ms=10.0)
    assert (load.probe_s, load.probe_max_s, load.max_s, load.tolerance) == (2.0, 8.0, None, 0.1)


@pytest.mark.parametrize(
    ("load", "path"),
    [
        ({"mode": "capacity"}, "$.load"),  # the budget is required
        ({"mode": "capacity", "p99_ms": 0}, "$.load.p99_ms"),
        ({"mode": "capacity", "p99_ms": 10, "probe_s": 4, "probe_max_s": 2}, "$.load.probe_max_s"),
        ({"mode": "capacity", "p99_ms": 10, "tolerance": 1.5}, "$.load.tolerance"),
        ({"mode": "capacity", "p99_ms": 10, "probes": 3}, "$.load"),  # unknown field
    ],
)
def test_a_bad_capacity_block_names_its_field(load: dict[str, object], path: str) -> None:
    with pytest.raises(SpecError) as info:
        decode_spec({**SPEC, "load": load})
    assert info.value.path == path


def test_capacity_and_evaluate_do_not_mix() -> None:
    with pytest.raises(SpecError, match="evaluate"):
        decode_spec({**SPEC, "load": {"mode": "capacity", "p99_ms": 5}, "evaluate": {"metrics": ["accuracy"]}})
    once = {"model": SPEC["model"], "dataset": {"plugin": "synthetic", "loop": False},
            "load": {"mode": "capacity", "p99_ms": 5}}  # fmt: skip
    with pytest.raises(SpecError) as info:
        decode_spec(once)
    assert info.value.path == "$.dataset.loop"


def test_slo_p99_ms_turns_any_load_into_the_search_and_keeps_its_options() -> None:
    assert prepare(SPEC, slo_p99_ms=7).spec.load == Capacity(p99_ms=7.0)
    spec = {**SPEC, "load": {"mode": "capacity", "p99_ms": 50, "probe_s": 1, "max_s": 30}}
    assert prepare(spec, slo_p99_ms=7).spec.load == Capacity(p99_ms=7.0, probe_s=1.0, max_s=30.0)
    assert prepare({**SPEC, "load": {"mode": "poisson", "rate": 5}}, slo_p99_ms=7).spec.load == Capacity(p99_ms=7.0)
    with pytest.raises(FlagError, match="--slo-p99-ms"):
        prepare(SPEC, slo_p99_ms=-1)


# -- reports ----------------------------------------------------------------------


def probe(inf_s: float, p99: float, verdict: str, high: float | None = None) -> CapacityProbe:
    return CapacityProbe(mode="poisson", rate=inf_s, inf_s=inf_s, achieved_inf_s=inf_s, seconds=2.0, calls=2000,
                         p99_ms=p99, p99_ci_low_ms=p99 * 0.9, p99_ci_high_ms=high, over=20,
                         over_fraction=0.01, verdict=verdict)  # fmt: skip


def searched(rng: np.random.Generator, n: int, w: int, capacity: float | None, **fields: object) -> Report:
    closed = CapacityProbe(mode="closed", rate=500.0 * n * w, inf_s=500.0 * n * w, achieved_inf_s=500.0 * n * w,
                           seconds=2.0, calls=1000, p99_ms=2.5, verdict="bound")  # fmt: skip
    probes = [closed]
    if capacity is not None:
        probes += [probe(capacity * 0.8, 6.0, "pass", 7.0), probe(capacity * 1.2, 15.0, "fail"),
                   probe(capacity, 10.0, "undecided", 12.0)]  # fmt: skip
    fields = {"slo_p99_ms": 10.0, "slo_capacity_inf_s": capacity, "slo_search": "converged", "slo_probes": probes,
              "slo_capacity_ci_low": capacity and capacity * 0.8, "slo_capacity_ci_high": capacity and capacity * 1.2,
              **fields}  # fmt: skip
    return make_report(rng, config_id=f"m-i0-b1-p1-n{n}-w{w}", n_models=n, workers_per_model=w,
                       rate=500.0 * n * w, **fields)  # fmt: skip


def sweep() -> list[Report]:
    rng = np.random.default_rng(5)
    return [searched(rng, 1, 1, 260.0), searched(rng, 1, 2, 700.0), searched(rng, 2, 1, 500.0),
            searched(rng, 2, 2, 1040.0)]  # fmt: skip


def test_the_summary_names_the_configuration_with_the_highest_capacity() -> None:
    reports = sweep()
    # the closed loop's best is another configuration: capacity, not throughput, decides
    reports[1].throughput_avg = 10_000.0
    lines = best_lines(reports)
    line = next(x for x in lines if x.startswith("highest capacity"))
    assert line.startswith("highest capacity at p99 <= 10 ms: 1,040 inf/s with 2 models x 2 workers, batch 1")
    assert "between 832 and 1,248 inf/s" in line
    assert lines[0].startswith("highest throughput: 10,000 inf/s  1 model x 2 workers")
    assert "capacity at p99 <= 10 ms: 260 inf/s" in result_line(reports[0])


def test_the_table_gets_a_capacity_column_and_none_is_said_plainly() -> None:
    out = io.StringIO()
    print_summary(Console(file=out, width=200), sweep())
    text = out.getvalue()
    assert "capacity" in text.splitlines()[1] and "1,040" in text
    rng = np.random.default_rng(1)
    lines = best_lines([searched(rng, 1, 1, None), searched(rng, 1, 2, None)])
    assert "highest capacity at p99 <= 10 ms: none (no configuration kept its p99 within it)" in lines
    assert not [x for x in best_lines([make_report(rng)]) if "capacity" in x]  # other load modes: no line


def test_the_html_report_draws_p99_against_load_with_the_budget_line() -> None:
    reports = sweep()
    page = render_html(Results(path=Path("results.json"), reports=reports, spec={"name": "m"}, environment={},
                               run_id="r", npf_version="0", format_version=2))  # fmt: skip
    chart = ElementTree.fromstring(re.search(r'<svg class="chart" id="chart-capacity".*?</svg>', page, re.S)[0])
    ns = "{http://www.w3.org/2000/svg}"
    budget = [e for e in chart.iter(f"{ns}line") if e.get("class") == "hline"]
    assert len(budget) == 1 and budget[0].get("y1") == budget[0].get("y2")
    series = [e for e in chart.iter(f"{ns}path") if e.get("class") == "series"]
    assert [s.get("data-series") for s in series] == [r.config_id for r in reports]
    # each curve rises with the offered load (SVG y grows downwards), through the budget line
    for s in series:
        ys = [float(p.split(",")[1]) for p in re.findall(r"[ML]([\d.]+,[\d.]+)", s.get("d", ""))]
        assert len(ys) == 3 and ys[0] > ys[1] > ys[2]
        assert ys[0] > float(budget[0].get("y1") or 0) > ys[2]
    assert 'id="probes"' in page and page.count("<td>undecided</td>") == 0
    assert page.count('class="l">undecided</td>') == 4
    assert "highest capacity at p99 &lt;= 10 ms: <b>1,040 inf/s</b> with m-i0-b1-p1-n2-w2" in page
    # a run of another load mode has no capacity chart and no probe table
    plain = render_html(Results(path=Path("r.json"), reports=[make_report(np.random.default_rng(3))], spec={},
                                environment={}, run_id="r", npf_version="0", format_version=2))  # fmt: skip
    assert "chart-capacity" not in plain and 'id="probes"' not in plain


def test_compare_treats_a_lower_capacity_as_a_regression() -> None:
    rng = np.random.default_rng(9)
    base = [searched(rng, 1, 1, 1000.0, slo_capacity_ci_low=980.0, slo_capacity_ci_high=1020.0)]
    worse = [searched(rng, 1, 1, 800.0, slo_capacity_ci_low=780.0, slo_capacity_ci_high=820.0)]
    worse[0].throughput_windows = base[0].throughput_windows  # only the capacity changed
    worse[0].latency_histogram = base[0].latency_histogram
    c = compare(base, worse)
    (cap,) = [m for m in c.configs[0].metrics if m.metric == "capacity"]
    assert cap.verdict == "regression" and cap.change_pct == pytest.approx(-20.0)
    assert c.exit_code == 1 and [m.metric for _, m in c.regressions] == ["capacity"]
    assert compare(worse, base).exit_code == 0  # higher is better
    # another budget: not comparable, so not tested
    other = [searched(rng, 1, 1, 800.0, slo_p99_ms=20.0, slo_capacity_ci_low=780.0, slo_capacity_ci_high=820.0)]
    (cap,) = [m for m in compare(base, other).configs[0].metrics if m.metric == "capacity"]
    assert cap.verdict == "not tested"
    # runs without the search compare as before: three metrics
    assert [m.metric for m in compare([make_report(rng)], [make_report(rng)]).configs[0].metrics] == [
        "throughput", "p50", "p99"]  # fmt: skip


def test_a_report_with_probes_round_trips_through_results_json() -> None:
    r = sweep()[0]
    back = Report.from_dict(json.loads(json.dumps(r.to_dict(), allow_nan=False)))
    assert back.slo_probes == r.slo_probes and back.slo_capacity_inf_s == 260.0
    assert math.isclose(back.slo_capacity_ci_high or 0.0, 312.0)
