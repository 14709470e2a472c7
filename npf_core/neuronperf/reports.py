"""NeuronPerf's report dicts and its reporting functions: :func:`get_reports`,
:func:`print_reports`, :func:`write_csv`, :func:`write_json`.

A report is a plain ``dict`` (``"key" in report``, ``json.dumps(report)``) with every
field of npf's :class:`~npf_core.results.report.Report` plus the NeuronPerf keys npf's report
does not carry (``NeuronPerf_version``, ``n_devices``, ``stats_interval``, ...), and
NeuronPerf's status words: ``"finished"`` or ``"error"``.
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

from npf_core.neuronperf.timing import StageTimer
from npf_core.results.report import (
    NEURONPERF_COLUMNS,
    NEURONPERF_CSV_COLUMNS,
    PRINT_COLUMNS,
    TELEMETRY_COLUMNS,
    Report,
)

__all__ = ["CSV_COLS", "REPORT_COLS", "SUMMARY_COLS", "get_reports", "print_reports", "write_csv", "write_json"]

#: NeuronPerf's default columns of ``print_reports``
SUMMARY_COLS = list(PRINT_COLUMNS)
#: NeuronPerf's default columns of ``write_csv``, in its order
CSV_COLS = list(NEURONPERF_CSV_COLUMNS)
#: every NeuronPerf report field
REPORT_COLS = list(NEURONPERF_COLUMNS)
_PERCENTILES = (0, 50, 90, 95, 99, 100)


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _pct(values: Any, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def neuronperf_report(report: Report | Mapping[str, Any], stats_interval: float | None = None) -> dict[str, Any]:
    """An npf report as NeuronPerf's report dict."""
    from npf_core.version import __version__

    d = report.to_dict() if isinstance(report, Report) else {k: _clean(v) for k, v in dict(report).items()}
    d["status"] = "finished" if d.get("status") in ("ok", "finished") else "error"
    d["NeuronPerf_version"] = __version__
    d["n_devices"] = int(d.get("n_models", 0)) * int(d.get("pipeline_size", 1))
    interval = stats_interval if stats_interval is not None else min(d.get("window_s") or 0.5, 0.5)
    d["stats_interval"] = interval
    cpu = list(d.get("cpu_percents") or [])
    mem = list(d.get("mem_percents") or [])
    d["n_stats_intervals"] = len(cpu)
    for q in _PERCENTILES:
        for kind, values in (("cpu", cpu), ("mem", mem)):
            if d.get(f"{kind}_percent_p{q}") is None:
                d[f"{kind}_percent_p{q}"] = _pct(values, q)
    d.setdefault("env_setup_avg_ms", None)
    d.setdefault("setup_avg_ms", None)
    d["throughput_hist"] = list(d.get("throughput_windows") or [])
    # npf folds every call into a histogram: NeuronPerf's list of each call's e2e time
    # is not kept (memory stays flat with duration and speed)
    d.setdefault("e2e_durations_ms", [])
    if isinstance(d.get("error"), Mapping) and d["status"] == "error":
        d.setdefault("error_message", d["error"].get("message", ""))
    return d


# ---------------------------------------------------------------------------
# return_timers: (config, results) tuples
# ---------------------------------------------------------------------------

_CONFIG_KEYS = (
    "model_filename", "model_name", "device_type", "instance_type", "input_idx", "batch_size", "n_models",
    "workers_per_model", "pipeline_size", "performance_level", "multiprocess", "multiinterpreter", "start_dts",
)  # fmt: skip


def timers_result(report: Report, *, duration: float, stats_interval: float, cost_per_hour: float | None) -> tuple:
    """One configuration as NeuronPerf's ``(config, results)`` tuple."""
    d = report.to_dict()
    config = {k: d.get(k) for k in _CONFIG_KEYS}
    config.update(cast_mode=d.get("performance_level"), duration=duration, stats_interval=stats_interval,
                  cost_per_hour=cost_per_hour)  # fmt: skip
    n, w = max(1, report.n_models), max(1, report.workers_per_model)
    calls = report.total_calls
    timers: dict[str, list[StageTimer]] = {}
    ok = report.status == "ok"

    def per_copy(stage: str, avg_ms: float | None) -> None:
        if avg_ms is not None and not (isinstance(avg_ms, float) and math.isnan(avg_ms)):
            timers[stage] = [StageTimer(stage, 1, avg_ms * 1e6) for _ in range(n)]

    per_copy("env_setup", report.env_setup_avg_ms if report.env_setup_avg_ms else None)
    per_copy("setup", report.setup_avg_ms)
    per_copy("load", report.load_avg_ms)
    per_copy("warmup", report.warmup_avg_ms)
    if ok:
        share, rest = divmod(calls, n * w)
        for stage, avg in (("input", report.input_avg_ms), ("preprocess", report.preprocess_avg_ms),
                           ("infer", report.infer_avg_ms), ("postprocess", report.postprocess_avg_ms),
                           ("e2e", report.e2e_avg_ms)):  # fmt: skip
            if avg is None or math.isnan(avg):
                continue
            timers[stage] = [
                StageTimer(stage, share + (i < rest), (share + (i < rest)) * avg * 1e6) for i in range(n * w)
            ]
        timers["worker"] = [StageTimer("worker", 1, report.worker_avg_s * 1e9) for _ in range(n * w)]
    results = {
        "status": "finished" if ok else "error",
        "n_infs": calls,
        "total_s": _clean(report.total_s),
        "workers_per_model": report.workers_per_model,
        "cpu_percents": list(report.cpu_percents),
        "mem_percents": list(report.mem_percents),
        "timers": timers,
        "report": neuronperf_report(report, stats_interval),
    }
    if not ok and report.error is not None:
        results["error"] = report.error.message
    return config, results


def _report_from_timers(config: Mapping[str, Any], results: Mapping[str, Any]) -> dict[str, Any]:
    """NeuronPerf's computation for results built from real :class:`Timer` objects."""
    timers = results.get("timers", {})
    bs = int(config.get("batch_size", 1) or 1)

    def all_durations(stage: str) -> np.ndarray:
        parts = [t.durations("ms") for t in timers.get(stage, [])]
        return np.concatenate(parts) if parts else np.array([])

    def avg(stage: str, unit: str = "ms") -> float | None:
        ts = timers.get(stage, [])
        count = sum(len(t) for t in ts)
        return sum(t.total_duration(unit) for t in ts) / count if count else None

    e2e = all_durations("e2e")
    if not len(e2e):
        e2e = all_durations("infer")
    total_s = results.get("total_s") or (avg("worker", "s") or 0.0)
    n_infs = int(results.get("n_infs", len(e2e)))
    d: dict[str, Any] = dict(config)
    d.update(
        status=results.get("status", "finished"),
        total_infs=n_infs * bs,
        total_s=total_s,
        throughput_avg=n_infs * bs / total_s if total_s else None,
        throughput_peak=n_infs * bs / total_s if total_s else None,
        e2e_durations_ms=e2e.tolist(),
        cpu_percents=list(results.get("cpu_percents", [])),
        mem_percents=list(results.get("mem_percents", [])),
    )
    for q in _PERCENTILES:
        d[f"latency_ms_p{q}"] = _pct(e2e, q)
    for stage in ("env_setup", "setup", "load", "warmup", "input", "preprocess", "infer", "postprocess", "e2e"):
        d[f"{stage}_avg_ms"] = avg(stage)
    d["worker_avg_s"] = avg("worker", "s")
    cpu, mem = d["cpu_percents"], d["mem_percents"]
    d["cpu_avg_percent"] = float(np.mean(cpu)) if cpu else None
    d["mem_avg_percent"] = float(np.mean(mem)) if mem else None
    cost = config.get("cost_per_hour")
    tput = d["throughput_avg"]
    d["cost_per_1m_inf"] = cost / (tput * 3600) * 1e6 if cost and tput else None
    return neuronperf_report(d, config.get("stats_interval"))


def get_reports(results: Sequence[Any], batch_sizes: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Report dicts from ``benchmark(..., return_timers=True)``'s ``(config, results)``
    tuples (or from hand-built ones whose ``timers`` are :class:`Timer` objects)."""
    out = []
    for item in results:
        if isinstance(item, Report):
            out.append(neuronperf_report(item))
            continue
        if isinstance(item, Mapping) and "throughput_avg" in item:
            out.append(dict(item))
            continue
        config, res = item
        if "report" in res:
            out.append(dict(res["report"]))
        else:
            if batch_sizes is not None and config.get("input_idx") is not None:
                config = {**config, "batch_size": list(batch_sizes)[int(config["input_idx"])]}
            out.append(_report_from_timers(config, res))
    return out


# ---------------------------------------------------------------------------
# Viewing and saving
# ---------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "N/A"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if abs(value) < 1e15 else f"{value:g}"
    return str(value)


def _sort_key(sort_by: str | None) -> Any:
    def key(r: Mapping[str, Any]) -> Any:
        v = r.get(sort_by) if sort_by else None
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return (1, 0)
        return (0, v)

    return key


def print_reports(
    reports: Sequence[Mapping[str, Any]],
    cols: Sequence[str] = SUMMARY_COLS,
    sort_by: str | None = "throughput_peak",
    reverse: bool = False,
) -> None:
    """Print the reports as a fixed-width table on stdout (``N/A`` where a value is missing)."""
    rows = sorted(reports, key=_sort_key(sort_by), reverse=reverse) if sort_by else list(reports)
    cells = [[_text(r.get(c)) for c in cols] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) + 1 for i, c in enumerate(cols)]
    out = sys.stdout
    out.write("".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip() + "\n")
    for row in cells:
        out.write("".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
    out.flush()


def _filename(reports: Sequence[Mapping[str, Any]], suffix: str) -> str:
    name = next((str(r.get("model_name")) for r in reports if r.get("model_name")), "model")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    return f"{safe}.results-{time.strftime('%Y%m%d-%H%M%S')}.{suffix}"


def write_csv(
    reports: Sequence[Mapping[str, Any]], filename: str | None = None, cols: Sequence[str] = CSV_COLS
) -> str:
    """Write the reports' ``cols`` to a CSV file (``N/A`` where a value is missing);
    returns the filename (generated from the model name and the time when not given).
    With the default columns, reports that carry device telemetry add its columns
    (``TELEMETRY_COLUMNS``) after NeuronPerf's 26, which keep their positions."""
    filename = filename or _filename(reports, "csv")
    if cols is CSV_COLS and any(_clean(r.get(c)) is not None for r in reports for c in TELEMETRY_COLUMNS):
        cols = [*CSV_COLS, *TELEMETRY_COLUMNS]
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


def write_json(reports: Sequence[Mapping[str, Any]], filename: str | None = None) -> str:
    """Write the reports to a JSON file; returns the filename."""
    filename = filename or _filename(reports, "json")
    data = [{k: _clean(v) for k, v in dict(r).items()} for r in reports]
    Path(filename).write_text(json.dumps(data, indent=2, default=str, allow_nan=False))
    return str(filename)
