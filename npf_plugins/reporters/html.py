"""Reporter ``html``: ``report.html`` in the output folder — one self-contained file
(inline CSS, inline SVG charts, a few lines of script to sort the table; nothing
fetched, so it opens offline and can be mailed or archived as is).

It holds the summary table (click a heading to sort), throughput scaling over model
copies x workers x batch size, the latency CDF and percentile curves of every
configuration (from the stored histograms), the throughput of every window over
time, the device's utilisation over time and its telemetry columns (utilisation,
memory, power, inferences per joule) when a telemetry source sampled it, the cost per
million inferences when ``cost_per_hour`` is known, the validity notes, the errors,
the environment and the spec. ``npf report RESULTS --html FILE``
writes the same page for an existing results file.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any

from npf_core.plugin import (
    Histogram,
    History,
    Registry,
    Report,
    Reporter,
    ReporterContext,
    Results,
    describe_error,
    environment,
    fmt_latency,
    fmt_rate,
    group_failures,
    hookimpl,
    latency_unit,
    user_frames,
    write_atomic,
)
from npf_core.plugin import events as ev
from npf_plugins.reporters.svg import Series, bar_chart, line_chart

__all__ = ["HtmlReporter", "render_html"]

_NO_HISTOGRAMS = "no latency histograms in this results file (format 1, or no call completed)"
#: the CDF is drawn up to this percentile
CDF_TOP = 99.9
#: points per latency curve (a histogram has up to thousands of buckets)
CURVE_POINTS = 160

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;max-width:1240px}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:13px} table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right} td.l,th.l{text-align:left}
table.sortable th{cursor:pointer;background:#f4f4f4;user-select:none} th.asc:after{content:" \\25B2"}
th.desc:after{content:" \\25BC"} tr.error td{background:#fde8e8} tr.warn td{background:#fff6dd}
.charts{display:flex;flex-wrap:wrap;gap:12px 16px} .charts figure{margin:0;width:600px;max-width:100%}
.charts svg{display:block;max-width:100%;height:auto;border:1px solid #eee} .note{color:#8a5a00}
.charts figcaption{font-size:13px;font-weight:bold;margin:6px 0}
pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px;white-space:pre-wrap}
"""

# Sort on click: numbers by data-v, text otherwise; a second click reverses.
_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.querySelectorAll("th");
  heads.forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = !th.classList.contains("asc");
      heads.forEach(function (h) { h.classList.remove("asc", "desc"); });
      th.classList.add(asc ? "asc" : "desc");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
        var nx = parseFloat(x), ny = parseFloat(y), r;
        if (!isNaN(nx) && !isNaN(ny)) { r = nx - ny; } else { r = String(x).localeCompare(String(y)); }
        return asc ? r : -r;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""

# (heading, field or function, format)
_COLUMNS: list[tuple[str, Any, str]] = [
    ("configuration", "config_id", "s"),
    ("status", lambda r: r.status if r.status != "ok" or r.valid else "ok", "s"),
    ("copies", "n_models", "d"),
    ("workers", "workers_per_model", "d"),
    ("pipeline", "pipeline_size", "d"),
    ("batch", "batch_size", "d"),
    ("throughput/s", "throughput_avg", "rate"),
    ("95% low", "throughput_ci95_low", "rate"),
    ("95% high", "throughput_ci95_high", "rate"),
    ("p50", "latency_ms_p50", "ms"),
    ("p90", "latency_ms_p90", "ms"),
    ("p99", "latency_ms_p99", "ms"),
    ("p99.9", "latency_ms_p999", "ms"),
    ("mean", "latency_ms_mean", "ms"),
    ("calls", "total_calls", "d"),
    ("$ / 1M inf", "cost_per_1m_inf", "g"),
]
#: shown when some configuration has device telemetry
_TELEMETRY_COLUMNS: list[tuple[str, Any, str]] = [
    ("device %", "device_util_avg_percent", "f1"),
    ("device MiB", "device_mem_used_peak_mb", "f0"),
    ("power W", "power_avg_w", "f1"),
    ("inf / J", "inf_per_joule", "f2"),
]


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _cell(r: Report, spec: tuple[str, Any, str]) -> str:
    _, get, fmt = spec
    v = get(r) if callable(get) else getattr(r, get, None)
    n = _num(v)
    if fmt == "s":
        text = "ok?" if v == "ok" and not r.valid else str(v)
        return f'<td class="l" data-v="{escape(text)}">{escape(text)}</td>'
    if n is None:
        return '<td data-v="">-</td>'
    if fmt == "d":
        text = f"{int(n):,}"
    elif fmt == "rate":
        text = fmt_rate(n)  # three significant figures, every integer digit, no more
    elif fmt == "ms":
        text = fmt_latency(n)  # in ns, µs, ms or s, whichever puts it between 1 and 1000
    else:
        text = f"{n:.4g}"
    return f'<td data-v="{n!r}">{text}</td>'


def _has_device_telemetry(reports: list[Report]) -> bool:
    return any(getattr(r, f) is not None for r in reports for _, f, _ in _TELEMETRY_COLUMNS)


#: load mode "capacity": after the throughput's columns
_CAPACITY_COLUMNS: list[tuple[str, Any, str]] = [
    ("capacity/s", "slo_capacity_inf_s", "rate"),
    ("capacity low", "slo_capacity_ci_low", "rate"),
    ("capacity high", "slo_capacity_ci_high", "rate"),
]


def summary_table(reports: list[Report]) -> str:
    columns = list(_COLUMNS)
    if any(r.slo_p99_ms is not None for r in reports):
        columns[9:9] = _CAPACITY_COLUMNS
    if _has_device_telemetry(reports):
        columns += _TELEMETRY_COLUMNS
    head = "".join(f'<th class="{"l" if f == "s" else ""}">{escape(h)}</th>' for h, _, f in columns)
    rows = []
    for r in reports:
        cls = "error" if r.status != "ok" else "" if r.valid else "warn"
        rows.append(f'<tr class="{cls}">' + "".join(_cell(r, c) for c in columns) + "</tr>")
    return f'<table class="sortable" id="summary"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _ok(reports: list[Report]) -> list[Report]:
    return [r for r in reports if r.status == "ok" and _num(r.throughput_avg) is not None]


def scaling_chart(reports: list[Report]) -> str | None:
    """Throughput over model copies x workers, one line per batch size (and per
    pipeline size / input / model where those vary)."""
    ok = _ok(reports)
    if not ok:
        return None
    combos = sorted({(r.n_models, r.workers_per_model) for r in ok})
    pos = {c: float(i) for i, c in enumerate(combos)}
    vary = [f for f in ("pipeline_size", "input_idx", "model_filename") if len({getattr(r, f) for r in ok}) > 1]
    groups: dict[tuple[Any, ...], list[Report]] = {}
    for r in ok:
        groups.setdefault((r.batch_size, *(getattr(r, f) for f in vary)), []).append(r)
    names = {"pipeline_size": "pipeline", "input_idx": "input", "model_filename": "model"}
    series = []
    for key in sorted(groups, key=repr):
        rs = sorted(groups[key], key=lambda r: pos[(r.n_models, r.workers_per_model)])
        label = f"batch {key[0]}" + "".join(f", {names[f]} {v}" for f, v in zip(vary, key[1:], strict=True))
        series.append(Series(
            label,
            [(pos[(r.n_models, r.workers_per_model)], r.throughput_avg) for r in rs],
            [(r.throughput_ci95_low, r.throughput_ci95_high) for r in rs],
        ))  # fmt: skip
    ticks = {p: f"{c[0]} x {c[1]}" for c, p in pos.items()}
    return line_chart("chart-scaling", "Throughput scaling", series, x_label="model copies x workers per copy",
                      y_label="inferences / s", x_tick_labels=ticks)  # fmt: skip


def _hists(reports: list[Report]) -> list[tuple[Report, Histogram]]:
    out = []
    for r in _ok(reports):
        if r.latency_histogram is not None and r.latency_histogram.n:
            out.append((r, Histogram.from_stored(r.latency_histogram)))
    return out


def _unit(hists: list[tuple[Report, Histogram]]) -> tuple[float, str]:
    """The latency unit of a chart: the one that suits the configurations' medians (ns per unit, unit)."""
    scale_ms, unit = latency_unit(h.percentile(50) / 1e6 for _, h in hists)
    return scale_ms * 1e6, unit


def cdf_chart(reports: list[Report]) -> str | None:
    """The latency CDF of each configuration: the fraction of calls at or under x."""
    hists = _hists(reports)
    if not hists:
        return None
    ns_per, unit = _unit(hists)
    series = []
    for r, h in hists:
        # evenly in probability, and denser in the tail the sample resolves (p99, p99.9, ...)
        # (to p99.9: one far outlier would squeeze the whole curve against the axis;
        # the percentile chart shows the tail)
        top = _nines(min(CDF_TOP, 100 * (1 - 1 / max(h.n, 2))))
        linear = [CDF_TOP * i / (CURVE_POINTS - 1) for i in range(CURVE_POINTS)]
        tail = [100 * (1 - 10 ** (-k)) for k in _frange(2.0, max(top, 2.0), 40)]
        qs = sorted({*linear, *tail})
        pts = [(h.percentile(q) / ns_per, q / 100) for q in qs]
        series.append(Series(r.config_id, pts, markers=False))
    return line_chart("chart-cdf", "Latency CDF (per call, to p99.9)", series, x_label=f"latency, {unit} (log scale)",
                      y_label="fraction of calls", x_log=True)  # fmt: skip


#: percentiles of the percentile curve and where they sit on the "nines" axis
_NINES = (0.0, 50.0, 90.0, 99.0, 99.9, 99.99)


def _nines(q: float) -> float:
    return -math.log10(max(1 - q / 100, 1e-6))


#: the percentile chart's latency axis is logarithmic when its values span more than this ratio
LOG_RANGE = 20.0


def percentile_chart(reports: list[Report]) -> str | None:
    """Latency against percentile, the percentile axis in "nines" (p50, p90, p99, ...);
    the latency axis in powers of ten when the curves span a wide range (one slow
    tail would otherwise flatten every other curve)."""
    hists = _hists(reports)
    if not hists:
        return None
    ns_per, unit = _unit(hists)
    series = []
    for r, h in hists:
        # up to the percentile the sample can resolve (p99.99 needs 10,000 calls)
        top = min(99.99, 100 * (1 - 1 / max(h.n, 2)))
        qs = [100 * (1 - 10 ** (-top_n)) for top_n in _frange(0.0, _nines(top), 60)]
        series.append(Series(r.config_id, [(_nines(q), h.percentile(q) / ns_per) for q in qs], markers=False))
    ys = [y for s in series for _, y in s.points if y > 0]
    log = bool(ys) and max(ys) / min(ys) > LOG_RANGE
    ticks = {_nines(q): f"p{q:g}" for q in _NINES}
    return line_chart("chart-percentiles", "Latency percentiles (per call)", series, x_label="percentile",
                      y_label=f"latency, {unit}" + (" (log scale)" if log else ""), x_tick_labels=ticks,
                      y_log=log)  # fmt: skip


def _frange(a: float, b: float, n: int) -> list[float]:
    return [a + (b - a) * i / (n - 1) for i in range(n)]


def windows_chart(reports: list[Report]) -> str | None:
    """The throughput of each measurement window over the run, per configuration."""
    series = []
    for r in _ok(reports):
        w = _num(r.window_s)
        if r.throughput_windows and w:
            series.append(Series(r.config_id, [((i + 1) * w, v) for i, v in enumerate(r.throughput_windows)],
                                 markers=len(r.throughput_windows) <= 60))  # fmt: skip
    if not series:
        return None
    return line_chart("chart-windows", "Throughput over time (per window)", series,
                      x_label="seconds into the measurement", y_label="inferences / s")  # fmt: skip


def utilisation_chart(reports: list[Report]) -> str | None:
    """The device's busy share in each measurement window, per configuration (from
    the telemetry sampled in the supervisor)."""
    series = []
    for r in _ok(reports):
        times = r.telemetry_windows.get("t_s") or []
        util = r.telemetry_windows.get("device_util_percent") or []
        pts = [(t, u) for t, u in zip(times, util, strict=False) if _num(t) is not None and _num(u) is not None]
        if pts:
            series.append(Series(r.config_id, pts, markers=len(pts) <= 60))
    if not series:
        return None
    return line_chart("chart-utilisation", "Device utilisation over time (per window)", series,
                      x_label="seconds into the measurement", y_label="device busy, %")  # fmt: skip


def _no_utilisation(reports: list[Report]) -> str:
    notes = list(dict.fromkeys(r.telemetry_note for r in _ok(reports) if r.telemetry_note))
    why = f": {notes[0]}" if len(notes) == 1 else ""
    return f"no device utilisation in these results{why}"
def _searched(reports: list[Report]) -> list[Report]:
    return [r for r in _ok(reports) if r.slo_p99_ms is not None and any(p.mode != "closed" for p in r.slo_probes)]


def capacity_chart(reports: list[Report]) -> str | None:
    """Load mode "capacity": each configuration's p99 against the offered Poisson
    load of its probes (with the p99's interval), and the budget as a dashed line;
    where a curve crosses the line is that configuration's capacity."""
    searched = _searched(reports)
    if not searched:
        return None
    budget = float(searched[0].slo_p99_ms or 0.0)
    top = 3 * budget
    series = []
    for r in searched:
        probes = sorted((p for p in r.slo_probes if p.mode != "closed" and p.p99_ms is not None),
                        key=lambda p: p.inf_s)  # fmt: skip
        series.append(Series(
            r.config_id, [(p.inf_s, float(p.p99_ms or 0.0)) for p in probes],
            [(p.p99_ci_low_ms or 0.0, top if p.p99_ci_high_ms is None else p.p99_ci_high_ms) for p in probes],
        ))  # fmt: skip
    return line_chart("chart-capacity", f"Capacity: p99 against offered load (budget {budget:g} ms)", series,
                      x_label="offered load (Poisson), inferences / s", y_label="p99 latency, ms",
                      hlines=[(budget, f"p99 budget {budget:g} ms")], y_max=top)  # fmt: skip


def probes_table(reports: list[Report]) -> str | None:
    """Load mode "capacity": every probe of every configuration, with its verdict."""
    rows = []
    for r in reports:
        for i, p in enumerate(r.slo_probes):
            ci = (f"{p.p99_ci_low_ms or 0:.3f} .. " + ("?" if p.p99_ci_high_ms is None else f"{p.p99_ci_high_ms:.3f}"))
            over = "-" if p.over_fraction is None else f"{100 * p.over_fraction:.2f}%"
            p99 = "-" if p.p99_ms is None else f"{p.p99_ms:.3f}"
            rows.append(
                f'<tr><td class="l">{escape(r.config_id)}</td><td>{i}</td><td class="l">{escape(p.mode)}</td>'
                f"<td>{p.inf_s:,.1f}</td><td>{p.achieved_inf_s:,.1f}</td><td>{p.seconds:.2f}</td><td>{p.calls:,}</td>"
                f'<td>{p99}</td><td>{ci}</td><td>{over}</td><td class="l">{escape(p.verdict)}</td></tr>'
            )
    if not rows:
        return None
    head = "".join(f'<th class="{c}">{h}</th>' for h, c in (
        ("configuration", "l"), ("probe", ""), ("load", "l"), ("offered inf/s", ""), ("achieved inf/s", ""),
        ("s", ""), ("calls", ""), ("p99 ms", ""), ("p99 95% interval", ""), ("over budget", ""), ("verdict", "l"),
    ))  # fmt: skip
    return f'<table id="probes"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def cost_chart(reports: list[Report]) -> str | None:
    bars = [(r.config_id, r.cost_per_1m_inf) for r in _ok(reports) if r.cost_per_1m_inf is not None]
    bars = [(name, cost) for name, cost in bars if math.isfinite(cost)]
    if not bars:
        return None
    return bar_chart("chart-cost", "Cost per 1M inferences", bars, y_label="cost per 1M inferences")


def _kv_table(data: dict[str, Any], table_id: str) -> str:
    rows = []
    for k, v in data.items():
        text = json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else "-" if v is None else str(v)
        rows.append(f'<tr><th class="l">{escape(str(k))}</th><td class="l">{escape(text)}</td></tr>')
    return f'<table id="{table_id}">{"".join(rows)}</table>'


def environment_table(environment: dict[str, Any]) -> str:
    """The machine and software, one row each (packages flattened; an unknown EC2
    instance type said in words, not ``None``)."""
    env = dict(environment)
    if not env:
        return "<p>not recorded</p>"
    packages = env.pop("packages", None)
    if isinstance(packages, dict):
        env.update({f"package {k}": v for k, v in packages.items()})
    if "instance_type" in env and env["instance_type"] is None:
        env["instance_type"] = "not known (not an EC2 instance, or its metadata service did not answer)"
    return _kv_table(env, "environment")


def spec_section(spec: dict[str, Any]) -> str:
    """The spec as run: its comment lines as text, the rest as indented JSON with its
    own characters (no ``\\u2014`` escapes)."""
    data = dict(spec)
    comment = data.pop("_comment", None)
    out = ""
    if isinstance(comment, list) and comment:
        out += '<p class="meta">' + "<br>".join(escape(str(line)) for line in comment) + "</p>"
    return out + f'<pre id="spec">{escape(json.dumps(data, indent=2, ensure_ascii=False))}</pre>'


def errors_section(reports: list[Report]) -> list[str]:
    """The failed configurations, one entry per error: what failed, where in the
    user's code, what to do, which configurations; the full traceback folded."""
    groups = group_failures(reports)
    if not groups:
        return []
    out = ['<h2>Errors</h2><ul id="errors">']
    for g in groups:
        first = g.reports[0]
        who, what = describe_error(g.error)
        item = f"<li><b>{escape(first.config_id)}</b>: {escape(what)}" + (f" ({escape(who)})" if who else "")
        frames = user_frames(g.error.traceback)
        if frames:
            item += "<br>" + "<br>".join(f"at <code>{escape(f.text())}</code>" for f in frames)
        if g.error.hint:
            item += f'<br><span class="note">hint: {escape(g.error.hint)}</span>'
        if len(g.reports) > 1:
            item += f"<br>the same error in: {escape(', '.join(r.config_id for r in g.reports[1:]))}"
        if g.not_tried:
            item += f"<br>not tried, would fail the same way: {escape(', '.join(r.config_id for r in g.not_tried))}"
        if g.error.traceback:
            item += f"<details><summary>traceback</summary><pre>{escape(g.error.traceback)}</pre></details>"
        if g.error.output_tail:
            item += f"<details><summary>output</summary><pre>{escape(g.error.output_tail)}</pre></details>"
        out.append(item + "</li>")
    out.append("</ul>")
    return out


def render_html(results: Results) -> str:
    """The whole report page for a read results file."""
    reports = results.reports
    spec = results.spec or {}
    title = f"npf report: {spec.get('name') or (reports[0].model_name if reports else 'no results')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">run {escape(results.run_id or "-")} · npf {escape(results.npf_version or "?")} · '
        f"results format {results.format_version} · {len(reports)} configuration{'s' * (len(reports) != 1)} · "
        f"{escape(str(results.path))}</p>",
        "<h2>Summary</h2>",
        '<p class="meta">Throughput is inferences (calls x batch size) per second with its 95% interval; '
        "latencies are per call. Click a heading to sort.</p>",
        summary_table(reports),
    ]
    charts = [
        ("Throughput scaling", scaling_chart(reports), "no successful configuration"),
        *([("Capacity", capacity_chart(reports), "no capacity probes")] if _searched(reports) else []),
        ("Latency CDF", cdf_chart(reports), _NO_HISTOGRAMS),
        ("Latency percentiles", percentile_chart(reports), "no latency histograms to draw percentile curves from"),
        ("Throughput over time", windows_chart(reports), "no window throughputs recorded"),
        ("Device utilisation", utilisation_chart(reports), _no_utilisation(reports)),
        ("Cost", cost_chart(reports), "cost unknown: set cost_per_hour in the spec to see the cost per 1M inferences"),
    ]
    parts.append("<h2>Charts</h2>")
    parts.append('<div class="charts">')
    for heading, svg, missing in charts:
        if svg:
            parts.append(f"<figure>{svg}</figure>")
        else:
            parts.append(f'<figure><figcaption>{escape(heading)}</figcaption><p class="note">{escape(missing)}</p>'
                         "</figure>")  # fmt: skip
    parts.append("</div>")
    probes = probes_table(reports)
    if probes:
        budget = next(r.slo_p99_ms for r in reports if r.slo_p99_ms is not None)
        best = max((r for r in _ok(reports) if r.slo_capacity_inf_s is not None),
                   key=lambda r: r.slo_capacity_inf_s or 0.0, default=None)  # fmt: skip
        verdict = (f"highest capacity at p99 &lt;= {budget:g} ms: <b>{best.slo_capacity_inf_s:,.0f} inf/s</b> with "
                   f"{escape(best.config_id)}" if best is not None else "no configuration met the budget")  # fmt: skip
        parts.append("<h2>Capacity probes</h2>")
        parts.append(f'<p class="meta" id="capacity-best">{verdict}. Probe 0 is the closed loop (its throughput '
                     "bounds the capacity); the others are Poisson open loops, each measured until its p99's "
                     "interval lies within or above the budget (see docs/capacity.md).</p>")  # fmt: skip
        parts.append(probes)
    notes = [(r.config_id, "; ".join(r.validity_reasons)) for r in reports if r.status == "ok" and not r.valid]
    parts.append("<h2>Validity notes</h2>")
    if notes:
        parts.append("<ul id=\"validity\">" + "".join(
            f"<li><b>ok? {escape(c)}</b>: {escape(n)}</li>" for c, n in notes) + "</ul>")  # fmt: skip
    elif not _ok(reports):
        parts.append('<p id="validity">No configuration succeeded, so there are no figures to check: '
                     "see the errors below.</p>" if reports else '<p id="validity">No configurations.</p>')  # fmt: skip
    else:
        parts.append('<p id="validity">Every successful configuration passed the validity checks.</p>')
    parts += errors_section(reports)
    parts.append("<h2>Environment</h2>")
    parts.append(environment_table(results.environment))
    parts.append("<h2>Spec</h2>")
    parts.append(spec_section(spec))
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts)


class HtmlReporter(Reporter):
    """report.html in the output folder, rewritten after every finished configuration."""

    def __init__(self, ctx: ReporterContext) -> None:
        super().__init__(ctx)
        self.by_index: dict[int, Report] = {}
        self.started: ev.RunStarted | None = None
        self.env = environment()

    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self.started = event
            self.env = {**self.env, **event.environment}  # what the telemetry sources found
        elif isinstance(event, (ev.ConfigFinished, ev.ConfigFailed, ev.ConfigSkipped)):
            self.by_index[event.index] = event.report
            self.write()

    def write(self) -> None:
        from npf_core import __version__
        from npf_core.plugin import RESULTS_FORMAT_VERSION

        path = self.ctx.output_dir / "report.html"
        results = Results(
            path=self.ctx.output_dir / "results.json",
            reports=[self.by_index[i] for i in sorted(self.by_index)],
            spec=self.started.spec if self.started else {},
            environment=self.env,
            run_id=self.started.run_id if self.started else "",
            npf_version=__version__,
            format_version=RESULTS_FORMAT_VERSION,
        )
        write_atomic(path, render_html(results).encode())

    def export(self, results: Results, path: Path) -> None:
        """``npf report RESULTS --html FILE``: the same page for a finished run."""
        write_atomic(path, render_html(results).encode())

    def export_history(self, history: History, path: Path) -> None:
        """``npf history PATH --html FILE``: the trend of each configuration over runs."""
        from npf_plugins.reporters.history_html import render_history_html

        write_atomic(path, render_history_html(history).encode())


@hookimpl
def npf_register_reporters(registry: Registry[Reporter]) -> None:
    registry.add("html", HtmlReporter)
