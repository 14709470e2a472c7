"""``npf history PATH --html FILE``: the trend of each configuration over a spec's
runs, one self-contained page (inline SVG drawn by ``svg.py``, nothing fetched).

One chart per figure (throughput, p50, p99, and any figure ``compare`` judges),
one line per configuration, each point with the run's own 95% interval; a black
ring marks a point where the same test as ``npf compare`` finds a significant change
against the configuration's previous run (hover it for the change). Below: the runs
(time, label, commit) and the changes in words.
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

from npf_plugins.reporters.svg import Series, line_chart

if TYPE_CHECKING:
    from npf_core.plugin import History

__all__ = ["render_history_html"]

#: run names on the x axis at most (every k-th run is named past it)
MAX_TICKS = 12
TICK_CHARS = 14

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;max-width:1240px}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:13px} table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left} td.n{text-align:right}
tr.marked td{background:#fff6dd} .charts{display:flex;flex-wrap:wrap;gap:12px 16px}
.charts figure{margin:0;width:600px;max-width:100%}
.charts svg{display:block;max-width:100%;height:auto;border:1px solid #eee} .note{color:#8a5a00}
"""


def _ticks(history: History) -> dict[float, str]:
    n = len(history.runs)
    step = max(1, math.ceil(n / MAX_TICKS))
    out = {}
    for r in history.runs:
        text = r.tick()
        out[float(r.index)] = (text if len(text) <= TICK_CHARS else text[: TICK_CHARS - 1] + "…") if (
            r.index % step == 0 or r.index == n - 1) else ""  # fmt: skip
    return out


def trend_chart(history: History, figure_index: int) -> str | None:
    """One figure over the runs: a line per configuration."""
    f = history.figures[figure_index]
    series = []
    for s, name in enumerate(history.series):
        pts = [p for p in history.points if p.series == s and p.values.get(f.name) is not None]
        if not pts:
            continue
        marks = {}
        for j, p in enumerate(pts):
            changed = [m for m in p.significant if m.metric == f.name]
            if changed:
                m = changed[0]
                low, high = m.ci_pct or (math.nan, math.nan)
                marks[j] = (f"{m.verdict} {m.change_pct:+.1f}% [{low:+.1f}%, {high:+.1f}%] against run "
                            f"{(p.against or 0) + 1} ({history.runs[p.against or 0].tick()})")  # fmt: skip
        series.append(Series(
            name,
            [(float(p.run), float(p.values[f.name] or 0.0)) for p in pts],
            [p.intervals.get(f.name) for p in pts],
            marks=marks,
        ))  # fmt: skip
    if not series:
        return None
    return line_chart(f"chart-history-{f.name}", f"{f.name} over runs ({f.unit})", series,
                      x_label="run (label, commit or time)", y_label=f"{f.name}, {f.unit}",
                      x_tick_labels=_ticks(history))  # fmt: skip


def _runs_table(history: History) -> str:
    marked = set(history.marked_runs())
    rows = []
    for r in history.runs:
        pts = [p for p in history.points if p.run == r.index]
        failed = sum(p.status != "ok" for p in pts)
        changes = "; ".join(f"{p.config_id}: {m.metric} {m.change_pct:+.1f}% {m.verdict}"
                            for p in pts for m in p.significant)  # fmt: skip
        rows.append(
            f'<tr class="{"marked" if r.index in marked else ""}"><td class="n">{r.index + 1}</td>'
            f"<td>{escape(r.started or '-')}</td><td>{escape(r.label or '-')}</td>"
            f"<td>{escape(r.commit_short or '-')}</td><td class=\"n\">{len(pts)}</td><td class=\"n\">{failed}</td>"
            f"<td>{escape(changes or '-')}</td></tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("run", "started", "label", "commit", "configurations", "failed",
                                            "significant changes against the run before"))  # fmt: skip
    return f'<table id="runs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def render_history_html(history: History) -> str:
    """The whole page."""
    title = f"npf history: {history.name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{len(history.runs)} run{"s" * (len(history.runs) != 1)} · {len(history.series)} '
        f"configuration{'s' * (len(history.series) != 1)} · {escape(history.path)}</p>",
        f'<p class="meta">Each point is a run\'s figure with its own 95% interval; a black ring marks a '
        f"significant change against the configuration's previous run, by the test of <code>npf compare</code> "
        f"(threshold {history.threshold_pct:g}%, {history.confidence:.0%} confidence). Hover a point or a ring "
        f"for its value.</p>",
        "<h2>Trends</h2>",
        '<div class="charts">',
    ]
    for i in range(len(history.figures)):
        svg = trend_chart(history, i)
        if svg:  # (a figure no run measured, e.g. one only a load mode gives, has no chart)
            parts.append(f"<figure>{svg}</figure>")
    if not any(trend_chart(history, i) for i in range(len(history.figures))):
        parts.append('<p class="note">no configuration succeeded in any run: nothing to draw</p>')
    parts.append("</div>")
    parts.append("<h2>Runs</h2>")
    parts.append(_runs_table(history))
    parts.append("</body></html>")
    return "\n".join(parts)
