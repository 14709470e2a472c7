"""The first hour, round 2 (without processes): a failure points at the user's code,
once, grouped by error; figures keep their precision in the HTML page; ties within
noise are not winners; unstable windows come with advice; compare fits 80 columns;
notebooks get a table and a DataFrame; logging in library use goes through the
standard library (docs/troubleshooting.md, docs/results.md, docs/embedding.md)."""

from __future__ import annotations

import io
import logging
import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

import npf_core.plugin.events as ev
from npf_core.plugin.hookspecs import ReporterContext
from npf_core.results.failures import describe_error, group_failures, user_frames
from npf_core.results.report import ErrorInfo, Report
from npf_core.results.store import Results, spec_differences
from npf_core.results.table import PandasMissing, ReportList
from npf_core.results.units import fmt_latency, fmt_rate, latency_unit
from npf_core.spec.config import RunConfig
from npf_core.spec.schema import decode_spec
from npf_core.supervisor.sparing import LoadFailures
from npf_plugins.reporters.console import ConsoleReporter, best_lines, validity_notes
from npf_plugins.reporters.html import render_html

from .test_compare import make_report

SITE = "/usr/lib/python3/site-packages"
NPF = str(Path(__import__("npf_core").__file__).parent)


def traceback_text(user: str) -> str:
    """A traceback as a benchmarker sends it: npf's frames, a library's, then the user's."""
    return (
        "Traceback (most recent call last):\n"
        f'  File "{NPF}/child/benchmarker.py", line 118, in prepare\n'
        "    model = self.framework.load(job.model_kind, job.model_ref, self.ctx)\n"
        f'  File "{SITE}/torch/nn/modules/module.py", line 1500, in _call_impl\n'
        "    return forward_call(*args, **kwargs)\n"
        f'  File "{user}", line 8, in __init__\n'
        "    helper()\n"
        f'  File "{user}", line 4, in helper\n'
        "    import nonexistent_module_xyz\n"
        "ModuleNotFoundError: No module named 'nonexistent_module_xyz'\n"
    )


def test_the_users_frames_are_found_and_npf_library_and_python_frames_left_out(tmp_path: Path) -> None:
    user = str(tmp_path / "models.py")
    frames = user_frames(traceback_text(user))
    assert [(f.file, f.line, f.func) for f in frames] == [(user, 8, "__init__"), (user, 4, "helper")]
    assert frames[-1].text(tmp_path) == "models.py:4 in helper: import nonexistent_module_xyz"
    # only the innermost frames, and a SyntaxError's location is its last frame
    deep = "Traceback (most recent call last):\n" + "".join(
        f'  File "{user}", line {i}, in f{i}\n    f{i + 1}()\n' for i in range(1, 8)
    ) + f'  File "{user}", line 42\n    def broken(\n              ^\nSyntaxError: \'(\' was never closed\n'
    shown = user_frames(deep)
    assert len(shown) == 3 and shown[-1].line == 42 and shown[-1].code == "def broken("
    # chained exceptions: the frames of the last one
    chained = traceback_text(str(tmp_path / "first.py")) + "\nDuring handling of the above exception, another " \
        "exception occurred:\n\n" + traceback_text(user)
    assert {f.file for f in user_frames(chained)} == {user}
    assert user_frames("") == [] and user_frames(f'  File "{SITE}/x.py", line 1, in f\n    x\n') == []


def failed(config_id: str, message: str, stage: str = "load", same_as: str = "", n: int = 1,
           etype: str = "ValueError", **kw: Any) -> Report:  # fmt: skip
    return Report(model_name="m", n_models=n, workers_per_model=1, pipeline_size=1, batch_size=1, status="error",
                  config_id=config_id, valid=False,
                  error=ErrorInfo(type=etype, message=message, stage=stage, same_as=same_as, **kw))  # fmt: skip


def test_failures_are_grouped_by_error_whatever_the_copy_or_process() -> None:
    a = failed("m-n1", "copy 0 of 1 (pid 11): load: ValueError: bad")
    b = failed("m-n2", "copy 1 of 2 (pid 12): load: ValueError: bad", n=2)
    c = failed("m-n3", "copy 0 of 3 (pid 13): load: ValueError: other", n=3)
    d = failed("m-n4", "not tried: m-n1 failed in load (ValueError: bad)", same_as="m-n1")
    assert describe_error(b.error) == ("copy 1 of 2", "load: ValueError: bad")  # type: ignore[arg-type]
    groups = group_failures([a, b, c, d])
    assert [[r.config_id for r in g.reports] for g in groups] == [["m-n1", "m-n2"], ["m-n3"]]
    assert [r.config_id for r in groups[0].not_tried] == ["m-n4"]


def config(i: int, *, batch: int = 1, input_idx: int = 0) -> RunConfig:
    return RunConfig(config_id=f"m-i{input_idx}-b{batch}-n1-w{i}", model_name="m", framework="python",
                     model_kind="target", model_ref="m.py:M", model_filename="m.py:M", input_idx=input_idx,
                     batch_size=batch, n_models=1, workers_per_model=i, pipeline_size=1, start_method="fork",
                     device_type="cpu")  # fmt: skip


def test_a_first_load_failure_spares_the_models_other_configurations() -> None:
    plan = [config(i) for i in (1, 2, 3)]
    spare = LoadFailures(plan)
    first = failed(plan[0].config_id, "copy 0 of 1 (pid 1): load: ModuleNotFoundError: no x", traceback="tb",
                   etype="ModuleNotFoundError")  # fmt: skip
    assert spare.record(0, plan[0], first) == 2
    skipped = spare.not_tried(plan[1])
    assert skipped is not None and skipped.error is not None
    assert skipped.error.same_as == plan[0].config_id and skipped.error.message.startswith("not tried:")
    # an exception that may depend on the configuration (a device, a copy): only twice the same way
    spare = LoadFailures(plan)
    runtime = failed(plan[0].config_id, "copy 0 of 1 (pid 1): load: RuntimeError: no GPU", traceback="tb",
                     etype="RuntimeError")  # fmt: skip
    assert spare.record(0, plan[0], runtime) == 0 and spare.not_tried(plan[1]) is None
    again = failed(plan[1].config_id, "copy 0 of 1 (pid 2): load: RuntimeError: no GPU", traceback="tb",
                   etype="RuntimeError")  # fmt: skip
    assert spare.record(1, plan[1], again) == 1 and spare.not_tried(plan[2]) is not None
    # a crash or a hang may depend on the configuration: not taken as every configuration's
    spare = LoadFailures(plan)
    died = failed(plan[0].config_id, "benchmarker died", traceback="")
    died = Report(**{**died.to_dict(), "error": ErrorInfo(type="BenchmarkerDied", message="died", stage="load")})
    assert spare.record(0, plan[0], died) == 0 and spare.not_tried(plan[1]) is None


def test_a_warm_up_failure_spares_only_the_configurations_with_that_input_and_a_hint_names_the_spec(
    tmp_path: Path,
) -> None:
    plan = [config(1, batch=1), config(2, batch=1), config(1, batch=8, input_idx=1)]
    (tmp_path / "spec.json").write_text("{}")
    loaded = decode_spec({"model": {"target": "os:getcwd"}, "inputs": [{"shape": [1, 4]}, {"shape": [8, 4]}],
                          "batch_sizes": [1, 8]}, tmp_path)  # fmt: skip
    loaded.source = str(tmp_path / "spec.json")
    spare = LoadFailures(plan, loaded)
    report = spare.advise(failed(plan[0].config_id, "copy 0 of 1: warmup: ValueError: shapes", stage="warmup",
                                 traceback="tb"))  # fmt: skip
    assert report.error is not None and 'edit "inputs"' in report.error.hint and "spec.json" in report.error.hint
    assert spare.record(0, plan[0], report) == 1
    assert spare.not_tried(plan[1]) is not None and spare.not_tried(plan[2]) is None
    # once a configuration of the model loaded, a later load failure is that configuration's own
    spare = LoadFailures(plan, loaded)
    ok = Report(model_name="m", n_models=1, workers_per_model=1, pipeline_size=1, batch_size=1)
    spare.record(0, plan[0], ok)
    later = failed(plan[1].config_id, "x: load: ImportError: y", traceback="tb", etype="ImportError")
    assert spare.record(1, plan[1], later) == 0


def _reporter(verbosity: int = 1) -> tuple[ConsoleReporter, io.StringIO]:
    out = io.StringIO()
    console = Console(width=200, file=out, highlight=False)
    return ConsoleReporter(ReporterContext(output_dir=Path("."), spec=None, verbosity=verbosity,
                                           console=console)), out  # fmt: skip


def _fail_event(index: int, report: Report, total: int = 4) -> ev.ConfigFailed:
    return ev.ConfigFailed(index=index, total=total, config=config(index + 1), report=report)


def test_the_console_tells_a_failure_once_with_the_users_file_and_line(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    user = str(tmp_path / "models.py")
    rep, out = _reporter()
    rep.on_event(ev.RunStarted(run_id="r", configs=[config(i) for i in range(1, 5)], output_dir="/none", spec={}))
    message = "copy 0 of 1 (pid 7): load: ModuleNotFoundError: No module named 'nonexistent_module_xyz'"
    ids = [config(i).config_id for i in range(1, 5)]
    first = failed(ids[0], message, traceback=traceback_text(user))
    again = failed(ids[1], message.replace("pid 7", "pid 8"), traceback=traceback_text(user))
    skipped = [failed(ids[i], "not tried: ...", same_as=ids[0]) for i in (2, 3)]
    for i, r in enumerate([first, again, *skipped]):
        rep.on_event(_fail_event(i, r))
    rep.on_event(ev.RunFinished(reports=[first, again, *skipped], failed=4))
    text = out.getvalue()
    assert text.count("No module named 'nonexistent_module_xyz'") == 1, text
    assert text.count("models.py:4 in helper: import nonexistent_module_xyz") == 1
    assert "models.py:8 in __init__: helper()" in text
    assert f"[2/4] {ids[1]}: error in load: the same error as [1/4]" in text
    assert text.count("not tried") == 1 and "2 more configurations, which would fail as [1/4] did" in text
    assert "pid" not in text  # which process it was is no part of the error

    # replayed (npf report) or quiet: the errors come once, grouped, under the table
    for verbosity in (0, 1):
        rep, out = _reporter(verbosity)
        rep.on_event(ev.RunFinished(reports=[first, again, *skipped], failed=4))
        text = out.getvalue()
        assert text.count("No module named 'nonexistent_module_xyz'") == 1, text
        assert "models.py:4 in helper" in text and "the same error in 1 more: [2/4]" in text
        assert "not tried: 2 more configurations" in text


def rated(rate: float, low: float, high: float, p50: float = 1.0, **kw: Any) -> Report:
    return Report(model_name="m", n_models=1, workers_per_model=kw.pop("w", 1), pipeline_size=1, batch_size=1,
                  throughput_avg=rate, throughput_ci95_low=low, throughput_ci95_high=high, latency_ms_p50=p50,
                  latency_ms_p99=2 * p50, **kw)  # fmt: skip


def test_best_names_no_winner_within_noise() -> None:
    # 3.47 vs 3.51 µs with intervals that overlap: a tie; 5 µs with a tight interval: slower
    a = rated(1000, 990, 1010, p50=0.00347, latency_ms_p50_ci_low=0.00340, latency_ms_p50_ci_high=0.00356, w=1)
    b = rated(1005, 985, 1020, p50=0.00351, latency_ms_p50_ci_low=0.00344, latency_ms_p50_ci_high=0.00358, w=2)
    c = rated(500, 495, 505, p50=0.005, latency_ms_p50_ci_low=0.0049, latency_ms_p50_ci_high=0.0051, w=4)
    lines = best_lines([a, b, c])
    text = "\n".join(lines)
    assert lines[0].startswith("highest throughput: no clear winner: 2 configurations within noise"), text
    assert "1,005 inf/s  1 model x 2 workers" in text and "1,000 inf/s  1 model x 1 worker" in text
    assert "lowest p50: no clear winner: 2 configurations within noise" in text
    assert "500 inf/s" not in text and "5.00 µs" not in text
    # apart beyond their intervals: a winner
    clear = best_lines([rated(2000, 1990, 2010, w=2), rated(1000, 990, 1010)])
    assert clear[0].startswith("highest throughput: 2,000 inf/s  1 model x 2 workers")


def test_unstable_windows_come_with_advice() -> None:
    r = rated(1000, 900, 1100, valid=False, validity_reasons=["unstable: window throughput varies by 17%"],
              config_id="m-n1-w1")  # fmt: skip
    (note,) = validity_notes([r])
    assert "unstable" in note and "docs/troubleshooting.md" in note and "CPU frequency" in note


@pytest.mark.parametrize(
    "ms, text", [(0.003, "3.00 µs"), (0.0009999, "1.00 µs"), (0.99996, "1.00 ms"), (9.996, "10.0 ms"),
                 (0.000812, "812 ns"), (123456.0, "123 s")],
)  # fmt: skip
def test_latencies_keep_three_figures_in_a_unit_that_fits(ms: float, text: str) -> None:
    assert fmt_latency(ms) == text


def test_figures_lose_no_precision_in_the_html_page() -> None:
    rng = np.random.default_rng(5)
    reports = [make_report(rng, median_ms=0.003, sigma=0.2, config_id=f"m-w{i}", rate=144640.2 * i, rate_sd=0.0,
                           throughput_ci95_low=0.04, throughput_ci95_high=150000.0) for i in (1, 2)]  # fmt: skip
    reports.append(make_report(rng, median_ms=50.0, sigma=0.2, config_id="m-slow", rate=20.0))
    res = Results(path=Path("results.json"), reports=reports, spec={"name": "m", "_comment": ["x — y"]},
                  environment={"python": "3.11", "instance_type": None}, run_id="r", npf_version="0.1.0",
                  format_version=2)  # fmt: skip
    page = render_html(res)
    table = page[page.index('id="summary"') : page.index("</table>", page.index('id="summary"'))]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", table)
    assert "0.000" not in cells and "0.003" not in cells and "0.0" not in cells, cells
    assert any(c.endswith(" µs") for c in cells) and any(c.endswith(" ms") for c in cells)
    assert "144,640" in cells and "144,640.2" not in table and "0.04" in cells
    assert "instance_type None" not in page and ">None<" not in page
    assert "\\u2014" not in page and "x — y" in page
    percentiles = re.search(r'<svg class="chart" id="chart-percentiles".*?</svg>', page, re.S)
    assert percentiles is not None and "log scale" in percentiles.group(0)  # 3 µs and 50 ms on one axis
    narrow = render_html(Results(path=Path("r.json"), reports=reports[:2], spec={}, format_version=2))
    narrow_chart = re.search(r'<svg class="chart" id="chart-percentiles".*?</svg>', narrow, re.S)
    assert narrow_chart is not None and "log scale" not in narrow_chart.group(0) and "latency, µs" in narrow


def test_an_all_failed_run_says_so_in_the_html_and_shows_why(tmp_path: Path) -> None:
    user = str(tmp_path / "models.py")
    bad = Report.from_dict({**failed("m-n1", "copy 0 of 1: load: ModuleNotFoundError: nope",
                                     traceback=traceback_text(user)).to_dict(), "total_calls": 500})  # fmt: skip
    page = render_html(Results(path=Path("results.json"), reports=[bad], spec={}, format_version=2))
    assert "Every successful configuration passed" not in page and "No configuration succeeded" in page
    assert "models.py:4 in helper" in page and "ModuleNotFoundError: nope" in page
    assert re.search(r"<td[^>]*>500</td>", page)  # the calls that ran are counted


def test_latency_unit_suits_the_values() -> None:
    assert latency_unit([0.003, 0.004, 0.005]) == (1e-3, "µs")
    assert latency_unit([20.0, 30.0]) == (1.0, "ms")
    assert fmt_rate(144640.2) == "144,640" and fmt_rate(0.04) == "0.04"


def test_compare_fits_80_columns() -> None:
    from npf_core.results.compare import compare, render

    rng = np.random.default_rng(9)
    long_id = "a-rather-long-model-name-i0-b16-p1-n16-w2"
    base = [make_report(rng, config_id=long_id, rate=144640.0, median_ms=0.0035)]
    new = [make_report(rng, config_id=long_id, rate=150000.0, median_ms=0.0036, valid=False,
                       validity_reasons=["unstable: window throughput varies by 17% (coefficient of variation)"])]
    text = render(compare(base, new), "table")
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(f"{len(x)}: {x}" for x in lines)
    assert any(re.search(r"\d\.\d\d µs", line) for line in lines)  # a figure with its unit, on one line
    assert long_id in text and "unstable" in text


def test_resume_names_the_fields_that_differ() -> None:
    text = spec_differences({"duration_s": 2, "n_models": [1]}, {"duration_s": "auto", "n_models": [1]})
    assert text == 'duration_s (2 in the results, "auto" now: --duration-s)'
    assert spec_differences({"a": 1}, {"a": 1}) == ""


def test_a_report_list_is_an_html_table_and_a_dataframe_with_a_row_per_configuration() -> None:
    pandas = pytest.importorskip("pandas", reason="the tests session installs pandas (npf[pandas])")
    from npf_core.neuronperf.reports import neuronperf_report

    rng = np.random.default_rng(3)
    reports = ReportList([make_report(rng, config_id="m-w1", median_ms=0.003, rate=144640.2, rate_sd=0.0),
                          make_report(rng, config_id="m-w2"),
                          failed("m-w3", "copy 0 of 1: warmup: ValueError: bad shape", stage="warmup")])  # fmt: skip
    assert isinstance(reports, list) and len(reports) == 3
    html = reports._repr_html_()
    assert html.startswith("<table") and html.count("<tr>") == 4  # a heading and a row per configuration
    assert "144,640" in html and re.search(r">\d\.\d\d µs<", html) and "bad shape" in html
    df = reports.to_pandas()
    assert isinstance(df, pandas.DataFrame) and len(df) == 3
    assert list(df["config_id"]) == ["m-w1", "m-w2", "m-w3"] and list(df.columns[:5]) == [
        "model_name", "n_models", "workers_per_model", "pipeline_size", "batch_size"]
    assert df.loc[2, "error_message"] == "warmup: ValueError: bad shape" and "latency_histogram" not in df
    assert math.isclose(df.loc[0, "throughput_avg"], reports[0].throughput_avg)
    # NeuronPerf's report dicts (the front door's return value) the same way
    dicts = ReportList(neuronperf_report(r, 0.5) for r in reports[:2])
    assert "<table" in dicts._repr_html_() and len(dicts.to_pandas()) == 2


def test_to_pandas_without_pandas_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    with pytest.raises(PandasMissing, match="pip install pandas"):
        ReportList([]).to_pandas()


def test_library_logging_goes_to_the_npf_stdlib_logger_and_honours_the_hosts_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from npf_core.log import get_logger, logger_name

    assert logger_name("npf_core.supervisor.run") == "npf.supervisor.run"
    assert logger_name("npf_plugins.devices.gpu") == "npf.plugins.devices.gpu"
    log = get_logger("npf_core.supervisor.zygote_keeper")
    with caplog.at_level(logging.WARNING, logger="npf"):
        log.debug("zygote ready", pid=1)
        log.warning("configuration failed", config="c1")
    assert [r.getMessage() for r in caplog.records] == ["configuration failed (config=c1)"]
    assert caplog.records[0].name == "npf.supervisor.zygote_keeper"
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="npf"):
        log.debug("zygote ready", pid=1)
    assert [r.getMessage() for r in caplog.records] == ["zygote ready (pid=1)"]


def test_configure_writes_plain_text_or_json_and_colour_only_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from npf_core.log import configure, get_logger, unconfigure

    log = get_logger("npf_core.test")
    try:
        monkeypatch.delenv("NPF_LOG_FORMAT", raising=False)
        configure(0)
        log.info("hidden")
        log.warning("shown", n=2)
        err = capsys.readouterr().err
        assert "hidden" not in err and re.search(r"^\d\d:\d\d:\d\d warning +shown  n=2$", err, re.M), err
        assert "\x1b[" not in err and not err.lstrip().startswith("{")  # not a terminal: no colour, no JSON
        monkeypatch.setenv("NPF_LOG_FORMAT", "json")
        configure(1)
        log.info("as json", n=3)
        doc = json.loads(capsys.readouterr().err.strip())
        assert doc["event"] == "as json" and doc["n"] == 3 and doc["level"] == "info" and doc["logger"] == "npf.test"
    finally:
        unconfigure()
