"""Report building from synthetic RESULT messages: NeuronPerf's fields and arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from npf_core.results.report import NEURONPERF_COLUMNS, PRINT_COLUMNS, ErrorInfo, Report, build_report, error_report
from npf_core.results.stats import Histogram
from npf_core.spec.config import RunConfig
from npf_core.wire.protocol import Ready, Result


def config(n_models: int = 1, workers: int = 1, batch_size: int = 4, start_method: str = "fork") -> RunConfig:
    return RunConfig(
        config_id=f"m-b{batch_size}-p1-n{n_models}-w{workers}",
        model_name="m",
        framework="python",
        model_kind="target",
        model_ref="models.py:M",
        model_filename="models.py:M",
        input_idx=0,
        batch_size=batch_size,
        n_models=n_models,
        workers_per_model=workers,
        pipeline_size=1,
        start_method=start_method,
        device_type="cpu",
    )


def result(latencies_ms: list[float], interval_s: float, windows: list[int], infer_ms: float | None = None) -> Result:
    lat = Histogram()
    lat.add(np.asarray(latencies_ms) * 1e6)
    stages = {}
    if infer_ms is not None:
        inf = Histogram()
        inf.add(np.full(len(latencies_ms), infer_ms * 1e6))
        stages["infer"] = inf.to_wire()
    return Result(
        completed=len(latencies_ms),
        interval_ns=int(interval_s * 1e9),
        stages=stages,
        latency=lat.to_wire(),
        windows=windows,
    )


READY = Ready(load_ns=200_000_000, warmup_ns=4_000_000)


def build(cfg: RunConfig, results: list[Result], readies: list[Ready] | None = None, **kw: object) -> Report:
    args = dict(window_s=0.5, load_mode="closed", target_rate=None, resources={"cpu": [50.0, 70.0], "mem": [10.0]})
    args.update(kw)
    return build_report(cfg, results, readies if readies is not None else [READY] * len(results), **args)  # type: ignore[arg-type]


def test_every_neuronperf_field_is_a_report_field_in_order() -> None:
    fields = Report.__struct_fields__
    assert fields[: len(NEURONPERF_COLUMNS)] == NEURONPERF_COLUMNS
    assert set(PRINT_COLUMNS) <= set(NEURONPERF_COLUMNS)


def test_single_copy_figures() -> None:
    lat = [2.0] * 900 + [4.0] * 100  # ms
    r = build(config(batch_size=4), [result(lat, interval_s=2.0, windows=[250, 250, 250, 250], infer_ms=1.5)])
    assert r.status == "ok" and r.error is None
    assert r.total_calls == 1000
    assert r.total_infs == 1000 * 4  # calls x batch size
    assert r.throughput_avg == pytest.approx(1000 * 4 / 2.0)  # inferences over the measured interval
    assert r.total_s == pytest.approx(2.0)
    assert r.latency_ms_p0 == pytest.approx(2.0)
    assert r.latency_ms_p50 == pytest.approx(2.0, rel=2e-3)
    assert r.latency_ms_p95 == pytest.approx(4.0, rel=2e-3)
    assert r.latency_ms_p100 == pytest.approx(4.0)
    assert r.latency_ms_p0 <= r.latency_ms_p50 <= r.latency_ms_p90 <= r.latency_ms_p99 <= r.latency_ms_p100
    assert r.e2e_avg_ms == pytest.approx(2.2)
    assert r.infer_avg_ms == pytest.approx(1.5)
    assert r.load_avg_ms == pytest.approx(200.0)
    assert r.warmup_avg_ms == pytest.approx(4.0)
    assert r.throughput_windows == pytest.approx([250 * 4 / 0.5] * 4)
    assert r.throughput_peak == pytest.approx(2000.0)
    assert r.cpu_avg_percent == pytest.approx(60.0)
    assert r.mem_avg_percent == pytest.approx(10.0)
    assert r.throughput_ci95_low <= r.throughput_avg <= r.throughput_ci95_high
    assert (r.model_name, r.n_models, r.workers_per_model, r.pipeline_size, r.batch_size) == ("m", 1, 1, 1, 4)
    assert (r.device_type, r.model_filename, r.multiprocess, r.multiinterpreter) == ("cpu", "models.py:M", True, False)
    # stages that did not exist stay absent, not zero
    assert r.preprocess_avg_ms is None and r.postprocess_avg_ms is None


def test_copies_add_their_rates_and_counts() -> None:
    a = result([1.0] * 300, interval_s=1.0, windows=[150, 150])
    b = result([3.0] * 100, interval_s=1.0, windows=[50, 50])
    r = build(config(n_models=2, batch_size=2), [a, b])
    assert r.total_calls == 400
    assert r.total_infs == 800
    assert r.throughput_avg == pytest.approx(800.0)
    assert r.latency_ms_p0 == pytest.approx(1.0)
    assert r.latency_ms_p100 == pytest.approx(3.0)
    assert r.e2e_avg_ms == pytest.approx((300 * 1.0 + 100 * 3.0) / 400)
    assert r.throughput_windows == pytest.approx([(150 + 50) * 2 / 0.5] * 2)


def test_short_runs_still_have_a_throughput() -> None:
    # NeuronPerf's 1-second buckets give NaN below ~3 s; the interval gives the figure.
    r = build(config(batch_size=1), [result([2.0] * 100, interval_s=0.25, windows=[])])
    assert r.throughput_avg == pytest.approx(400.0)
    assert not math.isnan(r.throughput_ci95_low)


def test_cost_per_million_inferences() -> None:
    r = build(config(batch_size=1), [result([1.0] * 1000, interval_s=1.0, windows=[])], cost_per_hour=3.6)
    assert r.cost_per_1m_inf == pytest.approx(3.6 / (1000 * 3600) * 1e6)


def test_too_few_samples_are_flagged_not_hidden() -> None:
    r = build(config(), [result([1.0] * 10, interval_s=0.1, windows=[])])
    assert r.status == "ok"
    assert not r.valid
    assert any("too few samples" in reason for reason in r.validity_reasons)


def test_error_report_keeps_the_configuration_and_the_reason() -> None:
    info = ErrorInfo(type="BenchmarkerDied", message="copy 0 of 1: killed by SIGKILL", stage="call")
    r = error_report(config(n_models=1, workers=2), info)
    assert r.status == "error"
    assert r.error == info
    assert (r.n_models, r.workers_per_model, r.batch_size) == (1, 2, 4)
    assert math.isnan(r.throughput_avg)
    assert r.total_infs == 0


def test_to_dict_and_back() -> None:
    r = build(config(), [result([1.0] * 50, interval_s=0.5, windows=[50])])
    d = r.to_dict()
    assert set(NEURONPERF_COLUMNS) <= set(d)
    assert d["instance_type"] is None
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in d.values())
    back = Report.from_dict(d)
    assert back.total_infs == r.total_infs and back.throughput_avg == r.throughput_avg
    assert r["throughput_avg"] == r.throughput_avg
    with pytest.raises(KeyError):
        r["no_such_field"]


def test_without_stage_timers_the_call_is_the_inference() -> None:
    # the lean loop (fixed inputs, no pre/postprocess) times only the model call
    r = build(config(), [result([2.0] * 10 + [4.0] * 10, interval_s=1.0, windows=[])])
    assert r.infer_avg_ms == pytest.approx(3.0)
    assert r.infer_avg_ms == r.e2e_avg_ms
