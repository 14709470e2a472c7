"""model.options: decoding, the errors for bad ones (each names its field), and the
execution providers a copy asks for on each device."""

from __future__ import annotations

from typing import Any

import pytest
from npf_core.plugin import SpecError

from npf_onnxruntime.framework import OnnxruntimeFramework
from npf_onnxruntime.options import (
    CPU_EP,
    CUDA_EP,
    OnnxruntimeOptions,
    check_provider_options,
    copy_gpu_index,
    providers_for,
)


def spec_error(options: dict[str, Any]) -> SpecError:
    with pytest.raises(SpecError) as info:
        OnnxruntimeFramework(options)
    return info.value


def test_no_options_means_onnxruntime_defaults() -> None:
    opts = OnnxruntimeFramework({}).opts
    assert opts == OnnxruntimeOptions()
    assert (opts.intra_op_num_threads, opts.providers, opts.graph_optimization_level) == (None, None, "all")


def test_every_option_decodes() -> None:
    opts = OnnxruntimeFramework(
        {
            "intra_op_num_threads": 2,
            "inter_op_num_threads": 3,
            "execution_mode": "parallel",
            "graph_optimization_level": "basic",
            "providers": [CUDA_EP, CPU_EP],
            "provider_options": {CUDA_EP: {"device_id": 1, "do_copy_in_default_stream": True}},
            "session_config": {"session.intra_op.allow_spinning": "0"},
            "output_names": ["y"],
            "preload_dlls": False,
        }
    ).opts
    assert opts.intra_op_num_threads == 2
    assert opts.inter_op_num_threads == 3
    assert opts.execution_mode == "parallel"
    assert opts.graph_optimization_level == "basic"
    assert opts.provider_options[CUDA_EP]["device_id"] == 1
    assert opts.session_config == {"session.intra_op.allow_spinning": "0"}
    assert opts.output_names == ["y"]
    assert opts.preload_dlls is False


def test_a_misspelt_option_names_itself_and_the_right_one() -> None:
    err = spec_error({"intra_op_threads": 2})
    assert err.path == "$.model.options"
    assert "unknown field 'intra_op_threads'" in str(err)
    assert "did you mean 'intra_op_num_threads'" in str(err)


@pytest.mark.parametrize(
    ("options", "path", "words"),
    [
        ({"intra_op_num_threads": 0}, "$.model.options.intra_op_num_threads", ">= 1"),
        ({"inter_op_num_threads": "2"}, "$.model.options.inter_op_num_threads", "Expected `int | null`"),
        ({"execution_mode": "async"}, "$.model.options.execution_mode", "allowed: 'parallel', 'sequential'"),
        ({"graph_optimization_level": "max"}, "$.model.options.graph_optimization_level", "'disable_all'"),
        ({"providers": []}, "$.model.options.providers", "length >= 1"),
        ({"providers": ["CUDA"]}, "$.model.options.providers[0]", "ExecutionProvider"),
        ({"providers": [CPU_EP, CPU_EP]}, "$.model.options.providers[1]", "listed twice"),
        ({"provider_options": {"cuda": {}}}, "$.model.options.provider_options.cuda", "not an execution provider"),
        ({"provider_options": {CUDA_EP: {"device_id": [0]}}}, "$.model.options.provider_options.CUDA", "got list"),
        ({"session_config": {"a.b": 1}}, "$.model.options.session_config['a.b']", "expected a string, got int"),
        ({"output_names": ["y", "y"]}, "$.model.options.output_names", "named twice"),
        ({"preload_dlls": "yes"}, "$.model.options.preload_dlls", "Expected `bool`"),
    ],
)
def test_a_bad_option_is_a_spec_error_naming_its_field(options: dict[str, Any], path: str, words: str) -> None:
    err = spec_error(options)
    assert err.path.startswith(path), err
    assert str(err).startswith(f"spec {err.path}: ")
    assert words in str(err)


def test_options_for_a_provider_not_listed_name_that_provider() -> None:
    err = spec_error({"providers": [CPU_EP], "provider_options": {CUDA_EP: {"device_id": 0}}})
    assert err.path == f"$.model.options.provider_options.{CUDA_EP}"
    assert "providers: CPUExecutionProvider" in str(err)


def test_options_for_a_provider_the_device_does_not_use_are_refused_on_that_device() -> None:
    opts = OnnxruntimeOptions(provider_options={CUDA_EP: {"device_id": 0}})
    check_provider_options(opts, "gpu")  # the gpu default uses CUDA
    with pytest.raises(SpecError) as info:
        check_provider_options(opts, "cpu")
    assert info.value.path == f"$.model.options.provider_options.{CUDA_EP}"
    assert "device 'cpu'" in str(info.value)


def test_the_cpu_uses_the_cpu_provider() -> None:
    assert providers_for(OnnxruntimeOptions(), "cpu", {"env": {}}) == [(CPU_EP, {})]


def test_a_gpu_copy_uses_cuda_on_its_own_gpu_then_the_cpu() -> None:
    # npf's gpu device gives copy i CUDA_VISIBLE_DEVICES=<its GPU>: inside the copy that GPU is 0
    assignment = {"env": {"CUDA_VISIBLE_DEVICES": "3"}, "devices": ["3"], "cpus": None, "label": "gpu3"}
    assert providers_for(OnnxruntimeOptions(), "gpu", assignment) == [(CUDA_EP, {"device_id": "0"}), (CPU_EP, {})]


def test_without_visible_devices_the_copy_uses_the_gpu_id_it_was_given() -> None:
    assert copy_gpu_index({"env": {}, "devices": ["2"]}) == 2
    assert copy_gpu_index({"env": {}, "devices": ["GPU-1234abcd"]}) == 0
    assert copy_gpu_index({"env": {}, "devices": []}) == 0
    pairs = providers_for(OnnxruntimeOptions(), "gpu", {"env": {}, "devices": ["2"]})
    assert pairs[0] == (CUDA_EP, {"device_id": "2"})


def test_a_device_id_given_in_the_options_wins_and_values_become_onnxruntime_strings() -> None:
    opts = OnnxruntimeOptions(
        providers=[CUDA_EP],
        provider_options={CUDA_EP: {"device_id": 1, "do_copy_in_default_stream": True, "gpu_mem_limit": 2.5e9}},
    )
    (pair,) = providers_for(opts, "gpu", {"env": {"CUDA_VISIBLE_DEVICES": "0,1"}})
    assert pair == (CUDA_EP, {"device_id": "1", "do_copy_in_default_stream": "1", "gpu_mem_limit": "2500000000.0"})


def test_cuda_asked_for_on_the_cpu_device_keeps_onnxruntimes_own_device_choice() -> None:
    opts = OnnxruntimeOptions(providers=[CUDA_EP, CPU_EP])
    assert providers_for(opts, "cpu", {"env": {}}) == [(CUDA_EP, {}), (CPU_EP, {})]
