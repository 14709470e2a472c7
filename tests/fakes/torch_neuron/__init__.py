"""A fake ``torch_neuron`` (torch-neuron, Inf1) for tests, like the fake torch_neuronx:
``trace`` returns a real TorchScript module whose graph calls ``neuron::forward_1``,
an op only this package registers (as the real package does: without ``import
torch_neuron``, loading fails with "Unknown builtin op: neuron::forward_1"). Imports
are recorded to ``NPF_FAKE_NEURON_LOG`` with ``"package": "torch_neuron"``."""

from __future__ import annotations

import json
import os
import time
import warnings
from typing import Any

import torch

__version__ = "0.0.0+fake"

_LIB = torch.library.Library("neuron", "DEF")
_LIB.define("forward_1(Tensor x) -> Tensor")
_LIB.impl("forward_1", lambda x: x.clone(), "CompositeExplicitAutograd")


def _record(event: str, **fields: Any) -> None:
    path = os.environ.get("NPF_FAKE_NEURON_LOG")
    if not path:
        return
    entry = {"event": event, "package": "torch_neuron", "pid": os.getpid(), "time": time.time(), **fields}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(fd)


class _OnInf1(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args: Any) -> Any:
        return self.inner(torch.ops.neuron.forward_1(args[0]), *args[1:])


def trace(func: Any, example_inputs: Any, **kwargs: Any) -> torch.jit.ScriptModule:
    """torch-neuron's ``trace(model, example_inputs, **kwargs)``, faked."""
    # a tensor, or a tuple / list of them (one per positional input)
    example = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.[\w.]+` is deprecated", category=DeprecationWarning)
        traced = torch.jit.trace(_OnInf1(func).eval(), example)
    _record("trace", compiler_args=kwargs.get("compiler_args"))
    return traced


_record("import")
