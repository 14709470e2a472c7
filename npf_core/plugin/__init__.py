"""The public API for plugin authors: the one module a plugin imports.

Everything a framework, device, dataset or reporter plugin needs is here; the
engine's other modules are private and may be renamed between releases. A
plugin imports ``npf_core.plugin`` (and, for the version or the user API, the
``npf_core`` root) and nothing else of npf::

    from npf_core.plugin import ChildContext, Framework, Registry, hookimpl

    class Echo(Framework):
        def load(self, ref, ctx: ChildContext):
            return lambda *xs: xs

    @hookimpl
    def npf_register_frameworks(registry: Registry[Framework]) -> None:
        registry.add("echo", Echo)

The hooks themselves, with their documentation, are in :mod:`npf_core.plugin.hookspecs`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import npf_core.plugin.events as events
    from npf_core.errors import (
        DeviceUnavailable,
        ModelIndexError,
        NpfError,
        PluginError,
        PluginLoadError,
        SpecError,
        StageError,
        TelemetryUnavailable,
        UnknownPluginError,
        UserError,
    )
    from npf_core.log import get_logger
    from npf_core.plugin.events import (
        ConfigFailed,
        ConfigFinished,
        ConfigSkipped,
        ConfigStarted,
        Event,
        Progress,
        RunFinished,
        RunStarted,
    )
    from npf_core.plugin.hookspecs import (
        Assignment,
        ChildContext,
        Dataset,
        Device,
        Framework,
        Launcher,
        LaunchHost,
        Registry,
        Reporter,
        ReporterContext,
        Telemetry,
        TelemetryTarget,
        hookimpl,
    )
    from npf_core.plugin.metrics import BaseEvalMetric, ExactSum, MetricRegistry, TopK, to_numpy
    from npf_core.plugin.references import resolve_reference
    from npf_core.results.failures import FailureGroup, describe_error, group_failures, user_frames
    from npf_core.results.history import History
    from npf_core.results.report import (
        NEURONPERF_COLUMNS,
        NEURONPERF_CSV_COLUMNS,
        PRINT_COLUMNS,
        TELEMETRY_COLUMNS,
        ErrorInfo,
        Report,
        error_report,
    )
    from npf_core.results.stats import Histogram
    from npf_core.results.store import (
        RESULTS_FORMAT,
        RESULTS_FORMAT_VERSION,
        Results,
        environment,
        read_results,
        write_atomic,
    )
    from npf_core.results.units import fmt_latency, fmt_rate, latency_unit
    from npf_core.spec.config import RunConfig
    from npf_core.spec.schema import DEFAULT_DURATION_S, DTYPES, decode_options, duration_bounds
    from npf_core.wire.compile import CompileRequest, CompileResult
    from npf_core.wire.tensors import build_example, load_file, make_array

# Loaded on first use: the engine's own modules live in this package too (hookspecs,
# the manager, events), and importing any of them runs this file, so it must stay
# light for a benchmarker's start-up. ``from npf_core.plugin import X`` works as usual.
_WHERE = {
    "FailureGroup": "npf_core.results.failures",
    "describe_error": "npf_core.results.failures",
    "group_failures": "npf_core.results.failures",
    "user_frames": "npf_core.results.failures",
    "fmt_latency": "npf_core.results.units",
    "fmt_rate": "npf_core.results.units",
    "latency_unit": "npf_core.results.units",
    "Assignment": "npf_core.plugin.hookspecs",
    "BaseEvalMetric": "npf_core.plugin.metrics",
    "ChildContext": "npf_core.plugin.hookspecs",
    "CompileRequest": "npf_core.wire.compile",
    "CompileResult": "npf_core.wire.compile",
    "ConfigFailed": "npf_core.plugin.events",
    "ConfigFinished": "npf_core.plugin.events",
    "ConfigSkipped": "npf_core.plugin.events",
    "ConfigStarted": "npf_core.plugin.events",
    "DEFAULT_DURATION_S": "npf_core.spec.schema",
    "DTYPES": "npf_core.spec.schema",
    "Dataset": "npf_core.plugin.hookspecs",
    "Device": "npf_core.plugin.hookspecs",
    "DeviceUnavailable": "npf_core.errors",
    "ErrorInfo": "npf_core.results.report",
    "Event": "npf_core.plugin.events",
    "ExactSum": "npf_core.plugin.metrics",
    "Framework": "npf_core.plugin.hookspecs",
    "Histogram": "npf_core.results.stats",
    "History": "npf_core.results.history",
    "LaunchHost": "npf_core.plugin.hookspecs",
    "Launcher": "npf_core.plugin.hookspecs",
    "MetricRegistry": "npf_core.plugin.metrics",
    "ModelIndexError": "npf_core.errors",
    "NEURONPERF_COLUMNS": "npf_core.results.report",
    "NEURONPERF_CSV_COLUMNS": "npf_core.results.report",
    "NpfError": "npf_core.errors",
    "PRINT_COLUMNS": "npf_core.results.report",
    "PluginError": "npf_core.errors",
    "PluginLoadError": "npf_core.errors",
    "Progress": "npf_core.plugin.events",
    "RESULTS_FORMAT": "npf_core.results.store",
    "RESULTS_FORMAT_VERSION": "npf_core.results.store",
    "Registry": "npf_core.plugin.hookspecs",
    "Report": "npf_core.results.report",
    "Reporter": "npf_core.plugin.hookspecs",
    "ReporterContext": "npf_core.plugin.hookspecs",
    "Results": "npf_core.results.store",
    "RunConfig": "npf_core.spec.config",
    "RunFinished": "npf_core.plugin.events",
    "RunStarted": "npf_core.plugin.events",
    "SpecError": "npf_core.errors",
    "StageError": "npf_core.errors",
    "TELEMETRY_COLUMNS": "npf_core.results.report",
    "Telemetry": "npf_core.plugin.hookspecs",
    "TelemetryTarget": "npf_core.plugin.hookspecs",
    "TelemetryUnavailable": "npf_core.errors",
    "TopK": "npf_core.plugin.metrics",
    "UnknownPluginError": "npf_core.errors",
    "UserError": "npf_core.errors",
    "build_example": "npf_core.wire.tensors",
    "decode_options": "npf_core.spec.schema",
    "duration_bounds": "npf_core.spec.schema",
    "environment": "npf_core.results.store",
    "error_report": "npf_core.results.report",
    "events": "<module>npf_core.plugin.events",
    "get_logger": "npf_core.log",
    "hookimpl": "npf_core.plugin.hookspecs",
    "load_file": "npf_core.wire.tensors",
    "make_array": "npf_core.wire.tensors",
    "read_results": "npf_core.results.store",
    "resolve_reference": "npf_core.plugin.references",
    "to_numpy": "npf_core.plugin.metrics",
    "write_atomic": "npf_core.results.store",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'npf_core.plugin' has no attribute {name!r}")
    import importlib

    if module.startswith("<module>"):
        value: Any = importlib.import_module(module[len("<module>"):])
    else:
        value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "FailureGroup",
    "describe_error",
    "group_failures",
    "user_frames",
    "fmt_latency",
    "fmt_rate",
    "latency_unit",
    "DEFAULT_DURATION_S",
    "DTYPES",
    "NEURONPERF_COLUMNS",
    "NEURONPERF_CSV_COLUMNS",
    "PRINT_COLUMNS",
    "RESULTS_FORMAT",
    "RESULTS_FORMAT_VERSION",
    "Assignment",
    "CompileRequest",
    "CompileResult",
    "BaseEvalMetric",
    "ChildContext",
    "ConfigFailed",
    "ConfigFinished",
    "ConfigSkipped",
    "ConfigStarted",
    "Dataset",
    "Device",
    "DeviceUnavailable",
    "ErrorInfo",
    "ExactSum",
    "Event",
    "Framework",
    "MetricRegistry",
    "Histogram",
    "History",
    "LaunchHost",
    "Launcher",
    "ModelIndexError",
    "NpfError",
    "PluginError",
    "PluginLoadError",
    "Progress",
    "Registry",
    "Report",
    "Reporter",
    "RunConfig",
    "ReporterContext",
    "Results",
    "RunFinished",
    "RunStarted",
    "SpecError",
    "StageError",
    "TELEMETRY_COLUMNS",
    "Telemetry",
    "TelemetryTarget",
    "TelemetryUnavailable",
    "TopK",
    "UnknownPluginError",
    "UserError",
    "build_example",
    "decode_options",
    "duration_bounds",
    "environment",
    "error_report",
    "events",
    "get_logger",
    "hookimpl",
    "load_file",
    "make_array",
    "read_results",
    "resolve_reference",
    "to_numpy",
    "write_atomic",
]
