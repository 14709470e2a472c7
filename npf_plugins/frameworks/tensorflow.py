"""Framework ``tensorflow``: TensorFlow 2 / Keras models, on CPU and (with
tensorflow-neuronx) on NeuronCores.

Models (``model.path`` or ``model.target``):

- a SavedModel folder (``saved_model.pb`` inside: ``model.export(dir)``,
  ``tf.saved_model.save``, or a tensorflow-neuronx model's ``.save(dir)``), loaded
  with ``tf.saved_model.load``; the copy calls its signature ``model.options.signature``
  (default ``"serving_default"``) and keeps the loaded object alive;
- a Keras file (``.keras``, ``.h5``, ``.hdf5``), loaded with
  ``tf.keras.models.load_model(path, compile=False)``;
- ``model.target``: a class or zero-argument factory (``"package.module:attr"`` or
  ``"path/file.py:attr"``) returning a Keras model or any TensorFlow callable, built in
  every copy.

Keras models are called as ``model(x, training=False)`` inside one ``tf.function``
per copy (traced during warm-up), the way a serving signature runs; ``function:
false`` calls them eagerly instead.

Inputs are numpy arrays (from the spec's descriptions or files), made into tensors
once before the clock starts. Named inputs (the spec's ``name`` field, or a dict of
arrays) reach a signature as keyword arguments and a Keras model as one dict;
one positional input reaches a one-input signature under its name, and positional
inputs reach a Keras model as one tensor or a list (a signature with several inputs
needs names).

Start method: always a fresh interpreter. After a process has built or loaded a Keras
model, ``model.predict()`` in a forked child hangs, so TensorFlow is never imported in
the supervisor and a spec that asks for ``fork`` (or ``zygote``) is refused before
anything starts.

CPU threads: each copy gets ``max(1, usable_cpus // n_models)`` intra-op and inter-op
threads (all of its block when the ``cpu`` device pins copies); ``threads`` and
``interop_threads`` override them.

tensorflow-neuronx: on device ``neuron`` (or with ``neuron: true``) the copy runs
``import tensorflow_neuronx`` before loading, and the model is the SavedModel its
traced model saved. Compiling (``npf compile``) calls ``tensorflow_neuronx.trace(model,
example)`` with the compiler arguments in ``NEURON_CC_FLAGS`` (see
:mod:`npf_plugins.frameworks.tensorflow_compile`).

Options (``model.options``): ``signature``, ``function``, ``threads``,
``interop_threads``, ``neuron``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from npf_core.plugin import (
    ChildContext,
    Device,
    DeviceUnavailable,
    Framework,
    PluginError,
    Registry,
    SpecError,
    decode_options,
    get_logger,
    hookimpl,
    resolve_reference,
)
from npf_plugins.frameworks.common import installed

__all__ = ["KERAS_SUFFIXES", "TensorflowFramework", "TensorflowOptions", "is_saved_model", "to_named"]

logger = get_logger(__name__)

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
#: what start_method may not be: TF hangs in a forked child once its parent used it
FORK_METHODS = ("fork", "zygote")


class TensorflowOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: the SavedModel signature to call
    signature: str = "serving_default"
    #: call Keras models inside a tf.function (else eagerly)
    function: bool = True
    #: intra-op CPU threads per copy (default: usable CPUs // n_models)
    threads: Annotated[int, msgspec.Meta(ge=1)] | None = None
    #: inter-op CPU threads per copy (default: as threads)
    interop_threads: Annotated[int, msgspec.Meta(ge=1)] | None = None
    #: a tensorflow-neuronx model: import tensorflow_neuronx before loading it
    neuron: bool = False


def is_saved_model(path: Path) -> bool:
    return path.is_dir() and ((path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file())


def to_named(example: tuple[Any, ...], names: list[str]) -> dict[str, Any]:
    """An example as a signature's keyword arguments: a one-dict example as is; one
    positional input under the signature's only name. Several positional inputs are
    refused: a signature's inputs have names, not an order."""
    if len(example) == 1 and isinstance(example[0], Mapping):
        return dict(example[0])
    if len(example) == 1 and len(names) == 1:
        return {names[0]: example[0]}
    raise TypeError(
        f"the signature takes the named inputs {sorted(names)}, got {len(example)} positional one(s); "
        "give each input its 'name' in the spec (or pass a dict of arrays)"
    )


class TensorflowFramework(Framework):
    """TensorFlow 2: SavedModel folders, Keras files and model factories."""

    requires = ("tensorflow",)
    start_method = "fresh"
    compile_suffix = ""

    options_type = TensorflowOptions  # its options in `npf schema`

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.opts = decode_options(options, TensorflowOptions, "model.options")

    # -- supervisor ------------------------------------------------------------

    def start_method_for(self, device: Device) -> str:
        return "fresh"

    def copy_depends_on(self, device: Device) -> frozenset[str]:
        """TensorFlow's thread pools are sized once, before its runtime starts, from
        the copy's CPU share (which depends on ``n_models``): a copy is reused only
        with as many copies beside it, unless ``threads`` fixes the size."""
        return frozenset() if self.opts.threads else frozenset({"n_models"})

    def check(self, kind: str, ref: str, spec: Any) -> None:
        start = getattr(spec, "start_method", "auto")
        if start in FORK_METHODS:
            raise SpecError(
                "start_method",
                f"TensorFlow cannot run in a {start!r} child: once a process has built or loaded a Keras "
                "model, model calls in a forked child hang",
                "leave start_method at 'auto' (TensorFlow copies run in fresh interpreters) or set 'fresh'",
            )
        if not installed("tensorflow"):
            raise PluginError("the tensorflow framework needs TensorFlow: pip install 'npf[tensorflow]'")
        device = getattr(spec, "device", "cpu")
        device_type = device if isinstance(device, str) else getattr(device, "type", "cpu")
        if (self.opts.neuron or device_type == "neuron") and not installed("tensorflow_neuronx"):
            raise DeviceUnavailable(
                "the tensorflow framework on Neuron needs tensorflow-neuronx, which is not installed "
                "(install it from the Neuron pip repository on an inf2/trn instance, or run on device 'cpu')"
            )
        if kind != "path":
            return
        p = Path(ref)
        field = "model.index" if getattr(getattr(spec, "model", None), "index", None) else "model.path"
        if p.is_dir():
            if not is_saved_model(p):
                raise SpecError(
                    field,
                    f"{str(p)!r} is a folder without saved_model.pb",
                    "give a SavedModel folder (model.export(dir) or tf.saved_model.save) or a .keras / .h5 file",
                )
            return
        if p.suffix.lower() not in KERAS_SUFFIXES:
            raise SpecError(
                field,
                f"{p.name!r} is not a model the tensorflow framework loads",
                f"give a SavedModel folder or a Keras file ({', '.join(KERAS_SUFFIXES)}), "
                "or model.target as a class or factory",
            )
        if not p.is_file():
            raise SpecError(field, f"no such model file: {str(p)!r}")

    def compile(self, request: Any) -> Any:
        from npf_plugins.frameworks.tensorflow_compile import compile_variant

        return compile_variant(self, request)

    # -- benchmarker -----------------------------------------------------------

    def is_neuron(self, ctx: ChildContext) -> bool:
        return self.opts.neuron or ctx.device.type_name == "neuron"

    def load(self, kind: str, ref: str, ctx: ChildContext) -> Any:
        import tensorflow as tf

        threads = self.opts.threads or ctx.cpu_share()
        try:  # only before TensorFlow's runtime has started
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(self.opts.interop_threads or threads)
        except RuntimeError as exc:
            logger.warning("TensorFlow threads not set", error=str(exc))
        if self.is_neuron(ctx):
            try:
                import tensorflow_neuronx  # noqa: F401 - registers the Neuron ops the SavedModel needs
            except ImportError as exc:
                raise ImportError(
                    f"this model runs on Neuron but tensorflow_neuronx cannot be imported ({exc}); install "
                    "tensorflow-neuronx from the Neuron pip repository on an inf2/trn instance"
                ) from exc
        if kind == "path":
            return self.load_path(ctx.resolve(ref))
        factory = resolve_reference(ref, ctx.base_dir, ctx.objects)
        model = factory() if isinstance(factory, type) or not hasattr(factory, "trainable_variables") else factory
        if not callable(model):
            raise TypeError(f"{ref!r} gave a {type(model).__name__}, which cannot be called with inputs")
        return model

    def load_path(self, path: Path) -> Any:
        """A SavedModel (the loaded object, with ``.npf_signature`` set) or a Keras model."""
        import tensorflow as tf

        if path.is_dir():
            loaded = tf.saved_model.load(str(path))
            signatures = dict(getattr(loaded, "signatures", {}) or {})
            name = self.opts.signature
            if name not in signatures:
                raise KeyError(
                    f"{path.name} has no signature {name!r} (it has {sorted(signatures) or 'none'}); "
                    "set model.options.signature"
                )
            saved = _SavedModel(loaded, signatures[name])
            self.signature_names = saved.names
            return saved
        return tf.keras.models.load_model(str(path), compile=False)

    def convert_inputs(self, example: tuple[Any, ...], ctx: ChildContext) -> tuple[Any, ...]:
        import tensorflow as tf

        def tensor(x: Any) -> Any:
            return tf.constant(x) if not isinstance(x, (tf.Tensor, tf.Variable)) else x

        names = getattr(self, "signature_names", None)
        if names is not None:  # a signature takes keyword arguments only
            return ({k: tensor(v) for k, v in to_named(example, names).items()},)
        if len(example) == 1 and isinstance(example[0], Mapping):
            return ({k: tensor(v) for k, v in example[0].items()},)
        return tuple(tensor(x) for x in example)

    def callable(self, model: Any, ctx: ChildContext) -> Callable[..., Any]:
        if isinstance(model, _SavedModel):
            return model.call
        import tensorflow as tf

        if isinstance(model, tf.keras.Model):
            def keras_call(x: Any) -> Any:
                return model(x, training=False)

            call = tf.function(keras_call, reduce_retracing=True) if self.opts.function else keras_call

            def call_keras(*xs: Any) -> Any:
                return call(xs[0] if len(xs) == 1 else list(xs))

            return call_keras
        return model


class _SavedModel:
    """A loaded SavedModel and the signature a copy calls. Holding ``loaded`` keeps its
    variables alive: a signature alone does not."""

    def __init__(self, loaded: Any, signature: Any) -> None:
        self.loaded = loaded
        self.signature = signature
        _, kwargs = signature.structured_input_signature
        self.names = list(kwargs)

    def call(self, *xs: Any) -> Any:
        if len(xs) == 1 and isinstance(xs[0], Mapping):
            return self.signature(**xs[0])
        return self.signature(**to_named(xs, self.names))


@hookimpl
def npf_register_frameworks(registry: Registry[Framework]) -> None:
    registry.add("tensorflow", TensorflowFramework)
