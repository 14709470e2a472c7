"""Typed events of a run, in the order they happen.

The supervisor emits them to reporters, to the lifecycle hooks and to an
embedding application's event stream (see :class:`npf_core.Supervisor`).
"""

from __future__ import annotations

from typing import Union

import msgspec

from npf_core.results.report import Report
from npf_core.spec.config import RunConfig

__all__ = [
    "ConfigFailed",
    "ConfigFinished",
    "ConfigSkipped",
    "ConfigStarted",
    "Event",
    "Progress",
    "RunFinished",
    "RunStarted",
]


class Event(msgspec.Struct, tag=True, tag_field="event", kw_only=True):
    """Base of every run event."""


class RunStarted(Event, kw_only=True):
    run_id: str
    configs: list[RunConfig]
    output_dir: str
    spec: dict = {}
    #: what the telemetry sources found (driver versions, device counts, which sources
    #: sample), to add to the machine's environment record
    environment: dict = {}
    #: model copies the configurations still to run will load, if none fails (with
    #: ``reuse_copies`` a copy is loaded once and kept for every configuration that can use
    #: it); None when another launcher than ``local`` runs them (each node loads its own)
    loads: int | None = None
    #: whether copies are kept between configurations (``reuse_copies``)
    reuse: bool = False


class ConfigStarted(Event, kw_only=True):
    index: int
    total: int
    config: RunConfig


class Progress(Event, kw_only=True):
    """Once per measurement window of a configuration."""

    index: int
    total: int
    config: RunConfig
    elapsed_s: float
    duration_s: float
    completed: int
    throughput: float


class _ConfigOutcome(Event, kw_only=True):
    """What the three ends of a configuration carry (not emitted itself)."""

    index: int
    total: int
    config: RunConfig
    report: Report
    #: results.json holds this report and every one announced before it: False when writing
    #: it failed (a file reporter then leaves the report out, never holding a row results.json lacks)
    recorded: bool = True


class ConfigFinished(_ConfigOutcome, kw_only=True):
    """A configuration measured: its report's status is "ok"."""


class ConfigFailed(_ConfigOutcome, kw_only=True):
    """A configuration that failed: its report says why."""


class ConfigSkipped(_ConfigOutcome, kw_only=True):
    """A configuration already in the results file (``--resume``)."""


class RunFinished(Event, kw_only=True):
    reports: list[Report]
    interrupted: bool = False
    failed: int = 0


AnyEvent = Union[RunStarted, ConfigStarted, Progress, ConfigFinished, ConfigFailed, ConfigSkipped, RunFinished]
