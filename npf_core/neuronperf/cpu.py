"""``npf.cpu`` (and ``import npf_core.cpu``): NeuronPerf's ``neuronperf.cpu``, a model
class instantiated in each copy, on the CPU; torch ``nn.Module`` classes run with the
torch plugin, any other callable with the python plugin."""

from __future__ import annotations

from typing import Any

from npf_core.neuronperf.frameworks import cpu as _cpu
from npf_core.neuronperf.timing import DummyModel

__all__ = ["DummyModel", "benchmark", "compile", "evaluate"]


def benchmark(model_class: Any, inputs: Any, *args: Any, **kwargs: Any) -> list[Any]:
    """NeuronPerf's ``neuronperf.cpu.benchmark``: ``model_class`` (a class, or a
    zero-argument factory) is instantiated in each copy; ``device_type`` is ``"cpu"``."""
    return _cpu.benchmark(model_class, inputs, *args, **kwargs)


def evaluate(model: Any, dataset: Any, metrics: Any = None, eval_target_col: int | None = -1,
             **kwargs: Any) -> list[dict[str, Any]]:  # fmt: skip
    """``benchmark`` with ``eval_metrics`` over ``dataset`` once (see docs/evaluate.md)."""
    return _cpu.evaluate(model, dataset, metrics, eval_target_col, **kwargs)


def compile(model: Any, inputs: Any, *args: Any, **kwargs: Any) -> str:  # noqa: A001 - the namespaces' name
    """Nothing to compile for the CPU: a clear error (NeuronPerf has no ``cpu.compile``)."""
    return _cpu.compile(model, inputs, *args, **kwargs)
