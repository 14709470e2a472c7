# ruff: noqa: E501 - the expected signatures are data, one per line
"""Conformance with NeuronPerf's public API, checked against NeuronPerf's own lists.

The expected values below are data written for this test from NeuronPerf's public
source (aws-neuron-sdk, src/neuronperf, SDK 1.18.0): every public name a NeuronPerf
script reaches after ``import neuronperf as npf`` (and ``import neuronperf.torch``
etc.), with each function's parameters (name, kind, default), and NeuronPerf's column,
timer-stage and report-key lists. npf must have every name; its parameters must start
with NeuronPerf's, same names, kinds and defaults, in the same order (positional calls
mean the same), and may add only keyword-only ones. Where npf deliberately differs,
the difference and its reason are in ``DIFFERS`` (and in docs/migrating.md).
"""

from __future__ import annotations

import csv
import inspect
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import npf_core as npf

#: NeuronPerf's module -> npf's (``npf.torch`` is also ``import npf_core.torch``)
MODULES = {
    "neuronperf": "npf_core",
    "neuronperf.torch": "npf_core.torch",
    "neuronperf.mxnet": "npf_core.mxnet",
    "neuronperf.tensorflow": "npf_core.tensorflow",
    "neuronperf.cpu": "npf_core.cpu",
    "neuronperf.reporting": "npf_core.reporting",
    "neuronperf.timing": "npf_core.timing",
    "neuronperf.model_index": "npf_core.model_index",
    "neuronperf.benchmarking": "npf_core.benchmarking",
    "neuronperf.compile_constants": "npf_core.compile_constants",
}

#: (module, name) -> parameters: ``name``, ``name=default`` (the default's repr),
#: ``*args``, ``kw:name=default`` (keyword-only), ``**kwargs``
SIGNATURES = {
    ('neuronperf', 'benchmark'): "load_fn, model_filename, inputs, batch_sizes=None, duration=120, n_models=None, pipeline_sizes=None, performance_levels=None, workers_per_model=None, env_setup_fn=None, setup_fn=None, preprocess_fn=None, postprocess_fn=None, dataset_loader_fn=None, multiprocess=True, multiinterpreter=False, return_timers=False, stats_interval=0.5, device_type='neuron', cost_per_hour=None, model_name=None, model_class_name=None, model_class_file=None, verbosity=1",
    ('neuronperf', 'compile'): "compile_fn, model, inputs, batch_sizes=None, pipeline_sizes=None, performance_levels=None, models_dir='models', model_name=None, filename=None, compiler_args=None, verbosity=1, **kwargs",
    ('neuronperf', 'set_verbosity'): 'verbosity',
    ('neuronperf', 'get_reports'): 'results, cost_per_hour=None',
    ('neuronperf', 'print_reports'): "reports, cols=['throughput_avg', 'latency_ms_p50', 'latency_ms_p99', 'n_models', 'pipeline_size', 'workers_per_model', 'batch_size', 'model_filename'], sort_by='throughput_peak', reverse=False",
    ('neuronperf', 'write_csv'): "reports, filename=None, cols=['model_name', 'n_models', 'workers_per_model', 'pipeline_size', 'batch_size', 'throughput_avg', 'throughput_peak', 'latency_ms_p0', 'latency_ms_p50', 'latency_ms_p90', 'latency_ms_p95', 'latency_ms_p99', 'latency_ms_p100', 'cpu_avg_percent', 'cpu_percent_p50', 'mem_avg_percent', 'mem_percent_p50', 'e2e_avg_ms', 'infer_avg_ms', 'total_infs', 'total_s', 'performance_level', 'model_filename', 'device_type', 'instance_type', 'cost_per_1m_inf']",
    ('neuronperf', 'write_json'): 'reports, filename=None',
    ('neuronperf', 'timestamp_convert'): 'timestamps, input_time_unit, output_time_unit',
    ('neuronperf', 'Timer'): "timer_fn=<built-in function perf_counter>, timer_unit='s'",
    ('neuronperf', 'DummyModel'): '',
    ('neuronperf.torch', 'benchmark'): 'model_filename, inputs, *args, kw:dataset_inputs=False, kw:loop_dataset=False, **kwargs',
    ('neuronperf.torch', 'compile'): 'model, inputs, *args, **kwargs',
    ('neuronperf.mxnet', 'benchmark'): 'model_filename, inputs, *args, **kwargs',
    ('neuronperf.mxnet', 'compile'): 'model, inputs, *args, **kwargs',
    ('neuronperf.tensorflow', 'benchmark'): 'model_filename, inputs, *args, **kwargs',
    ('neuronperf.tensorflow', 'compile'): 'model, inputs, *args, **kwargs',
    ('neuronperf.cpu', 'benchmark'): 'model_class, inputs, *args, **kwargs',
    ('neuronperf.cpu', 'DummyModel'): '',
    ('neuronperf.reporting', 'get_report'): 'benchmark_results, cost_per_hour=None, window_size=1, verbosity=0',
    ('neuronperf.reporting', 'get_reports'): 'results, cost_per_hour=None',
    ('neuronperf.reporting', 'print_reports'): "reports, cols=['throughput_avg', 'latency_ms_p50', 'latency_ms_p99', 'n_models', 'pipeline_size', 'workers_per_model', 'batch_size', 'model_filename'], sort_by='throughput_peak', reverse=False",
    ('neuronperf.reporting', 'write_csv'): "reports, filename=None, cols=['model_name', 'n_models', 'workers_per_model', 'pipeline_size', 'batch_size', 'throughput_avg', 'throughput_peak', 'latency_ms_p0', 'latency_ms_p50', 'latency_ms_p90', 'latency_ms_p95', 'latency_ms_p99', 'latency_ms_p100', 'cpu_avg_percent', 'cpu_percent_p50', 'mem_avg_percent', 'mem_percent_p50', 'e2e_avg_ms', 'infer_avg_ms', 'total_infs', 'total_s', 'performance_level', 'model_filename', 'device_type', 'instance_type', 'cost_per_1m_inf']",
    ('neuronperf.reporting', 'write_json'): 'reports, filename=None',
    ('neuronperf.timing', 'timestamp_convert'): 'timestamps, input_time_unit, output_time_unit',
    ('neuronperf.timing', 'Timer'): "timer_fn=<built-in function perf_counter>, timer_unit='s'",
    ('neuronperf.model_index', 'create'): "filename, model_name=None, batch_size=1, pipeline_size=1, performance_level=3, compile_s=None, status='finished'",
    ('neuronperf.model_index', 'load'): 'filename',
    ('neuronperf.model_index', 'save'): 'model_index, filename=None, root_dir=None',
    ('neuronperf.model_index', 'append'): '*model_indexes',
    ('neuronperf.model_index', 'copy'): 'old_index, new_index, new_dir',
    ('neuronperf.model_index', 'move'): 'old_index, new_index, new_dir',
    ('neuronperf.model_index', 'delete'): 'filename',
    ('neuronperf.model_index', 'filter'): 'index, **kwargs',
    ('neuronperf.model_index', 'filter_configs'): 'configs, filter_name, filter_values',
    ('neuronperf.model_index', 'generate_id'): 'length=8',
    ('neuronperf.model_index', 'generate_name'): 'model_name',
    ('neuronperf.benchmarking', 'Benchmarker'): 'id, device_id, load_fn, model_filename, inputs, workers_per_model, env_setup_fn=None, setup_fn=None, preprocess_fn=None, postprocess_fn=None, dataset_loader_fn=None, model_class_name=None, model_class_file=None',
    ('neuronperf.benchmarking', 'benchmark'): "load_fn, model_filename, inputs, batch_sizes=None, duration=120, n_models=None, pipeline_sizes=None, performance_levels=None, workers_per_model=None, env_setup_fn=None, setup_fn=None, preprocess_fn=None, postprocess_fn=None, dataset_loader_fn=None, multiprocess=True, multiinterpreter=False, return_timers=False, stats_interval=0.5, device_type='neuron', cost_per_hour=None, model_name=None, model_class_name=None, model_class_file=None, verbosity=1",
    ('neuronperf.benchmarking', 'compile'): "compile_fn, model, inputs, batch_sizes=None, pipeline_sizes=None, performance_levels=None, models_dir='models', model_name=None, filename=None, compiler_args=None, verbosity=1, **kwargs",
    ('neuronperf.benchmarking', 'set_verbosity'): 'verbosity',
    ('neuronperf.benchmarking', 'run_benchmarker'): 'benchmarker, duration, pipe=None',
    ('neuronperf.benchmarking', 'get_instance_type'): '',
    ('Timer', '__init__'): "timer_fn=<built-in function perf_counter>, timer_unit='s'",
    ('Timer', '__enter__'): '',
    ('Timer', '__exit__'): 'type, value, traceback',
    ('Timer', '__delitem__'): 'index',
    ('Timer', '__getitem__'): 'index',
    ('Timer', '__iter__'): '',
    ('Timer', '__len__'): '',
    ('Timer', '__str__'): '',
    ('Timer', 'start'): '',
    ('Timer', 'stop'): '',
    ('Timer', 'next'): '',
    ('Timer', 'reset'): '',
    ('Timer', 'insert'): 'timestamps, time_unit',
    ('Timer', 'start_timestamps'): 'time_unit=None',
    ('Timer', 'end_timestamps'): 'time_unit=None',
    ('Timer', 'timestamps'): 'time_unit=None',
    ('Timer', 'durations'): 'time_unit=None',
    ('Timer', 'total_duration'): 'time_unit=None',
    ('Timer', 'avg'): 'time_unit=None',
    ('DummyModel', '__call__'): 'x',
}

#: the module-level names (not functions) NeuronPerf scripts use, with their values
CONSTANTS: dict[tuple[str, str], Any] = {
    ("neuronperf", "CSV_COLS"): [
        "model_name", "n_models", "workers_per_model", "pipeline_size", "batch_size", "throughput_avg",
        "throughput_peak", "latency_ms_p0", "latency_ms_p50", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99",
        "latency_ms_p100", "cpu_avg_percent", "cpu_percent_p50", "mem_avg_percent", "mem_percent_p50",
        "e2e_avg_ms", "infer_avg_ms", "total_infs", "total_s", "performance_level", "model_filename",
        "device_type", "instance_type", "cost_per_1m_inf",
    ],
    ("neuronperf", "PRINT_COLS"): [
        "throughput_avg", "latency_ms_p50", "latency_ms_p99", "n_models", "pipeline_size", "workers_per_model",
        "batch_size", "model_filename",
    ],
    ("neuronperf.reporting", "REQUIRED_CONFIG_KEYS"): [
        "multiprocess", "multiinterpreter", "device_type", "batch_size", "model_filename", "model_name",
        "n_models", "pipeline_size",
    ],
    ("neuronperf.reporting", "REQUIRED_RESULTS_KEYS"): ["workers_per_model", "status", "timers", "n_infs", "total_s"],
    ("neuronperf.timing", "time_unit_ratios"): {
        "ns": {"ns": 1, "us": 1e-3, "ms": 1e-6, "s": 1e-9}, "us": {"ns": 1e3, "us": 1, "ms": 1e-3, "s": 1e-6},
        "ms": {"ns": 1e6, "us": 1e3, "ms": 1, "s": 1e-3}, "s": {"ns": 1e9, "us": 1e6, "ms": 1e3, "s": 1},
    },
    ("neuronperf.model_index", "MODEL_INDEX_SUFFIX"): ".json",
    ("neuronperf.benchmarking", "ERROR"): "error",
    ("neuronperf.benchmarking", "SUPPORTED_DEVICE_TYPES"): ["neuron", "cpu", "cuda", "gpu"],
    ("neuronperf.compile_constants", "NEURONCORE_PIPELINE_CORES"): "--neuroncore-pipeline-cores",
    ("neuronperf.compile_constants", "FAST_MATH"): "--fast-math",
    ("neuronperf.compile_constants", "FAST_MATH_OPTIONS"): {
        0: "none", 1: "fp32-cast-matmult no-fast-relayout", 2: "fp32-cast-matmult", 3: "all",
    },
}  # fmt: skip

#: the ten timer stages of ``results["timers"]``, in NeuronPerf's order
TIMER_STAGES = ["env_setup", "setup", "load", "input", "warmup", "preprocess", "infer", "postprocess", "e2e", "worker"]
#: the ``config`` of a ``(config, results)`` tuple, in NeuronPerf's order
CONFIG_KEYS = [
    "model_filename", "model_name", "device_type", "instance_type", "batch_size", "n_models", "workers_per_model",
    "pipeline_size", "n_devices", "performance_level", "multiprocess", "multiinterpreter", "stats_interval",
    "start_dts", "duration", "stop_dts",
]  # fmt: skip
RESULTS_KEYS = ["workers_per_model", "status", "n_infs", "total_s", "timers", "cpu_percents", "mem_percents"]
_P = (0, 50, 90, 95, 99, 100)
#: every key of a report, in NeuronPerf's order
REPORT_KEYS = [
    "NeuronPerf_version", *CONFIG_KEYS, "n_stats_intervals", "status", "load_avg_ms", "input_avg_ms",
    "warmup_avg_ms", "env_setup_avg_ms", "setup_avg_ms", "preprocess_avg_ms", "infer_avg_ms", "postprocess_avg_ms",
    "e2e_avg_ms", "worker_avg_s", "total_infs", "total_s", "cpu_avg_percent", *(f"cpu_percent_p{q}" for q in _P),
    "mem_avg_percent", *(f"mem_percent_p{q}" for q in _P), *(f"latency_ms_p{q}" for q in _P), "throughput_peak",
    "throughput_avg", "cost_per_1m_inf",
]  # fmt: skip

#: where npf deliberately differs: (module, name, NeuronPerf's parameter) -> (npf's, why)
DIFFERS = {
    ("neuronperf", "benchmark", "duration=120"): (
        "duration=60.0", "NeuronPerf's guide documents 60 s (its 2022 code had 120): scripts follow the guide"),
    ("neuronperf.benchmarking", "benchmark", "duration=120"): ("duration=60.0", "the same function"),
}  # fmt: skip
#: (module, name) -> npf's value where it differs on purpose, and why
DIFFERS_CONSTANTS = {("neuronperf.benchmarking", "BENCHMARK_SECS"): (60.0, "the guide's default duration")}
#: NeuronPerf's names npf does not provide, and why
NOT_PROVIDED = {
    ("neuronperf", "log"): "npf_core.log is npf's logging module; NeuronPerf's logger object has no counterpart",
    ("neuronperf", "handler"): "a loop variable NeuronPerf's __init__ left behind, not API",
    ("neuronperf", "logging"): "NeuronPerf's log-format module; npf's log output is npf_core.log's",
    ("neuronperf", "scripts"): "NeuronPerf's runner of pickled benchmarkers; npf starts fresh copies itself",
    ("neuronperf.benchmarking", "run_benchmarkers"): "internal to NeuronPerf's benchmark(); npf's supervisor runs copies",
    ("neuronperf.benchmarking", "StatsThread"): "internal; npf samples CPU and memory in its supervisor",
    ("neuronperf.benchmarking", "BenchmarkerErrorWrapper"): "internal to NeuronPerf's process pipes",
}  # fmt: skip


def resolve(module: str, name: str) -> Any:
    target = npf if module == "neuronperf" else getattr(npf, module.rpartition(".")[2], None)
    if module == "Timer":
        return getattr(npf.Timer, name)
    if module == "DummyModel":
        return getattr(npf.DummyModel, name)
    assert target is not None, f"npf has no {MODULES[module]} (NeuronPerf's {module})"
    assert hasattr(target, name), f"{MODULES[module]} has no {name!r} (NeuronPerf's {module}.{name})"
    return getattr(target, name)


def rendered(obj: Any) -> list[str]:
    """The parameters of ``obj`` in the notation of SIGNATURES (``self`` left out)."""
    out = []
    for p in inspect.signature(obj).parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.VAR_POSITIONAL:
            out.append(f"*{p.name}")
        elif p.kind is p.VAR_KEYWORD:
            out.append(f"**{p.name}")
        else:
            text = ("kw:" if p.kind is p.KEYWORD_ONLY else "") + p.name
            if p.default is not p.empty:
                text += f"={p.default!r}"
            out.append(text)
    return out


def _split(params: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in params:
        depth += ch in "[{(<"
        depth -= ch in "]})>"
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    return [p for p in [*parts, cur.strip()] if p]


@pytest.mark.parametrize(("module", "name"), sorted(SIGNATURES))
def test_every_function_has_neuronperfs_parameters(module: str, name: str) -> None:
    ours = rendered(resolve(module, name))
    theirs = []
    for p in _split(SIGNATURES[(module, name)]):
        theirs.append(DIFFERS.get((module, name, p), (p,))[0])
    # NeuronPerf's parameters first, in its order; a variadic one matches by kind only
    extra = list(ours)
    for p in theirs:
        got = extra.pop(0) if extra else None
        if p.startswith("**") or p.startswith("*"):
            kind = "**" if p.startswith("**") else "*"
            same_kind = got is not None and got.startswith(kind) and (kind == "**" or not got.startswith("**"))
            assert same_kind, f"{module}.{name}: {p!r} expected, got {got!r} in {ours}"
            continue
        assert got == p, f"{module}.{name}: parameter {p!r} expected, got {got!r} (all: {ours})"
    # beyond them, only keyword-only parameters (they change no positional call) or **kwargs
    for p in extra:
        assert p.startswith("kw:") or p.startswith("**"), f"{module}.{name}: extra positional parameter {p!r}"


@pytest.mark.parametrize(("module", "name"), sorted(CONSTANTS))
def test_constants_are_neuronperfs(module: str, name: str) -> None:
    assert resolve(module, name) == CONSTANTS[(module, name)]


def test_deliberate_differences_are_what_the_docs_say() -> None:
    for (module, name), (value, _why) in DIFFERS_CONSTANTS.items():
        assert resolve(module, name) == value
    text = (Path(__file__).resolve().parents[2] / "docs" / "migrating.md").read_text()
    assert "60 s" in text and "120" in text  # the duration's default, in the table
    for (module, name) in NOT_PROVIDED:
        assert f"`{name}`" in text, f"docs/migrating.md should say why {module}.{name} is not provided"


def test_framework_modules_import_as_neuronperfs_do() -> None:
    import npf_core.cpu
    import npf_core.mxnet
    import npf_core.tensorflow
    import npf_core.torch

    assert npf.torch is npf_core.torch and npf.cpu.DummyModel is npf.DummyModel
    assert callable(npf_core.mxnet.change_dir)
    assert list(npf.timing.supported_time_units) == ["ns", "us", "ms", "s"]


def test_lists_and_keys_of_a_real_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Column lists, timer stages, config, results and report keys, on a real run."""
    monkeypatch.chdir(tmp_path)
    assert CONSTANTS[("neuronperf", "CSV_COLS")] == npf.CSV_COLS and npf.CSV_COLS[19] == "total_infs"
    assert CONSTANTS[("neuronperf", "PRINT_COLS")] == npf.PRINT_COLS
    assert npf.reporting.TIMER_STAGES == TIMER_STAGES and npf.reporting.REPORT_KEYS == REPORT_KEYS
    results = npf.cpu.benchmark(npf.DummyModel, [np.array([1, 2])], duration=0.5, n_models=1, workers_per_model=1,
                                return_timers=True, verbosity=0)  # fmt: skip
    (config, res), = results
    assert list(config)[: len(CONFIG_KEYS)] == CONFIG_KEYS
    assert list(res)[: len(RESULTS_KEYS)] == RESULTS_KEYS and res["status"] == "finished"
    assert list(res["timers"]) == TIMER_STAGES
    assert all(isinstance(t, npf.Timer) for ts in res["timers"].values() for t in ts)
    report = npf.get_reports(results)[0]
    assert list(report)[: len(REPORT_KEYS)] == REPORT_KEYS
    plain = npf.cpu.benchmark(npf.DummyModel, [np.array([1, 2])], duration=0.5, n_models=1, workers_per_model=1,
                              verbosity=0)  # fmt: skip
    assert list(plain[0])[: len(REPORT_KEYS)] == REPORT_KEYS
    with open(npf.write_csv(plain), newline="") as f:
        assert next(csv.reader(f)) == CONSTANTS[("neuronperf", "CSV_COLS")]
    assert resolve("Timer", "__init__") and inspect.signature(npf.Timer).parameters["timer_fn"].default is time.perf_counter
