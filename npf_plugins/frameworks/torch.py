"""Framework ``torch``: PyTorch models, on CPU, CUDA GPUs and NeuronCores.

Models (``model.path`` or ``model.target``):

- a TorchScript archive (``.pt``, ``.pth``, ``.ts``, ``.torchscript``), loaded with
  ``torch.jit.load`` — also what ``torch_neuronx.trace`` produces;
- a ``torch.export`` program (``.pt2``), loaded with ``torch.export.load(p).module()``;
- ``model.target``: an ``nn.Module`` class or zero-argument factory
  (``"package.module:Class"`` or ``"path/file.py:Class"``), instantiated in every
  copy; through the Python API, an ``nn.Module`` instance also works (sent to
  each copy serialised, tensors without a second copy; see ``npf_core.wire.transfer``).

Every copy puts the model in ``eval()`` mode and each worker thread runs inside
``torch.inference_mode()`` (thread-local, so per thread; ``inference_mode: false``
uses ``torch.no_grad()`` instead). Inputs (numpy arrays from the spec's
descriptions, or tensors from ``.pt`` files) become tensors on the model's device
before the clock starts: ``x = x.to(device)``.

Devices: on ``gpu`` the model and inputs move to ``cuda`` (the copy's own GPU, which
its ``CUDA_VISIBLE_DEVICES`` makes ``cuda:0``) and each call ends with
``torch.cuda.synchronize()``, so latency covers the GPU's work. On ``neuron`` (or
with ``neuron: true``) the model is a torch-neuronx model: the copy runs
``import torch_neuronx`` before loading it, and it takes CPU tensors. A torch-neuron
(Inf1) artifact, whose TorchScript calls ``neuron::forward_*``, imports ``torch_neuron``
instead (or as ``neuron_package`` says).

CPU threads. Copies run side by side, so each one gets its share of the CPUs this
process may use: ``torch.set_num_threads(max(1, usable_cpus // n_models))`` — or all
CPUs of its block when the ``cpu`` device pins copies (``pin: true``). The workers of
one copy share that intra-op pool. ``threads`` overrides the number and
``interop_threads`` sets ``torch.set_num_interop_threads``.

Start method: ``zygote`` — copies are forked from a clean interpreter that has
imported torch and nothing else ran (no intra-op thread pool, no CUDA context), so
no copy pays the import and none inherits the caller's state. ``fresh``
interpreters on ``neuron`` or with ``neuron: true``: the Neuron runtime must never be
initialised before a fork (``NRT_STATE_CHILD``), and a fresh interpreter per copy is
what NeuronPerf and the Neuron docs do. torch itself is never imported in the
supervisor by this plugin: ``check`` looks at files, and finds torch (and
torch_neuronx where needed) on the path without importing them.

Options (``model.options``): ``threads``, ``interop_threads``, ``neuron``,
``device`` (a torch device string that overrides the one the device plugin implies,
e.g. ``"cuda:1"`` or ``"cpu"``), ``inference_mode`` (default true).

torch 2.13 deprecates TorchScript; torch-neuronx still produces it, so this plugin
keeps loading it and silences that one ``DeprecationWarning`` around its own calls.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from npf_core.plugin import (
    ChildContext,
    Device,
    DeviceUnavailable,
    Framework,
    MetricRegistry,
    PluginError,
    Registry,
    SpecError,
    TopK,
    decode_options,
    get_logger,
    hookimpl,
    resolve_reference,
)
from npf_plugins.frameworks.common import (
    EXPORT_SUFFIXES,
    SCRIPT_SUFFIXES,
    installed,
    instantiate,
    quiet_torchscript,
)

__all__ = ["EXPORT_SUFFIXES", "SCRIPT_SUFFIXES", "TorchFramework", "TorchOptions", "quiet_torchscript"]

logger = get_logger(__name__)

class TorchOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: intra-op CPU threads per copy (default: usable CPUs // n_models)
    threads: Annotated[int, msgspec.Meta(ge=1)] | None = None
    #: inter-op CPU threads per copy (default: torch's)
    interop_threads: Annotated[int, msgspec.Meta(ge=1)] | None = None
    #: the model is a torch-neuronx model: import torch_neuronx before loading it
    neuron: bool = False
    #: a torch device string that overrides the device plugin's ("cpu", "cuda:1", ...)
    device: str | None = None
    #: run calls under torch.inference_mode() (else torch.no_grad())
    inference_mode: bool = True
    #: which Neuron package a Neuron model needs: "torch_neuronx" (inf2/trn), "torch_neuron"
    #: (inf1), or "auto": what the artifact's TorchScript code calls (torch_neuronx if unclear)
    neuron_package: Literal["auto", "torch_neuronx", "torch_neuron"] = "auto"


#: what a torch-neuron (Inf1) artifact's TorchScript code calls: ``neuron::forward_*`` ops
#: ("Unknown builtin op: neuron::forward_1" without ``import torch_neuron``)
_INF1_MARKERS = (b"ops.neuron.forward_",)


def neuron_package_of(path: Path) -> str | None:
    """``"torch_neuron"`` when a TorchScript archive is a torch-neuron (Inf1) model,
    ``"torch_neuronx"`` when it calls any other Neuron op, None otherwise."""
    try:
        with zipfile.ZipFile(path) as z:
            found = None
            for name in z.namelist():
                if "/code/" not in name or not name.endswith(".py"):
                    continue
                text = z.read(name)
                if any(m in text for m in _INF1_MARKERS):
                    return "torch_neuron"
                if b"neuron" in text:
                    found = "torch_neuronx"
            return found
    except (OSError, zipfile.BadZipFile):
        return None



class TorchFramework(Framework):
    """PyTorch: TorchScript, torch.export programs and nn.Module classes."""

    requires = ("torch",)
    start_method = "zygote"
    preimport = ("torch",)  # import only: no thread pool, and CUDA stays uninitialised

    options_type = TorchOptions  # its options in `npf schema`

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.opts = decode_options(options, TorchOptions, "model.options")

    # -- supervisor ------------------------------------------------------------

    def start_method_for(self, device: Device) -> str:
        if self.opts.neuron or device.type_name == "neuron":
            return "fresh"  # the Neuron runtime: a fresh interpreter per copy, as NEURON_APIS.md advises
        return self.start_method  # the zygote is a fresh interpreter: whatever the caller did to CUDA is moot

    def fork_note(self) -> str | None:
        torch = sys.modules.get("torch")  # never imported here; only looked at
        cuda = getattr(torch, "cuda", None)
        if cuda is not None and getattr(cuda, "is_initialized", lambda: False)():
            return (
                "copies were forked from a process that had initialised CUDA, which a forked child cannot use; "
                "use start_method 'zygote' (the default) or 'fresh'"
            )
        return super().fork_note()

    def check(self, kind: str, ref: str, spec: Any) -> None:
        if not installed("torch"):
            raise PluginError("the torch framework needs PyTorch: pip install 'npf[torch]' (torch==2.13.0)")
        device = getattr(spec, "device", "cpu")
        device_type = device if isinstance(device, str) else getattr(device, "type", "cpu")
        if self.opts.neuron or device_type == "neuron":
            package = self.neuron_package(Path(ref) if kind == "path" else None)
            if not installed(package):
                name = package.replace("_", "-")
                raise DeviceUnavailable(
                    f"the torch framework on Neuron needs {name}, which is not installed (install it from "
                    f"the Neuron pip repository on an {'inf1' if package == 'torch_neuron' else 'inf2/trn'} "
                    "instance, or run on device 'cpu')"
                )
        if kind != "path":
            return  # a target is resolved (and checked) in the benchmarker
        p = Path(ref)
        field = "model.index" if getattr(getattr(spec, "model", None), "index", None) else "model.path"
        if p.suffix.lower() not in SCRIPT_SUFFIXES + EXPORT_SUFFIXES:
            raise SpecError(
                field,
                f"{p.name!r} is not a file the torch framework loads",
                f"use a TorchScript file ({', '.join(SCRIPT_SUFFIXES)}) or a torch.export program (.pt2), "
                "or give model.target as an nn.Module class",
            )
        if not p.is_file():
            raise SpecError(field, f"no such model file: {str(p)!r}")
        if not zipfile.is_zipfile(p):
            raise SpecError(
                field,
                f"{str(p)!r} is not a TorchScript or torch.export archive",
                "save it with torch.jit.save, torch_neuronx.trace + torch.jit.save, or torch.export.save",
            )

    def compile(self, request: Any) -> Any:
        from npf_plugins.frameworks.torch_compile import compile_variant

        return compile_variant(self, request)

    # -- benchmarker -----------------------------------------------------------

    def neuron_package(self, path: Path | None) -> str:
        """The Neuron package a model needs: the option, else what the artifact calls."""
        if self.opts.neuron_package != "auto":
            return self.opts.neuron_package
        found = neuron_package_of(path) if path is not None and path.suffix.lower() in SCRIPT_SUFFIXES else None
        return found or "torch_neuronx"

    def is_neuron(self, ctx: ChildContext) -> bool:
        return self.opts.neuron or ctx.device.type_name == "neuron"

    def torch_device(self, ctx: ChildContext) -> str:
        """The torch device string of this copy's model and inputs."""
        if self.opts.device:
            return self.opts.device
        if ctx.device.type_name == "gpu":
            return "cuda"
        return "cpu"  # also for Neuron: torch-neuronx models take and return CPU tensors

    def _set_threads(self, ctx: ChildContext, interop: bool = True) -> None:
        import torch

        threads = self.opts.threads
        if threads is None:
            try:
                usable = len(os.sched_getaffinity(0))
            except AttributeError:  # not Linux
                usable = os.cpu_count() or 1
            pinned = bool(ctx.assignment.get("cpus"))
            n_models = max(1, int(getattr(ctx.job, "n_models", 1)))
            threads = usable if pinned else max(1, usable // n_models)
        torch.set_num_threads(threads)
        if interop and self.opts.interop_threads is not None:
            try:
                torch.set_num_interop_threads(self.opts.interop_threads)
            except RuntimeError as exc:  # once inter-op work has started (e.g. inherited by fork)
                logger.warning("model.options.interop_threads not applied", error=str(exc))

    def load(self, kind: str, ref: str, ctx: ChildContext) -> Any:
        import torch

        self._set_threads(ctx)
        if self.is_neuron(ctx):
            package = self.neuron_package(ctx.resolve(ref) if kind == "path" else None)
            try:
                # registers the neuron:: ops TorchScript needs (torch_neuron: Inf1 models)
                importlib.import_module(package)
            except ImportError as exc:
                raise ImportError(
                    f"this model runs on Neuron but {package} cannot be imported ({exc}); install "
                    f"{package.replace('_', '-')} from the Neuron pip repository on an "
                    f"{'inf1' if package == 'torch_neuron' else 'inf2/trn'} instance"
                ) from exc
        device = self.torch_device(ctx)
        if kind == "path":
            model = self._load_file(ctx.resolve(ref), device, neuron=self.is_neuron(ctx))
        else:
            model = self._load_target(ref, ctx)
        if device != "cpu" and hasattr(model, "to"):
            model = model.to(device)
        self.device = torch.device(device)
        return model

    def reconfigure(self, model: Any, ctx: ChildContext) -> None:
        """A reused copy: its intra-op pool sized for the new ``n_models`` (the
        inter-op pool can be sized only once per process)."""
        self._set_threads(ctx, interop=False)

    def _load_file(self, path: Path, device: str, neuron: bool) -> Any:
        import torch

        if path.suffix.lower() in EXPORT_SUFFIXES:
            # an exported program is already traced for inference: its module has no eval()
            return torch.export.load(str(path)).module()
        try:
            with quiet_torchscript():
                # torch-neuronx models load on the CPU; the runtime places them on the copy's cores
                return torch.jit.load(str(path), map_location="cpu" if neuron else device).eval()
        except RuntimeError as exc:
            text = str(exc)
            first = next((line.strip() for line in text.splitlines() if line.strip()), type(exc).__name__)
            if "neuron" in text.lower() and not neuron:
                raise RuntimeError(
                    f"{path.name} is a Neuron model ({first}); run it on device 'neuron' "
                    "or set model.options.neuron to true"
                ) from exc
            if "constants.pkl" in text or "archive" in text.lower():
                raise RuntimeError(
                    f"{path.name} is not a TorchScript archive ({first}); a torch.save()d "
                    "module cannot be loaded safely: save it with torch.jit.save or torch.export.save, or "
                    "give model.target"
                ) from exc
            raise

    def _load_target(self, ref: str, ctx: ChildContext) -> Any:
        return instantiate(resolve_reference(ref, ctx.base_dir, ctx.objects), ref)

    def convert_inputs(self, example: tuple[Any, ...], ctx: ChildContext) -> tuple[Any, ...]:
        import numpy as np
        import torch

        device = getattr(self, "device", None) or torch.device(self.torch_device(ctx))
        out: list[Any] = []
        for x in example:
            if isinstance(x, np.ndarray):
                if not x.flags.writeable or not x.flags.c_contiguous:
                    x = np.ascontiguousarray(x).copy()
                x = torch.from_numpy(x)
            if isinstance(x, torch.Tensor) and x.device != device:
                x = x.to(device)
            out.append(x)
        return tuple(out)

    def callable(self, model: Any, ctx: ChildContext) -> Callable[..., Any]:
        device = getattr(self, "device", None)
        if device is None or device.type != "cuda":
            return model
        import torch

        synchronize = torch.cuda.synchronize

        def call_and_wait(*inputs: Any) -> Any:
            out = model(*inputs)
            synchronize(device)  # the clock stops after the GPU's work, not when it was queued
            return out

        return call_and_wait

    def worker_context(self, ctx: ChildContext) -> AbstractContextManager[Any]:
        import torch

        return torch.inference_mode() if self.opts.inference_mode else torch.no_grad()


@hookimpl
def npf_register_frameworks(registry: Registry[Framework]) -> None:
    registry.add("torch", TorchFramework)


@hookimpl
def npf_register_metrics(registry: MetricRegistry) -> None:
    # NeuronPerf registers topk when its torch support is imported; here, when torch is installed
    if installed("torch"):
        registry.add("topk", TopK, "target among the k highest scores (k=5)", k=5)
