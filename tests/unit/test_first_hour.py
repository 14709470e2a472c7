"""What a new user reads: how figures are printed, the table at 80 columns, the best
configurations, the ok? remedy; where results go and how they are found; sweep
flags; the starter spec (docs/results.md, docs/cli.md)."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pytest
from rich.console import Console

from npf_core.errors import ResultsError, SpecError, UserError
from npf_core.results.report import Report
from npf_core.results.store import new_run_folder, resolve_results, set_latest, write_atomic
from npf_core.spec.overrides import parse_counts, sweep_overrides
from npf_core.spec.schema import AutoDuration, decode_spec, duration_bounds
from npf_core.spec.starter import starter_spec, write_starter
from npf_plugins.reporters.console import best_lines, fmt_ms, fmt_rate, remedy, report_table, status_of


@pytest.mark.parametrize(
    "value, text",
    [(21.665, "21.7"), (217.4, "217"), (31133.3, "31,133"), (3.14159, "3.14"), (0.5, "0.5"), (1234567.8, "1,234,568"),
     (math.nan, "-"), (None, "-")],
)  # fmt: skip
def test_throughput_keeps_three_significant_figures_and_every_integer_digit(value: float, text: str) -> None:
    assert fmt_rate(value) == text


@pytest.mark.parametrize(
    "ms, text",
    [(0.045416, "45.4 µs"), (0.1686, "169 µs"), (0.001, "1.00 µs"), (0.0005, "500 ns"), (4.097, "4.10 ms"),
     (168.6, "169 ms"), (2500.0, "2.50 s"), (math.nan, "-")],
)  # fmt: skip
def test_latency_has_three_significant_figures_in_a_unit_that_fits(ms: float, text: str) -> None:
    assert fmt_ms(ms) == text


def report(**kw: object) -> Report:
    base: dict[str, object] = dict(
        model_name="m", n_models=1, workers_per_model=1, pipeline_size=1, batch_size=8,
        throughput_avg=1000.0, latency_ms_p50=1.0, latency_ms_p99=2.0, total_calls=5000, total_s=5.0,
        model_filename="a/very/long/path/to/the/model/file/models.py:SomeLongModelName", config_id="m-n1-w1",
    )  # fmt: skip
    base.update(kw)
    return Report(**base)  # type: ignore[arg-type]


def test_status_says_ok_question_mark_when_figures_are_not_valid() -> None:
    assert status_of(report()) == "ok"
    assert status_of(report(valid=False, validity_reasons=["x"])) == "ok?"
    assert status_of(report(status="error")) == "error"


def render(table: object, width: int) -> list[str]:
    import io

    console = Console(width=width, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text().splitlines()


def test_at_80_columns_the_figures_stay_whole_and_the_model_column_goes() -> None:
    rows = [report(throughput_avg=1234567.8, latency_ms_p50=0.0454, latency_ms_p99=1234.5, n_models=16,
                   workers_per_model=2, valid=False)]  # fmt: skip
    lines = render(report_table(rows, width=80), 80)
    assert all(len(line) <= 80 for line in lines)
    text = "\n".join(lines)
    for whole in ("1,234,568", "45.4 µs", "1.23 s", "ok?", "inf/s", "p50", "p99", "status", "models", "workers"):
        assert whole in text, (whole, text)
    assert "…" not in text and "SomeLongModelName" not in text
    wide = "\n".join(render(report_table(rows, width=160), 160))
    assert "SomeLongModelName" in wide and "pipeline" in wide


def test_best_configurations_with_and_without_a_latency_budget() -> None:
    rows = [
        report(throughput_avg=100.0, latency_ms_p50=0.5, latency_ms_p99=1.0, n_models=1),
        report(throughput_avg=900.0, latency_ms_p50=3.0, latency_ms_p99=40.0, n_models=4),
        report(throughput_avg=500.0, latency_ms_p50=1.0, latency_ms_p99=9.0, n_models=2),
        report(status="error", throughput_avg=math.nan, n_models=8),
    ]
    lines = best_lines(rows)
    assert lines[0].startswith("highest throughput: 900 inf/s  4 models x 1 worker, batch 8")
    assert lines[1].startswith("lowest p50: 500 µs  1 model x 1 worker")
    assert len(lines) == 2
    budget = best_lines(rows, latency_budget_ms=10)
    assert budget[2].startswith("best within p99 <= 10.0 ms: 500 inf/s  2 models x 1 worker")
    assert "none" in best_lines(rows, latency_budget_ms=0.1)[2]
    assert best_lines([report(status="error", throughput_avg=math.nan)]) == []


def test_the_ok_question_mark_remedy_is_the_duration_that_reaches_1000_calls() -> None:
    # 66 calls in 3 s (ResNet-18 on a CPU): 1,000 calls (+10%) take 50 s
    text = remedy(report(total_calls=66, total_s=3.0))
    assert text.startswith("duration_s 50 would reach 1,000 calls") and '"auto"' in text


# -- results layout ---------------------------------------------------------------


def test_each_run_has_its_folder_and_the_resolver_finds_it(tmp_path: Path) -> None:
    root = tmp_path / "npf-results"
    a1 = new_run_folder(root, "alpha", "aaaaaa111111", when=1_000_000)
    a2 = new_run_folder(root, "alpha", "bbbbbb222222", when=1_000_100)
    b1 = new_run_folder(root, "beta/1", "cccccc333333")
    for f in (a1, a2, b1):
        write_atomic(f / "results.json", b"{}")
    set_latest(a2)
    assert a1 != a2 and a1.parent == a2.parent == root / "alpha" and b1.parent == root / "beta-1"
    assert resolve_results(a1 / "results.json") == a1 / "results.json"
    assert resolve_results(a1) == a1 / "results.json"
    assert resolve_results(root / "alpha").resolve() == (a2 / "results.json").resolve()
    assert resolve_results(root / "beta-1") == b1 / "results.json"  # no link yet: the newest run
    with pytest.raises(ResultsError, match="several specs.*alpha, beta-1"):
        resolve_results(root)
    with pytest.raises(ResultsError, match="not a file or folder"):
        resolve_results(tmp_path / "nothing")
    only = tmp_path / "only"
    write_atomic(new_run_folder(only, "x", "dddddd444444") / "results.json", b"{}")
    assert resolve_results(only).name == "results.json"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_results_files_get_the_mode_umask_gives(tmp_path: Path, umask: int, mode: int) -> None:
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "r.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == mode


# -- spec: duration "auto", latency budget, comments -------------------------------


def spec(**kw: object) -> dict[str, object]:
    return {"model": {"target": "os:getcwd"}, "inputs": [{"shape": [1, 4]}], **kw}


def test_duration_auto_and_its_bounds() -> None:
    assert duration_bounds(30) == (30.0, 30.0, None)
    assert duration_bounds("auto") == (2.0, 120.0, 1000)
    assert duration_bounds({"max_s": 10, "calls": 50}) == (2.0, 10.0, 50)
    loaded = decode_spec(spec(duration_s={"min_s": 1, "max_s": 5}, latency_budget_ms=20, _comment=["hi"]))
    assert loaded.spec.duration_s == AutoDuration(min_s=1, max_s=5)
    assert loaded.spec.max_duration_s == 5 and loaded.spec.latency_budget_ms == 20
    with pytest.raises(SpecError, match=r"\$\.duration_s: 'soon' is not a duration"):
        decode_spec(spec(duration_s="soon"))
    with pytest.raises(SpecError, match=r"\$\.latency_budget_ms"):
        decode_spec(spec(latency_budget_ms=0))


def test_a_wrong_attribute_of_a_model_file_is_a_spec_error(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("import numpy as np\n\nclass TinyModel:\n    pass\n")
    with pytest.raises(SpecError, match="defines no 'Tinymodel'.*did you mean 'TinyModel'"):
        decode_spec(spec(model={"target": "m.py:Tinymodel"}), tmp_path)
    decode_spec(spec(model={"target": "m.py:TinyModel"}), tmp_path)
    decode_spec(spec(model={"target": "m.py:np"}), tmp_path)  # an imported name is defined too
    (tmp_path / "dyn.py").write_text("from os import *\n")
    decode_spec(spec(model={"target": "dyn.py:anything"}), tmp_path)  # cannot tell: left to load time


# -- sweep flags ----------------------------------------------------------------------


def test_count_flags() -> None:
    assert parse_counts("1,max", "--n-models", allow_max=True) == [1, "max"]
    with pytest.raises(UserError, match="--workers: '0' is not allowed"):
        parse_counts("1,0", "--workers")
    with pytest.raises(UserError, match="--workers: 'max' is not allowed"):
        parse_counts("max", "--workers")


def test_batch_sizes_narrow_the_spec_or_reshape_its_one_input(tmp_path: Path) -> None:
    two = tmp_path / "two.json"
    two.write_text(json.dumps(spec(inputs=[{"shape": [1, 4]}, {"shape": [8, 4]}], batch_sizes=[1, 8])))
    assert sweep_overrides(two, batch_sizes="8") == {"batch_sizes": [8], "inputs": [{"shape": [8, 4]}]}
    with pytest.raises(UserError, match="--batch-sizes: batch size 4 is not in the spec"):
        sweep_overrides(two, batch_sizes="4")
    one = tmp_path / "one.json"
    one.write_text(json.dumps(spec(inputs=[[{"shape": [2, 4]}, {"shape": [2], "dtype": "int64"}]], batch_sizes=2)))
    got = sweep_overrides(one, batch_sizes="1,16", n_models="1", workers="2", device="cpu")
    assert got["batch_sizes"] == [1, 16]
    assert [[i["shape"] for i in entry] for entry in got["inputs"]] == [[[1, 4], [1]], [[16, 4], [16]]]
    assert got["n_models"] == [1] and got["workers_per_model"] == [2] and got["device"] == "cpu"


# -- npf init ---------------------------------------------------------------------------


def test_init_writes_a_spec_the_decoder_accepts(tmp_path: Path) -> None:
    (tmp_path / "net.py").write_text(
        "import torch\n\nclass Helper:\n    pass\n\nclass Net(torch.nn.Module):\n    def forward(self, x):\n"
        "        return x\n"
    )
    (tmp_path / "plain.py").write_text("def make():\n    return len\n\nclass Model:\n    def __call__(self, x):\n"
                                       "        return x\n")  # fmt: skip
    assert starter_spec(tmp_path / "net.py")["model"] == {"framework": "torch", "target": "net.py:Net"}
    assert starter_spec(tmp_path / "plain.py")["model"] == {"framework": "python", "target": "plain.py:Model"}
    path = write_starter(tmp_path / "plain.py")
    data = json.loads(path.read_text())
    assert path == tmp_path / "spec.json" and data["_comment"] and data["duration_s"] == "auto"
    decode_spec(path.read_bytes(), tmp_path)  # valid as written (the _comment is accepted)
    with pytest.raises(UserError, match="exists.*--force"):
        write_starter(tmp_path / "plain.py")
    write_starter(tmp_path / "plain.py", force=True)
    with pytest.raises(UserError, match="cannot tell the framework"):
        (tmp_path / "w.bin").write_bytes(b"")
        starter_spec(tmp_path / "w.bin")


# -- the live display ---------------------------------------------------------------------


def test_the_live_view_shows_the_configuration_time_left_and_throughput() -> None:
    import io
    import time

    from npf_plugins.reporters.console import LiveView, Running

    v = LiveView()
    run = v.running[1] = Running("[2/4] tiny-model-b8-p1-n1-w2", 10.0)
    v.remaining_configs, v.per_config_s = 2, 12.0
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(v)
    text = console.export_text()
    assert "[2/4] tiny-model-b8-p1-n1-w2" in text and "loading" in text
    assert "sweep: 2 more configurations, about 34 s left" in text  # 10 s here + 2 x 12 s
    run.measuring_since, run.elapsed_s, run.throughput = time.monotonic(), 4.0, 31133.3
    console.print(v)
    text = console.export_text()
    assert "31,133 inf/s  6 s left" in text and "about 30 s left" in text
    v.remaining_configs = 0
    console.print(v)
    assert "sweep: the last configuration, about 6 s left" in console.export_text()


def _event(kind: str, index: int, **kw: object) -> object:
    import npf_core.plugin.events as ev
    from npf_core.spec.config import RunConfig

    config = RunConfig(config_id=f"m-n1-w{index + 1}", model_name="m", model_ref="m.py:M", model_kind="target",
                       model_filename="m.py:M", device_type="cpu",
                       framework="python", input_idx=0, batch_size=1, n_models=1, workers_per_model=index + 1,
                       pipeline_size=1, start_method="fork")  # fmt: skip
    return getattr(ev, kind)(index=index, total=4, config=config, **kw)


def test_the_live_view_shows_every_configuration_running_at_once() -> None:
    """The ray launcher runs several configurations at once: each has its lines on the
    live display (not only the newest), and each leaves it when it ends."""
    import io

    import npf_core.plugin.events as ev
    from npf_core.plugin.hookspecs import ReporterContext
    from npf_plugins.reporters.console import ConsoleReporter

    console = Console(width=100, file=io.StringIO(), force_terminal=True)
    rep = ConsoleReporter(ReporterContext(output_dir=Path("."), spec=None, verbosity=1, console=console))
    rep.on_event(ev.RunStarted(run_id="r", configs=[], output_dir="/nonexistent", spec={"duration_s": 5}))
    for i in range(3):
        rep.on_event(_event("ConfigStarted", i))
    rep.on_event(_event("Progress", 1, elapsed_s=1.0, duration_s=5.0, completed=10, throughput=1234.0))

    def drawn() -> str:
        out = Console(width=100, record=True, file=io.StringIO())
        out.print(rep.view)
        return out.export_text()

    text = drawn()
    for head in ("[1/4] m-n1-w1", "[2/4] m-n1-w2", "[3/4] m-n1-w3"):
        assert head in text, text
    assert "1,234 inf/s" in text and "sweep: 1 more configuration," in text
    done = Report(model_name="m", n_models=1, workers_per_model=2, pipeline_size=1, batch_size=1, config_id="m-n1-w2")
    rep.on_event(_event("ConfigFinished", 1, report=done))
    text = drawn()
    assert "[2/4] m-n1-w2" not in text and "[1/4] m-n1-w1" in text and "[3/4] m-n1-w3" in text
    rep.close()
