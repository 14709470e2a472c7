"""Benchmarker results -> one Report per configuration.

Reports keep NeuronPerf's field names (and its CSV column order, first) so that
existing consumers work, and add ours: more percentiles, confidence bounds, a
validity verdict, open-loop figures and process resource use.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import msgspec

from npf_core.results.capacity import CapacityProbe
from npf_core.results.stats import Histogram, StoredHistogram, coefficient_of_variation, rate_ci
from npf_core.spec.config import RunConfig
from npf_core.wire.protocol import Ready, Result

__all__ = [
    "NEURONPERF_COLUMNS",
    "NEURONPERF_CSV_COLUMNS",
    "PRINT_COLUMNS",
    "TELEMETRY_COLUMNS",
    "Report",
    "build_report",
    "error_report",
]

#: NeuronPerf's report fields, in its order: the first CSV columns.
NEURONPERF_COLUMNS = (
    "model_name", "n_models", "workers_per_model", "pipeline_size", "batch_size",
    "throughput_avg", "throughput_peak",
    "latency_ms_p0", "latency_ms_p50", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99", "latency_ms_p100",
    "cpu_avg_percent", "cpu_percent_p50", "mem_avg_percent", "mem_percent_p50",
    "e2e_avg_ms", "infer_avg_ms", "load_avg_ms", "warmup_avg_ms", "input_avg_ms",
    "preprocess_avg_ms", "postprocess_avg_ms", "worker_avg_s", "total_infs", "total_s",
    "performance_level", "model_filename", "device_type", "instance_type", "cost_per_1m_inf",
    "status", "start_dts", "stop_dts", "duration", "multiprocess", "multiinterpreter",
)  # fmt: skip

#: NeuronPerf's CSV columns (its ``CSV_COLS``, the default of ``write_csv``), in its
#: order: the first columns of results.csv, position-stable (``total_infs`` is column 19,
#: counting from 0).
NEURONPERF_CSV_COLUMNS = (
    "model_name", "n_models", "workers_per_model", "pipeline_size", "batch_size",
    "throughput_avg", "throughput_peak",
    "latency_ms_p0", "latency_ms_p50", "latency_ms_p90", "latency_ms_p95", "latency_ms_p99", "latency_ms_p100",
    "cpu_avg_percent", "cpu_percent_p50", "mem_avg_percent", "mem_percent_p50",
    "e2e_avg_ms", "infer_avg_ms",
    "total_infs", "total_s",
    "performance_level", "model_filename", "device_type", "instance_type", "cost_per_1m_inf",
)  # fmt: skip

#: The device telemetry figures: the CSV columns right after NeuronPerf's (null where
#: no source sampled the device; see npf_core.results.telemetry).
TELEMETRY_COLUMNS = ("device_util_avg_percent", "device_mem_used_peak_mb", "power_avg_w", "inf_per_joule")

#: NeuronPerf's default printed columns.
PRINT_COLUMNS = (
    "throughput_avg", "latency_ms_p50", "latency_ms_p99", "n_models",
    "pipeline_size", "workers_per_model", "batch_size", "model_filename",
)  # fmt: skip

VALIDITY_MIN_SAMPLES_P99 = 1000
VALIDITY_MAX_CV = 0.10
VALIDITY_MAX_DROPPED = 0.01
LATE_MS = 1.0  # a request that starts this long after its scheduled time counts as late


class ErrorInfo(msgspec.Struct, kw_only=True):
    type: str
    message: str
    traceback: str = ""
    stage: str = ""
    exitcode: int | None = None
    output_tail: str = ""
    #: not tried: the configuration whose failure this one would repeat
    same_as: str = ""
    #: what to do about it, when npf can tell (e.g. the inputs do not fit the model)
    hint: str = ""


class Report(msgspec.Struct, kw_only=True):
    """One configuration's figures. Also readable as a mapping (``report["throughput_avg"]``)."""

    # NeuronPerf's fields, in its order
    model_name: str
    n_models: int
    workers_per_model: int
    pipeline_size: int
    batch_size: int
    throughput_avg: float = math.nan
    throughput_peak: float = math.nan
    latency_ms_p0: float = math.nan
    latency_ms_p50: float = math.nan
    latency_ms_p90: float = math.nan
    latency_ms_p95: float = math.nan
    latency_ms_p99: float = math.nan
    latency_ms_p100: float = math.nan
    cpu_avg_percent: float = math.nan
    cpu_percent_p50: float = math.nan
    mem_avg_percent: float = math.nan
    mem_percent_p50: float = math.nan
    e2e_avg_ms: float = math.nan
    infer_avg_ms: float = math.nan
    load_avg_ms: float = math.nan
    warmup_avg_ms: float = math.nan
    input_avg_ms: float | None = None
    preprocess_avg_ms: float | None = None
    postprocess_avg_ms: float | None = None
    worker_avg_s: float = math.nan
    total_infs: int = 0
    total_s: float = math.nan
    performance_level: Any = None
    model_filename: str = ""
    device_type: str = ""
    instance_type: str | None = None
    cost_per_1m_inf: float | None = None
    status: str = "ok"
    start_dts: str = ""
    stop_dts: str = ""
    duration: float = math.nan
    multiprocess: bool = True
    multiinterpreter: bool = False
    # ours
    config_id: str = ""
    error: ErrorInfo | None = None
    input_idx: int = 0
    #: the shapes and dtypes of one example; with the sweep's parameters it identifies
    #: the configuration across runs ("" in files written before it was recorded)
    input_signature: str = ""
    start_method: str = ""
    latency_ms_p999: float = math.nan
    latency_ms_p50_ci_low: float | None = None
    latency_ms_p50_ci_high: float | None = None
    latency_ms_p99_ci_low: float | None = None
    latency_ms_p99_ci_high: float | None = None
    latency_ms_mean: float = math.nan
    throughput_ci95_low: float = math.nan
    throughput_ci95_high: float = math.nan
    throughput_ci_method: str = ""
    throughput_windows: list[float] = []
    window_s: float = math.nan
    total_calls: int = 0
    load_mode: str = "closed"
    target_rate: float | None = None
    achieved_rate: float | None = None
    scheduled: int | None = None
    late: int | None = None
    dropped: int | None = None
    max_lag_ms: float | None = None
    stopped_by: str = ""
    valid: bool = True
    validity_reasons: list[str] = []
    proc_cpu_avg_percent: float | None = None
    proc_rss_peak_mb: float | None = None
    devices: list[str] = []
    #: evaluate mode: metric name -> value (also readable as ``report[name]``)
    metrics: dict[str, Any] = {}
    eval_examples: int | None = None
    #: the merged latency histogram of every call (results format version 2; None in older files)
    latency_histogram: StoredHistogram | None = None
    setup_avg_ms: float | None = None
    env_setup_avg_ms: float | None = None
    #: the system CPU and memory use sampled while measuring (percent)
    cpu_percents: list[float] = []
    mem_percents: list[float] = []
    node_host: str = ""
    node_id: str = ""
    #: device telemetry, sampled in the supervisor once per window (npf_core.results.telemetry):
    #: the devices' mean busy share (%), averaged over the windows, and its highest window
    device_util_avg_percent: float | None = None
    device_util_peak_percent: float | None = None
    #: the device memory the configuration used, its highest window (MiB)
    device_mem_used_peak_mb: float | None = None
    #: the devices' power draw (W): mean and highest window; inferences per joule
    #: (throughput_avg / power_avg_w)
    power_avg_w: float | None = None
    power_peak_w: float | None = None
    inf_per_joule: float | None = None
    device_clock_avg_mhz: float | None = None
    #: utilisation of the CPU cores the copies ran on (%), and each copy's peak RSS (MiB)
    copy_cores_util_avg_percent: float | None = None
    copy_rss_peak_mb: list[float | None] = []
    #: other numeric metrics of third-party sources: their mean over the windows
    telemetry_avg: dict[str, float] = {}
    #: metric -> the source that gave it
    telemetry_sources: dict[str, str] = {}
    #: why device figures are null (no source for the device, a source unavailable, ...)
    telemetry_note: str = ""
    #: per window: ``t_s`` (seconds from GO to the sample) and one list per metric
    #: (null where a source had nothing new for that window)
    telemetry_windows: dict[str, list[Any]] = {}
    #: copies kept loaded from an earlier configuration of the run (issue 23); ``load_avg_ms``,
    #: ``setup_avg_ms`` and ``env_setup_avg_ms`` are over the others, the copies it loaded
    #: (none loaded: ``load_avg_ms`` is null)
    reused_copies: int = 0
    #: load mode "capacity": the p99 budget, the highest Poisson rate (inferences/s)
    #: whose p99 stays within it, its interval, how the search ended, and its probes
    slo_p99_ms: float | None = None
    slo_capacity_inf_s: float | None = None
    slo_capacity_ci_low: float | None = None
    slo_capacity_ci_high: float | None = None
    slo_search: str = ""
    slo_probes: list[CapacityProbe] = []

    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            if key in self.metrics:
                return self.metrics[key]
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, self.metrics.get(key, default))

    def keys(self) -> tuple[str, ...]:
        return self.__struct_fields__

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (NaN becomes None)."""
        out = msgspec.to_builtins(self)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        clean = {k: (math.nan if v is None and k in _NAN_FIELDS else v) for k, v in data.items()}
        return msgspec.convert(clean, type=cls)


_NAN_FIELDS = {
    f.name
    for f in msgspec.structs.fields(Report)
    if isinstance(f.default, float) and math.isnan(f.default)
}


def _ms(ns: float) -> float:
    return ns / 1e6


def _base(config: RunConfig, **extra: Any) -> dict[str, Any]:
    return dict(
        model_name=config.model_name,
        n_models=config.n_models,
        workers_per_model=config.workers_per_model,
        pipeline_size=config.pipeline_size,
        batch_size=config.batch_size,
        performance_level=config.performance_level,
        model_filename=config.model_filename,
        device_type=config.device_type,
        config_id=config.config_id,
        input_idx=config.input_idx,
        input_signature=config.input_signature,
        start_method=config.start_method,
        multiprocess=config.start_method != "inline",
        multiinterpreter=config.start_method == "fresh",
        **extra,
    )


def error_report(config: RunConfig, error: ErrorInfo, **extra: Any) -> Report:
    """The report of a failed configuration."""
    return Report(**_base(config, **extra), status="error", error=error, valid=False,
                  validity_reasons=["configuration failed"])  # fmt: skip


def _median(values: Sequence[float]) -> float:
    if not values:
        return math.nan
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def build_report(
    config: RunConfig,
    results: Sequence[Result],
    readies: Sequence[Ready],
    *,
    window_s: float,
    load_mode: str,
    target_rate: float | None,
    resources: dict[str, list[float]],
    cost_per_hour: float | None = None,
    **extra: Any,
) -> Report:
    """Merge every copy's RESULT into the configuration's report."""
    bs = config.batch_size
    loads = [r for r in readies if not r.reused]
    latency = Histogram.merged(Histogram.from_wire(r.latency) for r in results)
    stages = {
        name: Histogram.merged(Histogram.from_wire(r.stages[name]) for r in results if name in r.stages)
        for name in {k for r in results for k in r.stages}
    }
    calls = sum(r.completed for r in results)
    # Copies run concurrently over (nearly) the same interval: add their rates.
    rate_calls = sum(r.completed / (r.interval_ns / 1e9) for r in results if r.interval_ns > 0)
    throughput = rate_calls * bs
    seconds = max((r.interval_ns for r in results), default=0) / 1e9
    n_windows = min((len(r.windows) for r in results), default=0)
    window_rates = [sum(r.windows[i] for r in results) * bs / window_s for i in range(n_windows)]
    low, high, method = rate_ci(calls * bs, seconds, window_rates) if seconds > 0 else (math.nan, math.nan, "none")
    if seconds > 0 and calls:
        half = (high - low) / 2
        if method == "poisson":  # the counting interval is for calls; each carries a batch
            half *= math.sqrt(bs)
        # centred on the reported figure (which also counts the last, partial window),
        # and never narrower than the count's own resolution: one call over the interval
        half = max(half, bs / seconds)
        low, high = max(0.0, throughput - half), throughput + half

    def pct(q: float) -> float:
        return _ms(latency.percentile(q))

    p50_ci = latency.percentile_ci(50)
    p99_ci = latency.percentile_ci(99)
    reasons: list[str] = []
    if calls == 0:
        reasons.append("no call completed within the measured interval: the model is slower than duration_s")
    if latency.n < VALIDITY_MIN_SAMPLES_P99:
        reasons.append(f"too few samples for p99: {latency.n} < {VALIDITY_MIN_SAMPLES_P99}")
    cv = coefficient_of_variation(window_rates)
    # windows of few calls vary by counting alone (about 1/sqrt(calls) for Poisson
    # arrivals): only variation well beyond that is instability
    per_window = calls / n_windows if n_windows else 0.0
    max_cv = max(VALIDITY_MAX_CV, 2.0 / math.sqrt(per_window)) if per_window > 0 else math.inf
    if n_windows >= 3 and cv > max_cv:
        reasons.append(f"unstable: window throughput varies by {cv:.0%} (coefficient of variation)")
    scheduled = sum(r.scheduled for r in results)
    late = sum(r.late for r in results)
    dropped = sum(r.dropped for r in results)
    open_loop = load_mode != "closed"
    if open_loop and scheduled and dropped > VALIDITY_MAX_DROPPED * scheduled:
        reasons.append(
            f"falling behind schedule: {dropped} of {scheduled} requests never started "
            f"({late} started over {LATE_MS:g} ms late)"
        )
    cpu = resources.get("cpu", [])
    mem = resources.get("mem", [])
    proc_cpu = resources.get("proc_cpu", [])
    proc_rss = resources.get("proc_rss", [])
    stage_ms = {k: _ms(h.mean) for k, h in stages.items() if h.n}
    cost = None
    if cost_per_hour is not None and throughput > 0:
        cost = cost_per_hour / (throughput * 3600) * 1e6
    return Report(
        **_base(config, **extra),
        throughput_avg=throughput,
        throughput_peak=max(window_rates, default=throughput),
        latency_ms_p0=pct(0),
        latency_ms_p50=pct(50),
        latency_ms_p90=pct(90),
        latency_ms_p95=pct(95),
        latency_ms_p99=pct(99),
        latency_ms_p100=pct(100),
        latency_ms_p999=pct(99.9),
        latency_ms_mean=_ms(latency.mean),
        latency_ms_p50_ci_low=_ms(p50_ci[0]) if p50_ci else None,
        latency_ms_p50_ci_high=_ms(p50_ci[1]) if p50_ci else None,
        latency_ms_p99_ci_low=_ms(p99_ci[0]) if p99_ci else None,
        latency_ms_p99_ci_high=_ms(p99_ci[1]) if p99_ci else None,
        cpu_avg_percent=sum(cpu) / len(cpu) if cpu else math.nan,
        cpu_percent_p50=_median(cpu),
        mem_avg_percent=sum(mem) / len(mem) if mem else math.nan,
        mem_percent_p50=_median(mem),
        proc_cpu_avg_percent=sum(proc_cpu) / len(proc_cpu) if proc_cpu else None,
        proc_rss_peak_mb=max(proc_rss) / 2**20 if proc_rss else None,
        e2e_avg_ms=_ms(latency.mean),
        # the lean loop times only the call: its latency is the inference time
        infer_avg_ms=stage_ms.get("infer", _ms(latency.mean) if not stages else math.nan),
        input_avg_ms=stage_ms.get("input"),
        preprocess_avg_ms=stage_ms.get("preprocess"),
        postprocess_avg_ms=stage_ms.get("postprocess"),
        # the copies this configuration loaded; reused ones loaded earlier, and cost nothing here
        load_avg_ms=sum(r.load_ns for r in loads) / len(loads) / 1e6 if loads else math.nan,
        setup_avg_ms=sum(r.setup_ns for r in loads) / len(loads) / 1e6 if loads else None,
        env_setup_avg_ms=sum(r.env_setup_ns for r in loads) / len(loads) / 1e6 if loads else None,
        reused_copies=len(readies) - len(loads),
        cpu_percents=list(cpu),
        mem_percents=list(mem),
        warmup_avg_ms=sum(r.warmup_ns for r in readies) / len(readies) / 1e6 if readies else math.nan,
        worker_avg_s=seconds,
        total_infs=calls * bs,
        total_calls=calls,
        total_s=seconds,
        duration=seconds,
        cost_per_1m_inf=cost,
        throughput_ci95_low=low,
        throughput_ci95_high=high,
        throughput_ci_method=method,
        throughput_windows=window_rates,
        window_s=window_s,
        load_mode=load_mode,
        target_rate=target_rate,
        achieved_rate=(scheduled - dropped) / seconds if open_loop and seconds > 0 else None,
        scheduled=scheduled if open_loop else None,
        late=late if open_loop else None,
        dropped=dropped if open_loop else None,
        max_lag_ms=max((r.max_lag_ns for r in results), default=0) / 1e6 if open_loop else None,
        stopped_by=results[0].stopped_by if results else "",
        valid=not reasons,
        validity_reasons=reasons,
        latency_histogram=latency.to_stored() if latency.n else None,
    )
