"""The benchmarker side in this process: a real onnxruntime session from a tiny model,
its options, the inputs by name or position, and the errors for inputs that do not fit."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from npf_core.plugin import SpecError

from helpers import GpuLike, add_mul, make_ctx, matmul_relu, weights
from npf_onnxruntime.errors import InputMismatch, ProviderUnavailable
from npf_onnxruntime.framework import OnnxModel, OnnxruntimeFramework
from npf_onnxruntime.options import CPU_EP, CUDA_EP


def loaded(path: Path, options: dict[str, Any] | None = None, **ctx_args: Any) -> tuple[Any, OnnxModel, Any]:
    fw = OnnxruntimeFramework(options or {})
    ctx = make_ctx(path.parent, **ctx_args)
    model = fw.load("path", path.name, ctx)
    return fw, model, ctx


def test_a_copy_loads_an_onnx_file_into_a_session_and_calls_it(model_path: Path) -> None:
    fw, model, ctx = loaded(model_path)
    assert isinstance(model.session, ort.InferenceSession)
    assert model.session.get_providers() == [CPU_EP]
    x = np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32)
    (feed,) = fw.convert_inputs((x,), ctx)
    y = fw.callable(model, ctx)(feed)
    np.testing.assert_allclose(y, np.maximum(x @ weights(16, 8), 0), rtol=1e-5, atol=1e-6)


def test_threads_default_to_the_copys_cpu_share(model_path: Path) -> None:
    for n_models in (1, 2, 1000):
        ctx = make_ctx(model_path.parent, n_models=n_models)
        so = OnnxruntimeFramework({}).session_options(ort, ctx)
        assert so.intra_op_num_threads == ctx.cpu_share()
        assert so.inter_op_num_threads == ctx.cpu_share()
    assert make_ctx(model_path.parent, n_models=1000).cpu_share() == 1
    usable = len(os.sched_getaffinity(0))
    assert make_ctx(model_path.parent, n_models=1).cpu_share() == usable


def test_session_options_come_from_model_options(model_path: Path) -> None:
    options = {
        "intra_op_num_threads": 3,
        "inter_op_num_threads": 2,
        "execution_mode": "parallel",
        "graph_optimization_level": "basic",
        "session_config": {"session.intra_op.allow_spinning": "0"},
    }
    _, model, _ = loaded(model_path, options)
    so = model.session.get_session_options()  # what the session really runs with
    assert so.intra_op_num_threads == 3
    assert so.inter_op_num_threads == 2
    assert so.execution_mode == ort.ExecutionMode.ORT_PARALLEL
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"


@pytest.mark.parametrize(
    ("level", "member"),
    [("disable_all", "ORT_DISABLE_ALL"), ("extended", "ORT_ENABLE_EXTENDED"), ("all", "ORT_ENABLE_ALL")],
)
def test_each_graph_optimization_level_reaches_the_session(model_path: Path, level: str, member: str) -> None:
    _, model, _ = loaded(model_path, {"graph_optimization_level": level})
    assert model.session.get_session_options().graph_optimization_level == getattr(ort.GraphOptimizationLevel, member)


def test_named_and_positional_inputs_reach_the_model_by_its_input_names(tmp_path: Path) -> None:
    path = add_mul(tmp_path / "two.onnx")
    fw, model, ctx = loaded(path)
    a = np.ones((2, 4), np.float32)
    b = np.full((2, 4), 2, np.float32)
    k = np.array([[3], [5]], np.int64)
    fn = fw.callable(model, ctx)
    (named,) = fw.convert_inputs(({"k": k, "b": b, "a": a},), ctx)
    (positional,) = fw.convert_inputs((a, b, k), ctx)
    assert list(named) == list(positional) == ["a", "b", "k"]
    for feed in (named, positional):
        total, scaled = fn(feed)  # two outputs: a list
        np.testing.assert_array_equal(total, a + b)
        np.testing.assert_array_equal(scaled, (a + b) * k)


def test_output_names_choose_what_a_call_fetches(tmp_path: Path) -> None:
    path = add_mul(tmp_path / "two.onnx")
    fw, model, ctx = loaded(path, {"output_names": ["scaled"]})
    a, b, k = np.ones((1, 4), np.float32), np.ones((1, 4), np.float32), np.array([[4]], np.int64)
    out = fw.callable(model, ctx)(*fw.convert_inputs((a, b, k), ctx))
    assert isinstance(out, np.ndarray)  # one output: the array itself
    np.testing.assert_array_equal(out, np.full((1, 4), 8, np.float32))


def test_an_output_the_model_lacks_is_a_spec_error(tmp_path: Path) -> None:
    path = add_mul(tmp_path / "two.onnx")
    with pytest.raises(SpecError) as info:
        loaded(path, {"output_names": ["sum"]})
    assert info.value.path == "$.model.options.output_names"
    assert "no output 'sum'" in str(info.value) and "total, scaled" in str(info.value)


@pytest.mark.parametrize(
    ("example", "words"),
    [
        (({"a": np.ones((1, 4), np.float32), "c": np.ones((1, 4), np.float32)},), "no input named 'c'"),
        (({"a": np.ones((1, 4), np.float32), "b": np.ones((1, 4), np.float32)},), "needs the input 'k'"),
        ((np.ones((1, 4), np.float32),), "takes 3 input(s) (a, b, k), got 1"),
        (
            (np.ones((1, 4), np.float64), np.ones((1, 4), np.float32), np.ones((1, 1), np.int64)),
            "input 'a' of two.onnx is tensor(float) (float32), got float64",
        ),
        (
            (np.ones((1, 5), np.float32), np.ones((1, 4), np.float32), np.ones((1, 1), np.int64)),
            "input 'a' of two.onnx has shape ['N', 4], got [1, 5]",
        ),
        (
            (np.ones((4,), np.float32), np.ones((1, 4), np.float32), np.ones((1, 1), np.int64)),
            "input 'a' of two.onnx has shape ['N', 4], got [4]",
        ),
    ],
)
def test_inputs_that_do_not_fit_are_refused_before_the_clock_starts(
    tmp_path: Path, example: tuple[Any, ...], words: str
) -> None:
    fw, _, ctx = loaded(add_mul(tmp_path / "two.onnx"))
    with pytest.raises(InputMismatch) as info:
        fw.convert_inputs(example, ctx)
    assert words in str(info.value)


def test_a_non_contiguous_input_is_made_contiguous_once(model_path: Path) -> None:
    fw, model, ctx = loaded(model_path)
    x = np.ones((16, 4), np.float32).T  # (4, 16), Fortran order
    (feed,) = fw.convert_inputs((x,), ctx)
    assert feed["x"].flags.c_contiguous
    assert fw.callable(model, ctx)(feed).shape == (4, 8)


def test_on_a_gpu_device_the_copy_asks_for_cuda_on_its_own_gpu(model_path: Path) -> None:
    # the provider choice against an onnxruntime whose build has CUDA (this machine's has not)
    fw = OnnxruntimeFramework({})
    ctx = make_ctx(model_path.parent, device=GpuLike({}), assignment={"env": {"CUDA_VISIBLE_DEVICES": "5"}})
    gpu_build = SimpleNamespace(__version__="test", get_available_providers=lambda: [CUDA_EP, CPU_EP])
    assert fw.providers(gpu_build, ctx) == [(CUDA_EP, {"device_id": "0"}), (CPU_EP, {})]


def test_on_a_gpu_device_without_a_cuda_build_the_copy_fails_naming_the_package(model_path: Path) -> None:
    if CUDA_EP in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: benchmarks/gpu_check.sh covers a real GPU")
    with pytest.raises(ProviderUnavailable) as info:
        loaded(model_path, device=GpuLike({}), assignment={"env": {"CUDA_VISIBLE_DEVICES": "0"}})
    err = info.value
    assert err.provider == CUDA_EP
    assert err.path == "$.device"  # the gpu device chose CUDA, not an option
    assert f"is not available in onnxruntime {ort.__version__}" in str(err)
    assert "install onnxruntime-gpu" in str(err)


def test_a_provider_named_in_the_options_but_not_installed_names_that_option(model_path: Path) -> None:
    with pytest.raises(ProviderUnavailable) as info:
        loaded(model_path, {"providers": [CPU_EP, "TensorrtExecutionProvider"]})
    assert info.value.path == "$.model.options.providers[1]"
    assert f"available: {', '.join(ort.get_available_providers())}" in str(info.value)


def test_a_model_file_onnxruntime_cannot_parse_fails_the_load(tmp_path: Path) -> None:
    (tmp_path / "bad.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(Exception, match="(?i)protobuf"):
        loaded(tmp_path / "bad.onnx")


def test_convert_inputs_before_load_says_so(model_path: Path) -> None:
    with pytest.raises(RuntimeError, match="before load"):
        OnnxruntimeFramework({}).convert_inputs((np.ones((1, 16), np.float32),), make_ctx(model_path.parent))


def test_models_of_other_sizes_load_too(tmp_path: Path) -> None:
    fw, model, ctx = loaded(matmul_relu(tmp_path / "wide.onnx", k=64, n=32))
    assert model.inputs == [("x", "tensor(float)", ["N", 64])]
    assert fw.callable(model, ctx)(*fw.convert_inputs((np.ones((2, 64), np.float32),), ctx)).shape == (2, 32)
