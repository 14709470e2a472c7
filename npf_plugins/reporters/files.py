"""Reporters ``json`` and ``csv``: ``results.json`` and ``results.csv`` in the
output folder, rewritten atomically after every finished configuration, so an
interrupted or crashed run keeps everything it had finished."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import msgspec

from npf_core.plugin import (
    NEURONPERF_COLUMNS,
    NEURONPERF_CSV_COLUMNS,
    Registry,
    Report,
    Reporter,
    ReporterContext,
    environment,
    hookimpl,
    write_atomic,
)
from npf_core.plugin import events as ev

# NeuronPerf's CSV columns first, in its order; then its other report fields; then ours
CSV_COLUMNS = NEURONPERF_CSV_COLUMNS + tuple(
    f for f in NEURONPERF_COLUMNS + Report.__struct_fields__ if f not in NEURONPERF_CSV_COLUMNS
)
CSV_COLUMNS = tuple(dict.fromkeys(CSV_COLUMNS))


class _Collecting(Reporter):
    """Keeps the run's reports in plan order and rewrites its file on each one."""

    def __init__(self, ctx: ReporterContext) -> None:
        super().__init__(ctx)
        self.by_index: dict[int, Report] = {}
        self.started: ev.RunStarted | None = None

    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self.started = event
        elif isinstance(event, (ev.ConfigFinished, ev.ConfigFailed, ev.ConfigSkipped)):
            self.by_index[event.index] = event.report
            self.write([self.by_index[i] for i in sorted(self.by_index)])

    def write(self, reports: list[Report]) -> None:
        raise NotImplementedError


class JsonReporter(_Collecting):
    """results.json: ``{"npf_version", "run_id", "spec", "environment", "reports"}``."""

    def __init__(self, ctx: ReporterContext) -> None:
        super().__init__(ctx)
        self.env = environment()

    def write(self, reports: list[Report]) -> None:
        from npf_core import __version__

        doc = {
            "npf_version": __version__,
            "run_id": self.started.run_id if self.started else "",
            "spec": self.started.spec if self.started else {},
            "environment": self.env,
            "reports": [r.to_dict() for r in reports],
        }
        write_atomic(self.ctx.output_dir / "results.json", json.dumps(doc, indent=1, allow_nan=False).encode())


def csv_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, list):
        return ";".join(f"{v:.6g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, msgspec.Struct):
        return f"{getattr(value, 'type', '')}: {getattr(value, 'message', '')}"
    return value


class CsvReporter(_Collecting):
    """results.csv: NeuronPerf's columns first, in its order, then ours."""

    def write(self, reports: list[Report]) -> None:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(CSV_COLUMNS)
        for r in reports:
            w.writerow([csv_value(getattr(r, c)) for c in CSV_COLUMNS])
        write_atomic(self.ctx.output_dir / "results.csv", buf.getvalue().encode())


@hookimpl
def npf_register_reporters(registry: Registry[Reporter]) -> None:
    registry.add("json", JsonReporter)
    registry.add("csv", CsvReporter)
