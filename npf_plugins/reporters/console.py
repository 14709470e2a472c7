"""Reporter ``console``: live progress while the run goes, then a table with
NeuronPerf's printed columns (and status). Verbosity 0 prints the table alone."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from npf_core.plugin import PRINT_COLUMNS, Registry, Report, Reporter, ReporterContext, hookimpl
from npf_core.plugin import events as ev

HEADERS = {
    "throughput_avg": "throughput/s",
    "latency_ms_p50": "p50 ms",
    "latency_ms_p99": "p99 ms",
    "n_models": "models",
    "pipeline_size": "pipeline",
    "workers_per_model": "workers",
    "batch_size": "batch",
    "model_filename": "model",
}


def fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3f}"
    return str(value)


def report_table(reports: list[Report], title: str | None = None) -> Table:
    table = Table(title=title, header_style="bold")
    for col in PRINT_COLUMNS:
        table.add_column(HEADERS.get(col, col), justify="left" if col == "model_filename" else "right")
    table.add_column("status")
    for r in reports:
        status = "ok" if r.status == "ok" else "[red]error[/red]"
        if r.status == "ok" and not r.valid:
            status = "[yellow]ok?[/yellow]"
        table.add_row(*(fmt(getattr(r, c)) for c in PRINT_COLUMNS), status)
    return table


def make_console() -> Console:
    """A console on stdout; not a terminal (a pipe, a CI log): wide enough for the table."""
    import sys

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def validity_notes(reports: list[Report]) -> list[str]:
    """One line per report whose figures should be read with care ("ok?")."""
    return [
        f"ok? {r.config_id}: " + "; ".join(r.validity_reasons)
        for r in reports
        if r.status == "ok" and not r.valid
    ]


class ConsoleReporter(Reporter):
    """Progress on the terminal, one line per configuration, a table at the end."""

    def __init__(self, ctx: ReporterContext) -> None:
        super().__init__(ctx)
        self.console: Console = ctx.console or make_console()
        self.progress: Progress | None = None
        self.tasks: dict[int, Any] = {}  # plan index -> progress bar (a launcher may run several at once)

    def _stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        self.tasks.clear()

    def on_event(self, event: ev.Event) -> None:
        quiet = self.ctx.verbosity <= 0
        c = self.console
        if isinstance(event, ev.RunStarted):
            if not quiet:
                n = len(event.configs)
                c.print(f"npf: {n} configuration{'s' * (n != 1)} -> {event.output_dir}")
        elif isinstance(event, ev.ConfigStarted):
            if not quiet and c.is_terminal:
                if self.progress is None:
                    self.progress = Progress(
                        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[rate]}"),
                        TimeRemainingColumn(), console=c, transient=True,
                    )  # fmt: skip
                    self.progress.start()
                desc = f"[{event.index + 1}/{event.total}] {event.config.config_id}"
                self.tasks[event.index] = self.progress.add_task(desc, total=1.0, rate="loading")
        elif isinstance(event, ev.Progress):
            if self.progress is not None and event.index in self.tasks:
                self.progress.update(
                    self.tasks[event.index], completed=min(1.0, event.elapsed_s / event.duration_s),
                    rate=f"{event.throughput:,.1f}/s",
                )  # fmt: skip
        elif isinstance(event, (ev.ConfigFinished, ev.ConfigFailed, ev.ConfigSkipped)):
            task = self.tasks.pop(event.index, None)
            if self.progress is not None and task is not None:
                self.progress.remove_task(task)
            if not self.tasks:
                self._stop_progress()
            if quiet:
                return
            r = event.report
            head = f"[{event.index + 1}/{event.total}] {event.config.config_id}"
            if isinstance(event, ev.ConfigSkipped):
                c.print(f"{head}: already done (resumed)")
            elif r.status == "ok":
                c.print(
                    f"{head}: {r.throughput_avg:,.1f} inf/s "
                    f"[{r.throughput_ci95_low:,.1f}, {r.throughput_ci95_high:,.1f}], "
                    f"p50 {r.latency_ms_p50:.3f} ms, p99 {r.latency_ms_p99:.3f} ms"
                )
            else:
                msg = r.error.message if r.error else "failed"
                c.print(f"{escape(head)}: [red]error[/red] {escape(msg)}")
        elif isinstance(event, ev.RunFinished):
            self._stop_progress()
            if event.reports:
                c.print(report_table(event.reports))
                for note in validity_notes(event.reports):
                    c.print(escape(note), style="yellow")
            if event.interrupted and not quiet:
                c.print("[yellow]interrupted[/yellow]: finished configurations are kept")

    def close(self) -> None:
        self._stop_progress()


@hookimpl
def npf_register_reporters(registry: Registry[Reporter]) -> None:
    registry.add("console", ConsoleReporter)
