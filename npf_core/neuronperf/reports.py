"""NeuronPerf's report dicts and its reporting functions: :func:`get_report`,
:func:`get_reports`, :func:`print_reports`, :func:`write_csv`, :func:`write_json`,
with its column lists (``CSV_COLS``, ``PRINT_COLS``) and its report keys.

A report is a plain ``dict`` (``"key" in report``, ``json.dumps(report)``): every key
of NeuronPerf's report first, in its order (:data:`REPORT_KEYS`), then npf's own
fields, with NeuronPerf's status words: ``"finished"`` or ``"error"``.
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from npf_core.log import get_logger
from npf_core.neuronperf.timing import Timer
from npf_core.results.report import NEURONPERF_CSV_COLUMNS, PRINT_COLUMNS, Report

__all__ = [
    "CONFIG_KEYS",
    "CSV_COLS",
    "PRINT_COLS",
    "REPORT_COLS",
    "REPORT_KEYS",
    "REQUIRED_CONFIG_KEYS",
    "REQUIRED_RESULTS_KEYS",
    "RESULTS_KEYS",
    "SUMMARY_COLS",
    "TIMER_STAGES",
    "get_report",
    "get_reports",
    "print_reports",
    "write_csv",
    "write_json",
]

logger = get_logger("npf_core.neuronperf")

#: NeuronPerf's default columns of ``print_reports`` (the docs call them ``SUMMARY_COLS``)
PRINT_COLS = list(PRINT_COLUMNS)
SUMMARY_COLS = PRINT_COLS
#: NeuronPerf's default columns of ``write_csv``, in its order (the docs: ``REPORT_COLS``)
CSV_COLS = list(NEURONPERF_CSV_COLUMNS)
REPORT_COLS = CSV_COLS
_PERCENTILES = (0, 50, 90, 95, 99, 100)
#: the stages of ``results["timers"]`` (``return_timers=True``), in NeuronPerf's order:
#: per model copy the first five, per worker thread the other five
TIMER_STAGES = ["env_setup", "setup", "load", "input", "warmup", "preprocess", "infer", "postprocess", "e2e", "worker"]
_PER_COPY = TIMER_STAGES[:5]
_PER_WORKER = TIMER_STAGES[5:]
#: the ``config`` dict of a ``(config, results)`` tuple, in NeuronPerf's order (npf adds
#: ``input_idx``, ``cast_mode`` and ``cost_per_hour`` after them)
CONFIG_KEYS = [
    "model_filename", "model_name", "device_type", "instance_type", "batch_size", "n_models", "workers_per_model",
    "pipeline_size", "n_devices", "performance_level", "multiprocess", "multiinterpreter", "stats_interval",
    "start_dts", "duration", "stop_dts",
]  # fmt: skip
#: the ``results`` dict of a ``(config, results)`` tuple (npf adds ``report``)
RESULTS_KEYS = ["workers_per_model", "status", "n_infs", "total_s", "timers", "cpu_percents", "mem_percents"]
REQUIRED_CONFIG_KEYS = [
    "multiprocess", "multiinterpreter", "device_type", "batch_size", "model_filename", "model_name", "n_models",
    "pipeline_size",
]  # fmt: skip
REQUIRED_RESULTS_KEYS = ["workers_per_model", "status", "timers", "n_infs", "total_s"]
_STAGE_AVGS = ["load", "input", "warmup", "env_setup", "setup", "preprocess", "infer", "postprocess", "e2e"]
#: every key of a NeuronPerf report, in its order
REPORT_KEYS = [
    "NeuronPerf_version", *CONFIG_KEYS, "n_stats_intervals", "status",
    *(f"{s}_avg_ms" for s in _STAGE_AVGS), "worker_avg_s", "total_infs", "total_s",
    "cpu_avg_percent", *(f"cpu_percent_p{q}" for q in _PERCENTILES),
    "mem_avg_percent", *(f"mem_percent_p{q}" for q in _PERCENTILES),
    *(f"latency_ms_p{q}" for q in _PERCENTILES), "throughput_peak", "throughput_avg", "cost_per_1m_inf",
]  # fmt: skip
#: stages that ran no function report 0 in NeuronPerf (an empty timer's average)
_ZERO_WHEN_UNUSED = ("input_avg_ms", "env_setup_avg_ms", "setup_avg_ms", "preprocess_avg_ms", "postprocess_avg_ms")


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _pct(values: Any, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def neuronperf_report(
    report: Report | Mapping[str, Any], stats_interval: float | None = None, duration: float | None = None
) -> dict[str, Any]:
    """An npf report as NeuronPerf's report dict: its keys first, in its order."""
    from npf_core.version import __version__

    d = report.to_dict() if isinstance(report, Report) else {k: _clean(v) for k, v in dict(report).items()}
    d["status"] = "finished" if d.get("status") in ("ok", "finished") else "error"
    d["NeuronPerf_version"] = __version__
    d["n_devices"] = int(d.get("n_models", 0)) * int(d.get("pipeline_size", 1))
    interval = stats_interval if stats_interval is not None else min(d.get("window_s") or 0.5, 0.5)
    d["stats_interval"] = interval
    if duration is not None:
        d.setdefault("measured_s", d.get("duration"))
        d["duration"] = duration  # NeuronPerf's config value: what was asked for
    cpu = list(d.get("cpu_percents") or [])
    mem = list(d.get("mem_percents") or [])
    d["n_stats_intervals"] = len(cpu)
    for q in _PERCENTILES:
        for kind, values in (("cpu", cpu), ("mem", mem)):
            if d.get(f"{kind}_percent_p{q}") is None:
                d[f"{kind}_percent_p{q}"] = _pct(values, q)
    if d["status"] == "finished":
        for key in _ZERO_WHEN_UNUSED:
            if d.get(key) is None:
                d[key] = 0.0
    d.setdefault("throughput_hist", list(d.get("throughput_windows") or []))
    # npf folds every call into a histogram: NeuronPerf's list of each call's e2e time
    # is kept only where the calls were (return_timers)
    d.setdefault("e2e_durations_ms", [])
    if isinstance(d.get("error"), Mapping) and d["status"] == "error":
        d.setdefault("error_message", d["error"].get("message", ""))
    ordered = {k: d.get(k) for k in REPORT_KEYS}
    ordered.update((k, v) for k, v in d.items() if k not in ordered)
    return ordered


# ---------------------------------------------------------------------------
# return_timers: (config, results) tuples
# ---------------------------------------------------------------------------


def _rows(calls: Any) -> np.ndarray:
    return np.frombuffer(calls.stamps, dtype=np.int64).reshape(calls.n, calls.k)


def _stage_timer(calls: Any, rows: np.ndarray, stage: str) -> Timer:
    cols = calls.stages.get(stage)
    if cols is None or not len(rows):
        return Timer()
    i, j = cols
    return Timer.from_stamps(rows[:, i], rows[:, j])


def _pair(stamps: Mapping[str, Sequence[int]], stage: str) -> Timer:
    pair = stamps.get(stage)
    return Timer.from_stamps([pair[0]], [pair[1]]) if pair else Timer()


def kept_timers(readies: Sequence[Any], results: Sequence[Any]) -> dict[str, list[Timer]]:
    """NeuronPerf's ``timers`` from the calls the copies kept: per copy ``env_setup``,
    ``setup``, ``load``, ``input`` (its workers' fetches merged), ``warmup``; per worker
    ``preprocess``, ``infer``, ``postprocess``, ``e2e``, ``worker``. A stage that ran no
    function has an empty :class:`Timer`."""
    timers: dict[str, list[Timer]] = {stage: [] for stage in TIMER_STAGES}
    for ready, result in zip(readies, results, strict=False):
        for stage in ("env_setup", "setup", "load"):
            timers[stage].append(_pair(ready.stamps, stage))
        fetches = [_rows(c)[:, list(c.stages["input"])] for c in result.calls if "input" in c.stages and c.n]
        if fetches:
            pairs = np.concatenate(fetches)
            pairs = pairs[np.argsort(pairs[:, 0], kind="stable")]
            timers["input"].append(Timer.from_stamps(pairs[:, 0], pairs[:, 1]))
        else:
            timers["input"].append(Timer())
        timers["warmup"].append(_pair(ready.stamps, "warmup"))
        for calls in result.calls:
            rows = _rows(calls)
            for stage in ("preprocess", "infer", "postprocess", "e2e"):
                timers[stage].append(_stage_timer(calls, rows, stage))
            loop = list(calls.worker)
            timers["worker"].append(Timer.from_stamps([loop[0]], [loop[1]]) if len(loop) == 2 and loop[1] else Timer())
    return timers


def timers_result(
    report: Report,
    kept: tuple[Sequence[Any], Sequence[Any]] | None,
    *,
    duration: float,
    stats_interval: float,
    cost_per_hour: float | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One configuration as NeuronPerf's ``(config, results)`` tuple; ``kept`` holds the
    copies' READY and RESULT messages with each call's stamps (None: nothing kept, the
    configuration failed)."""
    d = neuronperf_report(report, stats_interval, duration)
    config = {k: d.get(k) for k in CONFIG_KEYS}
    config.update(input_idx=report.input_idx, cast_mode=report.performance_level, cost_per_hour=cost_per_hour)
    ok = report.status == "ok"
    timers = kept_timers(*kept) if ok and kept is not None else {stage: [] for stage in TIMER_STAGES}
    results: dict[str, Any] = {
        "workers_per_model": report.workers_per_model,
        "status": "finished" if ok else "error",
        "n_infs": report.total_calls,
        "total_s": _clean(report.total_s),
        "timers": timers,
        "cpu_percents": list(report.cpu_percents),
        "mem_percents": list(report.mem_percents),
    }
    if ok and timers["e2e"]:
        e2e = [t.durations("ms") for t in timers["e2e"] if len(t)]
        d["e2e_durations_ms"] = np.concatenate(e2e).tolist() if e2e else []
    results["report"] = d
    if not ok and report.error is not None:
        results["error"] = report.error.message
    return config, results


# ---------------------------------------------------------------------------
# get_report: NeuronPerf's figures from (config, results) with real timers
# ---------------------------------------------------------------------------


def get_report(
    benchmark_results: tuple[Mapping[str, Any], Mapping[str, Any]],
    cost_per_hour: float | None = None,
    window_size: int = 1,
    verbosity: int = 0,
) -> dict[str, Any]:
    """One report dict from a ``(config, results)`` tuple. A tuple from npf's own
    ``return_timers`` carries the engine's report; one built by hand (its ``timers``
    lists of :class:`Timer`) is summarised as NeuronPerf did: per-stage means of each
    timer's mean, latency percentiles of every e2e duration, throughput from the e2e
    end times counted in ``window_size``-second buckets (first and last dropped)."""
    config, res = benchmark_results
    if "report" in res:
        engine = dict(res["report"])
        if cost_per_hour and engine.get("throughput_avg"):
            engine["cost_per_1m_inf"] = cost_per_hour * 1e6 / (3600 * engine["throughput_avg"])
        return engine
    missing = [k for k in REQUIRED_CONFIG_KEYS if k not in config] + [
        k for k in REQUIRED_RESULTS_KEYS if k not in res
    ]  # fmt: skip
    if missing:
        raise ValueError(f"benchmark results lack {', '.join(missing)}: expected a (config, results) tuple "
                         "from benchmark(..., return_timers=True)")  # fmt: skip
    timers: Mapping[str, Sequence[Timer]] = res.get("timers", {})
    bs = int(config.get("batch_size", 1) or 1)

    def stage_avg(stage: str, unit: str = "ms") -> float:
        ts = timers.get(stage, [])
        return float(np.mean([t.avg(unit) for t in ts])) if ts else 0.0

    d: dict[str, Any] = dict(config)
    d["n_stats_intervals"] = len(res.get("cpu_percents", []))
    d["workers_per_model"] = res["workers_per_model"]
    d["status"] = res["status"]
    for stage in _STAGE_AVGS:
        d[f"{stage}_avg_ms"] = stage_avg(stage)
    d["worker_avg_s"] = stage_avg("worker", "s")
    d["total_infs"] = int(res["n_infs"]) * bs
    d["total_s"] = res["total_s"]
    for kind in ("cpu", "mem"):
        samples = list(res.get(f"{kind}_percents", []))
        if len(samples) > 2:
            points = [float(np.percentile(samples[1:-1], q)) for q in _PERCENTILES]
            d[f"{kind}_avg_percent"] = float(np.mean(points))
            d.update({f"{kind}_percent_p{q}": v for q, v in zip(_PERCENTILES, points, strict=True)})
    e2e = [t for t in timers.get("e2e", []) if len(t)]
    durations = np.concatenate([t.durations("ms") for t in e2e]) if e2e else np.array([])
    for q in _PERCENTILES:
        d[f"latency_ms_p{q}"] = _pct(durations, q)
    ends = np.concatenate([t.end_timestamps("s") for t in e2e]) if e2e else np.array([])
    if len(ends):
        _, counts = np.unique(np.floor(ends / window_size), return_counts=True)
        counts = counts * bs
        d["throughput_peak"] = float(counts.max()) / window_size
        d["throughput_avg"] = float(counts[1:-1].mean()) / window_size if len(counts) > 2 else math.nan
        if verbosity > 0:
            d["throughput_hist"] = counts.tolist()
    if verbosity > 1:
        d["e2e_durations_ms"] = durations.tolist()
    tput = d.get("throughput_avg")
    if cost_per_hour and tput and not math.isnan(tput):
        d["cost_per_1m_inf"] = cost_per_hour * 1e6 / (3600 * tput)
    return neuronperf_report(d, config.get("stats_interval"))


def get_reports(
    results: Sequence[Any], cost_per_hour: float | None = None, *, batch_sizes: Sequence[int] | None = None
) -> list[dict[str, Any]]:
    """Report dicts from ``benchmark(..., return_timers=True)``'s ``(config, results)``
    tuples (or from hand-built ones whose ``timers`` are :class:`Timer` objects).
    ``batch_sizes`` (the docs' keyword) corrects each configuration's batch size by
    its ``input_idx``."""
    out = []
    for item in results:
        if isinstance(item, Report):
            out.append(neuronperf_report(item))
            continue
        if isinstance(item, Mapping) and "throughput_avg" in item:
            out.append(dict(item))
            continue
        config, res = item
        if batch_sizes is not None and config.get("input_idx") is not None:
            config = {**config, "batch_size": list(batch_sizes)[int(config["input_idx"])]}
        try:
            out.append(get_report((config, res), cost_per_hour))
        except ValueError as exc:  # NeuronPerf: said, and left out
            logger.warning(f"Result {len(out)} is missing required information, skipping.", error=str(exc))
    return out


# ---------------------------------------------------------------------------
# Viewing and saving
# ---------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "N/A"
    if isinstance(value, (float, np.floating)):
        return str(round(float(value), 3))
    return str(value)


def print_reports(
    reports: Sequence[Mapping[str, Any]],
    cols: Sequence[str] = PRINT_COLS,
    sort_by: str = "throughput_peak",
    reverse: bool = False,
) -> None:
    """Print the reports as a table on stdout, NeuronPerf's layout: every column as
    wide as the longest column name plus one, floats to 3 decimals, ``N/A`` where a
    report has no value. Rows are sorted by ``sort_by`` only when it is one of ``cols``."""
    if not reports:
        print("No reports were found. Did benchmarking succeed?")
        return
    width = max(len(c) for c in cols) + 1
    rows = list(reports)
    if sort_by in cols:
        rows.sort(key=_sort_key(sort_by), reverse=reverse)
    out = sys.stdout
    out.write("".join(f"{c:<{width}}" for c in cols) + "\n")
    for r in rows:
        out.write("".join(f"{_cell(r.get(c)):<{width}}" for c in cols) + "\n")
    out.flush()


def _sort_key(sort_by: str) -> Any:
    def key(r: Mapping[str, Any]) -> Any:
        v = r.get(sort_by)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return (1, 0)
        return (0, v)

    return key


def _filename(reports: Sequence[Mapping[str, Any]], suffix: str) -> str:
    name = next((str(r.get("model_name")) for r in reports if r.get("model_name")), "model")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return f"{safe}.results-{time.strftime('%Y%m%d-%H%M%S')}.{suffix}"


def write_csv(
    reports: Sequence[Mapping[str, Any]], filename: str | None = None, cols: Sequence[str] = CSV_COLS
) -> str:
    """Write the reports' ``cols`` to a CSV file (``N/A`` where a value is missing);
    returns the filename (generated from the model name and the time when not given).
    The default columns are exactly NeuronPerf's (scripts compare headers); device
    telemetry is written with ``cols=[*CSV_COLS, *TELEMETRY_COLUMNS]`` (npf's own
    results.csv always has it after the 26)."""
    filename = filename or _filename(reports, "csv")
    with open(filename, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for r in reports:
            w.writerow([_csv(r.get(c)) for c in cols])
    return str(filename)


def _csv(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "N/A"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def write_json(reports: Sequence[Mapping[str, Any]] | Mapping[str, Any], filename: str | None = None) -> str:
    """Write the reports (or one report) to a JSON file; returns the filename."""
    items = [reports] if isinstance(reports, Mapping) else list(reports)
    filename = filename or _filename(items, "json")
    rows = [{k: _json(v) for k, v in dict(r).items()} for r in items]
    data: Any = rows[0] if isinstance(reports, Mapping) else rows
    Path(filename).write_text(json.dumps(data, indent=2, default=str, allow_nan=False))
    return str(filename)


def _json(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    return _clean(value)
