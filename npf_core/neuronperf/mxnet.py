"""``npf.mxnet`` (and ``import npf_core.mxnet``): NeuronPerf's ``neuronperf.mxnet``
on npf's mxnet plugin. Importing it imports no MXNet (the copies do)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from npf_core.neuronperf.frameworks import mxnet as _mxnet

__all__ = ["benchmark", "change_dir", "compile", "evaluate"]


def benchmark(model_filename: Any, inputs: Any, *args: Any, **kwargs: Any) -> list[Any]:
    """NeuronPerf's ``neuronperf.mxnet.benchmark``: ``model_filename`` is the checkpoint
    prefix given to ``mx.model.save_checkpoint(prefix, 0, ...)`` (epoch 0, as
    NeuronPerf loads it), or a model index (``.json``); see docs/migrating.md."""
    return _mxnet.benchmark(model_filename, inputs, *args, **kwargs)


def compile(model: Any, inputs: Any, *args: Any, **kwargs: Any) -> str:  # noqa: A001 - NeuronPerf's name
    """NeuronPerf's ``neuronperf.mxnet.compile``; returns the model index's file name."""
    return _mxnet.compile(model, inputs, *args, **kwargs)


def evaluate(model_index_or_path: Any, dataset: Any, metrics: Any = None, eval_target_col: int | None = -1,
             **kwargs: Any) -> list[dict[str, Any]]:  # fmt: skip
    """``benchmark`` with ``eval_metrics`` over ``dataset`` once (see docs/evaluate.md)."""
    return _mxnet.evaluate(model_index_or_path, dataset, metrics, eval_target_col, **kwargs)


@contextlib.contextmanager
def change_dir(new_dir: str) -> Iterator[None]:
    """Run a block in ``new_dir``, then go back (NeuronPerf's helper)."""
    old = os.getcwd()
    os.chdir(new_dir)
    try:
        yield
    finally:
        os.chdir(old)
