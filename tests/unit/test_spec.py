"""Spec decoding and validation: every user mistake is one line naming the JSON path."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import msgspec
import pytest

from npf_core.errors import SpecError, UnknownPluginError
from npf_core.plugin.manager import get_plugins
from npf_core.spec.schema import DTYPES, Closed, Poisson, decode_spec, load_spec
from npf_core.supervisor.plan import make_plan


@pytest.fixture
def base(sleepy_file: Path) -> dict[str, Any]:
    return {"model": {"framework": "python", "target": f"{sleepy_file}:Sleepy"}, "inputs": [{"shape": [1, 4]}]}


def spec_error(data: Any, base_dir: Path | str = ".") -> SpecError:
    with pytest.raises(SpecError) as info:
        decode_spec(data, base_dir)
    message = str(info.value)
    assert "\n" not in message, f"not one line: {message!r}"
    return info.value


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out.update(changes)
    return out


def test_minimal_spec_gets_the_contract_defaults(base: dict[str, Any]) -> None:
    spec = decode_spec(base).spec
    assert spec.duration_s == 60
    assert spec.device == "cpu"
    assert spec.start_method == "auto"
    assert isinstance(spec.load, Closed)
    assert spec.n_models is None and spec.workers_per_model is None and spec.pipeline_sizes is None
    assert spec.timeouts.load_s == 600 and spec.timeouts.stop_s == 30
    assert spec.output.dir == "npf-results"
    assert spec.output.reporters == ["console", "json", "csv"]
    assert spec.inputs is not None and spec.inputs[0].dtype == "float32" and spec.inputs[0].fill == "random"


def test_json_text_and_dict_decode_alike(base: dict[str, Any]) -> None:
    assert decode_spec(json.dumps(base)).spec == decode_spec(base).spec


@pytest.mark.parametrize(
    ("field", "suggestion"),
    [("duraton_s", "duration_s"), ("n_model", "n_models"), ("worker_per_model", "workers_per_model")],
)
def test_misspelt_top_level_field_suggests_the_right_one(base: dict[str, Any], field: str, suggestion: str) -> None:
    err = spec_error(with_(base, **{field: 1}))
    message = str(err)
    assert message.startswith("spec $: unknown field"), message
    assert repr(field) in message
    assert f"did you mean {suggestion!r}" in message


@pytest.mark.parametrize(
    ("patch", "path", "typo", "suggestion"),
    [
        (lambda d: d["inputs"][0].update(shap=[1]), "$.inputs[0]", "shap", "shape"),
        (lambda d: d["model"].update(framwork="python"), "$.model", "framwork", "framework"),
        (lambda d: d.update(timeouts={"load": 1}), "$.timeouts", "load", "load_s"),
        (lambda d: d.update(output={"reporter": ["json"]}), "$.output", "reporter", "reporters"),
        (lambda d: d.update(device={"typ": "cpu"}), "$.device", "typ", "type"),
        (lambda d: d.update(stability={"windws": 3}), "$.stability", "windws", "windows"),
        (lambda d: d.update(warmup={"iteration": 3}), "$.warmup", "iteration", "iterations"),
        (lambda d: d.update(inputs=[[{"shape": [1], "dtyp": "int8"}]]), "$.inputs[0][0]", "dtyp", "dtype"),
        (lambda d: d.update(dataset={"plugin": "x", "lop": True}, inputs=None), "$.dataset", "lop", "loop"),
    ],
)
def test_unknown_field_inside_nested_structs(
    base: dict[str, Any], patch: Any, path: str, typo: str, suggestion: str
) -> None:
    data = copy.deepcopy(base)
    patch(data)
    message = str(spec_error(data))
    assert message.startswith(f"spec {path}: unknown field {typo!r}"), message
    assert f"did you mean {suggestion!r}" in message


@pytest.mark.parametrize("value", [-1, 0, -0.5])
def test_duration_must_be_positive(base: dict[str, Any], value: float) -> None:
    err = spec_error(with_(base, duration_s=value))
    assert err.path == "$.duration_s"
    assert str(err).startswith("spec $.duration_s:")
    assert "> 0" in str(err)


@pytest.mark.parametrize(
    ("changes", "path", "expected"),
    [
        ({"duration_s": "10"}, "$.duration_s", "'10' is not a duration (give seconds (a number > 0), \"auto\""),
            ({"duration_s": [1]}, "$.duration_s", "is not a duration"),
            ({"duration_s": {"max_s": 0}}, "$.duration_s.max_s", "> 0"),
        ({"n_models": "two"}, "$.n_models", ""),
        ({"n_models": [0]}, "$.n_models[0]", ">= 1"),
        ({"n_models": ["min"]}, "$.n_models[0]", "'min'"),
        ({"workers_per_model": [1.5]}, "$.workers_per_model[0]", ""),
        ({"batch_sizes": [True]}, "$.batch_sizes[0]", ""),
        ({"output": {"reporters": "console"}}, "$.output.reporters", "Expected `array`, got `str`"),
        ({"start_method": "spawn"}, "$.start_method", "'spawn'"),
        ({"load": {"mode": "poisson"}}, "$.load", "rate"),
        ({"load": {"mode": "poisson", "rate": -3}}, "$.load.rate", "> 0"),
        ({"load": {"mode": "bursty"}}, "$.load.mode", "'bursty'"),
        ({"timeouts": {"load_s": 0}}, "$.timeouts.load_s", "> 0"),
        ({"stability": {"tolerance": 2}}, "$.stability.tolerance", "< 1"),
        ({"window_s": 0.001}, "$.window_s", ">= 0.01"),
        ({"model": "m.py:X"}, "$.model", "Expected `object`, got `str`"),
    ],
)
def test_wrong_types_and_ranges_name_the_path(
    base: dict[str, Any], changes: dict[str, Any], path: str, expected: str
) -> None:
    err = spec_error(with_(base, **changes))
    assert err.path == path
    assert str(err).startswith(f"spec {path}:")
    assert expected in str(err)


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"duration_s": None}, "$.duration_s"),
        ({"model": None}, "$.model"),
        ({"inputs": [None]}, "$.inputs[0]"),
        ({"device": None}, "$.device"),
        ({"output": None}, "$.output"),
    ],
)
def test_null_where_a_value_is_needed(base: dict[str, Any], changes: dict[str, Any], path: str) -> None:
    err = spec_error(with_(base, **changes))
    assert err.path == path
    assert "null" in str(err)


def test_null_inputs_without_dataset_is_required_error(base: dict[str, Any]) -> None:
    err = spec_error(with_(base, inputs=None))
    assert str(err).startswith("spec $.inputs: required")


def test_empty_inputs(base: dict[str, Any]) -> None:
    assert str(spec_error(with_(base, inputs=[]))).startswith("spec $.inputs:")


def test_missing_model_is_an_error(base: dict[str, Any]) -> None:
    data = with_(base)
    del data["model"]
    err = spec_error(data)
    assert "model" in str(err) and str(err).startswith("spec $")


def test_missing_target_file(base: dict[str, Any], tmp_path: Path) -> None:
    err = spec_error(with_(base, model={"target": "nope.py:Model"}), tmp_path)
    assert err.path == "$.model.target"
    assert str(err) == f"spec $.model.target: file not found: {str(tmp_path / 'nope.py')!r}"


def test_target_file_is_relative_to_the_spec_file(sleepy_file: Path, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "m.py").write_text("class M:\n    def __call__(self, x):\n        return x\n")
    spec_file = tmp_path / "sub" / "spec.json"
    spec_file.write_text(json.dumps({"model": {"target": "m.py:M"}, "inputs": [{"shape": [1]}]}))
    loaded = load_spec(spec_file)
    assert loaded.base_dir == spec_file.parent
    assert loaded.resolve("m.py") == spec_file.parent / "m.py"


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        ("no_colon_here", "is not a reference"),
        ("no_such_package_xyz.mod:Model", "cannot be found"),
        ("models.py:", "is not a reference"),
    ],
)
def test_bad_target_references(base: dict[str, Any], target: str, problem: str) -> None:
    err = spec_error(with_(base, model={"target": target}))
    assert str(err).startswith("spec $.model.target:") and problem in str(err)


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "absent.json")
    assert "cannot read spec file" in str(info.value)


def test_not_json(tmp_path: Path) -> None:
    f = tmp_path / "spec.json"
    f.write_text("{model: ")
    with pytest.raises(SpecError) as info:
        load_spec(f)
    assert str(info.value).startswith("spec $")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("model", "got"),
    [
        ({"framework": "python"}, "none"),
        ({"target": "m:X", "path": "model.pt"}, "target and path"),
        ({"target": "m:X", "index": "index.json"}, "target and index"),
        ({"path": "a.pt", "index": "b.json"}, "path and index"),
    ],
)
def test_exactly_one_model_reference(base: dict[str, Any], model: dict[str, Any], got: str) -> None:
    err = spec_error(with_(base, model=model))
    assert err.path == "$.model"
    assert str(err) == f"spec $.model: give exactly one of 'target', 'path' or 'index' (got {got})"


def test_missing_model_path(base: dict[str, Any], tmp_path: Path) -> None:
    err = spec_error(with_(base, model={"framework": "python", "path": "weights.pt"}), tmp_path)
    assert str(err).startswith("spec $.model.path: file not found")


def test_batch_sizes_must_match_inputs(base: dict[str, Any]) -> None:
    err = spec_error(with_(base, batch_sizes=[1, 8]))
    assert str(err).startswith("spec $.batch_sizes: 2 batch sizes for 1 inputs")
    assert "matched by position" in str(err)
    ok = decode_spec(with_(base, inputs=[{"shape": [1, 4]}, {"shape": [8, 4]}], batch_sizes=[1, 8]))
    assert ok.spec.batch_sizes == [1, 8]
    assert decode_spec(with_(base, batch_sizes=4)).spec.batch_sizes == 4


@pytest.mark.parametrize("field", ["n_models", "workers_per_model", "pipeline_sizes", "batch_sizes"])
def test_empty_sweep_lists_are_errors(base: dict[str, Any], field: str) -> None:
    assert str(spec_error(with_(base, **{field: []}))).startswith(f"spec $.{field}:")


@pytest.mark.parametrize("dtype", ["float8", "Float32", "double", ""])
def test_bad_dtype(base: dict[str, Any], dtype: str) -> None:
    err = spec_error(with_(base, inputs=[{"shape": [1], "dtype": dtype}]))
    assert err.path == "$.inputs[0].dtype"
    assert repr(dtype) in str(err)


def test_bad_dtype_lists_the_allowed_values(base: dict[str, Any]) -> None:
    err = spec_error(with_(base, inputs=[{"shape": [1], "dtype": "float8"}]))
    assert all(d in str(err) for d in DTYPES)


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_documented_dtype_decodes(base: dict[str, Any], dtype: str) -> None:
    assert decode_spec(with_(base, inputs=[{"shape": [1], "dtype": dtype}])).spec.inputs[0].dtype == dtype


@pytest.mark.parametrize(
    ("item", "path", "problem"),
    [
        ({}, "$.inputs[0]", "give either 'shape'"),
        ({"shape": [1], "file": "x.npy"}, "$.inputs[0]", "give either 'shape'"),
        ({"file": "x.npy"}, "$.inputs[0].file", "file not found"),
        ({"file": "x.csv"}, "$.inputs[0].file", "unsupported file type '.csv'"),
        ({"shape": [-1]}, "$.inputs[0].shape[0]", ">= 0"),
    ],
)
def test_input_items(base: dict[str, Any], tmp_path: Path, item: dict[str, Any], path: str, problem: str) -> None:
    err = spec_error(with_(base, inputs=[item]), tmp_path)
    assert str(err).startswith(f"spec {path}:"), str(err)
    assert problem in str(err)


def test_inputs_and_dataset_are_exclusive(base: dict[str, Any]) -> None:
    err = spec_error(with_(base, dataset={"plugin": "synthetic"}))
    assert str(err).startswith("spec $.dataset:")


def test_load_modes_decode(base: dict[str, Any]) -> None:
    spec = decode_spec(with_(base, load={"mode": "poisson", "rate": 50})).spec
    assert spec.load == Poisson(rate=50)


def test_unknown_reporter_lists_installed_ones(base: dict[str, Any]) -> None:
    loaded = decode_spec(with_(base, output={"reporters": ["console", "jsn"]}))
    with pytest.raises(UnknownPluginError) as info:
        make_plan(loaded, get_plugins())
    message = str(info.value)
    assert message.startswith("spec $.output.reporters: unknown reporter plugin 'jsn'; installed reporter plugins: ")
    for name in ("console", "csv", "json"):
        assert name in message
    assert "\n" not in message


def test_unknown_framework_and_device_list_installed_ones(base: dict[str, Any]) -> None:
    plugins = get_plugins()
    with pytest.raises(UnknownPluginError) as info:
        make_plan(decode_spec(with_(base, model={"framework": "pytorch", "target": base["model"]["target"]})), plugins)
    assert str(info.value).startswith("spec $.model.framework: unknown framework plugin 'pytorch'")
    assert "python" in info.value.installed
    with pytest.raises(UnknownPluginError) as info:
        make_plan(decode_spec(with_(base, device="tpu")), plugins)
    assert str(info.value).startswith("spec $.device: unknown device plugin 'tpu'; installed device plugins: cpu")


def test_device_options_are_checked_by_the_plugin(base: dict[str, Any]) -> None:
    loaded = decode_spec(with_(base, device={"type": "cpu", "options": {"count": 0}}))
    with pytest.raises(SpecError) as info:
        make_plan(loaded, get_plugins())
    assert str(info.value).startswith("spec $.device.options.count:")


def test_unknown_device_option_suggests_the_options_fields(base: dict[str, Any]) -> None:
    loaded = decode_spec(with_(base, device={"type": "cpu", "options": {"cnt": 2}}))
    with pytest.raises(SpecError) as info:
        make_plan(loaded, get_plugins())
    assert "did you mean 'count'" in str(info.value)
    assert "duration_s" not in str(info.value)


def test_python_framework_takes_no_options(base: dict[str, Any]) -> None:
    loaded = decode_spec(with_(base, model={**base["model"], "options": {"x": 1}}))
    with pytest.raises(SpecError) as info:
        make_plan(loaded, get_plugins())
    assert str(info.value).startswith("spec $.model.options:")


def test_schema_command_prints_valid_json_with_every_spec_field(spec_struct_types: dict[str, Any]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "npf_core", "schema"], capture_output=True, text=True, timeout=60, check=True
    )
    schema = json.loads(proc.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    defs = schema["$defs"]
    for name, info in spec_struct_types.items():
        assert name in defs, f"{name} missing from the schema"
        props = defs[name].get("properties", {})
        for f in info.fields:
            assert f.encode_name in props, f"{name}.{f.encode_name} missing from the schema"
    assert schema["$ref"].endswith("/Spec")
    assert set(defs["Spec"]["required"]) == {"model"}


class _PluginOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A plugin's options, as a plugin declares them in ``options_type``."""

    level: Literal["low", "high"] = "low"


def test_the_schema_describes_a_plugins_options_where_the_spec_names_that_plugin() -> None:
    from npf_core.spec.schema import json_schema

    schema = json_schema({"framework": {"mine": _PluginOptions}, "device": {"dev": _PluginOptions}})
    defs = schema["$defs"]
    assert defs["_PluginOptions"]["properties"]["level"]["enum"] == ["high", "low"]
    for struct, field, name in (("ModelSpec", "framework", "mine"), ("DeviceSpec", "type", "dev")):
        (rule,) = defs[struct]["allOf"]
        assert rule["if"] == {"properties": {field: {"const": name}}, "required": [field]}
        assert rule["then"] == {"properties": {"options": {"$ref": "#/$defs/_PluginOptions"}}}
    assert "allOf" not in defs["DatasetSpec"]  # no dataset plugin declared options
    assert json_schema()["$defs"]["ModelSpec"].get("allOf") is None


def test_the_schema_command_includes_the_options_an_installed_plugin_declares() -> None:
    # npf-demo-plugin (tests/plugin_pkg, installed by the test sessions) declares DemoOptions
    proc = subprocess.run(
        [sys.executable, "-m", "npf_core", "schema"], capture_output=True, text=True, timeout=60, check=True
    )
    defs = json.loads(proc.stdout)["$defs"]
    rules = {r["if"]["properties"]["framework"]["const"]: r["then"] for r in defs["ModelSpec"].get("allOf", [])}
    assert rules["demo"] == {"properties": {"options": {"$ref": "#/$defs/DemoOptions"}}}
    assert set(defs["DemoOptions"]["properties"]) == {"marks"}
    assert "python" not in rules  # the python framework declares no options type
