"""Test helpers: tiny ONNX models built with ``onnx.helper`` (nothing is downloaded), a
real ``ChildContext`` for calling the framework's benchmarker methods in this process,
and real npf runs in child interpreters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
from npf_core.plugin import Assignment, ChildContext, Device
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
IR_VERSION = 8  # readable by every onnxruntime this package supports


def save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def weights(k: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((k, n)).astype(np.float32)


def matmul_relu(path: Path, k: int = 16, n: int = 8, seed: int = 0) -> Path:
    """``y = relu(x @ W)``: input ``x`` float32 ``[N, k]``, output ``y`` ``[N, n]``."""
    w = numpy_helper.from_array(weights(k, n, seed), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "matmul_relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n])],
        [w],
    )
    return save(graph, path)


def add_mul(path: Path) -> Path:
    """Two inputs, two outputs: ``total = a + b`` (float32 ``[N, 4]``) and
    ``scaled = total * k`` with ``k`` an int64 ``[N, 1]`` cast to float."""
    graph = helper.make_graph(
        [
            helper.make_node("Add", ["a", "b"], ["total"]),
            helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["total", "kf"], ["scaled"]),
        ],
        "add_mul",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("k", TensorProto.INT64, ["N", 1]),
        ],
        [
            helper.make_tensor_value_info("total", TensorProto.FLOAT, ["N", 4]),
            helper.make_tensor_value_info("scaled", TensorProto.FLOAT, ["N", 4]),
        ],
    )
    return save(graph, path)


class CpuLike(Device):
    """A device that reports itself as ``cpu`` (what npf's cpu device says)."""

    type_name = "cpu"


class GpuLike(Device):
    """A device that reports itself as ``gpu``: what the framework's provider choice reads."""

    type_name = "gpu"


def make_ctx(
    tmp: Path, device: Device | None = None, n_models: int = 1, assignment: dict[str, Any] | None = None
) -> ChildContext:
    job = SimpleNamespace(config_id="test", copy_index=0, n_models=n_models, workers=1, batch_size=1)
    return ChildContext(
        job=job,
        base_dir=tmp,
        assignment=Assignment(assignment or {"env": {}, "cpus": None, "devices": [], "label": ""}),
        device=device or CpuLike({}),
        objects={},
    )


# -- real npf runs -----------------------------------------------------------------


def npf(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    """``python -m npf_core ARGS`` in a child interpreter, as a user runs it."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "npf_core", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_spec(folder: Path, spec: dict[str, Any], name: str = "spec.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(spec, indent=2))
    return path


def reports(out: Path) -> list[dict[str, Any]]:
    """The reports of the one run under output folder ``out``."""
    found = sorted(out.rglob("results.json"))
    assert len(found) == 1, f"expected one results.json under {out}, found {found}"
    return json.loads(found[0].read_text())["reports"]  # type: ignore[no-any-return]
