"""``compile`` with tensorflow-neuronx (the fake in tests/fakes), and ``npf run`` of
the model index it writes: SavedModel folders loaded after ``import
tensorflow_neuronx`` in fresh interpreters, never in this process."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

if importlib.util.find_spec("tensorflow") is None:  # found, not imported: this process never imports it
    pytest.skip("the tensorflow tests need TensorFlow (nox -s tensorflow)", allow_module_level=True)

from tf_helpers import read_jsonl  # noqa: E402

from npf_core import model_index  # noqa: E402

pytestmark = pytest.mark.tensorflow

FAIL = "batch=4 args=--optlevel 1 --auto-cast matmult"


def npf(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "npf_core", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_compile_writes_an_index_that_run_benchmarks(
    tf_models: Path, neuron_fakes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keras file -> trace per batch size (NEURON_CC_FLAGS carries the arguments) ->
    SavedModel folders + index -> npf run on the index, on cpu with neuron: true."""
    with monkeypatch.context() as m:
        m.setenv("NPF_FAKE_NEURON_FAIL_ON", FAIL)
        spec = {
            "name": "dense",
            "model": {"framework": "tensorflow", "path": str(tf_models / "dense.keras"), "options": {"neuron": True}},
            "inputs": [{"shape": [1, 8]}, {"shape": [4, 8]}],
            "batch_sizes": [1, 4],
            "compile": {"auto_cast": ["matmult"], "compiler_args": ["--optlevel", "1"]},
            "n_models": [1],
            "workers_per_model": [1, 2],
            "duration_s": 0.3,
            "output": {"dir": "out", "reporters": ["json"]},
        }
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        proc = npf("compile", "spec.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the batch-4 variant fails
    assert "neuronx-cc failed (fake)" in proc.stdout

    index = model_index.load(tmp_path / "dense_index.json")
    entries = index["model_configs"]
    assert [(e["batch_size"], e["status"]) for e in entries] == [(1, "finished"), (4, "error")]
    ok = Path(model_index.resolve_filename(entries[0]["filename"], tmp_path / "dense_index.json"))
    assert ok.name == "dense_i0_b1_p1_matmult" and (ok / "saved_model.pb").is_file()  # a folder, no .pt
    assert entries[0]["compile_info"]["NEURON_CC_FLAGS"] == "--optlevel 1 --auto-cast matmult"
    traces = [e for e in read_jsonl(neuron_fakes) if e["event"] == "trace"]
    assert [(t["example_shapes"], t["ok"]) for t in traces] == [([[1, 8]], True), ([[4, 8]], False)]
    assert os.getpid() not in {t["pid"] for t in traces}

    run_spec = dict(spec, model={"framework": "tensorflow", "index": "dense_index.json", "options": {"neuron": True}})
    del run_spec["compile"]
    (tmp_path / "run.json").write_text(json.dumps(run_spec))
    before = len(read_jsonl(neuron_fakes))
    proc = npf("run", "run.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (results,) = tmp_path.glob("out/**/results.json")
    reports = json.loads(results.read_text())["reports"]
    assert [(r["batch_size"], r["workers_per_model"], r["status"]) for r in reports] == [(1, 1, "ok"), (1, 2, "ok")]
    imports = [e for e in read_jsonl(neuron_fakes)[before:] if e["event"] == "import"]
    # one fresh benchmarker, kept for both configurations (reuse_copies): TensorFlow and
    # its Neuron package are imported once, then the SavedModel loaded once
    assert len(imports) == 1
    assert [r["reused_copies"] for r in reports] == [0, 1]


def test_compile_named_inputs_of_a_saved_model(tf_models: Path, neuron_fakes: Path, tmp_path: Path) -> None:
    """A dict-input SavedModel: trace gets the dict (func(**example)), the compiled
    signature keeps the names, and the run feeds them by name."""
    spec = {
        "name": "two",
        "model": {"framework": "tensorflow", "path": str(tf_models / "two_saved")},
        "inputs": [[{"name": "tokens", "shape": [2, 8]}, {"name": "mask", "shape": [2, 4]}]],
        "batch_sizes": [2],
        "compile": {},
        "device": "neuron",
        "n_models": [1],
        "workers_per_model": [1],
        "duration_s": 0.3,
        "output": {"dir": "out", "reporters": ["json"]},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = npf("compile", "spec.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (trace,) = [e for e in read_jsonl(neuron_fakes) if e["event"] == "trace"]
    assert trace["example_names"] == ["mask", "tokens"] and trace["ok"]
    run_spec = dict(spec, model={"framework": "tensorflow", "index": "two_index.json"})
    del run_spec["compile"]
    (tmp_path / "run.json").write_text(json.dumps(run_spec))
    proc = npf("run", "run.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (results,) = tmp_path.glob("out/**/results.json")
    (r,) = json.loads(results.read_text())["reports"]
    assert r["status"] == "ok" and r["device_type"] == "neuron" and r["start_method"] == "fresh"
