"""npf: benchmark ML model inference — throughput, latency percentiles and where
the time goes — across model copies, worker threads, batch sizes and NeuronCore
pipeline sizes, on Neuron, GPU and CPU.

The engine imports no ML framework; frameworks, devices, datasets and reporters
are plugins (see :mod:`npf_core.hookspecs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from npf_core.errors import NpfError, ObjectTransferError, SpecError, UserError
from npf_core.hookspecs import (
    Assignment,
    ChildContext,
    Dataset,
    Device,
    Framework,
    Registry,
    Reporter,
    ReporterContext,
    hookimpl,
)
from npf_core.spec import Spec, decode_spec, json_schema, load_spec

if TYPE_CHECKING:
    from npf_core.comparison import compare
    from npf_core.compiler import compile
    from npf_core.evaluate_api import evaluate
    from npf_core.metric_api import list_metrics, register_metric, register_metric_from_existing
    from npf_core.metrics import BaseEvalMetric
    from npf_core.report import Report
    from npf_core.supervisor import Supervisor, abenchmark, benchmark

# Imported on first use: a fresh-interpreter benchmarker imports this package and
# needs none of them, so they stay off its start-up time.
_LAZY = {
    "Report": "npf_core.report",
    "Supervisor": "npf_core.supervisor",
    "abenchmark": "npf_core.supervisor",
    "benchmark": "npf_core.supervisor",
    "compare": "npf_core.comparison",
    "compile": "npf_core.compiler",
    "evaluate": "npf_core.evaluate_api",
    "BaseEvalMetric": "npf_core.metrics",
    "list_metrics": "npf_core.metric_api",
    "register_metric": "npf_core.metric_api",
    "register_metric_from_existing": "npf_core.metric_api",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'npf_core' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("npf")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+source"

__all__ = [
    "Assignment",
    "BaseEvalMetric",
    "ChildContext",
    "Dataset",
    "Device",
    "Framework",
    "NpfError",
    "ObjectTransferError",
    "Registry",
    "Report",
    "Reporter",
    "ReporterContext",
    "Spec",
    "SpecError",
    "Supervisor",
    "UserError",
    "__version__",
    "abenchmark",
    "benchmark",
    "compare",
    "compile",
    "decode_spec",
    "evaluate",
    "hookimpl",
    "json_schema",
    "list_metrics",
    "load_spec",
    "register_metric",
    "register_metric_from_existing",
]
