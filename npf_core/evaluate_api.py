"""Evaluate from Python: ``npf_core.evaluate`` and NeuronPerf's
``evaluate(model, dataset, metrics, eval_target_col)`` signature, both on top of
``npf_core.benchmark`` (see :mod:`npf_core.evaluation` for the engine side)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from npf_core.tokens import OBJECT_PREFIX

__all__ = ["IterOf", "evaluate", "evaluate_neuronperf"]

_UNSET: Any = object()


def evaluate(
    spec: Any,
    metrics: Any = None,
    *,
    target_col: Any = _UNSET,
    reference: Any = None,
    duration_s: float = 0.0,
    n_models: Any = 1,
    workers_per_model: Any = 2,
    **overrides: Any,
) -> list[Any]:
    """Run a spec in evaluate mode and return its reports (``report.metrics`` holds
    the figures). By default the dataset runs once (``duration_s=0``) on one copy
    with two workers; ``metrics`` and ``reference`` add to (or replace) the spec's
    ``evaluate`` block. Other keywords are :func:`npf_core.benchmark` overrides."""
    from npf_core.supervisor import benchmark

    extra: dict[str, Any] = {}
    if target_col is not _UNSET:
        extra["eval_target_col"] = target_col
    return benchmark(
        spec,
        eval_metrics=metrics,
        eval_reference=reference,
        duration_s=duration_s,
        n_models=n_models,
        workers_per_model=workers_per_model,
        **extra,
        **overrides,
    )


class IterOf:
    """A zero-argument factory over a live iterable (for the ``iterable`` dataset):
    each call iterates it afresh; list rows (a DataLoader's) become tuples."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __call__(self) -> Iterator[Any]:
        for e in self.data:
            yield tuple(e) if isinstance(e, (list, tuple)) else e


def evaluate_neuronperf(
    framework: str,
    model: Any,
    dataset: Any,
    metrics: Any = None,
    eval_target_col: int | None = -1,
    *,
    n_models: Any = 1,
    workers_per_model: Any = 2,
    duration: float = 0.0,
    reference: Any = None,
    model_name: str | None = None,
    **overrides: Any,
) -> list[Any]:
    """NeuronPerf's ``evaluate(model_index_or_path, dataset, metrics=..., eval_target_col=...)``
    for any framework plugin: ``model`` is a model index (``.json``), a saved model
    path, or a Python object (a class or factory); ``dataset`` any iterable of
    ``(*inputs, target)``. Returns npf Reports (``report.metrics``)."""
    if isinstance(model, (str, os.PathLike)):
        key = "index" if str(model).endswith(".json") else "path"
        model_block: dict[str, Any] = {"framework": framework, key: os.fspath(model)}
    else:
        model_block = {"framework": framework, "target": model}
    token = f"{OBJECT_PREFIX}dataset>"
    data: dict[str, Any] = {
        "model": model_block,
        "dataset": {"plugin": "iterable", "options": {"target": token}, "loop": duration > 0},
        "duration_s": duration,
        "evaluate": {"metrics": metrics if metrics is not None else [], "target_col": eval_target_col},
        "output": {"reporters": []},
    }
    if reference is not None:
        data["evaluate"]["reference"] = reference
    if model_name is not None:
        data["name"] = model_name
    from npf_core.spec import decode_spec
    from npf_core.supervisor import benchmark

    loaded = decode_spec(data)
    loaded.objects[token] = IterOf(dataset)
    return benchmark(loaded, n_models=n_models, workers_per_model=workers_per_model, **overrides)
