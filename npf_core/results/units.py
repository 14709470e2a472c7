"""How figures are printed, in one place for the console, the HTML page and the
notebook table (docs/results.md, "How figures are printed").

- Throughput: at least three significant figures, never an integer digit lost
  (``21.7``, ``217``, ``31,133``), no decimals past those (``144,640``, not ``144,640.2``).
- A latency (given in ms): three significant figures in the unit that puts it
  between 1 and 1000 (``45.4 µs``, ``168 µs``, ``1.23 ms``, ``2.50 s``; ``812 ns``).
- A set of latencies drawn on one axis: the one unit that suits them
  (:func:`latency_unit`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = ["LATENCY_UNITS", "fmt_latency", "fmt_rate", "latency_unit", "missing"]

#: (ms per unit, unit), largest first
LATENCY_UNITS = ((1e3, "s"), (1.0, "ms"), (1e-3, "µs"), (1e-6, "ns"))


def missing(value: Any) -> bool:
    """None, NaN or not a number at all."""
    if value is None or isinstance(value, bool):
        return True
    if not isinstance(value, (int, float)):
        return True
    return isinstance(value, float) and not math.isfinite(value)


def fmt_rate(value: Any) -> str:
    """Throughput: three significant figures at least, every integer digit kept."""
    if missing(value):
        return "-"
    v = float(value)
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    if v == 0:
        return "0"
    return f"{v:.3g}"


def fmt_latency(value_ms: Any) -> str:
    """A latency given in ms: three significant figures in ns, µs, ms or s."""
    if missing(value_ms):
        return "-"
    v = float(value_ms)
    if v == 0:
        return "0 ns"
    for scale, unit in reversed(LATENCY_UNITS):  # ns first: the smallest unit whose figure is under 1000
        text = _three_figures(v / scale)
        if abs(float(text)) < 1000 or unit == "s":
            return f"{text} {unit}"
    raise AssertionError


def _three_figures(x: float) -> str:
    """Three significant figures (at least: every integer digit), rounding first."""
    text = f"{x:.2f}"
    if abs(float(text)) >= 10:
        text = f"{x:.1f}"
    if abs(float(text)) >= 100:
        text = f"{x:.0f}"
    return text


def latency_unit(values_ms: Iterable[Any]) -> tuple[float, str]:
    """``(ms per unit, unit)`` for latencies drawn together: the largest unit in which
    the median value is at least 1 (``µs`` for values around 0.05 ms)."""
    vs = sorted(abs(float(v)) for v in values_ms if not missing(v) and float(v) != 0)
    if not vs:
        return 1.0, "ms"
    mid = vs[len(vs) // 2]
    for scale, unit in LATENCY_UNITS:
        if mid >= scale:
            return scale, unit
    return LATENCY_UNITS[-1]
