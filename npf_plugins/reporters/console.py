"""Reporter ``console``: a live display while the run goes (on a terminal), a line
per configuration, then a table with NeuronPerf's printed columns (and status) and
the best configurations. Verbosity 0 prints the table alone.

Numbers (docs/results.md, "How figures are printed"): throughput has at least three
significant figures and never loses an integer digit (``21.7``, ``217``, ``31,133``),
in inferences per second; a latency has three significant figures in the unit that
puts it between 1 and 1000 (``45.4 µs``, ``168 µs``, ``1.23 ms``, ``2.50 s``).

On a terminal the live display needs no thread of its own: it is redrawn on each
event (a measurement window is at most 0.5 s), so that the benchmarkers are forked
from a single-threaded process, and log lines written meanwhile go through rich's
console (above the display) instead of tearing it.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.markup import escape
from rich.measure import Measurement
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from npf_core.plugin import (
    FailureGroup,
    Registry,
    Report,
    Reporter,
    ReporterContext,
    describe_error,
    fmt_latency,
    group_failures,
    hookimpl,
    user_frames,
)
from npf_core.plugin import events as ev
from npf_core.plugin import fmt_rate as _fmt_rate

P99_CALLS = 1000  # the calls a supported p99 needs (the validity rule's)
#: below this device utilisation the best configuration's device was not saturated
SATURATED_PERCENT = 80.0

#: (report field, header, formatter) in NeuronPerf's printed order, then status
COLUMNS = (
    ("throughput_avg", "inf/s", "rate"),
    ("latency_ms_p50", "p50", "ms"),
    ("latency_ms_p99", "p99", "ms"),
    ("n_models", "models", "int"),
    ("pipeline_size", "pipeline", "int"),
    ("workers_per_model", "workers", "int"),
    ("batch_size", "batch", "int"),
    ("model_filename", "model", "str"),
)
#: dropped in this order while the table is wider than the terminal; throughput,
#: p50, p99, status and the fields that tell the rows apart always stay whole
OPTIONAL = ("model_filename", "pipeline_size")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_rate(value: Any) -> str:
    """Throughput: three significant figures at least, every integer digit kept."""
    return _fmt_rate(value)


def fmt_ms(value: Any) -> str:
    """A latency given in ms: three significant figures in ns, µs, ms or s."""
    return fmt_latency(value)


def fmt(value: Any, kind: str = "str") -> str:
    if _missing(value):
        return "-"
    if kind == "rate":
        return fmt_rate(value)
    if kind == "ms":
        return fmt_ms(value)
    return str(value)


def fmt_metric(value: Any) -> str:
    """A metric: small errors (1e-6) stay visible."""
    if isinstance(value, float) and not math.isnan(value):
        return f"{value:.4g}"
    return fmt(value)


def status_of(r: Report) -> str:
    """``ok``, ``ok?`` (figures to read with care: ``valid`` is false) or ``error``."""
    if r.status != "ok":
        return "error"
    return "ok" if r.valid else "ok?"


_STATUS_STYLE = {"ok": "", "ok?": "yellow", "error": "red"}


def report_table(reports: list[Report], title: str | None = None, width: int | None = None) -> Table:
    """The results table; with ``width``, optional columns are dropped until it fits."""
    dropped: list[str] = []
    while True:
        table = _table(reports, title, dropped)
        if width is None or len(dropped) == len(OPTIONAL):
            return table
        wide = Console(width=10_000, file=io.StringIO())  # the table's natural width, not clamped to the terminal's
        if Measurement.get(wide, wide.options, table).maximum <= width:
            return table
        dropped.append(OPTIONAL[len(dropped)])


def _table(reports: list[Report], title: str | None, dropped: list[str]) -> Table:
    table = Table(title=title, header_style="bold")
    cols = [c for c in COLUMNS if c[0] not in dropped]
    if any(r.slo_p99_ms is not None for r in reports):  # load mode "capacity"
        cols.insert(1, ("slo_capacity_inf_s", "capacity", "rate"))
    for _field, header, kind in cols:
        if kind == "str":
            table.add_column(header, justify="left", overflow="fold")
        else:
            table.add_column(header, justify="right", no_wrap=True)
    names = list(dict.fromkeys(k for r in reports for k in r.metrics))  # evaluate mode
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for r in reports:
        status = status_of(r)
        style = _STATUS_STYLE[status]
        table.add_row(
            *(fmt(getattr(r, f), kind) for f, _, kind in cols),
            *(fmt_metric(r.metrics.get(k)) for k in names),
            f"[{style}]{status}[/]" if style else status,
        )
    return table


def make_console() -> Console:
    """A console on stdout; not a terminal (a pipe, a CI log): wide enough for the table."""
    import sys

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def remedy(r: Report) -> str:
    """What to do about a too-short configuration: the duration that would reach
    P99_CALLS calls at the rate observed (with 10% to spare)."""
    if r.total_calls <= 0 or _missing(r.total_s) or r.total_s <= 0:
        return 'try a longer duration_s, or duration_s "auto"'
    need = P99_CALLS * 1.1 * r.total_s / r.total_calls
    return f'duration_s {_round_up(need)} would reach {P99_CALLS:,} calls at this rate, or use duration_s "auto"'


def _round_up(seconds: float) -> str:
    for step in (1, 5, 10, 30, 60, 300, 600):
        if seconds <= step * 20 or step == 600:
            return f"{math.ceil(seconds / step) * step:g}"
    raise AssertionError


#: what to do about windows whose throughput varies (docs/troubleshooting.md)
UNSTABLE_ADVICE = (
    "the machine's speed varied while it measured: close other busy programs, use fewer copies x workers "
    "than cores, fix the CPU frequency, or measure longer (duration_s); see docs/troubleshooting.md"
)


def validity_notes(reports: list[Report]) -> list[str]:
    """One line per report whose figures should be read with care ("ok?"), with the remedy."""
    notes = []
    for r in reports:
        if r.status != "ok" or r.valid:
            continue
        reasons = list(r.validity_reasons)
        if any(x.startswith("too few samples") for x in reasons):
            reasons.append(remedy(r))
        if any(x.startswith("unstable") for x in reasons):
            reasons.append(UNSTABLE_ADVICE)
        notes.append(f"ok? {r.config_id}: " + "; ".join(reasons))
    return notes


def describe(r: Report) -> str:
    """A configuration in words: ``2 models x 2 workers, batch 8`` (+ pipeline)."""
    text = f"{r.n_models} model{'s' * (r.n_models != 1)} x {r.workers_per_model} worker" + (
        "s" * (r.workers_per_model != 1)
    )
    if r.pipeline_size != 1:
        text += f", pipeline {r.pipeline_size}"
    return f"{text}, batch {r.batch_size}"


def _interval(value: float, low: Any, high: Any) -> tuple[float, float]:
    """A figure's 95% interval; the figure itself when none was measured."""
    if _missing(low) or _missing(high):
        return value, value
    return min(float(low), value), max(float(high), value)


def _ties(best: Report, others: list[Report], get: Any) -> list[Report]:
    """The reports whose 95% interval overlaps ``best``'s: not told apart from it by
    the measurement (``get``: report -> (figure, low, high))."""
    value, low, high = get(best)
    lo, hi = _interval(value, low, high)
    tied = []
    for r in others:
        if r is best:
            continue
        v, a, b = get(r)
        rlo, rhi = _interval(v, a, b)
        if rlo <= hi and lo <= rhi:
            tied.append(r)
    return tied


#: configurations listed in a tie within noise
TIE_SHOWN = 4


def _tie_lines(what: str, head: str, best: Report, tied: list[Report], figure: Any) -> list[str]:
    if not tied:
        return [head]
    rows = [best, *tied]
    lines = [f"{what}: no clear winner: {len(rows)} configurations within noise (their 95% intervals overlap)"]
    lines += [f"  {figure(r)}  {describe(r)}" for r in rows[:TIE_SHOWN]]
    if len(rows) > TIE_SHOWN:
        lines.append(f"  and {len(rows) - TIE_SHOWN} more")
    return lines


def _throughput(r: Report) -> tuple[float, Any, Any]:
    return r.throughput_avg, r.throughput_ci95_low, r.throughput_ci95_high


def _p50(r: Report) -> tuple[float, Any, Any]:
    return r.latency_ms_p50, r.latency_ms_p50_ci_low, r.latency_ms_p50_ci_high


def best_lines(reports: list[Report], latency_budget_ms: float | None = None) -> list[str]:
    """The best configurations: highest throughput, lowest p50, and with a latency
    budget the highest throughput whose p99 is within it. Failed rows never count.
    Where others' 95% intervals overlap the best's, no winner is named: they are
    listed as a tie within noise."""
    ok = [r for r in reports if r.status == "ok" and not _missing(r.throughput_avg)]
    if not ok:
        return []
    top = max(ok, key=lambda r: r.throughput_avg)
    lines = _tie_lines(
        "highest throughput",
        f"highest throughput: {fmt_rate(top.throughput_avg)} inf/s  {describe(top)}  "
        f"(p50 {fmt_ms(top.latency_ms_p50)}, p99 {fmt_ms(top.latency_ms_p99)})",
        top, sorted(_ties(top, ok, _throughput), key=lambda r: -r.throughput_avg),
        lambda r: f"{fmt_rate(r.throughput_avg)} inf/s",
    )  # fmt: skip
    note = saturation_note(top)
    if note:
        lines.append(note)
    timed = [r for r in ok if not _missing(r.latency_ms_p50)]
    if timed:
        fast = min(timed, key=lambda r: r.latency_ms_p50)
        lines += _tie_lines(
            "lowest p50",
            f"lowest p50: {fmt_ms(fast.latency_ms_p50)}  {describe(fast)}  ({fmt_rate(fast.throughput_avg)} inf/s)",
            fast, sorted(_ties(fast, timed, _p50), key=lambda r: r.latency_ms_p50),
            lambda r: f"p50 {fmt_ms(r.latency_ms_p50)}",
        )  # fmt: skip
    if latency_budget_ms is not None:
        within = [r for r in ok if not _missing(r.latency_ms_p99) and r.latency_ms_p99 <= latency_budget_ms]
        budget = fmt_ms(latency_budget_ms)
        if within:
            b = max(within, key=lambda r: r.throughput_avg)
            lines += _tie_lines(
                f"best within p99 <= {budget}",
                f"best within p99 <= {budget}: {fmt_rate(b.throughput_avg)} inf/s  {describe(b)}  "
                f"(p99 {fmt_ms(b.latency_ms_p99)})",
                b, sorted(_ties(b, within, _throughput), key=lambda r: -r.throughput_avg),
                lambda r: f"{fmt_rate(r.throughput_avg)} inf/s, p99 {fmt_ms(r.latency_ms_p99)}",
            )  # fmt: skip
        else:
            lines.append(f"best within p99 <= {budget}: none (every configuration's p99 is above it)")
    lines += capacity_lines(ok)
    if any(not r.valid for r in ok):
        lines.append("(rows marked ok? count; read their figures with care)")
    return lines


# -- failures ---------------------------------------------------------------------------


def error_head(r: Report) -> str:
    """``error in load: ModuleNotFoundError: No module named 'x'`` (+ which copy, when several)."""
    assert r.error is not None
    who, what = describe_error(r.error)
    stage = r.error.stage
    if what.startswith("not tried"):
        text = f"error ({what})"
    elif stage and what.startswith(f"{stage}: "):
        text = f"error in {stage}: {what[len(stage) + 2 :]}"
    else:
        text = f"error: {what}"
    return text + (f" ({who})" if who and r.n_models > 1 else "")


def error_details(r: Report, indent: str = "  ") -> list[str]:
    """The last frames of the user's own code (``at models.py:12 in forward: ...``)
    and what to do, when npf can tell."""
    assert r.error is not None
    lines = [f"{indent}at {f.text()}" for f in user_frames(r.error.traceback)]
    if r.error.hint:
        lines.append(f"{indent}hint: {r.error.hint}")
    return lines


def failure_block(groups: list[FailureGroup], labels: dict[str, str]) -> list[str]:
    """The failed configurations, one entry per error (``npf report``, ``-q``)."""
    lines = []
    for g in groups:
        first = g.reports[0]
        lines.append(f"{labels.get(first.config_id, '')}{first.config_id}: {error_head(first)}")
        lines += error_details(first, "    ")
        if len(g.reports) > 1:
            others = ", ".join(labels.get(r.config_id, r.config_id).strip() for r in g.reports[1:])
            lines.append(f"    the same error in {len(g.reports) - 1} more: {others}")
        if g.not_tried:
            n = len(g.not_tried)
            lines.append(f"    not tried: {n} more configuration{'s' * (n != 1)}, which would fail the same way")
    return lines


def saturation_note(r: Report) -> str | None:
    """``device at 38 %: more copies or a larger batch may help`` when telemetry saw
    the configuration's device busy less than SATURATED_PERCENT of the time."""
    util = r.device_util_avg_percent
    if util is None or _missing(util) or util >= SATURATED_PERCENT:
        return None
    return f"device at {util:.0f} %: more copies or a larger batch may help"


def capacity_lines(ok: list[Report]) -> list[str]:
    """Load mode "capacity": the configuration that carries the highest Poisson rate
    within the p99 budget."""
    searched = [r for r in ok if r.slo_p99_ms is not None]
    if not searched:
        return []
    budget = f"{searched[0].slo_p99_ms:g} ms"
    found = [r for r in searched if not _missing(r.slo_capacity_inf_s)]
    if not found:
        return [f"highest capacity at p99 <= {budget}: none (no configuration kept its p99 within it)"]
    b = max(found, key=lambda r: r.slo_capacity_inf_s or 0.0)
    return [f"highest capacity at p99 <= {budget}: {fmt_rate(b.slo_capacity_inf_s)} inf/s with {describe(b)}  "
            f"({capacity_interval(b)}; closed loop {fmt_rate(b.throughput_avg)} inf/s)"]  # fmt: skip


def capacity_interval(r: Report) -> str:
    """``between 1,000 and 1,100 inf/s``: the highest rate that passed, the lowest that failed."""
    low, high = r.slo_capacity_ci_low, r.slo_capacity_ci_high
    return f"between {fmt_rate(low)} and {fmt_rate(high)} inf/s"


def print_summary(
    console: Console,
    reports: list[Report],
    *,
    title: str | None = None,
    latency_budget_ms: float | None = None,
    best: bool = True,
    errors_shown: bool = False,
) -> None:
    """The table, the failures (unless already shown), the notes on ``ok?`` rows, and
    the best configurations."""
    console.print(report_table(reports, title=title, width=console.width))
    groups = group_failures(reports)
    if groups and not errors_shown:
        labels = {r.config_id: f"[{i + 1}/{len(reports)}] " for i, r in enumerate(reports)}
        n = sum(len(g.reports) + len(g.not_tried) for g in groups)
        console.print(f"[bold red]errors[/bold red] ({n} configuration{'s' * (n != 1)} failed)")
        for line in failure_block(groups, labels):
            console.print("  " + escape(line), soft_wrap=True)
    for note in validity_notes(reports):
        console.print(escape(note), style="yellow")
    lines = best_lines(reports, latency_budget_ms) if best else []
    if lines:
        console.print("[bold]best[/bold]")
        for line in lines:
            console.print("  " + escape(line))


class Running:
    """One configuration on the live display: what it is, how far it is."""

    def __init__(self, head: str, duration_s: float) -> None:
        self.head = head
        self.started = time.monotonic()
        self.elapsed_s = 0.0
        self.duration_s = duration_s
        self.throughput: float | None = None
        self.measuring_since: float | None = None

    def left(self, now: float) -> tuple[float, float]:
        """(seconds left, fraction done) at ``now``."""
        if self.measuring_since is None:
            return self.duration_s, 0.0
        elapsed = min(self.duration_s, self.elapsed_s + (now - self.measuring_since))
        return max(0.0, self.duration_s - elapsed), (elapsed / self.duration_s if self.duration_s else 1.0)

    def state(self, now: float) -> str:
        if self.measuring_since is None:
            return "loading the model copies"  # (no counter: nothing redraws until the first window)
        rate = f"{fmt_rate(self.throughput)} inf/s" if self.throughput is not None else "measuring"
        return f"{rate}  {self.left(now)[0]:.0f} s left"


class LiveView:
    """What the live display shows: every configuration running (one with the local
    launcher, several with ray), time left in each and in the sweep, live throughput.
    Computed when drawn, so the times are current."""

    #: configurations drawn at most; the rest are counted
    MAX_SHOWN = 6

    def __init__(self) -> None:
        self.running: dict[int, Running] = {}
        self.remaining_configs = 0
        self.per_config_s = 0.0

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        now = time.monotonic()
        bar_width = max(10, min(40, options.max_width - 40))
        lefts = []
        for i, index in enumerate(sorted(self.running)):
            run = self.running[index]
            left, fraction = run.left(now)
            lefts.append(left)
            if i >= self.MAX_SHOWN:
                continue
            yield Text(run.head, overflow="ellipsis", no_wrap=True)
            line = Table.grid(padding=(0, 1))
            line.add_row(ProgressBar(total=1.0, completed=fraction, width=bar_width), Text(run.state(now)))
            yield line
        if len(self.running) > self.MAX_SHOWN:
            yield Text(f"+{len(self.running) - self.MAX_SHOWN} more running", style="dim")
        parallel = max(1, len(self.running))
        sweep_left = max(lefts, default=0.0) + math.ceil(self.remaining_configs / parallel) * self.per_config_s
        n = self.remaining_configs
        if n:
            more = f"{n} more configuration{'s' * (n != 1)}"
        else:
            more = "the last configuration" if parallel == 1 else f"the last {parallel} configurations"
        yield Text(f"sweep: {more}, about {_duration(sweep_left)} left", style="dim")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class ConsoleReporter(Reporter):
    """The live display on a terminal, one line per configuration, a table at the end.

    A failure is told once: its first configuration's line says what failed and
    where in the user's code, with a hint when npf has one; another configuration
    that fails the same way says so in a few words, and those not tried because
    of it are counted in one line."""

    def __init__(self, ctx: ReporterContext) -> None:
        super().__init__(ctx)
        self.console: Console = ctx.console or make_console()
        self.live: Live | None = None
        self.view = LiveView()
        self.config_walls: list[float] = []
        self.duration_s = 0.0
        #: duration_s "auto": (min_s, max_s, calls); None for a fixed duration
        self.auto: tuple[float, float, int] | None = None
        self.total = 0
        self.done = 0
        self._started_at: dict[int, float] = {}
        #: error -> the label of the configuration whose line showed it ("[1/4]")
        self._errors_seen: dict[tuple[str, str, str], str] = {}
        #: config id -> its label, for "as [1/4]"
        self._labels: dict[str, str] = {}
        #: not tried, waiting to be told in one line: first config id -> count
        self._not_tried: dict[str, int] = {}
        self._errors_shown = False

    def _stop_live(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def _refresh(self) -> None:
        v = self.view
        v.remaining_configs = max(0, self.total - self.done - len(v.running))
        # a configuration's wall time: the mean so far, or the duration plus a guess at loading
        v.per_config_s = (
            sum(self.config_walls) / len(self.config_walls) if self.config_walls
            else (self.auto[0] if self.auto else self.duration_s) + 2.0
        )  # fmt: skip
        if self.live is not None:
            if v.running:
                self.live.refresh()
            else:
                self._stop_live()

    def _start_live(self, event: ev.ConfigStarted) -> None:
        self.view.running[event.index] = Running(f"[{event.index + 1}/{event.total}] {event.config.config_id}",
                                                 self.duration_s)  # fmt: skip
        if self.live is None:
            # no refresh thread (auto_refresh=False): redrawn on each event; stdout/stderr
            # writes meanwhile (logs, the model's prints) are printed above the display
            self.live = Live(self.view, console=self.console, auto_refresh=False, transient=True,
                             redirect_stdout=True, redirect_stderr=True)  # fmt: skip
            self.live.start()
        self._refresh()

    def _flush_not_tried(self) -> None:
        """One line for the configurations not tried since the last event."""
        for first, n in self._not_tried.items():
            label = self._labels.get(first, first)
            self.console.print(
                escape(f"npf: not tried: {n} more configuration{'s' * (n != 1)}, which would fail as {label} did "
                       "(fix the error above, then run again)"),
                soft_wrap=True,
            )  # fmt: skip
        self._not_tried.clear()

    def _failed(self, event: ev.ConfigFailed, head: str) -> None:
        r = event.report
        c = self.console
        err = r.error
        if err is None:
            c.print(f"{escape(head)}: [red]error[/red] failed")
            return
        if err.same_as:
            self._not_tried[err.same_as] = self._not_tried.get(err.same_as, 0) + 1
            return
        self._flush_not_tried()
        key = (err.stage, err.type, describe_error(err)[1])
        seen = self._errors_seen.get(key)
        if seen is not None:
            stage = f" in {err.stage}" if err.stage else ""
            c.print(f"{escape(head)}: [red]error[/red]{escape(stage)}: the same error as {escape(seen)}",
                    soft_wrap=True)  # fmt: skip
            return
        self._errors_seen[key] = head.split(" ")[0]
        text = error_head(r)
        c.print(f"{escape(head)}: [red]error[/red]{escape(text[len('error'):])}", soft_wrap=True)
        for line in error_details(r):
            c.print(escape(line), soft_wrap=True, highlight=False)

    def on_event(self, event: ev.Event) -> None:
        quiet = self.ctx.verbosity <= 0
        c = self.console
        if isinstance(event, ev.RunStarted):
            from npf_core.plugin import DEFAULT_DURATION_S, duration_bounds

            min_s, max_s, calls = duration_bounds((event.spec or {}).get("duration_s", DEFAULT_DURATION_S))
            self.duration_s = max_s
            self.auto = (min_s, max_s, calls) if calls else None
            self.total = len(event.configs)
            if not quiet:
                n = len(event.configs)
                where = f" -> {_shown(event.output_dir)}" if Path(event.output_dir).is_dir() else " (no results files)"
                loads = ""
                if event.loads is not None:  # what the sweep costs beyond measuring: loading copies
                    how = "copies kept between configurations" if event.reuse else "reuse_copies off"
                    loads = f", {event.loads} model load{'s' * (event.loads != 1)} ({how})"
                c.print(f"npf: {n} configuration{'s' * (n != 1)}{loads}{where}", soft_wrap=True)
        elif isinstance(event, ev.ConfigStarted):
            self._started_at[event.index] = time.monotonic()
            self.total = event.total
            if not quiet:
                self._flush_not_tried()
                if c.is_terminal:
                    self._start_live(event)
        elif isinstance(event, ev.Progress):
            run = self.view.running.get(event.index)
            if self.live is not None and run is not None:
                run.measuring_since = time.monotonic()
                run.elapsed_s = event.elapsed_s
                run.duration_s = event.duration_s
                if self.auto and event.completed > 0 and event.elapsed_s > 0:
                    # "auto": it ends when the calls are done (at this rate), within [min_s, max_s]
                    min_s, max_s, calls = self.auto
                    expected = calls * event.elapsed_s / event.completed
                    run.duration_s = min(max_s, max(min_s, expected, event.elapsed_s))
                # the copies count calls when they fold a window, so the first progress
                # may report none yet: "measuring" then, rather than a false 0 inf/s
                run.throughput = event.throughput if event.completed > 0 else run.throughput
                self.live.refresh()
        elif isinstance(event, (ev.ConfigFinished, ev.ConfigFailed, ev.ConfigSkipped)):
            started = self._started_at.pop(event.index, None)
            if isinstance(event, (ev.ConfigFinished, ev.ConfigFailed)) and started is not None:
                self.config_walls.append(time.monotonic() - started)
            self.done += 1
            self.view.running.pop(event.index, None)
            head = f"[{event.index + 1}/{event.total}] {event.config.config_id}"
            self._labels[event.config.config_id] = head.split(" ")[0]
            if quiet:
                return
            r = event.report
            # printed above the live display, which stays up while configurations run
            if isinstance(event, ev.ConfigSkipped):
                self._flush_not_tried()
                c.print(f"{escape(head)}: already done (resumed)")
            elif r.status == "ok":
                self._flush_not_tried()
                c.print(f"{escape(head)}: {result_line(r)}")
            else:
                self._failed(event, head)  # type: ignore[arg-type]
                self._errors_shown = True
            self._refresh()
        elif isinstance(event, ev.RunFinished):
            self._stop_live()
            if not quiet:
                self._flush_not_tried()
            if event.reports:
                budget = event_spec_budget(self.ctx.spec)
                print_summary(c, event.reports, latency_budget_ms=budget, best=not quiet,
                              errors_shown=self._errors_shown)  # fmt: skip
            if event.interrupted and not quiet:
                c.print("[yellow]interrupted[/yellow]: finished configurations are kept; "
                        "run the same command with --resume to do the rest")  # fmt: skip

    def close(self) -> None:
        self._stop_live()


def result_line(r: Report) -> str:
    """``111,540 inf/s ±0.5%, p50 70.0 µs, p99 95.0 µs`` (the ± is the 95% interval's half-width)."""
    half = (r.throughput_ci95_high - r.throughput_ci95_low) / 2
    ci = f" ±{100 * half / r.throughput_avg:.1f}%" if r.throughput_avg and not _missing(half) else ""
    metrics = "".join(f", {k} {fmt_metric(v)}" for k, v in r.metrics.items())  # evaluate mode
    p50, p99 = fmt_ms(r.latency_ms_p50), fmt_ms(r.latency_ms_p99)
    device = ""  # device telemetry, when a source sampled the device
    if r.device_util_avg_percent is not None:
        device += f", device {r.device_util_avg_percent:.0f} %"
    if r.power_avg_w is not None:
        device += f", {r.power_avg_w:.0f} W"
    line = f"{fmt_rate(r.throughput_avg)} inf/s{ci}, p50 {p50}, p99 {p99}{metrics}{device}"
    if r.slo_p99_ms is not None:  # load mode "capacity": the closed loop's figures, then the search's
        probes = sum(p.mode != "closed" for p in r.slo_probes)
        line += (f"; capacity at p99 <= {r.slo_p99_ms:g} ms: {fmt_rate(r.slo_capacity_inf_s)} inf/s "
                 f"({capacity_interval(r)}, {probes} probe{'s' * (probes != 1)}; {r.slo_search})")  # fmt: skip
    return line


def event_spec_budget(spec: Any) -> float | None:
    """The spec's latency budget: a Spec during a run, a dict when replaying a results file."""
    if isinstance(spec, dict):
        return spec.get("latency_budget_ms")
    return getattr(spec, "latency_budget_ms", None)


def _shown(path: str) -> str:
    """A path as printed: relative to the current folder when inside it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


@hookimpl
def npf_register_reporters(registry: Registry[Reporter]) -> None:
    registry.add("console", ConsoleReporter)
