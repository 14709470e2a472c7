"""Compiling one variant for Neuron with torch-neuronx: the ``torch`` framework's
``compile(request)`` (see :mod:`npf_core.compilation.compiler`).

Runs only in a compile worker (a fresh interpreter), never in the supervisor: it
imports ``torch_neuronx``. Steps: load the model (an ``nn.Module`` class or
factory, a TorchScript file or a ``torch.export`` program), build the variant's
example as CPU tensors, call ``torch_neuronx.trace(model, example,
compiler_args=[...])`` and save the result with ``torch.jit.save``.

Compiler arguments, in this order (a flag the user already gave is not added again):

1. ``compile.compiler_args`` as given;
2. ``--target T`` from ``compile.compiler_target``;
3. the cast setting: ``--auto-cast MODE`` and ``--auto-cast-type TYPE`` from
   ``compile.auto_cast`` / ``auto_cast_type``, or from a NeuronPerf performance
   level (:data:`PERFORMANCE_LEVELS`, which fixes both);
4. ``--neuroncore-pipeline-cores N`` for pipeline size N > 1 (the documented
   NeuronCore Pipeline flag; torch-neuronx documents no pipeline mode of its own,
   so check that your compiler accepts it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from npf_core.plugin import resolve_reference

__all__ = ["PERFORMANCE_LEVELS", "compile_variant", "neuron_compiler_args"]

#: NeuronPerf performance level -> (neuronx-cc --auto-cast, --auto-cast-type):
#: 0 max accuracy (no casting) .. 3 max performance (everything in bf16)
PERFORMANCE_LEVELS: dict[int, tuple[str, str | None]] = {
    0: ("none", None),
    1: ("matmult", "tf32"),
    2: ("matmult", "bf16"),
    3: ("all", "bf16"),
}


def _has(args: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def neuron_compiler_args(request: Any) -> list[str]:
    """The full ``compiler_args`` list for one variant (see the module docstring)."""
    args = list(request.compiler_args)
    if request.compiler_target and not _has(args, "--target"):
        args += ["--target", request.compiler_target]
    mode: str | None = request.auto_cast
    cast_type: str | None = request.auto_cast_type
    if request.performance_level is not None:  # a level fixes both
        mode, cast_type = PERFORMANCE_LEVELS[int(request.performance_level)]
    if mode is not None and not _has(args, "--auto-cast"):
        args += ["--auto-cast", mode]
    if cast_type is not None and mode != "none" and not _has(args, "--auto-cast-type"):
        args += ["--auto-cast-type", cast_type]
    if request.pipeline_size > 1 and not _has(args, "--neuroncore-pipeline-cores"):
        args += ["--neuroncore-pipeline-cores", str(request.pipeline_size)]
    return args


def _load(request: Any) -> Any:
    import torch

    from npf_plugins.frameworks.common import EXPORT_SUFFIXES, instantiate, quiet_torchscript

    if request.model_kind == "path":
        path = request.resolve(request.model_ref)
        if path.suffix.lower() in EXPORT_SUFFIXES:
            return torch.export.load(str(path)).module()
        with quiet_torchscript():
            return torch.jit.load(str(path), map_location="cpu").eval()
    return instantiate(resolve_reference(request.model_ref, Path(request.base_dir), {}), request.model_ref)


def _example(request: Any) -> tuple[Any, ...]:
    import numpy as np
    import torch

    out = []
    for x in request.example():
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x).copy())
        out.append(x)
    return tuple(out)


def compile_variant(framework: Any, request: Any) -> dict[str, Any]:
    """Trace one variant with ``torch_neuronx.trace`` and save it at ``request.output``;
    returns what was passed to the compiler (recorded in the model index)."""
    import torch

    from npf_plugins.frameworks.common import quiet_torchscript

    try:
        import torch_neuronx  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise ImportError(
            f"compiling for Neuron needs torch-neuronx, which cannot be imported ({exc}); install it from the "
            "Neuron pip repository (https://pip.repos.neuron.amazonaws.com)"
        ) from exc
    model = _load(request)
    example = _example(request)
    args = neuron_compiler_args(request)
    with torch.no_grad(), quiet_torchscript():
        traced = torch_neuronx.trace(model, example[0] if len(example) == 1 else example, compiler_args=args)
    out = Path(request.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with quiet_torchscript():
        torch.jit.save(traced, str(out))
    return {"compiler_args": args, "example_shapes": [list(getattr(x, "shape", ())) for x in example]}
