"""NeuronPerf's API (``import npf_core as npf``) on the engine, without torch: plain
callables and numpy inputs, real benchmarker processes."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from fd_models import DictModel, Doubler, TwoInputs, read_records

import npf_core as npf
from npf_core.errors import SpecError, UnknownPluginError, UserError

SHORT = 0.4
#: the 18 keys NeuronPerf's reports have beyond npf's Report fields
NEURONPERF_EXTRA = (
    "NeuronPerf_version", "n_devices", "stats_interval", "n_stats_intervals", "env_setup_avg_ms", "setup_avg_ms",
    "cpu_percent_p0", "cpu_percent_p90", "cpu_percent_p95", "cpu_percent_p99", "cpu_percent_p100",
    "mem_percent_p0", "mem_percent_p90", "mem_percent_p95", "mem_percent_p99", "mem_percent_p100",
    "throughput_hist", "e2e_durations_ms",
)  # fmt: skip


def test_import_npf_core_as_npf_leaves_torch_alone() -> None:
    code = (
        "import sys, npf_core as npf\n"
        "assert npf.torch.benchmark and npf.cpu.benchmark and npf.tensorflow and npf.mxnet\n"
        "assert npf.model_index.create and npf.get_reports and npf.Timer\n"
        "print('torch' in sys.modules)\n"
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_default_sweep_gives_two_reports_per_configuration(record: Path) -> None:
    """One input, n_models=1, workers_per_model left out: 1 and 2 workers."""
    inputs = np.ones((1, 4), dtype=np.float32)
    reports = npf.cpu.benchmark(Doubler, inputs, n_models=1, duration=SHORT, verbosity=0)
    assert [r["workers_per_model"] for r in reports] == [1, 2]
    for r in reports:
        assert isinstance(r, dict) and r["status"] == "finished"
        assert "throughput_avg" in r and r["throughput_avg"] > 0
        assert r["total_infs"] > 0 and r["model_filename"] == "Doubler"
        for key in NEURONPERF_EXTRA:
            assert key in r, key
        assert r["n_devices"] == 1 and r["stats_interval"] == 0.5
        json.dumps(r, allow_nan=False)
    # every copy instantiated the class in a benchmarker process, not here
    pids = {e["pid"] for e in read_records(record) if e["event"] == "init"}
    assert pids and os.getpid() not in pids


def test_multiprocess_false_runs_in_this_process(record: Path) -> None:
    reports = npf.cpu.benchmark(Doubler, np.ones(3), n_models=2, workers_per_model=1, duration=SHORT,
                                multiprocess=False, verbosity=0)  # fmt: skip
    assert len(reports) == 1 and reports[0]["status"] == "finished"
    assert reports[0]["multiprocess"] is False and reports[0]["multiinterpreter"] is False
    inits = [e for e in read_records(record) if e["event"] == "init"]
    assert len(inits) == 2 and {e["pid"] for e in inits} == {os.getpid()}


def test_multiinterpreter_true_uses_fresh_interpreters(record: Path) -> None:
    reports = npf.cpu.benchmark(Doubler, np.ones(3), n_models=2, workers_per_model=1, duration=SHORT,
                                multiinterpreter=True, verbosity=0)  # fmt: skip
    assert reports[0]["status"] == "finished", reports[0].get("error")
    assert reports[0]["multiinterpreter"] is True and reports[0]["multiprocess"] is True
    inits = [e for e in read_records(record) if e["event"] == "init"]
    assert len(inits) == 2 and os.getpid() not in {e["pid"] for e in inits}
    import psutil

    # a fresh interpreter is not a fork of this process: its parent is us, and it ran
    # python -m npf_core.child.benchmarker (its command line is gone with it, so check the
    # pid is new and the report's start method instead)
    assert reports[0]["start_method"] == "fresh"
    assert all(not psutil.pid_exists(e["pid"]) for e in inits)


def test_multi_input_tuples_and_lists_of_tuples(record: Path) -> None:
    """A tuple is one multi-input example; a list of tuples is several inputs."""
    inputs = [(np.ones((1, 3)), np.ones((1, 3))), (np.ones((4, 3)), np.ones((4, 3)))]
    reports = npf.cpu.benchmark(TwoInputs, inputs, batch_sizes=[1, 4], n_models=1, workers_per_model=1,
                                duration=SHORT, verbosity=0)  # fmt: skip
    assert [r["batch_size"] for r in reports] == [1, 4]
    assert all(r["status"] == "finished" for r in reports)
    shapes = sorted(e["shapes"] for e in read_records(record) if e["event"] == "call")
    assert shapes == [[[1, 3], [1, 3]], [[4, 3], [4, 3]]]


def test_pre_and_postprocess_lambdas_and_closures(record: Path) -> None:
    from fd_models import record as rec

    factor = 5

    def post(out):  # a closure
        rec(event="post", value=float(out.sum()))
        return out.argmax()

    reports = npf.cpu.benchmark(Doubler, np.ones((1, 2)), n_models=1, workers_per_model=1, duration=SHORT,
                                preprocess_fn=lambda x: x * factor, postprocess_fn=post, verbosity=0)  # fmt: skip
    r = reports[0]
    assert r["status"] == "finished"
    assert r["preprocess_avg_ms"] is not None and r["postprocess_avg_ms"] is not None
    values = {e["value"] for e in read_records(record) if e["event"] == "post"}
    assert values == {20.0}  # ones(1, 2) * 5, doubled, summed


def test_dict_inputs_reach_the_model_as_a_dict() -> None:
    feed = {"input_0": np.zeros((2, 1)), "input_1": np.ones((2, 3))}
    reports = npf.cpu.benchmark(DictModel, [feed], batch_sizes=2, n_models=1, workers_per_model=1,
                                duration=SHORT, verbosity=0)  # fmt: skip
    assert reports[0]["status"] == "finished", reports[0].get("error")
    assert reports[0]["total_infs"] % 2 == 0 and reports[0]["total_infs"] > 0


def test_generic_benchmark_with_load_fn_keyword_and_positional(record: Path) -> None:
    from fd_models import record as rec

    def load_fn(model_filename, device_id=0):
        rec(event="load", filename=model_filename, device_id=device_id)
        return lambda x: x

    reports = npf.benchmark(load_fn=load_fn, model_filename="dummy.bin", inputs=[[1]], n_models=2,
                            workers_per_model=1, duration=SHORT, verbosity=0)  # fmt: skip
    assert len(reports) == 1 and reports[0]["status"] == "finished"
    assert reports[0]["model_filename"] == "dummy.bin"
    loads = [e for e in read_records(record) if e["event"] == "load"]
    assert sorted(e["device_id"] for e in loads) == [0, 1] and {e["filename"] for e in loads} == {"dummy.bin"}
    again = npf.benchmark(load_fn, "dummy.bin", [np.ones(2)], n_models=1, workers_per_model=1,
                          duration=SHORT, verbosity=0)  # fmt: skip
    assert again[0]["status"] == "finished"


def test_env_setup_and_setup_get_the_copy_and_a_config_dict(record: Path) -> None:
    from fd_models import record as rec

    def env_setup(i, config):
        os.environ["FD_ENV_SET"] = f"copy{i}"
        rec(event="env_setup", id=i, batch_size=config["batch_size"], n=config["n_models"])

    def setup(i, config, model):
        rec(event="setup", id=i, env=os.environ.get("FD_ENV_SET"), model=type(model).__name__)

    reports = npf.cpu.benchmark(Doubler, np.ones(2), n_models=2, workers_per_model=1, duration=SHORT,
                                env_setup_fn=env_setup, setup_fn=setup, verbosity=0)  # fmt: skip
    r = reports[0]
    assert r["status"] == "finished" and r["env_setup_avg_ms"] is not None and r["setup_avg_ms"] is not None
    events = read_records(record)
    envs = sorted((e["id"], e["batch_size"], e["n"]) for e in events if e["event"] == "env_setup")
    assert envs == [(0, 1, 2), (1, 1, 2)]
    setups = sorted((e["id"], e["env"], e["model"]) for e in events if e["event"] == "setup")
    assert setups == [(0, "copy0", "Doubler"), (1, "copy1", "Doubler")]


def test_return_timers_and_get_reports() -> None:
    results = npf.cpu.benchmark(Doubler, np.ones(2), n_models=2, workers_per_model=[1, 2], duration=SHORT,
                                return_timers=True, verbosity=0)  # fmt: skip
    assert len(results) == 2
    for config, res in results:
        assert config["n_models"] == 2 and config["model_filename"] == "Doubler"
        assert res["status"] == "finished" and res["n_infs"] > 0
        timers = res["timers"]
        assert list(timers) == npf.reporting.TIMER_STAGES
        for stage in ("env_setup", "setup", "load", "input", "warmup"):
            assert len(timers[stage]) == config["n_models"], stage
        for stage in ("preprocess", "infer", "postprocess", "e2e", "worker"):
            assert len(timers[stage]) == config["n_models"] * config["workers_per_model"], stage
        kept = sum(len(t) for t in timers["infer"])
        assert 0 < kept <= res["n_infs"] and kept == min(res["n_infs"], kept)
        # each call's own duration: percentiles computed from them match the engine's closely
        durations = np.concatenate([t.durations("ms") for t in timers["e2e"]])
        assert len(durations) == kept and (durations > 0).all()
        assert timers["load"][0].total_duration("ms") > 0 and len(timers["load"][0]) == 1
        assert len(timers["preprocess"][0]) == 0 and timers["preprocess"][0].avg("ms") == 0  # no preprocess_fn
        assert timers["worker"][0].total_duration("s") > 0
    reports = npf.get_reports(results)
    assert [r["workers_per_model"] for r in reports] == [1, 2]
    assert all(r["status"] == "finished" and "throughput_avg" in r for r in reports)


def test_get_reports_from_hand_made_timers() -> None:
    """Results built by hand with real timers are summarised with NeuronPerf's formulas."""
    e2e = npf.Timer()
    # calls of 2 ms ending in seconds 10, 11 (x3), 12 (x2), 13: buckets 1, 3, 2, 1
    for end in (10.5, 11.1, 11.4, 11.7, 12.2, 12.6, 13.3):
        e2e.insert((end - 0.002, end), "s")
    config = {"model_filename": "m.pt", "model_name": "m.pt", "batch_size": 4, "n_models": 1, "pipeline_size": 1,
              "device_type": "cpu", "multiprocess": True, "multiinterpreter": False}  # fmt: skip
    results = {"workers_per_model": 1, "status": "finished", "n_infs": 7, "total_s": 4.0,
               "timers": {"e2e": [e2e], "infer": [e2e]}, "cpu_percents": [50.0, 10.0, 20.0, 99.0]}  # fmt: skip
    (report,) = npf.get_reports([(config, results)], cost_per_hour=3.6)
    assert report["total_infs"] == 28
    assert report["throughput_peak"] == 12.0  # 3 calls x batch 4 in one second
    assert report["throughput_avg"] == 10.0  # (3 + 2) / 2 buckets x 4, first and last dropped
    assert report["cost_per_1m_inf"] == pytest.approx(3.6 * 1e6 / (3600 * 10.0))
    assert report["latency_ms_p50"] == pytest.approx(2.0, abs=1e-6)
    assert report["infer_avg_ms"] == pytest.approx(2.0, abs=1e-6) and report["preprocess_avg_ms"] == 0.0
    assert report["cpu_percent_p0"] == 10.0 and report["cpu_percent_p100"] == 20.0  # first and last dropped
    assert list(report)[: len(npf.reporting.REPORT_KEYS)] == npf.reporting.REPORT_KEYS
    # a result without NeuronPerf's required keys is left out, as NeuronPerf does
    assert npf.get_reports([({"batch_size": 1}, {"timers": {}})]) == []


def test_print_write_csv_and_json(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports = npf.cpu.benchmark(Doubler, np.ones(2), n_models=1, duration=SHORT, model_name="MyFancyModel",
                                verbosity=0)  # fmt: skip
    capsys.readouterr()
    npf.print_reports(reports)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == npf.SUMMARY_COLS and len(lines) == 3
    npf.print_reports(reports, cols=["workers_per_model", "cost_per_1m_inf"], sort_by="workers_per_model",
                      reverse=True)  # fmt: skip
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows == [["workers_per_model", "cost_per_1m_inf"], ["2", "N/A"], ["1", "N/A"]]

    name = npf.write_csv(reports)
    assert name.startswith("MyFancyModel") and Path(name).exists()
    with open(name) as f:
        table = list(csv.reader(f))
    assert table[0] == npf.CSV_COLS and len(table[0]) == 26 and table[0][19] == "total_infs"
    assert table[1][table[0].index("cost_per_1m_inf")] == "N/A"
    assert npf.write_csv(reports, "x.csv", cols=["n_models"]) == "x.csv"
    assert Path("x.csv").read_text().split() == ["n_models", "1", "1"]

    jname = npf.write_json(reports, "r.json")
    assert json.loads(Path(jname).read_text())[0]["model_name"] == "MyFancyModel"
    assert Path(npf.write_json(reports)).suffix == ".json"


def test_cost_per_hour_gives_cost_per_million() -> None:
    (r,) = npf.cpu.benchmark(Doubler, np.ones(2), n_models=1, workers_per_model=1, duration=SHORT,
                             cost_per_hour=3.6, verbosity=0)  # fmt: skip
    assert r["cost_per_1m_inf"] == pytest.approx(3.6 / (r["throughput_avg"] * 3600) * 1e6)


def test_more_copies_than_cpus_runs_on() -> None:
    n = (os.cpu_count() or 1) + 1
    (r,) = npf.cpu.benchmark(Doubler, np.ones(2), n_models=n, workers_per_model=1, duration=SHORT, verbosity=0)
    assert r["status"] == "finished" and r["n_models"] == n


def test_bad_arguments_fail_before_any_process_starts() -> None:
    with pytest.raises(SpecError, match="batch_sizes"):
        npf.cpu.benchmark(Doubler, [np.ones(1), np.ones(2)], batch_sizes=[1, 2, 3], verbosity=0)
    with pytest.raises(SpecError, match="device_type"):
        npf.cpu.benchmark(Doubler, np.ones(1), device_type="tpu", verbosity=0)
    with pytest.raises(TypeError, match="not_an_argument"):
        npf.cpu.benchmark(Doubler, np.ones(1), not_an_argument=1)
    with pytest.raises(UserError, match="nothing to compile"):
        npf.cpu.compile(Doubler, np.ones(1))


@pytest.mark.parametrize("name", ["tensorflow", "mxnet"])
def test_framework_namespaces_without_their_plugin_say_so(name: str, tmp_path: Path) -> None:
    """Until the tensorflow / mxnet plugins are installed; then this names them."""
    from npf_core.plugin.manager import get_plugins

    if name in get_plugins().frameworks:
        pytest.skip(f"the {name} framework plugin is installed")
    with pytest.raises(UnknownPluginError, match=name):
        getattr(npf, name).benchmark(str(tmp_path), np.ones((1, 2)), device_type="cpu", verbosity=0)


def test_spec_form_of_benchmark_still_works(tmp_path: Path) -> None:
    spec = {
        "model": {"framework": "python", "target": Doubler},
        "inputs": [{"shape": [1, 2]}],
        "n_models": [1], "workers_per_model": [1], "duration_s": SHORT,
        "output": {"dir": str(tmp_path), "reporters": []},
    }  # fmt: skip
    (report,) = npf.benchmark(spec)
    assert report.status == "ok"


def test_timer_and_timestamp_convert() -> None:
    t = npf.Timer()
    for _ in range(3):
        with t:
            pass
    assert len(t) == 3 and t.durations("ns").shape == (3,) and t.timestamps().shape == (3, 2)
    assert t.total_duration("us") == pytest.approx(t.total_duration("s") * 1e6)
    assert t.total_duration() == pytest.approx(t.durations().sum()) and t.timer_unit == "s"
    assert (t.end_timestamps() >= t.start_timestamps()).all() and t[-1] == t[2] and len(list(t)) == 3
    assert t.avg("ms") == pytest.approx(t.durations("ms").mean())
    del t[0]
    assert len(t) == 2
    t.insert((1.0, 1.5), "s")
    assert t[0] == (1.0, 1.5) and t.durations("ms")[0] == pytest.approx(500)
    t.reset()
    assert len(t) == 0 and t.avg("ms") == 0
    t.stop()  # before any start: nothing
    assert len(t) == 0
    ticks = iter(range(100))
    counter = npf.Timer(timer_fn=lambda: next(ticks), timer_unit="ms")
    counter.start()
    counter.start()  # restarts the pending pair
    counter.next()
    counter.stop()
    assert counter.timestamps().tolist() == [[1.0, 2.0], [3.0, 4.0]] and counter.durations("s").tolist() == [0.001] * 2
    assert npf.timestamp_convert(1.5, "s", "ms") == 1500
    assert list(npf.timestamp_convert([1000, 2000], "ns", "us")) == [1.0, 2.0]
    with pytest.raises(ValueError, match="unit"):
        npf.timestamp_convert(1, "s", "fortnights")
    x = np.array([1, 2])
    assert npf.DummyModel()(x) is x and x.tolist() == [8, 13]  # NeuronPerf's: x * 5 + 3, in place


def test_set_verbosity_2_shows_debug_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from npf_core.log import unconfigure

    try:
        npf.set_verbosity(2)
        npf.cpu.benchmark(Doubler, np.ones(2), n_models=1, workers_per_model=1, duration=SHORT, verbosity=2)
        err = capsys.readouterr().err
        assert "Benchmarking 'Doubler'" in err and "Running model config" in err
    finally:
        unconfigure()
        from npf_core.neuronperf import api

        api._state.update(verbosity=1, configured=False)


def test_a_lambda_reaches_a_fresh_interpreter() -> None:
    """multiinterpreter=True: the lambda travels serialised (npf_core.wire.transfer)."""
    (r,) = npf.cpu.benchmark(Doubler, np.ones(2), n_models=1, workers_per_model=1, duration=SHORT,
                             multiinterpreter=True, preprocess_fn=lambda x: x * 2, verbosity=0)  # fmt: skip
    assert r["status"] == "finished" and r["multiinterpreter"]


def _compile_fn(model, example, models_dir, name, **kwargs):
    """A compile_fn as NeuronPerf's generic compile calls it: writes an artifact and
    returns its filename; refuses pipeline size 2."""
    if kwargs.get("pipeline_size") == 2:
        raise RuntimeError("pipeline 2 is not supported")
    path = Path(models_dir) / f"{name}.bin"
    path.write_text(json.dumps({"model": model.__name__, "shape": list(np.shape(example)), **kwargs}))
    return str(path)


def test_generic_compile_then_benchmark_the_index_with_load_fn(in_tmp: Path, record: Path) -> None:
    from fd_models import record as rec

    inputs = [np.ones((1, 3)), np.ones((4, 3))]
    index_file = npf.compile(_compile_fn, Doubler, inputs, batch_sizes=[1, 4], pipeline_sizes=[1, 2],
                             compiler_args={"opt": 3}, filename="doubler.json")  # fmt: skip
    assert index_file == "doubler.json"  # as NeuronPerf: the name as given
    index = npf.model_index.load(index_file)
    got = sorted((c["batch_size"], c["pipeline_size"], c["status"]) for c in index["model_configs"])
    assert got == [(1, 1, "finished"), (1, 2, "error"), (4, 1, "finished"), (4, 2, "error")]
    first = npf.model_index.resolve_filename(index["model_configs"][0]["filename"], index_file)
    artifact = json.loads(Path(first).read_text())
    assert artifact["opt"] == 3 and artifact["model"] == "Doubler"

    def load_fn(filename, device_id=0):
        rec(event="load", filename=Path(filename).name)
        return Doubler()

    reports = npf.benchmark(load_fn, index_file, inputs, n_models=1, workers_per_model=1, duration=SHORT,
                            verbosity=0)  # fmt: skip
    assert sorted(r["batch_size"] for r in reports) == [1, 4]
    assert all(r["status"] == "finished" for r in reports)
    loads = {e["filename"] for e in read_records(record) if e["event"] == "load"}
    assert len(loads) == 2 and all(name.endswith(".bin") for name in loads)
    only4 = npf.benchmark(load_fn, index_file, inputs, batch_sizes=4, n_models=1, workers_per_model=1,
                          duration=SHORT, verbosity=0)  # fmt: skip
    assert [r["batch_size"] for r in only4] == [4]


@pytest.mark.torch
def test_npf_compile_keeps_its_own_form(in_tmp: Path) -> None:
    """compile(model, inputs, batch_sizes) is npf's compile, not the generic one."""
    from npf_core.neuronperf.compiling import _batch_sizes_like

    assert _batch_sizes_like([1, 2]) and _batch_sizes_like(4) and not _batch_sizes_like([np.ones(1)])
    # npf's compile (the torch plugin, in a compile process; an instance travels there):
    # here without torch-neuronx, so the variant fails with that reason
    index = npf.model_index.load(npf.compile(Doubler(), [np.ones(1)], [1]))
    (entry,) = index["model_configs"]
    assert entry["status"] == "error" and "torch-neuronx" in entry["error"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="the error a machine without PyTorch gets")
def test_npf_compile_without_pytorch_says_what_to_install(in_tmp: Path) -> None:
    """Without PyTorch, npf.compile(model, inputs, batch_sizes) stops before any process
    starts, naming the extra to install; no index is written."""
    from npf_core.errors import PluginError

    with pytest.raises(PluginError, match=r"needs PyTorch: pip install 'npf\[torch\]'"):
        npf.compile(Doubler(), [np.ones(1)], [1])
    assert not list(in_tmp.glob("*.json"))


def test_a_missing_model_file_names_the_argument_and_the_file(in_tmp: Path) -> None:
    from npf_core.errors import ArgumentError

    with pytest.raises(ArgumentError) as info:
        npf.torch.benchmark("models/missing.pt", np.ones(2), device_type="cpu")
    message = str(info.value)
    assert message.startswith("benchmark() argument model_filename: file not found: 'models/missing.pt'")
    assert str(in_tmp) in message and "spec $" not in message
    with pytest.raises(ArgumentError, match=r"argument model_filename: model index not found: 'ix.json'"):
        npf.torch.benchmark("ix.json", np.ones(2), device_type="cpu")
    # a value the spec refuses is named by its argument too
    with pytest.raises(ArgumentError, match=r"^benchmark\(\) argument n_models"):
        npf.cpu.benchmark(Doubler, np.ones(2), n_models=0, duration=SHORT)


def test_an_mxnet_checkpoint_prefix_is_neuronperfs_model_filename(in_tmp: Path) -> None:
    """``npf.mxnet.benchmark(prefix, ...)`` with the prefix given to
    ``mx.model.save_checkpoint(prefix, 0, ...)``: the checkpoint at epoch 0, as NeuronPerf
    loads it (the run itself needs MXNet: tests/mx_plugins)."""
    from npf_core.neuronperf.api import model_block

    (in_tmp / "models").mkdir()
    for name in ("net-symbol.json", "net-0000.params", "net-0003.params"):
        (in_tmp / "models" / name).write_text("{}")
    block = model_block("mxnet", "models/net", performance_levels=None, cast_modes=None, tmp=in_tmp)
    assert block == {"framework": "mxnet", "path": str(in_tmp / "models" / "net-symbol.json"),
                     "options": {"epoch": 0}}  # fmt: skip
