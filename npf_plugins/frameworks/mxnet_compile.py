"""Compiling one variant for Neuron with mx_neuron: the ``mxnet`` framework's
``compile(request)`` (see :mod:`npf_core.compilation.compiler`).

Runs only in a compile worker (a fresh interpreter), never in the supervisor. Per the
documented MXNet 1.8 API, ``mx_neuron.compile(obj, args=None, aux=None, inputs=None,
**compile_args)``:

1. load the checkpoint (or call ``model.target`` for ``(sym, arg_params, aux_params)``);
2. ``inputs`` is the variant's example as ``{data name: numpy array}`` (named inputs
   by their names, positional ones by the symbol's data inputs in order);
3. ``compile_args``: ``{"--neuroncore-pipeline-cores": N}`` for pipeline size N > 1,
   and every other compiler argument in ``"flags"`` (the spec's ``compiler_args``,
   ``--target``, the cast settings; see
   :func:`npf_plugins.frameworks.torch_compile.neuron_compiler_args`);
4. save ``(sym, args, aux)`` with ``mx.model.save_checkpoint(output / "model", 0, ...)``:
   the artifact is a folder holding ``model-symbol.json`` and ``model-0000.params``,
   which the ``mxnet`` framework loads on device ``neuron``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from npf_core.plugin import Assignment, ChildContext, Device, resolve_reference
from npf_plugins.frameworks.torch_compile import neuron_compiler_args

__all__ = ["compile_args", "compile_variant"]


def compile_args(request: Any) -> dict[str, Any]:
    """The keyword arguments for ``mx_neuron.compile`` (see the module docstring)."""
    args = neuron_compiler_args(request)
    out: dict[str, Any] = {}
    if "--neuroncore-pipeline-cores" in args:
        i = args.index("--neuroncore-pipeline-cores")
        out["--neuroncore-pipeline-cores"] = int(args[i + 1])
        args = args[:i] + args[i + 2 :]
    if args:
        out["flags"] = args
    return out


def compile_variant(framework: Any, request: Any) -> dict[str, Any]:
    """Compile one variant with ``mx_neuron.compile`` and save it as a checkpoint
    folder at ``request.output``; returns what the compiler was given."""
    from npf_plugins.frameworks.mxnet_checkpoint import find_checkpoint, import_mxnet

    # the compile worker is one process with one thread: a context saying so
    job: Any = SimpleNamespace(workers=1, n_models=1)
    ctx = ChildContext(job=job, base_dir=Path(request.base_dir), assignment=Assignment(), device=Device({}), objects={})
    framework.set_environment(ctx)
    mx = import_mxnet()

    try:
        import mx_neuron  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise ImportError(
            f"compiling for Neuron needs mx_neuron (mxnet-neuron), which cannot be imported ({exc}); install it "
            "from the Neuron pip repository (https://pip.repos.neuron.amazonaws.com)"
        ) from exc
    if request.model_kind == "path":
        sym, args, aux = mx.model.load_checkpoint(*find_checkpoint(request.resolve(request.model_ref), None))
    else:
        sym, args, aux = resolve_reference(request.model_ref, Path(request.base_dir), {})()
    names = framework.opts.data_names or [a for a in sym.list_arguments() if a not in args and not a.endswith("_label")]
    example = request.example()
    if len(example) == 1 and isinstance(example[0], Mapping):
        inputs = dict(example[0])
    else:
        if len(example) != len(names):
            raise TypeError(f"the symbol takes {len(names)} data input(s) {names}, got {len(example)}")
        inputs = dict(zip(names, example, strict=True))
    kwargs = compile_args(request)
    csym, cargs, caux = mx_neuron.compile(sym, args, aux, inputs=inputs, **kwargs)
    out = Path(request.output)
    out.mkdir(parents=True, exist_ok=True)
    mx.model.save_checkpoint(str(out / "model"), 0, csym, cargs, caux)
    return {"compile_args": kwargs, "example_shapes": {k: list(v.shape) for k, v in inputs.items()}}
