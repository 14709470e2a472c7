"""``model.options`` of the ``onnxruntime`` framework, and what they turn into: the
settings of an ``onnxruntime.SessionOptions`` and the execution providers of a copy.

Pure data: nothing here imports onnxruntime, so the supervisor can decode and check
options without it. The names are ONNX Runtime's own (``SessionOptions`` attributes
and ``InferenceSession``'s ``providers`` / ``provider_options``), so that what a
user knows from ONNX Runtime's documentation carries over.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from npf_core.plugin import SpecError

__all__ = [
    "CPU_EP",
    "CUDA_EP",
    "EXECUTION_MODES",
    "GRAPH_OPTIMIZATION_LEVELS",
    "OnnxruntimeOptions",
    "check_provider_options",
    "copy_gpu_index",
    "provider_names",
    "providers_for",
]

CPU_EP = "CPUExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"

#: ``graph_optimization_level`` values -> ``onnxruntime.GraphOptimizationLevel`` members
GRAPH_OPTIMIZATION_LEVELS = {
    "disable_all": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "layout": "ORT_ENABLE_LAYOUT",
    "all": "ORT_ENABLE_ALL",
}
#: ``execution_mode`` values -> ``onnxruntime.ExecutionMode`` members
EXECUTION_MODES = {"sequential": "ORT_SEQUENTIAL", "parallel": "ORT_PARALLEL"}

PROVIDER_PATTERN = r"^[A-Za-z][A-Za-z0-9]*ExecutionProvider$"
ProviderName = Annotated[str, msgspec.Meta(pattern=PROVIDER_PATTERN)]
Threads = Annotated[int, msgspec.Meta(ge=1)]


class OnnxruntimeOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``model.options`` of the ``onnxruntime`` framework (every field optional)."""

    #: ``SessionOptions.intra_op_num_threads`` of each copy (default: the copy's share
    #: of the usable CPUs, ``ChildContext.cpu_share()``)
    intra_op_num_threads: Threads | None = None
    #: ``SessionOptions.inter_op_num_threads``, used by ``execution_mode: "parallel"``
    #: (default: as ``intra_op_num_threads``)
    inter_op_num_threads: Threads | None = None
    #: ``SessionOptions.execution_mode``: run independent nodes one after the other or in parallel
    execution_mode: Literal["sequential", "parallel"] = "sequential"
    #: ``SessionOptions.graph_optimization_level`` (ONNX Runtime's default: ``"all"``)
    graph_optimization_level: Literal["disable_all", "basic", "extended", "layout", "all"] = "all"
    #: execution providers in order of preference (default: ``["CPUExecutionProvider"]``;
    #: on device ``gpu``: ``["CUDAExecutionProvider", "CPUExecutionProvider"]``)
    providers: Annotated[list[ProviderName], msgspec.Meta(min_length=1)] | None = None
    #: options per provider, e.g. ``{"CUDAExecutionProvider": {"cudnn_conv_algo_search": "HEURISTIC"}}``;
    #: on device ``gpu`` the CUDA provider's ``device_id`` defaults to the copy's own GPU
    provider_options: dict[str, dict[str, Any]] = {}
    #: ``SessionOptions.add_session_config_entry(key, value)`` for each item, e.g.
    #: ``{"session.intra_op.allow_spinning": "0"}``
    session_config: dict[str, Any] = {}
    #: the outputs each call fetches (default: all of the model's outputs)
    output_names: Annotated[list[str], msgspec.Meta(min_length=1)] | None = None
    #: call ``onnxruntime.preload_dlls()`` before a CUDA session (onnxruntime-gpu >= 1.21:
    #: loads CUDA and cuDNN from the nvidia-* pip packages)
    preload_dlls: bool = True

    def __post_init__(self) -> None:
        # mappings are checked here, not by msgspec: its errors inside a dict name no key
        for name, values in self.provider_options.items():
            if not re.fullmatch(PROVIDER_PATTERN, name):
                raise SpecError(
                    f"model.options.provider_options.{name}",
                    f"{name!r} is not an execution provider's name",
                    "e.g. CUDAExecutionProvider, CPUExecutionProvider",
                )
            for key, value in values.items():
                if not isinstance(value, (str, int, float, bool)):
                    raise SpecError(
                        f"model.options.provider_options.{name}.{key}",
                        f"expected a string, number or boolean, got {type(value).__name__}",
                    )
        for key, value in self.session_config.items():
            if not isinstance(value, str):
                raise SpecError(
                    f"model.options.session_config[{key!r}]",
                    f"expected a string, got {type(value).__name__}",
                    'onnxruntime takes session config values as strings, e.g. "0"',
                )
        if self.providers is not None:
            seen: set[str] = set()
            for i, name in enumerate(self.providers):
                if name in seen:
                    raise SpecError(f"model.options.providers[{i}]", f"{name!r} is listed twice")
                seen.add(name)
            for name in self.provider_options:
                if name not in seen:
                    raise SpecError(
                        f"model.options.provider_options.{name}",
                        f"options for {name!r}, which model.options.providers does not list",
                        f"providers: {', '.join(self.providers)}",
                    )
        if self.output_names is not None and len(set(self.output_names)) != len(self.output_names):
            raise SpecError("model.options.output_names", "an output is named twice")


def provider_names(opts: OnnxruntimeOptions, device_type: str) -> list[str]:
    """The execution providers a copy asks for, in order: the option, else the device's default."""
    if opts.providers is not None:
        return list(opts.providers)
    return [CUDA_EP, CPU_EP] if device_type == "gpu" else [CPU_EP]


def check_provider_options(opts: OnnxruntimeOptions, device_type: str) -> None:
    """Options for a provider the copy will not use are a spec error (only possible when
    ``providers`` is left to the device's default)."""
    names = provider_names(opts, device_type)
    for name in opts.provider_options:
        if name not in names:
            raise SpecError(
                f"model.options.provider_options.{name}",
                f"options for {name!r}, which a copy on device {device_type!r} does not use",
                f"it uses {', '.join(names)}; list the providers in model.options.providers",
            )


def copy_gpu_index(assignment: Mapping[str, Any]) -> int:
    """The CUDA device index of a copy's own GPU, seen from inside the copy: 0 when the
    device plugin set ``CUDA_VISIBLE_DEVICES`` for it (npf's ``gpu`` device does: the
    copy then sees only its own GPUs), else the first device id it was given."""
    env = assignment.get("env") or {}
    if "CUDA_VISIBLE_DEVICES" in env:
        return 0
    devices = assignment.get("devices") or []
    first = str(devices[0]) if devices else ""
    return int(first) if first.isdigit() else 0


def _option_text(value: str | int | float | bool) -> str:
    # ONNX Runtime takes provider options as strings; str(True) would be "True"
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def providers_for(
    opts: OnnxruntimeOptions, device_type: str, assignment: Mapping[str, Any]
) -> list[tuple[str, dict[str, str]]]:
    """``(provider, options)`` pairs for ``InferenceSession(providers=...)``: on device
    ``gpu`` the CUDA provider runs on the copy's own GPU unless ``device_id`` is given."""
    out: list[tuple[str, dict[str, str]]] = []
    for name in provider_names(opts, device_type):
        options = {k: _option_text(v) for k, v in opts.provider_options.get(name, {}).items()}
        if name == CUDA_EP and device_type == "gpu":
            options.setdefault("device_id", str(copy_gpu_index(assignment)))
        out.append((name, options))
    return out
