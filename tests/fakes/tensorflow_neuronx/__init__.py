"""A fake ``tensorflow_neuronx`` for tests: the runtime boundary, without Neuron hardware.

Installed only for child processes, by ``PYTHONPATH=tests/fakes`` (see README.md).
It follows the documented API where npf depends on it:

- ``trace(func, example_inputs, subgraph_builder_function=None)`` calls ``func`` as the
  documented rules say (``func(x)`` for a tensor or a list, ``func(*x)`` for a tuple,
  ``func(**x)`` for a dict) and returns an inference-only model with
  ``.on_neuron_ratio`` and ``.save(dir)``, which writes a SavedModel folder whose
  ``serving_default`` signature runs ``func`` (inputs named as the dict's keys, else
  ``input_0``, ``input_1``, ...).
- The compiler arguments come from ``NEURON_CC_FLAGS``, as for the real package.
- Every import and ``trace`` call is recorded to ``NPF_FAKE_NEURON_LOG`` (JSON Lines,
  the format of the torch_neuronx fake); ``NPF_FAKE_NEURON_FAIL_ON=TEXT`` makes a
  ``trace`` whose signature ``"batch=<first dim> args=<NEURON_CC_FLAGS>"`` contains
  TEXT raise ``RuntimeError``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import tensorflow as tf

__version__ = "0.0.0+fake"

LOG_ENV = "NPF_FAKE_NEURON_LOG"
FAIL_ENV = "NPF_FAKE_NEURON_FAIL_ON"


def _record(event: str, **fields: Any) -> None:
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    entry = {
        "event": event,
        "package": "tensorflow_neuronx",
        "pid": os.getpid(),
        "time": time.time(),
        "NEURON_RT_VISIBLE_CORES": os.environ.get("NEURON_RT_VISIBLE_CORES"),
        **fields,
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(entry, default=repr) + "\n").encode())
    finally:
        os.close(fd)


def _spec(t: Any, name: str) -> tf.TensorSpec:
    return tf.TensorSpec(t.shape, t.dtype, name=name)


class _Traced(tf.Module):
    """What trace returns: callable like the example says, saved as a SavedModel."""

    def __init__(self, func: Any, example: Any) -> None:
        super().__init__()
        self.func = func
        self.on_neuron_ratio = 1.0
        if isinstance(example, dict):
            sig = [{k: _spec(v, k) for k, v in example.items()}]

            def run(inputs: Any) -> Any:
                return func(**inputs)
        elif isinstance(example, (list, tuple)):
            sig = [[_spec(v, f"input_{i}") for i, v in enumerate(example)]]

            def run(inputs: Any) -> Any:
                return func(*inputs) if isinstance(example, tuple) else func(list(inputs))
        else:
            sig = [_spec(example, "input_0")]

            def run(inputs: Any) -> Any:
                return func(inputs)

        self.serve = tf.function(run, input_signature=sig)
        # the real trace inlines the weights; here the variables the traced graph reads
        # are tracked by this module, so that save() writes them with it
        self.weights = list(self.serve.get_concrete_function().variables)

    def __call__(self, inputs: Any) -> Any:
        return self.serve(inputs)

    def save(self, path: str) -> None:
        tf.saved_model.save(self, path, signatures={"serving_default": self.serve.get_concrete_function()})


def trace(func: Any, example_inputs: Any, subgraph_builder_function: Any = None) -> _Traced:
    if isinstance(example_inputs, dict):
        tensors = list(example_inputs.values())
    elif isinstance(example_inputs, (list, tuple)):
        tensors = list(example_inputs)
    else:
        tensors = [example_inputs]
    shapes = [list(t.shape) for t in tensors]
    flags = os.environ.get("NEURON_CC_FLAGS", "")
    batch = shapes[0][0] if shapes and shapes[0] else None
    signature = f"batch={batch} args={flags}"
    fields = {
        "NEURON_CC_FLAGS": flags,
        "example_shapes": shapes,
        "example_names": sorted(example_inputs) if isinstance(example_inputs, dict) else None,
        "signature": signature,
        "model": type(func).__name__,
    }
    fail_on = os.environ.get(FAIL_ENV)
    if fail_on and fail_on in signature:
        _record("trace", ok=False, **fields)
        raise RuntimeError(f"neuronx-cc failed (fake): {signature} matches {FAIL_ENV}={fail_on!r}")
    traced = _Traced(func, example_inputs)
    traced(example_inputs)  # "compiles": runs func once, as tracing does
    _record("trace", ok=True, **fields)
    return traced


_record("import")
