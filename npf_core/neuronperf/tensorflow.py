"""``npf.tensorflow`` (and ``import npf_core.tensorflow``): NeuronPerf's
``neuronperf.tensorflow`` on npf's tensorflow plugin. Importing it imports no
TensorFlow (the copies do)."""

from __future__ import annotations

from typing import Any

from npf_core.neuronperf.frameworks import tensorflow as _tensorflow

__all__ = ["benchmark", "compile", "evaluate"]


def benchmark(model_filename: Any, inputs: Any, *args: Any, **kwargs: Any) -> list[Any]:
    """NeuronPerf's ``neuronperf.tensorflow.benchmark``: a SavedModel folder, a model
    index (``.json``) or a model; see docs/migrating.md."""
    return _tensorflow.benchmark(model_filename, inputs, *args, **kwargs)


def compile(model: Any, inputs: Any, *args: Any, **kwargs: Any) -> str:  # noqa: A001 - NeuronPerf's name
    """NeuronPerf's ``neuronperf.tensorflow.compile``; returns the model index's file name."""
    return _tensorflow.compile(model, inputs, *args, **kwargs)


def evaluate(model_index_or_path: Any, dataset: Any, metrics: Any = None, eval_target_col: int | None = -1,
             **kwargs: Any) -> list[dict[str, Any]]:  # fmt: skip
    """``benchmark`` with ``eval_metrics`` over ``dataset`` once (see docs/evaluate.md)."""
    return _tensorflow.evaluate(model_index_or_path, dataset, metrics, eval_target_col, **kwargs)
