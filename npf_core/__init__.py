"""npf: benchmark ML model inference — throughput, latency percentiles and where
the time goes — across model copies, worker threads, batch sizes and NeuronCore
pipeline sizes, on Neuron, GPU and CPU.

The engine imports no ML framework; frameworks, devices, datasets and reporters
are plugins (see :mod:`npf_core.hookspecs`).
"""

from __future__ import annotations

from npf_core.errors import NpfError, SpecError, UserError
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
from npf_core.report import Report
from npf_core.spec import Spec, decode_spec, json_schema, load_spec
from npf_core.supervisor import Supervisor, abenchmark, benchmark

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("npf")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+source"

__all__ = [
    "Assignment",
    "ChildContext",
    "Dataset",
    "Device",
    "Framework",
    "NpfError",
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
    "decode_spec",
    "hookimpl",
    "json_schema",
    "load_spec",
]
