"""Reporters ``csv`` (``results.csv`` in the output folder, rewritten atomically
after every finished configuration, so an interrupted or crashed run keeps what
it had finished) and ``json`` (a name kept for old specs: the core writes
``results.json`` itself)."""

from __future__ import annotations

import csv
import io
import math
from typing import Any

import msgspec

from npf_core.plugin import (
    NEURONPERF_COLUMNS,
    NEURONPERF_CSV_COLUMNS,
    TELEMETRY_COLUMNS,
    Registry,
    Report,
    Reporter,
    ReporterContext,
    hookimpl,
    write_atomic,
)
from npf_core.plugin import events as ev

# NeuronPerf's CSV columns first, in its order; then the device telemetry figures;
# then its other report fields; then ours. Not columns: the histogram (thousands of
# numbers, results.json only), the per-window telemetry (results.json), the capacity
# search's probes (results.json) and evaluate mode's metrics (they follow, one column
# per metric name).
_NOT_IN_CSV = ("latency_histogram", "metrics", "telemetry_windows", "telemetry_sources", "telemetry_avg", "slo_probes")
CSV_COLUMNS = tuple(
    dict.fromkeys(
        NEURONPERF_CSV_COLUMNS
        + TELEMETRY_COLUMNS
        + tuple(f for f in NEURONPERF_COLUMNS + Report.__struct_fields__ if f not in _NOT_IN_CSV)
    )
)


class _Collecting(Reporter):
    """Keeps the run's reports in plan order and rewrites its file on each one."""

    def __init__(self, ctx: ReporterContext) -> None:
        super().__init__(ctx)
        self.by_index: dict[int, Report] = {}
        self.unrecorded: set[int] = set()  # indexes of reports results.json could not take
        self.started: ev.RunStarted | None = None

    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self.started = event
        elif isinstance(event, (ev.ConfigFinished, ev.ConfigFailed, ev.ConfigSkipped)):
            self.by_index[event.index] = event.report
            # never ahead of results.json: a report it could not write is left out
            # until a later write of results.json (which holds every report) succeeds
            if event.recorded:
                self.unrecorded.clear()
            else:
                self.unrecorded.add(event.index)
            self.write([self.by_index[i] for i in sorted(self.by_index) if i not in self.unrecorded])

    def write(self, reports: list[Report]) -> None:
        raise NotImplementedError


class JsonReporter(Reporter):
    """``json``: kept so that specs naming it still work. ``results.json`` is written
    by the core after every configuration whatever reporters run (so that
    ``--resume`` never depends on one); set ``output.results: false`` to write none."""


def csv_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, list):
        return ";".join(f"{v:.6g}" if isinstance(v, float) else "" if v is None else str(v) for v in value)
    if isinstance(value, msgspec.Struct):
        return f"{getattr(value, 'type', '')}: {getattr(value, 'message', '')}"
    return value


class CsvReporter(_Collecting):
    """results.csv: NeuronPerf's columns first, in its order, then ours."""

    def write(self, reports: list[Report]) -> None:
        write_atomic(self.ctx.output_dir / "results.csv", self.text(reports).encode())

    def text(self, reports: list[Report]) -> str:
        """The CSV of ``reports`` (also what ``npf report RESULTS --format csv`` prints)."""
        buf = io.StringIO()
        w = csv.writer(buf)
        names = list(dict.fromkeys(k for r in reports for k in r.metrics))
        w.writerow(CSV_COLUMNS + tuple(names))
        for r in reports:
            w.writerow([csv_value(getattr(r, c)) for c in CSV_COLUMNS] + [csv_value(r.metrics.get(k)) for k in names])
        return buf.getvalue()


@hookimpl
def npf_register_reporters(registry: Registry[Reporter]) -> None:
    registry.add("json", JsonReporter)
    registry.add("csv", CsvReporter)
