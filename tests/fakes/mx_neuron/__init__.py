"""A fake ``mx_neuron`` (MXNet 1.8's Neuron package) for tests: the runtime boundary,
without Neuron hardware. Installed only for child processes, by
``PYTHONPATH=tests/fakes`` (see README.md).

- ``compile(obj, args=None, aux=None, inputs=None, **compile_args)``: the documented
  signature. For a symbol it checks that ``inputs`` names every data input and runs
  the graph once on them (as compiling does), then returns ``(sym, args, aux)`` with
  the attribute ``__neuron_fake__`` on the symbol.
- Importing it adds ``mx.neuron(i)`` (a CPU context here) when MXNet has none.
- Imports and compile calls are recorded to ``NPF_FAKE_NEURON_LOG``;
  ``NPF_FAKE_NEURON_FAIL_ON=TEXT`` fails a compile whose signature
  ``"batch=<first dim> args=<compile_args as JSON>"`` contains TEXT.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import mxnet as mx

__version__ = "0.0.0+fake"

LOG_ENV = "NPF_FAKE_NEURON_LOG"
FAIL_ENV = "NPF_FAKE_NEURON_FAIL_ON"


def _record(event: str, **fields: Any) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    entry = {
        "event": event,
        "package": "mx_neuron",
        "pid": os.getpid(),
        "time": time.time(),
        "NEURON_RT_VISIBLE_CORES": os.environ.get("NEURON_RT_VISIBLE_CORES"),
        "MXNET_CPU_WORKER_NTHREADS": os.environ.get("MXNET_CPU_WORKER_NTHREADS"),
        **fields,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(entry, default=repr) + "\n").encode())
    finally:
        os.close(fd)


if not hasattr(mx, "neuron"):
    mx.neuron = lambda device_id=0: mx.cpu(device_id)  # type: ignore[attr-defined]


def compile(obj: Any, args: Any = None, aux: Any = None, inputs: Any = None, **compile_args: Any) -> Any:  # noqa: A001
    inputs = dict(inputs or {})
    shapes = {k: list(v.shape) for k, v in inputs.items()}
    first = next(iter(shapes.values()), None)
    signature = f"batch={first[0] if first else None} args={json.dumps(compile_args, sort_keys=True)}"
    fields = {"compile_args": compile_args, "input_shapes": shapes, "signature": signature}
    fail_on = os.environ.get(FAIL_ENV)
    if fail_on and fail_on in signature:
        _record("compile", ok=False, **fields)
        raise RuntimeError(f"neuron-cc failed (fake): {signature} matches {FAIL_ENV}={fail_on!r}")
    if not isinstance(obj, mx.sym.Symbol):
        _record("compile", ok=True, gluon=True, **fields)
        return obj
    data = [a for a in obj.list_arguments() if a not in (args or {}) and not a.endswith("_label")]
    missing = [d for d in data if d not in inputs]
    if missing:
        raise ValueError(f"inputs lacks the symbol's data input(s) {missing}")
    arrays = {k: mx.nd.array(v, dtype=v.dtype) for k, v in inputs.items()}
    exe = obj.bind(mx.cpu(), args={**(args or {}), **arrays}, aux_states=aux or {}, grad_req="null")
    exe.forward(is_train=False)
    mx.nd.waitall()
    sym = obj.__copy__()
    sym._set_attr(__neuron_fake__="1")
    _record("compile", ok=True, **fields)
    return sym, args, aux


_record("import")
