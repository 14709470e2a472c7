"""NeuronPerf's generic ``compile(compile_fn, model, inputs, ...)``, and the root
``npf_core.compile`` that tells it apart from npf's ``compile(model, inputs, ...)``."""

from __future__ import annotations

import inspect
import os
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from npf_core.errors import UserError
from npf_core.log import get_logger

__all__ = ["FAST_MATH", "FAST_MATH_OPTIONS", "NEURONCORE_PIPELINE_CORES", "compile", "compile_with"]

logger = get_logger("npf_core.neuronperf")

# NeuronPerf's compile_constants (``npf.compile_constants``): the neuron-cc flags of
# pipeline size and performance level, and each level's --fast-math value
NEURONCORE_PIPELINE_CORES = "--neuroncore-pipeline-cores"
FAST_MATH = "--fast-math"
FAST_MATH_OPTIONS = {0: "none", 1: "fp32-cast-matmult no-fast-relayout", 2: "fp32-cast-matmult", 3: "all"}


def _batch_sizes_like(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, int):
        return True
    return isinstance(x, (list, tuple)) and bool(x) and all(isinstance(v, int) and not isinstance(v, bool) for v in x)


def compile(*args: Any, **kwargs: Any) -> str:  # noqa: A001 - the public name
    """Two forms:

    - NeuronPerf's generic ``compile(compile_fn, model, inputs, batch_sizes=None,
      pipeline_sizes=None, performance_levels=None, models_dir="models", filename=None,
      compiler_args=None, ...)``, told apart by ``compile_fn=`` or by a third positional
      argument that is not batch sizes;
    - npf's (and NeuronPerf's per-framework) ``compile(model, inputs, batch_sizes, ...)``
      (:func:`npf_core.compilation.compiler.compile`).
    """
    if "compile_fn" in kwargs or (len(args) >= 3 and callable(args[0]) and not _batch_sizes_like(args[2])) or (
        len(args) == 2 and "inputs" in kwargs and callable(args[0])
    ):
        return compile_with(*args, **kwargs)
    from npf_core.compilation.compiler import compile as compile_model

    return compile_model(*args, **kwargs)


def compile_with(
    compile_fn: Callable[..., Any],
    model: Any,
    inputs: Any,
    batch_sizes: int | Sequence[int] | None = None,
    pipeline_sizes: int | Sequence[int] | None = None,
    performance_levels: int | Sequence[int] | None = None,
    models_dir: str | os.PathLike[str] = "models",
    model_name: str | None = None,
    filename: str | os.PathLike[str] | None = None,
    compiler_args: dict[str, Any] | None = None,
    verbosity: int = 1,
    **kwargs: Any,
) -> str:
    """Call ``compile_fn(model, example, models_dir, name, **compiler_args)`` in this
    process for every input (batch size) x pipeline size x performance level; each call
    returns the artifact's filename. A variant that raises is recorded in the index with
    ``status: "error"`` (benchmark skips it) and the rest go on. Pipeline size > 1 and a
    performance level are passed as ``pipeline_size=`` / ``performance_level=`` keywords.
    Returns the model index filename."""
    import npf_core.compilation.model_index as model_index

    if not callable(compile_fn):
        raise UserError(f"compile(): compile_fn must be callable, got {type(compile_fn).__name__}")
    examples = list(inputs) if isinstance(inputs, list) else [inputs]
    sizes = [batch_sizes] if isinstance(batch_sizes, int) else list(batch_sizes or [1] * len(examples))
    if len(sizes) == 1 and len(examples) > 1:
        sizes = sizes * len(examples)
    if len(sizes) != len(examples):
        raise UserError(f"compile(): {len(sizes)} batch sizes for {len(examples)} inputs (give one per input)")
    pipes: list[Any] = [pipeline_sizes] if isinstance(pipeline_sizes, int) else list(pipeline_sizes or [1])
    no_level: list[Any] = [None]
    levels: list[Any] = (
        [performance_levels] if isinstance(performance_levels, int) else list(performance_levels or no_level)
    )
    name = model_name or getattr(model, "__name__", type(model).__name__)
    Path(models_dir).mkdir(parents=True, exist_ok=True)
    indexes = []
    for idx, (example, bs) in enumerate(zip(examples, sizes, strict=True)):
        for p in pipes:
            for level in levels:
                extra = dict(compiler_args or {}, **kwargs)
                if p != 1:
                    extra["pipeline_size"] = p
                if level is not None:
                    extra["performance_level"] = level
                tag = f"{name}_b{bs}_p{p}" + ("" if level is None else f"_l{level}") + f"_{secrets.token_hex(4)}"
                t0 = time.perf_counter()
                try:
                    artifact = compile_fn(model, example, str(models_dir), tag, **extra)
                    status, error = "finished", None
                except Exception as exc:  # noqa: BLE001 - recorded; the other variants go on
                    logger.error("compile failed", variant=tag, error=repr(exc))
                    artifact, status = os.path.join(str(models_dir), tag), "error"
                    error = f"{type(exc).__name__}: {exc}"
                indexes.append(model_index.create(
                    os.fspath(artifact), model_name=name, input_idx=idx, batch_size=bs, pipeline_size=p,
                    performance_level=level, compile_s=round(time.perf_counter() - t0, 3), status=status, error=error,
                ))  # fmt: skip
    index = model_index.append(*indexes)
    return model_index.save(index, filename)


compile.__signature__ = inspect.signature(compile_with)  # type: ignore[attr-defined]  # NeuronPerf's
