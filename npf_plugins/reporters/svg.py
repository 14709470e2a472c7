"""Charts as inline SVG, drawn in Python: no JavaScript library, nothing fetched.

Why not an embedded charting library: Plotly's bundle is ~3.5 MB, Chart.js ~200 KB
and still needs a script run before anything shows; our charts are a few lines and
points, so drawing the SVG here keeps a report of a big sweep to tens of KB, shows
the charts even with scripts off, and prints and screenshots exactly as it looks.
Hovering a point shows its value (an SVG ``<title>``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

__all__ = ["PALETTE", "Series", "bar_chart", "line_chart", "nice_ticks"]

#: series colours (colour-blind-safe, distinct in print)
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip

W = 600  # two charts side by side on a 1280-pixel-wide page
LEFT, RIGHT, TOP, PLOT_H = 66, 14, 30, 230  # plot margins and height; the legend goes below
LEGEND_MAX = 16  # entries shown, in two columns
LEGEND_ROW = 16


@dataclass
class Series:
    name: str
    points: list[tuple[float, float]]
    #: (low, high) per point, drawn as error bars (optional)
    errors: list[tuple[float, float] | None] = field(default_factory=list)
    markers: bool = True
    #: point index -> what is noted there (a ring is drawn round the point, the text on hover)
    marks: dict[int, str] = field(default_factory=dict)


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6:
        return f"{v / 1e6:g}M"
    if a >= 1e4:
        return f"{v / 1e3:g}k"
    if a >= 1:
        return f"{v:g}"
    return f"{v:.3g}"


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    t = start
    while t < hi + step * 0.999:
        ticks.append(round(t, 12))
        t += step
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks per decade covering [lo, hi] (lo > 0)."""
    lo_e, hi_e = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = (1, 2, 5) if hi_e - lo_e <= 3 else (1,)
    ticks = [m * 10.0**e for e in range(lo_e, hi_e + 1) for m in steps]
    inside = [t for t in ticks if lo <= t <= hi]
    below = [t for t in ticks if t < lo]
    above = [t for t in ticks if t > hi]
    if below and (not inside or inside[0] > lo * (1 + 1e-9)):
        inside.insert(0, below[-1])
    if above and (not inside or inside[-1] < hi * (1 - 1e-9)):
        inside.append(above[0])
    return inside


class _Axes:
    def __init__(self, xs: Sequence[float], ys: Sequence[float], x_log: bool, y_from_zero: bool,
                 y_log: bool = False) -> None:  # fmt: skip
        self.x_log = x_log
        self.y_log = y_log
        xs = [x for x in xs if math.isfinite(x) and (x > 0 or not x_log)] or [1.0]
        ys = [y for y in ys if math.isfinite(y) and (y > 0 or not y_log)] or ([1.0] if y_log else [0.0, 1.0])
        if x_log:
            self.xt = log_ticks(min(xs), max(xs) if max(xs) > min(xs) else min(xs) * 10)
        else:
            self.xt = nice_ticks(min(xs), max(xs))
        if y_log:
            self.yt = log_ticks(min(ys), max(ys) if max(ys) > min(ys) else min(ys) * 10)
        else:
            ylo = min(0.0, min(ys)) if y_from_zero else min(ys)
            self.yt = nice_ticks(ylo, max(ys))
        self.pw, self.ph = W - LEFT - RIGHT, PLOT_H

    def x(self, v: float) -> float:
        a, b = self.xt[0], self.xt[-1]
        if self.x_log:
            v, a, b = math.log10(max(v, 1e-300)), math.log10(a), math.log10(b)
        return LEFT + (v - a) / ((b - a) or 1) * self.pw

    def y(self, v: float) -> float:
        a, b = self.yt[0], self.yt[-1]
        if self.y_log:
            v, a, b = math.log10(max(v, 1e-300)), math.log10(a), math.log10(b)
        return TOP + self.ph - (v - a) / ((b - a) or 1) * self.ph


def _height(n_legend: int) -> int:
    return TOP + PLOT_H + 50 + math.ceil(min(n_legend, LEGEND_MAX + 1) / 2) * LEGEND_ROW + 6


def _frame(title: str, x_label: str, y_label: str, chart_id: str, ax: _Axes, n_legend: int,
           x_tick_labels: dict[float, str] | None = None) -> list[str]:  # fmt: skip
    H = _height(n_legend)
    out = [
        f'<svg class="chart" id="{escape(chart_id)}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" '
        f'width="{W}" height="{H}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{W}" height="{H}" fill="#fff"/>',
        f'<text x="{LEFT}" y="20" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    for t in ax.yt:
        y = ax.y(t)
        out.append(f'<line x1="{LEFT}" x2="{LEFT + ax.pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e3e3"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{_fmt(t)}</text>')
    for t in ax.xt:
        x = ax.x(t)
        label = x_tick_labels.get(t, "") if x_tick_labels is not None else _fmt(t)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + ax.ph}" stroke="#eeeeee"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP + ax.ph + 16}" font-size="11" text-anchor="middle">'
                   f"{escape(label)}</text>")  # fmt: skip
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{ax.pw}" height="{ax.ph}" fill="none" stroke="#888"/>')
    out.append(f'<text x="{LEFT + ax.pw / 2:.1f}" y="{TOP + ax.ph + 34}" font-size="12" text-anchor="middle">'
               f"{escape(x_label)}</text>")  # fmt: skip
    out.append(f'<text transform="translate(16 {TOP + ax.ph / 2:.1f}) rotate(-90)" font-size="12" '
               f'text-anchor="middle">{escape(y_label)}</text>')  # fmt: skip
    return out


def _legend(names: Sequence[str]) -> list[str]:
    """Two columns under the plot, colour boxes in series order."""
    out = []
    shown = names[:LEGEND_MAX]
    col_w = (W - LEFT - RIGHT) / 2
    y0 = TOP + PLOT_H + 50
    for i, name in enumerate(shown):
        x = LEFT + (i % 2) * col_w
        y = y0 + (i // 2) * LEGEND_ROW
        c = PALETTE[i % len(PALETTE)]
        label = name if len(name) <= 40 else name[:39] + "…"
        out.append(f'<g class="legend"><rect x="{x:.1f}" y="{y - 9}" width="12" height="10" fill="{c}"/>'
                   f'<text x="{x + 17:.1f}" y="{y}" font-size="11"><title>{escape(name)}</title>'
                   f"{escape(label)}</text></g>")  # fmt: skip
    if len(names) > len(shown):
        y = y0 + (len(shown) // 2) * LEGEND_ROW
        out.append(f'<text x="{LEFT}" y="{y}" font-size="11">+{len(names) - len(shown)} more</text>')
    return out


def line_chart(
    chart_id: str,
    title: str,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    x_log: bool = False,
    y_log: bool = False,
    y_from_zero: bool = True,
    x_tick_labels: dict[float, str] | None = None,
    hlines: Sequence[tuple[float, str]] = (),
    y_max: float | None = None,
) -> str:
    """An SVG line chart, one coloured line (with markers and error bars) per series;
    ``x_log``/``y_log``: that axis in powers of ten (1-2-5 ticks). ``hlines``: dashed
    horizontal reference lines ``(y, label)``; ``y_max``: the y axis ends there (what
    lies above is cut off at the plot's edge)."""
    xs = [p[0] for s in series for p in s.points]
    ys = [p[1] for s in series for p in s.points] + [e[i] for s in series for e in s.errors if e for i in (0, 1)]
    ys += [y for y, _ in hlines]
    if y_max is not None:
        ys = [min(y, y_max) for y in ys]
    if x_tick_labels:
        xs += list(x_tick_labels)
    ax = _Axes(xs, ys, x_log, y_from_zero, y_log)
    if x_tick_labels:
        ax.xt = sorted(x_tick_labels)
        pad = 0.5
        ax.xt = [ax.xt[0] - pad, *ax.xt, ax.xt[-1] + pad]
        x_tick_labels = {**x_tick_labels}
    out = _frame(title, x_label, y_label, chart_id, ax, len(series), x_tick_labels)
    out.append(f'<clipPath id="{escape(chart_id)}-clip"><rect x="{LEFT}" y="{TOP}" width="{ax.pw}" '
               f'height="{ax.ph}"/></clipPath><g clip-path="url(#{escape(chart_id)}-clip)">')  # fmt: skip
    for y, label in hlines:
        py = ax.y(y)
        out.append(f'<line class="hline" x1="{LEFT}" x2="{LEFT + ax.pw}" y1="{py:.1f}" y2="{py:.1f}" stroke="#c00" '
                   f'stroke-dasharray="6 4" stroke-width="1.5"><title>{escape(label)}</title></line>')  # fmt: skip
        out.append(f'<text x="{LEFT + 4}" y="{py - 4:.1f}" font-size="11" fill="#c00">{escape(label)}</text>')
    for i, s in enumerate(series):
        c = PALETTE[i % len(PALETTE)]
        errs = list(s.errors) + [None] * (len(s.points) - len(s.errors))
        pts = [(x, y, e) for (x, y), e in zip(s.points, errs, strict=True)
               if math.isfinite(x) and math.isfinite(y) and (y > 0 or not y_log) and (x > 0 or not x_log)]  # fmt: skip
        if not pts:
            continue
        if len(pts) == 1:  # one point is no line: draw it as a filled dot, so the series is still seen
            px, py = ax.x(pts[0][0]), ax.y(pts[0][1])
            d = f"M{px - 5:.1f},{py:.1f}a5,5 0 1,0 10,0a5,5 0 1,0 -10,0Z"
            out.append(f'<path class="series" data-series="{escape(s.name)}" d="{d}" fill="{c}" stroke="{c}"/>')
        else:
            d = " ".join(f"{'M' if j == 0 else 'L'}{ax.x(x):.1f},{ax.y(y):.1f}" for j, (x, y, _) in enumerate(pts))
            out.append(f'<path class="series" data-series="{escape(s.name)}" d="{d}" fill="none" stroke="{c}" '
                       f'stroke-width="2"/>')  # fmt: skip
        for x, _, err in pts:
            if err and all(math.isfinite(v) for v in err):
                px, lo, hi = ax.x(x), ax.y(err[0]), ax.y(err[1])
                out.append(f'<path d="M{px - 4:.1f},{lo:.1f}H{px + 4:.1f}M{px:.1f},{lo:.1f}V{hi:.1f}'
                           f'M{px - 4:.1f},{hi:.1f}H{px + 4:.1f}" stroke="{c}"/>')  # fmt: skip
        if s.markers:
            for x, y, _ in pts:
                out.append(f'<circle cx="{ax.x(x):.1f}" cy="{ax.y(y):.1f}" r="3.5" fill="{c}">'
                           f"<title>{escape(s.name)}: {_fmt(x)}, {y:,.4g}</title></circle>")  # fmt: skip
        for j, note in sorted(s.marks.items()):
            x, y = s.points[j]
            if math.isfinite(x) and math.isfinite(y):
                out.append(f'<circle class="mark" data-series="{escape(s.name)}" cx="{ax.x(x):.1f}" '
                           f'cy="{ax.y(y):.1f}" r="8" fill="none" stroke="#000" stroke-width="2">'
                           f"<title>{escape(s.name)}: {escape(note)}</title></circle>")  # fmt: skip
    out.append("</g>")
    out += _legend([s.name for s in series])
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(chart_id: str, title: str, bars: Sequence[tuple[str, float]], *, y_label: str) -> str:
    """An SVG bar chart, one bar per (label, value)."""
    ax = _Axes([0, max(len(bars), 1)], [v for _, v in bars], False, True)
    ax.xt = [-0.5, len(bars) - 0.5]
    out = _frame(title, "", y_label, chart_id, ax, len(bars), {})
    bw = ax.pw / max(len(bars), 1) * 0.7
    for i, (label, v) in enumerate(bars):
        c = PALETTE[i % len(PALETTE)]
        x = ax.x(i) - bw / 2
        y = ax.y(v)
        out.append(f'<rect class="series" x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{ax.y(0) - y:.1f}" '
                   f'fill="{c}"><title>{escape(label)}: {v:,.4g}</title></rect>')  # fmt: skip
    out += _legend([label for label, _ in bars])
    out.append("</svg>")
    return "\n".join(out)
