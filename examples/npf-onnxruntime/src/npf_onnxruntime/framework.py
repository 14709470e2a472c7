"""Framework ``onnxruntime``: ONNX models (``model.path``: a ``.onnx`` or ``.ort``
file) run by ONNX Runtime, one ``InferenceSession`` per model copy.

Which process runs what (see npf's docs/plugins.md):

- supervisor: ``__init__`` (decode ``model.options``) and ``check`` (the file, the
  start method, onnxruntime installed). onnxruntime is never imported there.
- benchmarker (each copy): ``load`` (the session), ``convert_inputs`` (the feed, once,
  untimed), ``callable`` (what each worker calls).

Start method: ``zygote``, with nothing pre-imported; README.md says why.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from npf_core.plugin import ChildContext, Framework, PluginError, SpecError, decode_options

from npf_onnxruntime.errors import ForkedAfterImport, InputMismatch, ProviderUnavailable
from npf_onnxruntime.options import (
    CUDA_EP,
    EXECUTION_MODES,
    GRAPH_OPTIMIZATION_LEVELS,
    OnnxruntimeOptions,
    check_provider_options,
    providers_for,
)

__all__ = ["MODEL_SUFFIXES", "ONNX_ELEMENT_TYPES", "OnnxModel", "OnnxruntimeFramework", "forked_from"]

MODEL_SUFFIXES = (".onnx", ".ort")
#: ONNX Runtime's input type strings -> numpy dtype names
ONNX_ELEMENT_TYPES = {
    "tensor(float)": "float32",
    "tensor(double)": "float64",
    "tensor(float16)": "float16",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(uint8)": "uint8",
    "tensor(uint16)": "uint16",
    "tensor(uint32)": "uint32",
    "tensor(uint64)": "uint64",
    "tensor(bool)": "bool",
}

# -- fork safety ---------------------------------------------------------------
# Importing onnxruntime starts a native thread. A fork does not copy it, and the child
# then hangs (or aborts) in onnxruntime's exit handlers. This module is imported
# wherever npf builds its plugin manager (the supervisor, the zygote) before any fork,
# so this hook tells a copy whether its parent had imported onnxruntime.

_forked_from: int | None = None


def _after_fork_in_child() -> None:
    global _forked_from
    if "onnxruntime" in sys.modules:
        _forked_from = os.getppid()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


def forked_from() -> int | None:
    """The pid of the process this one was forked from, if that process had imported
    onnxruntime; None otherwise."""
    return _forked_from


def _installed(name: str) -> bool:
    """Whether top-level module ``name`` can be imported, found without importing it."""
    if name in sys.modules:
        return True
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin not in (None, "namespace")


class OnnxModel:
    """One copy's model: its session and the metadata that its calls need."""

    def __init__(self, session: Any, path: Path, output_names: list[str]) -> None:
        self.session = session
        self.path = path
        #: (name, element type, shape) of each input the session must be fed, in order
        self.inputs: list[tuple[str, str, list[Any]]] = [(i.name, i.type, list(i.shape)) for i in session.get_inputs()]
        self.output_names = output_names

    def input_names(self) -> list[str]:
        return [name for name, _, _ in self.inputs]


class OnnxruntimeFramework(Framework):
    """ONNX models in ONNX Runtime: one InferenceSession per copy."""

    #: copies fork from npf's zygote, which never imports onnxruntime (``preimport`` stays
    #: empty): each copy imports it after the fork (README.md, "Start method")
    start_method: ClassVar[str] = "zygote"
    preimport: ClassVar[tuple[str, ...]] = ()
    #: the Struct ``model.options`` decodes into (``npf schema`` shows it where npf supports that)
    options_type: ClassVar[type] = OnnxruntimeOptions

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.opts = decode_options(options, OnnxruntimeOptions, "model.options")
        self.model: OnnxModel | None = None

    # -- supervisor ------------------------------------------------------------

    def check(self, kind: str, ref: str, spec: Any) -> None:
        if getattr(spec, "start_method", "auto") == "fork" and "onnxruntime" in sys.modules:
            raise SpecError(
                "start_method",
                "this process has imported onnxruntime, and a copy forked from it hangs or aborts when it exits "
                "(the thread onnxruntime starts at import is not copied by a fork)",
                "leave start_method at 'auto' (copies fork from a zygote that never imports onnxruntime) "
                "or set 'fresh'",
            )
        if not _installed("onnxruntime"):
            raise PluginError(
                "the onnxruntime framework needs ONNX Runtime: pip install onnxruntime (or onnxruntime-gpu)"
            )
        device = getattr(spec, "device", "cpu")
        device_type = device if isinstance(device, str) else getattr(device, "type", "cpu")
        check_provider_options(self.opts, device_type)
        field = "model.index" if getattr(getattr(spec, "model", None), "index", None) else "model.path"
        if kind != "path":
            raise SpecError(
                "model.target",
                "the onnxruntime framework loads a model file",
                'give model.path, e.g. {"framework": "onnxruntime", "path": "model.onnx"}',
            )
        p = Path(ref)
        if p.suffix.lower() not in MODEL_SUFFIXES:
            raise SpecError(
                field,
                f"{p.name!r} is not a file the onnxruntime framework loads",
                "give an ONNX model (.onnx) or an ONNX Runtime format model (.ort)",
            )
        if not p.is_file():
            raise SpecError(field, f"no such model file: {str(p)!r}")

    # -- benchmarker -----------------------------------------------------------

    def session_options(self, ort: Any, ctx: ChildContext) -> Any:
        """An ``onnxruntime.SessionOptions`` from ``model.options``; threads default to
        the copy's share of the CPUs."""
        opts = self.opts
        so = ort.SessionOptions()
        threads = opts.intra_op_num_threads or ctx.cpu_share()
        # explicit thread counts also keep onnxruntime from pinning its threads to
        # cores, which fails in containers with a restricted CPU set
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = opts.inter_op_num_threads or threads
        so.execution_mode = getattr(ort.ExecutionMode, EXECUTION_MODES[opts.execution_mode])
        level = GRAPH_OPTIMIZATION_LEVELS[opts.graph_optimization_level]
        if not hasattr(ort.GraphOptimizationLevel, level):
            raise SpecError(
                "model.options.graph_optimization_level",
                f"{opts.graph_optimization_level!r} is not in onnxruntime {ort.__version__}",
                "allowed there: "
                + ", ".join(k for k, v in GRAPH_OPTIMIZATION_LEVELS.items() if hasattr(ort.GraphOptimizationLevel, v)),
            )
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
        for key, value in opts.session_config.items():
            try:
                so.add_session_config_entry(key, value)
            except Exception as exc:  # onnxruntime's own error types
                raise SpecError(f"model.options.session_config[{key!r}]", str(exc)) from exc
        return so

    def providers(self, ort: Any, ctx: ChildContext) -> list[tuple[str, dict[str, str]]]:
        """The copy's execution providers with their options, each one checked to be in
        this onnxruntime (which would otherwise warn and quietly use the CPU)."""
        device_type = ctx.device.type_name
        pairs = providers_for(self.opts, device_type, ctx.assignment)
        available = ort.get_available_providers()
        for i, (name, _) in enumerate(pairs):
            if name not in available:
                path = f"model.options.providers[{i}]" if self.opts.providers is not None else "device"
                hint = f"available: {', '.join(available)}"
                if name == CUDA_EP:
                    hint = f"install onnxruntime-gpu in place of onnxruntime ({hint})"
                raise ProviderUnavailable(path, name, f"is not available in onnxruntime {ort.__version__}", hint)
        return pairs

    def load(self, kind: str, ref: str, ctx: ChildContext) -> Any:
        parent = forked_from()
        if parent is not None:
            raise ForkedAfterImport(parent)
        import onnxruntime as ort

        path = ctx.resolve(ref)
        so = self.session_options(ort, ctx)
        pairs = self.providers(ort, ctx)
        wanted = [name for name, _ in pairs]
        if CUDA_EP in wanted and self.opts.preload_dlls and hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # CUDA and cuDNN from the nvidia-* pip packages, when installed
        # enable_fallback=0: a provider that fails must fail the copy, not quietly hand
        # the model to the CPU (onnxruntime retries on the CPU at creation and at run)
        session = ort.InferenceSession(
            str(path), so, providers=wanted, provider_options=[o for _, o in pairs], enable_fallback=0
        )
        used = session.get_providers()
        for i, name in enumerate(wanted):
            if name not in used:
                field = f"model.options.providers[{i}]" if self.opts.providers is not None else "device"
                raise ProviderUnavailable(
                    field, name, f"did not start (the session runs on {', '.join(used)})", "see the copy's stderr"
                )
        outputs = [o.name for o in session.get_outputs()]
        names = self.opts.output_names or outputs
        unknown = [n for n in names if n not in outputs]
        if unknown:
            raise SpecError(
                "model.options.output_names",
                f"{path.name} has no output {unknown[0]!r}",
                f"its outputs: {', '.join(outputs)}",
            )
        self.model = OnnxModel(session, path, names)
        return self.model

    def convert_inputs(self, example: tuple[Any, ...], ctx: ChildContext) -> tuple[Any, ...]:
        """The call's one argument: a feed dict by the model's input names, from named
        inputs (a one-dict example) or positional ones (in the model's input order)."""
        import numpy as np

        model = self.model
        if model is None:
            raise RuntimeError("convert_inputs before load: no session to match the inputs to")
        names = model.input_names()
        if len(example) == 1 and isinstance(example[0], Mapping):
            given = dict(example[0])
            unknown = sorted(set(given) - set(names))
            if unknown:
                raise InputMismatch(
                    f"{model.path.name} has no input named {unknown[0]!r}; its inputs: {', '.join(names)}"
                )
            missing = [n for n in names if n not in given]
            if missing:
                raise InputMismatch(
                    f"{model.path.name} needs the input {missing[0]!r}, which the example lacks "
                    f"(it has {', '.join(sorted(given)) or 'none'})"
                )
        else:
            if len(example) != len(names):
                raise InputMismatch(
                    f"{model.path.name} takes {len(names)} input(s) ({', '.join(names)}), got {len(example)} "
                    "positional one(s); give one input per model input, in order, or name them"
                )
            given = dict(zip(names, example, strict=True))
        feed: dict[str, Any] = {}
        for name, type_, shape in model.inputs:
            feed[name] = self._check_input(np, model.path.name, name, type_, shape, given[name])
        return (feed,)

    @staticmethod
    def _check_input(np: Any, model: str, name: str, type_: str, shape: list[Any], value: Any) -> Any:
        x = np.ascontiguousarray(value)
        want = ONNX_ELEMENT_TYPES.get(type_)
        if want is not None and x.dtype != np.dtype(want):
            raise InputMismatch(
                f"input {name!r} of {model} is {type_} ({want}), got {x.dtype}; set the input's dtype in the spec"
            )
        fixed = [d if isinstance(d, int) else None for d in shape]
        if len(fixed) != x.ndim or any(d is not None and d != n for d, n in zip(fixed, x.shape, strict=True)):
            shown = "[" + ", ".join(str(d) if isinstance(d, int) else repr(d) for d in shape) + "]"
            raise InputMismatch(f"input {name!r} of {model} has shape {shown}, got {list(x.shape)}")
        return x

    def callable(self, model: Any, ctx: ChildContext) -> Callable[..., Any]:
        """``fn(feed)``: one ``session.run`` (synchronous, also on CUDA: outputs come back
        as numpy arrays). One output comes back as its array, several as a list."""
        run = model.session.run
        names = model.output_names
        if len(names) == 1:

            def call(feed: dict[str, Any]) -> Any:
                return run(names, feed)[0]

            return call

        def call_all(feed: dict[str, Any]) -> Any:
            return run(names, feed)

        return call_all
