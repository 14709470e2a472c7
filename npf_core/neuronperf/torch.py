"""``npf.torch`` (and ``import npf_core.torch``): NeuronPerf's ``neuronperf.torch``
on npf's torch plugin. Importing it imports no torch (the copies do)."""

from __future__ import annotations

from typing import Any

from npf_core.neuronperf.frameworks import torch as _torch

__all__ = ["benchmark", "compile", "evaluate"]


def benchmark(model_filename: Any, inputs: Any, *args: Any, dataset_inputs: bool = False,
              loop_dataset: bool = False, **kwargs: Any) -> list[Any]:  # fmt: skip
    """NeuronPerf's ``neuronperf.torch.benchmark``: a compiled model file, a model index
    (``.json``), or (CPU/GPU) a model class; ``inputs`` a list of inputs (a tuple is one
    multi-input example) or, with ``dataset_inputs``, a dataset. See docs/migrating.md."""
    return _torch.benchmark(model_filename, inputs, *args, dataset_inputs=dataset_inputs, loop_dataset=loop_dataset,
                            **kwargs)  # fmt: skip


def compile(model: Any, inputs: Any, *args: Any, **kwargs: Any) -> str:  # noqa: A001 - NeuronPerf's name
    """NeuronPerf's ``neuronperf.torch.compile``: a model (an ``nn.Module`` instance or
    class), traced for each batch size, pipeline size and performance level; returns
    the model index's file name."""
    return _torch.compile(model, inputs, *args, **kwargs)


def evaluate(model_index_or_path: Any, dataset: Any, metrics: Any = None, eval_target_col: int | None = -1,
             **kwargs: Any) -> list[dict[str, Any]]:  # fmt: skip
    """NeuronPerf's ``neuronperf.torch.evaluate``: ``benchmark`` with ``eval_metrics``
    over ``dataset`` once (see docs/evaluate.md)."""
    return _torch.evaluate(model_index_or_path, dataset, metrics, eval_target_col, **kwargs)
