"""Helpers the framework plugins share (and their compile modules, which the
plugins load lazily): no plugin module imports another plugin module's entry
point, so no two of them import each other."""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.machinery import PathFinder
from typing import Any

__all__ = ["EXPORT_SUFFIXES", "SCRIPT_SUFFIXES", "installed", "instantiate", "quiet_torchscript"]

SCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".torchscript")
EXPORT_SUFFIXES = (".pt2",)
#: torch 2.13: "`torch.jit.load` is deprecated. Please switch to ..."
_DEPRECATED = r"`torch\.jit\.[\w.]+` is deprecated"


def installed(name: str) -> bool:
    """Whether benchmarkers can import top-level module ``name``, found without
    importing it (the supervisor never imports torch or torch_neuronx): on this
    process's path and on ``PYTHONPATH``, which fresh interpreters also get."""
    if name in sys.modules and getattr(sys.modules[name], "__file__", None):
        return True
    entries = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    for spec in (importlib.util.find_spec(name), PathFinder.find_spec(name, entries)):
        # a spec without an origin is a namespace package: some folder named like the
        # module (e.g. a folder named torch on sys.path), not the installed package
        if spec is not None and spec.origin not in (None, "namespace"):
            return True
    return False


@contextmanager
def quiet_torchscript() -> Iterator[None]:
    """Silence torch's TorchScript deprecation warning (only that one) inside the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_DEPRECATED, category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=_DEPRECATED, category=FutureWarning)
        yield


def instantiate(obj: Any, ref: str) -> Any:
    """The model a target names: an nn.Module instance as is, else the result of
    calling the class or zero-argument factory; modules are put in eval mode."""
    import torch

    if isinstance(obj, torch.nn.Module):
        model = obj
    elif callable(obj):
        with quiet_torchscript():
            model = obj()
    else:
        raise TypeError(f"{ref!r} is a {type(obj).__name__}, not an nn.Module class or zero-argument factory")
    if not callable(model):
        raise TypeError(f"{ref!r}() returned a {type(model).__name__}, which cannot be called with inputs")
    if isinstance(model, torch.nn.Module):
        try:
            model = model.eval()
        except NotImplementedError:  # a torch.export module: already an inference graph
            pass
    return model
