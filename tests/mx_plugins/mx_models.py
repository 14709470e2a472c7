"""Tiny MXNet models the tests build, and targets the benchmarkers load.

Imported only by child processes (benchmarkers, compile workers, the model builder):
the test process never imports MXNet.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


def mlp() -> Any:
    """(sym, arg_params, aux_params): data (b, 8) -> FC 16 -> relu -> FC 4."""
    import mxnet as mx

    mx.random.seed(0)
    data = mx.sym.Variable("data")
    h = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=16, name="fc1"), act_type="relu")
    out = mx.sym.FullyConnected(h, num_hidden=4, name="fc2")
    return out, *_params(out, {"data": (2, 8)})


def classifier() -> Any:
    """Two named data inputs and a SoftmaxOutput (whose label inference does not use)."""
    import mxnet as mx

    mx.random.seed(0)
    tokens, mask = mx.sym.Variable("tokens"), mx.sym.Variable("mask")
    h = mx.sym.concat(tokens, mask, dim=1)
    out = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(h, num_hidden=3, name="fc"), name="softmax")
    return out, *_params(out, {"tokens": (2, 8), "mask": (2, 4)})


def _params(sym: Any, shapes: dict[str, tuple[int, ...]]) -> tuple[dict[str, Any], dict[str, Any]]:
    import mxnet as mx

    data = list(shapes)
    labels = [a for a in sym.list_arguments() if a.endswith("_label")]
    mod = mx.mod.Module(sym, data_names=data, label_names=labels or None)
    label_shapes = [(name, (next(iter(shapes.values()))[0],)) for name in labels] or None
    mod.bind(data_shapes=list(shapes.items()), label_shapes=label_shapes, for_training=False)
    mod.init_params(initializer=mx.init.Xavier())
    return mod.get_params()


def recording_mlp() -> Any:
    """mlp(), after recording the MXNet environment this copy saw (NPF_TEST_RECORD)."""
    path = os.environ.get("NPF_TEST_RECORD")
    if path:
        names = ("MXNET_CPU_TEMP_COPY", "MXNET_EXEC_NUM_TEMP", "MXNET_CPU_WORKER_NTHREADS",
                 "MXNET_MP_WORKER_NTHREADS", "OMP_NUM_THREADS")  # fmt: skip
        with open(path, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), **{n: os.environ.get(n) for n in names}}) + "\n")
    return mlp()


def build(out: str) -> None:
    """mlp as checkpoint net (epochs 0 and 3) and classifier as checkpoint cls (epoch 0)."""
    import mxnet as mx

    d = Path(out)
    sym, args, aux = mlp()
    mx.model.save_checkpoint(str(d / "net"), 0, sym, args, aux)
    mx.model.save_checkpoint(str(d / "net"), 3, sym, args, aux)
    mx.model.save_checkpoint(str(d / "cls"), 0, *classifier())


if __name__ == "__main__":
    build(sys.argv[1])
