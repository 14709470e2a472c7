"""A fake ``torch_neuronx`` for tests: the runtime boundary, without Neuron hardware.

Only tests install it, by putting ``tests/fakes`` on ``PYTHONPATH`` of the processes
that should see it (never of the test process itself). It behaves like the real
package where npf depends on it:

- ``trace(func, example_inputs, *, compiler_args=None, compiler_workdir=None, ...)``
  (the documented signature) returns a real ``torch.jit.ScriptModule``, traced with
  ``torch.jit.trace``. The traced graph calls the custom op ``fake_neuron::forward``,
  which only this package registers: like a real torch-neuronx model, the saved file
  loads only in a process that ran ``import torch_neuronx`` first.
- Every import and every ``trace`` call is recorded (see tests/fakes/README.md for
  the format) to the JSON Lines file named by ``NPF_FAKE_NEURON_LOG``.
- ``NPF_FAKE_NEURON_FAIL_ON``: a ``trace`` whose signature
  ``"batch=<first dim of the first input> args=<compiler args joined by spaces>"``
  contains this text raises ``RuntimeError`` (a failing compilation).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch

__version__ = "0.0.0+fake"

LOG_ENV = "NPF_FAKE_NEURON_LOG"
FAIL_ENV = "NPF_FAKE_NEURON_FAIL_ON"

BUSY_ENV = "NPF_FAKE_NEURON_BUSY"
#: the process whose first Neuron call initialised the (fake) runtime; a fork inherits it
_runtime_pid: list[int] = []


def _nrt_error(where: str, text: str) -> RuntimeError:
    """What the Neuron runtime does on a failed init: a log line on stderr, then the error."""
    import sys

    line = f"ERROR  NRT:{where}  {text}"
    print(f"2026-Jan-01 00:00:00.0000 {os.getpid()}:{os.getpid()} {line}", file=sys.stderr, flush=True)
    return RuntimeError(f"{where}: {text}")


def _forward(x: torch.Tensor) -> torch.Tensor:
    """The first call in a process initialises the runtime, as the real one: it fails
    in a fork of a process that initialised it (NRT_STATE_CHILD), and where another
    process holds the NeuronCores (``NPF_FAKE_NEURON_BUSY=1``)."""
    if not _runtime_pid or _runtime_pid[0] != os.getpid():
        if _runtime_pid:
            raise _nrt_error("nrt_init", "Incompatible runtime state: NRT_STATE_CHILD")
        if os.environ.get(BUSY_ENV) == "1":
            _nrt_error("nrt_allocate_neuron_cores", "NeuronCore(s) not available - Requested:1 Available:0")
            raise _nrt_error("nrt_init", "Failed to initialize the Neuron runtime: NeuronCores are in use")
        _runtime_pid.append(os.getpid())
    return x.clone()


_LIB = torch.library.Library("fake_neuron", "DEF")
_LIB.define("forward(Tensor x) -> Tensor")
_LIB.impl("forward", _forward, "CompositeExplicitAutograd")


def _record(event: str, **fields: Any) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    entry = {
        "event": event,
        "pid": os.getpid(),
        "time": time.time(),
        "NEURON_RT_VISIBLE_CORES": os.environ.get("NEURON_RT_VISIBLE_CORES"),
        **fields,
    }
    line = (json.dumps(entry, default=repr) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)  # one write per line: concurrent processes do not interleave
    finally:
        os.close(fd)


def _args_list(compiler_args: Any) -> list[str]:
    if compiler_args is None:
        return []
    if isinstance(compiler_args, str):
        return compiler_args.split()
    return [str(a) for a in compiler_args]


class _OnNeuron(torch.nn.Module):
    """Runs the first input through ``fake_neuron::forward``, then the model."""

    def __init__(self, func: Any) -> None:
        super().__init__()
        if isinstance(func, torch.nn.Module):
            self.inner = func
        else:
            self.fn = func

    def forward(self, *args: Any) -> Any:
        first = torch.ops.fake_neuron.forward(args[0])
        inner = self.inner if hasattr(self, "inner") else self.fn
        return inner(first, *args[1:])


def trace(
    func: Any,
    example_inputs: Any,
    *_: Any,
    input_output_aliases: dict[Any, Any] | None = None,
    compiler_workdir: str | os.PathLike[str] | None = None,
    compiler_args: str | list[str] | None = None,
    partitioner_config: Any = None,
    inline_weights_to_neff: bool = True,
    cpu_backend: bool = False,
) -> torch.jit.ScriptModule:
    """Trace ``func`` for "Neuron": a real TorchScript module that needs this package."""
    example = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    shapes = [list(t.shape) if isinstance(t, torch.Tensor) else None for t in example]
    dtypes = [str(t.dtype).removeprefix("torch.") if isinstance(t, torch.Tensor) else None for t in example]
    args = _args_list(compiler_args)
    batch = shapes[0][0] if shapes and shapes[0] else None
    signature = f"batch={batch} args={' '.join(args)}"
    fail_on = os.environ.get(FAIL_ENV)
    fields = {
        "compiler_args": compiler_args,
        "compiler_args_list": args,
        "compiler_workdir": None if compiler_workdir is None else str(compiler_workdir),
        "example_shapes": shapes,
        "example_dtypes": dtypes,
        "signature": signature,
        "inline_weights_to_neff": inline_weights_to_neff,
        "cpu_backend": cpu_backend,
        "model": type(func).__name__,
    }
    if fail_on and fail_on in signature:
        _record("trace", ok=False, error=f"fake compilation failure ({FAIL_ENV}={fail_on!r})", **fields)
        raise RuntimeError(f"neuronx-cc failed (fake): {signature} matches {FAIL_ENV}={fail_on!r}")
    if compiler_workdir is not None:
        work = Path(compiler_workdir)
        work.mkdir(parents=True, exist_ok=True)
        (work / "command.txt").write_text(" ".join(["neuronx-cc", "compile", *args]) + "\n")
        (work / "graph.neff").write_bytes(b"FAKE-NEFF\n")
    wrapper = _OnNeuron(func).eval()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.[\w.]+` is deprecated", category=DeprecationWarning)
        traced = torch.jit.trace(wrapper, example)
    _record("trace", ok=True, **fields)
    return traced


_record("import")
