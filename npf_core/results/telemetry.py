"""Device telemetry of one configuration -> its report's fields.

The supervisor samples every telemetry source once per measurement window
(:mod:`npf_core.supervisor.telemetry`); what it hands over is a
:class:`TelemetryResult`: one list per metric, a value (or null) per window. This
module turns that into the report's figures, the same way for every source:

| metric (per window) | report fields |
| --- | --- |
| ``device_util_percent`` | ``device_util_avg_percent`` (mean), ``device_util_peak_percent`` (max) |
| ``device_mem_used_mb`` | ``device_mem_used_peak_mb`` (max) |
| ``power_w`` | ``power_avg_w`` (mean), ``power_peak_w`` (max), ``inf_per_joule`` |
| ``sm_clock_mhz`` | ``device_clock_avg_mhz`` (mean) |
| ``cpu_util_percent`` | ``copy_cores_util_avg_percent`` (mean) |
| ``copy_rss_mb`` (a list per window, one value per copy) | ``copy_rss_peak_mb`` (each copy's max) |
| anything else that is a number | ``telemetry_avg[name]`` (mean) |

``inf_per_joule`` is ``throughput_avg / power_avg_w``: inferences per second over
joules per second. A figure no source gave stays null, and ``telemetry_note`` says why.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from npf_core.results.report import Report

__all__ = ["COPY_RSS", "DEVICE_METRICS", "SUMMARIES", "WINDOW_TIME", "TelemetryResult", "apply_telemetry", "summarize"]

#: the per-window list of sample times (seconds from GO)
WINDOW_TIME = "t_s"
#: the per-window list of per-copy RSS lists
COPY_RSS = "copy_rss_mb"
#: metric -> (report field, "mean" | "max") pairs
SUMMARIES: dict[str, tuple[tuple[str, str], ...]] = {
    "device_util_percent": (("device_util_avg_percent", "mean"), ("device_util_peak_percent", "max")),
    "device_mem_used_mb": (("device_mem_used_peak_mb", "max"),),
    "power_w": (("power_avg_w", "mean"), ("power_peak_w", "max")),
    "sm_clock_mhz": (("device_clock_avg_mhz", "mean"),),
    "cpu_util_percent": (("copy_cores_util_avg_percent", "mean"),),
}
#: the metrics that describe the device itself (not the host): their absence is noted
DEVICE_METRICS = ("device_util_percent", "device_mem_used_mb", "power_w")


class TelemetryResult(msgspec.Struct, kw_only=True):
    """What the supervisor sampled during one configuration's measurement."""

    #: ``t_s`` and one list per metric, a value (or None) per window
    windows: dict[str, list[Any]] = {}
    #: metric -> the source that gave it
    sources: dict[str, str] = {}
    #: why figures are missing (a source unavailable or failed; no source for the device)
    note: str = ""


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def summarize(windows: dict[str, list[Any]], throughput: float | None) -> dict[str, Any]:
    """The report fields of a configuration's per-window telemetry."""
    out: dict[str, Any] = {}
    extra: dict[str, float] = {}
    for metric, values in windows.items():
        if metric in (WINDOW_TIME, COPY_RSS):
            continue
        nums = [n for n in (_number(v) for v in values) if n is not None]
        if metric in SUMMARIES:
            for field, how in SUMMARIES[metric]:
                out[field] = (sum(nums) / len(nums) if how == "mean" else max(nums)) if nums else None
        elif nums:
            extra[metric] = sum(nums) / len(nums)
    rss = [w for w in windows.get(COPY_RSS, []) if isinstance(w, list)]
    if rss:
        n = max(len(w) for w in rss)
        peaks: list[float | None] = []
        for i in range(n):
            vals = [x for x in (_number(w[i]) for w in rss if i < len(w)) if x is not None]
            peaks.append(max(vals) if vals else None)
        out["copy_rss_peak_mb"] = peaks
    out["telemetry_avg"] = extra
    power = out.get("power_avg_w")
    rate = _number(throughput)
    out["inf_per_joule"] = rate / power if power and power > 0 and rate is not None else None
    return out


def apply_telemetry(report: Report, result: TelemetryResult | None) -> Report:
    """``report`` with the figures of ``result`` (a configuration that sampled nothing
    keeps null figures, with the note)."""
    if result is None:
        return report
    fields = summarize(result.windows, report.throughput_avg)
    note = result.note
    if fields.get("device_util_avg_percent") is None and not note:
        sampled = [m for m in DEVICE_METRICS if m in result.sources]
        note = (
            "device telemetry: no sample arrived during the measurement"
            if sampled
            else "device telemetry: no source sampled this device"
        )
    return msgspec.structs.replace(
        report,
        **fields,
        telemetry_sources=dict(result.sources),
        telemetry_note=note,
        telemetry_windows={k: list(v) for k, v in result.windows.items()},
    )
