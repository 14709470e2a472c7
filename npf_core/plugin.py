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

The hooks themselves, with their documentation, are in :mod:`npf_core.hookspecs`.
"""

from __future__ import annotations

from npf_core import events
from npf_core.compile_types import CompileRequest, CompileResult
from npf_core.errors import (
    DeviceUnavailable,
    ModelIndexError,
    NpfError,
    PluginError,
    PluginLoadError,
    SpecError,
    StageError,
    UnknownPluginError,
    UserError,
)
from npf_core.events import (
    ConfigFailed,
    ConfigFinished,
    ConfigSkipped,
    ConfigStarted,
    Event,
    Progress,
    RunFinished,
    RunStarted,
)
from npf_core.hookspecs import (
    Assignment,
    ChildContext,
    Dataset,
    Device,
    Framework,
    Launcher,
    Registry,
    Reporter,
    ReporterContext,
    hookimpl,
)
from npf_core.metrics import BaseEvalMetric, ExactSum, MetricRegistry, TopK, to_numpy
from npf_core.references import resolve_reference
from npf_core.report import NEURONPERF_COLUMNS, NEURONPERF_CSV_COLUMNS, PRINT_COLUMNS, ErrorInfo, Report, error_report
from npf_core.results import RESULTS_FORMAT, RESULTS_FORMAT_VERSION, Results, environment, read_results, write_atomic
from npf_core.spec import DTYPES, decode_options, duration_bounds
from npf_core.stats import Histogram
from npf_core.tensors import build_example, load_file, make_array

__all__ = [
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
    "Launcher",
    "ModelIndexError",
    "NpfError",
    "PluginError",
    "PluginLoadError",
    "Progress",
    "Registry",
    "Report",
    "Reporter",
    "ReporterContext",
    "Results",
    "RunFinished",
    "RunStarted",
    "SpecError",
    "StageError",
    "TopK",
    "UnknownPluginError",
    "UserError",
    "build_example",
    "decode_options",
    "duration_bounds",
    "environment",
    "error_report",
    "events",
    "hookimpl",
    "load_file",
    "make_array",
    "read_results",
    "resolve_reference",
    "to_numpy",
    "write_atomic",
]
