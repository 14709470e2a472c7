"""Framework ``tensorflow`` on real TensorFlow: Keras files, exported SavedModels
with named (dict) inputs, fresh interpreters only, and faults as error reports."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("tensorflow") is None:  # found, not imported: this process never imports it
    pytest.skip("the tensorflow tests need TensorFlow (nox -s tensorflow)", allow_module_level=True)

from tf_helpers import MODELS  # noqa: E402

import npf_core  # noqa: E402
from npf_core.errors import SpecError  # noqa: E402

pytestmark = pytest.mark.tensorflow

TWO_INPUTS = [[{"name": "tokens", "shape": [2, 8]}, {"name": "mask", "shape": [2, 4]}]]


def run(model: dict[str, Any], tmp_path: Path, inputs: Any = None, **overrides: Any) -> list[Any]:
    kw: dict[str, Any] = {"duration_s": 0.3, "reporters": [], "n_models": [1], "workers_per_model": [1]}
    kw.update(overrides)
    spec = {"model": model, "inputs": inputs or [{"shape": [2, 8]}]}
    return npf_core.benchmark(spec, output_dir=tmp_path / "out", **kw)


def test_keras_file_sweeps_2x2_in_fresh_interpreters(tf_models: Path, tmp_path: Path) -> None:
    reports = run(
        {"framework": "tensorflow", "path": str(tf_models / "dense.keras")},
        tmp_path,
        n_models=[1, 2],
        workers_per_model=[1, 2],
    )
    assert [(r.n_models, r.workers_per_model) for r in reports] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for r in reports:
        assert r.status == "ok", r.error
        assert r.start_method == "fresh" and r.multiinterpreter is True
        assert r.total_infs > 0 and r.latency_ms_p50 is not None


def test_h5_file_and_keras_factory_target(tf_models: Path, tmp_path: Path) -> None:
    (h5,) = run({"framework": "tensorflow", "path": str(tf_models / "dense.h5")}, tmp_path / "h5")
    (target,) = run({"framework": "tensorflow", "target": f"{MODELS}:dense"}, tmp_path / "target")
    for r in (h5, target):
        assert r.status == "ok", r.error
        assert r.total_infs > 0


def test_dict_input_saved_model_from_a_spec_file_through_the_cli(tf_models: Path, tmp_path: Path) -> None:
    """The exported signature takes named tensors: the spec names them."""
    spec = {
        "model": {"framework": "tensorflow", "path": str(tf_models / "two_saved")},
        "inputs": TWO_INPUTS,
        "n_models": 1,
        "workers_per_model": [1, 2],
        "duration_s": 0.3,
        "output": {"dir": "out", "reporters": ["json"]},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "npf_core", "run", "spec.json"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (results,) = tmp_path.glob("out/**/results.json")
    reports = json.loads(results.read_text())["reports"]
    assert [r["status"] for r in reports] == ["ok", "ok"], reports
    assert all(r["total_infs"] > 0 for r in reports)


def test_dict_input_keras_model_and_positional_saved_model(tf_models: Path, tmp_path: Path) -> None:
    (keras_dict,) = run({"framework": "tensorflow", "path": str(tf_models / "two.keras")}, tmp_path / "k", TWO_INPUTS)
    # one positional input reaches a one-input signature under its only name
    (saved,) = run({"framework": "tensorflow", "path": str(tf_models / "dense_saved")}, tmp_path / "s")
    for r in (keras_dict, saved):
        assert r.status == "ok", r.error


def test_positional_inputs_for_a_named_signature_say_what_to_do(tf_models: Path, tmp_path: Path) -> None:
    (r,) = run(
        {"framework": "tensorflow", "path": str(tf_models / "two_saved")},
        tmp_path,
        [[{"shape": [2, 8]}, {"shape": [2, 4]}]],
    )
    assert r.status == "error"
    assert "named inputs ['mask', 'tokens']" in r.error.message and "'name'" in r.error.message


def test_unknown_signature_names_the_ones_there(tf_models: Path, tmp_path: Path) -> None:
    model = {"framework": "tensorflow", "path": str(tf_models / "dense_saved"), "options": {"signature": "predict"}}
    (r,) = run(model, tmp_path)
    assert r.status == "error"
    assert "no signature 'predict'" in r.error.message and "serving_default" in r.error.message


@pytest.mark.parametrize("start", ["fork"])
def test_fork_is_refused_before_any_process(tf_models: Path, tmp_path: Path, start: str) -> None:
    with pytest.raises(SpecError, match=r"spec \$\.start_method: TensorFlow cannot run in a 'fork' child") as info:
        run({"framework": "tensorflow", "path": str(tf_models / "dense.keras")}, tmp_path, start_method=start)
    assert "fresh" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_bad_model_paths_are_spec_errors(tf_models: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SpecError, match="without saved_model.pb"):
        run({"framework": "tensorflow", "path": str(empty)}, tmp_path)
    other = tmp_path / "model.onnx"
    other.write_bytes(b"x")
    with pytest.raises(SpecError, match="not a model the tensorflow framework loads"):
        run({"framework": "tensorflow", "path": str(other)}, tmp_path)
    with pytest.raises(SpecError, match=r"model\.options: unknown field 'signatur' \(did you mean 'signature'"):
        run({"framework": "tensorflow", "path": str(empty), "options": {"signatur": "x"}}, tmp_path)


def test_named_input_rules_are_spec_errors(tf_models: Path, tmp_path: Path) -> None:
    model = {"framework": "tensorflow", "path": str(tf_models / "two_saved")}
    with pytest.raises(SpecError, match=r"inputs\[0\]: give every tensor"):
        run(model, tmp_path, [[{"name": "tokens", "shape": [2, 8]}, {"shape": [2, 4]}]])
    with pytest.raises(SpecError, match="given twice"):
        run(model, tmp_path, [[{"name": "a", "shape": [2, 8]}, {"name": "a", "shape": [2, 4]}]])


def test_call_raising_in_tensorflow_is_an_error_report(tmp_path: Path) -> None:
    (r,) = run({"framework": "tensorflow", "target": f"{MODELS}:Raising"}, tmp_path)
    assert r.status == "error"
    assert r.error.stage == "warmup"  # the first call is a warm-up call
    assert "InvalidArgumentError" in r.error.message and "requested shape has 343" in r.error.message


def test_load_that_hangs_is_a_timeout_report(tmp_path: Path) -> None:
    (r,) = run({"framework": "tensorflow", "target": f"{MODELS}:hanging"}, tmp_path, timeouts={"load_s": 8})
    assert r.status == "error"
    assert "load" in r.error.message and "8" in r.error.message


def test_tensorflow_import_error_in_the_fresh_interpreter(
    tf_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TensorFlow that fails to import in the benchmarker: the report quotes it."""
    broken = tmp_path / "broken" / "tensorflow"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('libtensorflow_framework.so.2: cannot open (broken)')\n")
    monkeypatch.syspath_prepend(str(broken.parent))  # fresh interpreters get this process's path first
    (r,) = run({"framework": "tensorflow", "path": str(tf_models / "dense.keras")}, tmp_path)
    assert r.status == "error"
    assert r.error.stage == "load"
    assert "libtensorflow_framework.so.2: cannot open (broken)" in r.error.message
