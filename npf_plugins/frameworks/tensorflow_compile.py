"""Compiling one variant for Neuron with tensorflow-neuronx: the ``tensorflow``
framework's ``compile(request)`` (see :mod:`npf_core.compilation.compiler`).

Runs only in a compile worker (a fresh interpreter), never in the supervisor. Steps,
per the documented API (``tensorflow_neuronx.trace(func, example_inputs,
subgraph_builder_function=None)``):

1. load the model: a Keras file, a SavedModel folder (its signature,
   ``model.options.signature``) or a ``model.target`` class or factory;
2. build the variant's example as tensors: one tensor, a list of them (a Keras model
   of several inputs), or a dict for named inputs — then ``func`` is called as
   ``func(**example)``, so a Keras model gets a function that passes the dict on;
3. put the compiler arguments in ``NEURON_CC_FLAGS`` (tensorflow-neuronx takes them
   only there), after any flags already in the environment: the same list as for
   torch-neuronx (:func:`npf_plugins.frameworks.torch_compile.neuron_compiler_args`);
4. ``traced = tensorflow_neuronx.trace(func, example)`` and ``traced.save(output)``:
   a SavedModel folder, which the ``tensorflow`` framework loads (with
   ``import tensorflow_neuronx`` first) on device ``neuron``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from npf_core.plugin import resolve_reference
from npf_plugins.frameworks.torch_compile import neuron_compiler_args

__all__ = ["compile_variant"]


def _model(framework: Any, request: Any) -> tuple[Any, Any]:
    """The function to trace, and what must stay referenced while it is used (a
    SavedModel's signature alone does not keep the model's variables alive)."""
    import tensorflow as tf

    if request.model_kind == "path":
        path = request.resolve(request.model_ref)
        if path.is_dir():
            saved = framework.load_path(path)
            return saved.signature, saved
        return tf.keras.models.load_model(str(path), compile=False), None
    factory = resolve_reference(request.model_ref, Path(request.base_dir), {})
    return (factory() if isinstance(factory, type) or not hasattr(factory, "trainable_variables") else factory), None


def _example(request: Any) -> tuple[Any, list[list[int]]]:
    """The example as trace takes it, and its shapes (for the index)."""
    import tensorflow as tf

    example = request.example()
    if len(example) == 1 and isinstance(example[0], Mapping):
        named = {k: tf.constant(v) for k, v in example[0].items()}
        return named, [list(t.shape) for t in named.values()]
    tensors = [tf.constant(x) for x in example]
    return (tensors[0] if len(tensors) == 1 else tensors), [list(t.shape) for t in tensors]


def compile_variant(framework: Any, request: Any) -> dict[str, Any]:
    """Trace one variant with ``tensorflow_neuronx.trace`` and save it as a SavedModel
    folder at ``request.output``; returns what the compiler was given."""
    import tensorflow as tf

    try:
        import tensorflow_neuronx  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise ImportError(
            f"compiling for Neuron needs tensorflow-neuronx, which cannot be imported ({exc}); install it from "
            "the Neuron pip repository (https://pip.repos.neuron.amazonaws.com)"
        ) from exc
    model, keep = _model(framework, request)
    example, shapes = _example(request)
    func = model
    if isinstance(example, dict) and isinstance(model, tf.keras.Model):

        def func(**inputs: Any) -> Any:  # trace calls func(**example) for a dict
            return model(inputs, training=False)

    args = neuron_compiler_args(request)
    flags = " ".join(x for x in (os.environ.get("NEURON_CC_FLAGS", "").strip(), shlex.join(args)) if x)
    os.environ["NEURON_CC_FLAGS"] = flags
    traced = tensorflow_neuronx.trace(func, example)
    out = Path(request.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    traced.save(str(out))
    del keep  # (referenced until the traced model is saved)
    info: dict[str, Any] = {"compiler_args": args, "NEURON_CC_FLAGS": flags, "example_shapes": shapes}
    ratio = getattr(traced, "on_neuron_ratio", None)
    if ratio is not None:
        info["on_neuron_ratio"] = float(ratio)
    return info
