"""npf: benchmark ML model inference — throughput, latency percentiles and where
the time goes — across model copies, worker threads, batch sizes and NeuronCore
pipeline sizes, on Neuron, GPU and CPU.

The engine imports no ML framework; frameworks, devices, datasets and reporters
are plugins (see :mod:`npf_core.plugin.hookspecs`).
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import TYPE_CHECKING, Any

from npf_core.errors import NpfError, ObjectTransferError, SpecError, UserError
from npf_core.plugin.hookspecs import (
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
from npf_core.spec.schema import Spec, decode_spec, json_schema, load_spec
from npf_core.version import __version__

if TYPE_CHECKING:
    from npf_core.api import abenchmark, evaluate
    from npf_core.compilation.compiler import compile
    from npf_core.evaluation.registry import list_metrics, register_metric, register_metric_from_existing
    from npf_core.plugin.metrics import BaseEvalMetric
    from npf_core.results.compare import compare
    from npf_core.results.report import Report
    from npf_core.supervisor.run import Supervisor, benchmark

# Imported on first use: a fresh-interpreter benchmarker imports this package and
# needs none of them, so they stay off its start-up time.
_LAZY = {
    "Report": "npf_core.results.report",
    "Supervisor": "npf_core.supervisor.run",
    "abenchmark": "npf_core.api",  # imports the supervisor off the caller's event loop
    "benchmark": "npf_core.neuronperf.api",  # a spec, or NeuronPerf's (load_fn, model_filename, inputs)
    "compare": "npf_core.results.compare",
    "compile": "npf_core.neuronperf.compiling",  # npf's, or NeuronPerf's (compile_fn, model, inputs)
    "evaluate": "npf_core.api",
    "BaseEvalMetric": "npf_core.plugin.metrics",
    "list_metrics": "npf_core.evaluation.registry",
    "register_metric": "npf_core.evaluation.registry",
    "register_metric_from_existing": "npf_core.evaluation.registry",
}
# NeuronPerf's API (``import npf_core as npf``; docs/migrating.md), also on first use:
# ``npf_core.torch`` is a namespace object, and real torch is never imported by it.
_LAZY.update(
    dict.fromkeys(
        ("get_reports", "print_reports", "write_csv", "write_json",
         "Timer", "timestamp_convert", "DummyModel", "set_verbosity", "CSV_COLS", "PRINT_COLS", "SUMMARY_COLS",
         "REPORT_COLS",
         "BENCHMARK_SECS"),
        "npf_core.neuronperf",
    )
)
_LAZY_MODULES = {
    "model_index": "npf_core.compilation.model_index",
    "neuronperf": "npf_core.neuronperf",
    # NeuronPerf's framework modules (``import npf_core.torch`` works too) and submodules
    "torch": "npf_core.neuronperf.torch",
    "cpu": "npf_core.neuronperf.cpu",
    "tensorflow": "npf_core.neuronperf.tensorflow",
    "mxnet": "npf_core.neuronperf.mxnet",
    "benchmarking": "npf_core.neuronperf.benchmarking",
    "reporting": "npf_core.neuronperf.reports",
    "timing": "npf_core.neuronperf.timing",
    "compile_constants": "npf_core.neuronperf.compiling",
}


class _SubmoduleAliases(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``import npf_core.torch`` (as NeuronPerf's guide writes ``import neuronperf.torch``),
    ``import npf_core.model_index``, ...: each name of ``_LAZY_MODULES`` imports as a
    submodule of the package, and is the module it names (one object, its own name and
    spec kept), so the front door's modules live in ``neuronperf/``, not at the top."""

    def __init__(self) -> None:
        self._specs: dict[int, Any] = {}

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        prefix, _, name = fullname.rpartition(".")
        if prefix != __name__ or name not in _LAZY_MODULES:
            return None
        import importlib.util

        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> Any:
        import importlib

        module = importlib.import_module(_LAZY_MODULES[spec.name.rpartition(".")[2]])
        self._specs[id(module)] = module.__spec__
        return module

    def exec_module(self, module: Any) -> None:
        module.__spec__ = self._specs.pop(id(module), module.__spec__)  # the import set the alias's


if not any(isinstance(f, _SubmoduleAliases) for f in sys.meta_path):
    sys.meta_path.append(_SubmoduleAliases())


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        import importlib

        return importlib.import_module(_LAZY_MODULES[name])
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'npf_core' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
