"""Framework ``mxnet``: Apache MXNet 1.x symbol checkpoints, on CPU, GPU and (with
mx_neuron) on NeuronCores.

Models (``model.path`` or ``model.target``):

- a checkpoint (``mx.model.save_checkpoint(prefix, epoch, ...)`` wrote
  ``prefix-symbol.json`` and ``prefix-0000.params``): give either file, or a folder
  holding one checkpoint (what ``npf compile`` writes). The epoch is the one in the
  ``.params`` name given, else ``model.options.epoch``, else the latest found;
- ``model.target``: a class or zero-argument factory returning ``(sym, arg_params,
  aux_params)`` (bound like a checkpoint) or any callable taking NDArrays (a Gluon
  block, for instance), built in every copy.

Each copy sets ``MXNET_CPU_TEMP_COPY``, ``MXNET_EXEC_NUM_TEMP``,
``MXNET_CPU_WORKER_NTHREADS`` and ``MXNET_MP_WORKER_NTHREADS`` to its worker count
before it imports MXNet (as NeuronPerf did), and ``OMP_NUM_THREADS`` to its share of
the CPUs divided by its worker count, unless already set (``threads`` overrides it). Each worker thread binds its
own executor (``sym.bind(ctx, args, aux_states, grad_req="null")``, the parameters
shared, the inputs its own copy) on its first call, in warm-up. A call is
``exe.forward(is_train=False)`` and then ``wait_to_read()`` on every output, so the
clock stops when this call's work is done — not ``mx.nd.waitall()``, which would also
wait for the other workers' calls.

Inputs: numpy arrays, made ``mx.nd`` arrays on the model's context once before the
clock starts. Positional inputs go to the symbol's data inputs in order: its
arguments that are neither parameters nor ``*_label`` (``data_names`` overrides);
named inputs (the spec's ``name``, or a dict of arrays) go by name. Arguments left
over (labels) are bound to zeros of their inferred shape.

Start method: fresh interpreters by default. The supervisor never imports MXNet, so an
explicit ``start_method: "fork"`` also works (MXNet is imported after the fork).

Contexts: ``mx.cpu()``; ``mx.gpu(0)`` on ``gpu`` (the copy's own GPU); on ``neuron``
(or with ``neuron: true``) the copy runs ``import mx_neuron`` first and binds on
``mx.neuron()``. Compiling (``npf compile``) calls ``mx_neuron.compile(sym, args, aux,
inputs=..., **compile_args)`` and saves a checkpoint folder (see
:mod:`npf_plugins.frameworks.mxnet_compile`).

Options (``model.options``): ``epoch``, ``data_names``, ``threads``, ``neuron``.
"""

from __future__ import annotations

import os
import sys
import threading
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
from npf_plugins.frameworks.mxnet_checkpoint import find_checkpoint, import_mxnet

__all__ = ["WORKER_ENV", "MxnetFramework", "MxnetOptions", "find_checkpoint", "import_mxnet"]

logger = get_logger(__name__)

#: set to the worker count before MXNet is imported
WORKER_ENV = ("MXNET_CPU_TEMP_COPY", "MXNET_EXEC_NUM_TEMP", "MXNET_CPU_WORKER_NTHREADS", "MXNET_MP_WORKER_NTHREADS")


class MxnetOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: the checkpoint's epoch (default: the one named, else the latest)
    epoch: Annotated[int, msgspec.Meta(ge=0)] | None = None
    #: the symbol's data inputs, in order (default: arguments that are not parameters or labels)
    data_names: list[str] | None = None
    #: OMP_NUM_THREADS per copy (default: usable CPUs // n_models // workers, unless set)
    threads: Annotated[int, msgspec.Meta(ge=1)] | None = None
    #: an mx_neuron model: import mx_neuron and bind on mx.neuron()
    neuron: bool = False


class MxnetFramework(Framework):
    """MXNet 1.x: symbol checkpoints, bound once per worker thread."""

    requires = ("mxnet",)
    start_method = "fresh"
    compile_suffix = ""

    options_type = MxnetOptions  # its options in `npf schema`

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.opts = decode_options(options, MxnetOptions, "model.options")

    # -- supervisor ------------------------------------------------------------

    def start_method_for(self, device: Device) -> str:
        return "fresh"

    def copy_depends_on(self, device: Device) -> frozenset[str]:
        """MXNet reads its engine's thread counts (from the workers per copy and the
        copy's CPU share) once, at import: a copy is reused only for the same
        workers (and copies, unless ``threads`` fixes the operator threads)."""
        return frozenset({"workers_per_model"} if self.opts.threads is not None else {"workers_per_model", "n_models"})

    def check(self, kind: str, ref: str, spec: Any) -> None:
        if not installed("mxnet"):
            raise PluginError(
                "the mxnet framework needs MXNet: pip install 'npf[mxnet]' (mxnet 1.9.1, with numpy<1.24)"
            )
        device = getattr(spec, "device", "cpu")
        device_type = device if isinstance(device, str) else getattr(device, "type", "cpu")
        if (self.opts.neuron or device_type == "neuron") and not installed("mx_neuron"):
            raise DeviceUnavailable(
                "the mxnet framework on Neuron needs mx_neuron (mxnet-neuron), which is not installed "
                "(install it from the Neuron pip repository on an inf1 instance, or run on device 'cpu')"
            )
        if kind != "path":
            return
        field = "model.index" if getattr(getattr(spec, "model", None), "index", None) else "model.path"
        try:
            find_checkpoint(Path(ref), self.opts.epoch)
        except (ValueError, OSError) as exc:
            raise SpecError(
                field, str(exc), "give PREFIX-symbol.json or PREFIX-NNNN.params (mx.model.save_checkpoint)"
            ) from None

    def compile(self, request: Any) -> Any:
        from npf_plugins.frameworks.mxnet_compile import compile_variant

        return compile_variant(self, request)

    # -- benchmarker -----------------------------------------------------------

    def is_neuron(self, ctx: ChildContext) -> bool:
        return self.opts.neuron or ctx.device.type_name == "neuron"

    def set_environment(self, ctx: ChildContext) -> None:
        """MXNet reads these when it starts its engine: before ``import mxnet``."""
        if "mxnet" in sys.modules:
            logger.warning("MXNet was imported before the copy set its environment", variables=list(WORKER_ENV))
        workers = str(max(1, int(getattr(ctx.job, "workers", 1))))
        for name in WORKER_ENV:
            os.environ[name] = workers
        if self.opts.threads is not None:
            os.environ["OMP_NUM_THREADS"] = str(self.opts.threads)
        else:  # the copy's CPUs, shared by its workers' operators
            os.environ.setdefault("OMP_NUM_THREADS", str(max(1, ctx.cpu_share() // int(workers))))

    def load(self, kind: str, ref: str, ctx: ChildContext) -> Any:
        self.set_environment(ctx)
        mx = import_mxnet()

        if self.is_neuron(ctx):
            try:
                import mx_neuron  # noqa: F401 - registers the Neuron subgraph op and mx.neuron()
            except ImportError as exc:
                raise ImportError(
                    f"this model runs on Neuron but mx_neuron cannot be imported ({exc}); install "
                    "mxnet-neuron from the Neuron pip repository on an inf1 instance"
                ) from exc
            self.context = mx.neuron()
        elif ctx.device.type_name == "gpu":
            self.context = mx.gpu(0)
        else:
            self.context = mx.cpu()
        if kind == "path":
            prefix, epoch = find_checkpoint(ctx.resolve(ref), self.opts.epoch)
            return self.bound(*mx.model.load_checkpoint(prefix, epoch))
        factory = resolve_reference(ref, ctx.base_dir, ctx.objects)
        model = factory() if callable(factory) and not isinstance(factory, mx.gluon.Block) else factory
        if isinstance(model, tuple) and len(model) == 3:
            return self.bound(*model)
        if not callable(model):
            raise TypeError(f"{ref!r} gave a {type(model).__name__}: not (sym, arg_params, aux_params) or a callable")
        return model

    def bound(self, sym: Any, arg_params: dict[str, Any], aux_params: dict[str, Any]) -> _Executors:
        args = {k: v.as_in_context(self.context) for k, v in arg_params.items()}
        aux = {k: v.as_in_context(self.context) for k, v in aux_params.items()}
        names = self.opts.data_names or [
            a for a in sym.list_arguments() if a not in args and not a.endswith("_label")
        ]
        self.data_names = names
        return _Executors(sym, args, aux, names, self.context)

    def convert_inputs(self, example: tuple[Any, ...], ctx: ChildContext) -> tuple[Any, ...]:
        mx = import_mxnet()

        context = getattr(self, "context", None) or mx.cpu()

        def nd(x: Any) -> Any:
            if isinstance(x, mx.nd.NDArray):
                return x.as_in_context(context)
            return mx.nd.array(x, ctx=context, dtype=x.dtype)

        names = getattr(self, "data_names", None)
        if len(example) == 1 and isinstance(example[0], Mapping):
            return ({k: nd(v) for k, v in example[0].items()},)
        if names is not None:  # a bound symbol: positional inputs by its data names
            if len(example) != len(names):
                raise TypeError(
                    f"the symbol takes {len(names)} data input(s) {names}, got {len(example)}; "
                    "give the inputs a 'name', or set model.options.data_names"
                )
            return ({k: nd(v) for k, v in zip(names, example, strict=True)},)
        return tuple(nd(x) for x in example)

    def callable(self, model: Any, ctx: ChildContext) -> Callable[..., Any]:
        if isinstance(model, _Executors):
            return model.call

        def call_and_wait(*inputs: Any) -> Any:
            out = model(*inputs)
            for o in out if isinstance(out, (list, tuple)) else [out]:
                if hasattr(o, "wait_to_read"):
                    o.wait_to_read()
            return out

        return call_and_wait


class _Executors:
    """One executor per worker thread, bound on the thread's first call."""

    def __init__(self, sym: Any, args: dict[str, Any], aux: dict[str, Any], names: list[str], context: Any) -> None:
        self.sym, self.args, self.aux, self.names, self.context = sym, args, aux, names, context
        self.local = threading.local()

    def _bind(self, inputs: Mapping[str, Any]) -> Any:
        import mxnet as mx

        missing = [n for n in self.names if n not in inputs]
        if missing:
            raise KeyError(f"no input named {missing[0]!r} (the symbol's data inputs are {self.names})")
        own = {k: v.copy() for k, v in inputs.items()}  # this executor's own input arrays
        shapes, _, _ = self.sym.infer_shape(**{k: v.shape for k, v in own.items()})
        bound = dict(self.args)
        bound.update(own)
        for name, shape in zip(self.sym.list_arguments(), shapes, strict=True):
            if name not in bound:  # e.g. a SoftmaxOutput label: not used in inference
                bound[name] = mx.nd.zeros(shape, ctx=self.context)
        exe = self.sym.bind(self.context, args=bound, aux_states=self.aux, grad_req="null")
        forward, src = exe.forward, inputs

        def run(inputs: Mapping[str, Any]) -> Any:
            if inputs is src:  # the fixed example: already in this executor's arrays
                forward(is_train=False)
            else:
                forward(is_train=False, **inputs)
            outputs = exe.outputs
            for o in outputs:
                o.wait_to_read()
            return outputs

        self.local.run = run
        return run

    def call(self, inputs: Mapping[str, Any]) -> Any:
        try:
            run = self.local.run
        except AttributeError:  # this thread's first call (in warm-up)
            run = self._bind(inputs)
        return run(inputs)


@hookimpl
def npf_register_frameworks(registry: Registry[Framework]) -> None:
    registry.add("mxnet", MxnetFramework)
