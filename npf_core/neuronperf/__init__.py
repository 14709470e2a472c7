"""NeuronPerf's Python API on npf's engine: ``import npf_core as npf`` and the
NeuronPerf guide's calls work as written (see docs/migrating.md).

``npf.torch`` / ``npf.cpu`` / ``npf.tensorflow`` / ``npf.mxnet`` (``benchmark``,
``compile``), the generic ``npf.benchmark(load_fn, model_filename, inputs, ...)``,
``get_reports``, ``print_reports``, ``write_csv``, ``write_json``, ``model_index``,
``Timer``, ``timestamp_convert``, ``DummyModel``, ``set_verbosity``.
"""

from __future__ import annotations

import npf_core.compilation.model_index as model_index
from npf_core.neuronperf.api import BENCHMARK_SECS, benchmark, set_verbosity
from npf_core.neuronperf.frameworks import FrameworkAPI, cpu, mxnet, namespace, tensorflow, torch
from npf_core.neuronperf.reports import (
    CSV_COLS,
    PRINT_COLS,
    REPORT_COLS,
    SUMMARY_COLS,
    get_reports,
    print_reports,
    write_csv,
    write_json,
)
from npf_core.neuronperf.timing import DummyModel, Timer, timestamp_convert

__all__ = [
    "BENCHMARK_SECS",
    "CSV_COLS",
    "PRINT_COLS",
    "REPORT_COLS",
    "SUMMARY_COLS",
    "DummyModel",
    "FrameworkAPI",
    "Timer",
    "benchmark",
    "cpu",
    "get_reports",
    "model_index",
    "mxnet",
    "namespace",
    "print_reports",
    "set_verbosity",
    "tensorflow",
    "timestamp_convert",
    "torch",
    "write_csv",
    "write_json",
]
