"""The supervisor side of the tensorflow and mxnet frameworks, without TensorFlow or
MXNet installed: start methods, model checks, checkpoint finding, named inputs, the
compile plan and compile arguments. (Real-framework tests: tests/tf_plugins and
tests/mx_plugins, in their own nox sessions.)"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import npf_core
from npf_core.compilation.compiler import CompileRequest, plan_requests
from npf_core.errors import PluginError, SpecError
from npf_core.plugin.manager import get_plugins
from npf_core.spec.schema import decode_spec
from npf_core.wire.tensors import build_example
from npf_plugins.frameworks import mxnet as mxp
from npf_plugins.frameworks import tensorflow as tfp
from npf_plugins.frameworks.mxnet_compile import compile_args
from npf_plugins.frameworks.tensorflow import to_named


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_both_frameworks_are_registered_and_resolve_to_fresh_interpreters() -> None:
    plugins = get_plugins()
    for name in ("tensorflow", "mxnet"):
        fw = plugins.framework(name, {})
        for device in ("cpu", "neuron"):
            assert fw.start_method_for(plugins.device(device, {})) == "fresh"
        assert type(fw).compile_suffix == ""
    assert "tensorflow" not in sys.modules and "mxnet" not in sys.modules


def test_tensorflow_refuses_fork_before_any_process(tmp_path: Path) -> None:
    model = touch(tmp_path / "m.keras")
    spec = {"model": {"framework": "tensorflow", "path": str(model)}, "inputs": [{"shape": [1, 8]}]}
    with pytest.raises(SpecError, match=r"^spec \$\.start_method: TensorFlow cannot run in a 'fork' child") as info:
        npf_core.benchmark(spec, start_method="fork", output_dir=tmp_path / "out", reporters=[])
    assert "model calls in a forked child hang" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_tensorflow_check_without_tensorflow_or_with_a_wrong_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fw = tfp.TensorflowFramework({})
    spec = decode_spec({"model": {"framework": "tensorflow", "path": "."}, "inputs": [{"shape": [1]}]}, tmp_path).spec
    monkeypatch.setattr(tfp, "installed", lambda name: False)
    with pytest.raises(PluginError, match=r"needs TensorFlow: pip install 'npf\[tensorflow\]'"):
        fw.check("path", str(tmp_path), spec)
    monkeypatch.setattr(tfp, "installed", lambda name: True)
    with pytest.raises(SpecError, match="a folder without saved_model.pb"):
        fw.check("path", str(tmp_path), spec)
    with pytest.raises(SpecError, match="not a model the tensorflow framework loads"):
        fw.check("path", str(touch(tmp_path / "m.onnx")), spec)
    touch(tmp_path / "sm" / "saved_model.pb")
    fw.check("path", str(tmp_path / "sm"), spec)
    fw.check("path", str(touch(tmp_path / "m.h5")), spec)


def test_to_named_inputs_for_a_signature() -> None:
    a, b = np.zeros(2), np.ones(2)
    assert to_named(({"x": a},), ["x"]) == {"x": a}
    assert to_named((a,), ["only"])["only"] is a
    with pytest.raises(TypeError, match=r"named inputs \['m', 't'\], got 2 positional"):
        to_named((a, b), ["t", "m"])


def test_mxnet_find_checkpoint(tmp_path: Path) -> None:
    for f in ("net-symbol.json", "net-0000.params", "net-0003.params", "other-0009.params"):
        touch(tmp_path / f)
    prefix = str(tmp_path / "net")
    assert mxp.find_checkpoint(tmp_path / "net-symbol.json", None) == (prefix, 3)  # the latest
    assert mxp.find_checkpoint(tmp_path / "net-symbol.json", 0) == (prefix, 0)
    assert mxp.find_checkpoint(tmp_path / "net-0000.params", None) == (prefix, 0)
    assert mxp.find_checkpoint(tmp_path, None) == (prefix, 3)  # a folder of one checkpoint
    # the prefix itself, as given to mx.model.save_checkpoint (NeuronPerf's mxnet index entries)
    assert mxp.find_checkpoint(tmp_path / "net", 0) == (prefix, 0)
    with pytest.raises(ValueError, match="is epoch 0, but model.options.epoch is 3"):
        mxp.find_checkpoint(tmp_path / "net-0000.params", 3)
    with pytest.raises(ValueError, match=r"no net-0007\.params"):
        mxp.find_checkpoint(tmp_path / "net-symbol.json", 7)
    with pytest.raises(ValueError, match="no other-symbol.json"):
        mxp.find_checkpoint(tmp_path / "other-0009.params", None)
    touch(tmp_path / "more-symbol.json")
    with pytest.raises(ValueError, match="holds 2 checkpoints"):
        mxp.find_checkpoint(tmp_path, None)
    with pytest.raises(ValueError, match="not an MXNet checkpoint file"):
        mxp.find_checkpoint(touch(tmp_path / "net.json"), None)


def test_mxnet_check_is_a_spec_error_naming_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mxp, "installed", lambda name: True)
    spec = decode_spec({"model": {"framework": "mxnet", "path": "."}, "inputs": [{"shape": [1]}]}, tmp_path).spec
    with pytest.raises(SpecError, match=r"^spec \$\.model\.path: no lone-NNNN\.params"):
        mxp.MxnetFramework({}).check("path", str(touch(tmp_path / "lone-symbol.json")), spec)
    with pytest.raises(SpecError, match=r"model\.options\.epoch"):
        mxp.MxnetFramework({"epoch": -1})
    monkeypatch.setattr(mxp, "installed", lambda name: False)
    with pytest.raises(PluginError, match=r"pip install 'npf\[mxnet\]'"):
        mxp.MxnetFramework({}).check("path", str(tmp_path), spec)


def test_named_inputs_build_one_dict(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", m=np.ones((1, 4), np.float32), t=np.zeros((1, 8), np.int32))
    items: list[dict[str, Any]] = [
        {"name": "tokens", "file": str(tmp_path / "a.npz"), "key": "t"},
        {"name": "mask", "shape": [1, 4], "dtype": "float32", "fill": "ones"},
    ]
    (example,) = build_example(items, tmp_path)
    assert list(example) == ["tokens", "mask"]
    assert example["tokens"].dtype == np.int32 and example["mask"].shape == (1, 4)
    assert len(build_example([{"shape": [1]}, {"shape": [2]}], tmp_path)) == 2  # unnamed: positional


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ([{"name": "a", "shape": [1]}, {"shape": [1]}], r"inputs\[0\]: give every tensor of an input a 'name'"),
        ([{"name": "a", "shape": [1]}, {"name": "a", "shape": [1]}], "input name 'a' is given twice"),
        ([{"name": "a", "file": "x.npz"}], r"inputs\[0\]\[0\]\.key: a named input from an \.npz file needs"),
    ],
)
def test_named_input_rules(tmp_path: Path, entry: list[dict[str, Any]], message: str) -> None:
    touch(tmp_path / "x.npz")
    (tmp_path / "m.py").write_text("class M:\n    pass\n")
    with pytest.raises(SpecError, match=message):
        decode_spec({"model": {"target": "m.py:M"}, "inputs": [entry]}, tmp_path)


def test_folder_artifacts_drop_the_default_pt(tmp_path: Path) -> None:
    data: dict[str, Any] = {"name": "m", "model": {"framework": "tensorflow", "path": str(tmp_path)},
                            "inputs": [{"shape": [1, 8]}], "compile": {}}  # fmt: skip
    (v,) = plan_requests(decode_spec(data, tmp_path), suffix="")[1]
    assert v.artifact.name == "m_i0_b1_p1"
    data["compile"] = {"artifact": "{model_name}-{batch_size}.savedmodel"}
    (v,) = plan_requests(decode_spec(data, tmp_path), suffix="")[1]
    assert v.artifact.name == "m-1.savedmodel"  # a pattern of the user's own stays as given


def test_mx_neuron_compile_args() -> None:
    def request(**kw: Any) -> CompileRequest:
        return CompileRequest(framework="mxnet", model_kind="path", model_ref="x", base_dir=".", inputs=[],
                              output="o", **kw)  # fmt: skip

    assert compile_args(request()) == {}
    assert compile_args(request(pipeline_size=4, compiler_args=["--fast-math", "none"])) == {
        "--neuroncore-pipeline-cores": 4,
        "flags": ["--fast-math", "none"],
    }
