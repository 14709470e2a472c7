"""torch-neuronx models through the fake: loaded after ``import torch_neuronx`` in
fresh interpreters, one core block per copy, never imported in the supervisor."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

# "torch.nn", not "torch": with tests/ on sys.path, this folder passes for a namespace package "torch"
pytest.importorskip("torch.nn")

from torch_helpers import MODELS, read_jsonl  # noqa: E402

import npf_core  # noqa: E402

pytestmark = pytest.mark.torch


def run(model: dict[str, Any], tmp_path: Path, device: str = "neuron", **overrides: Any) -> list[Any]:
    kw: dict[str, Any] = {"duration_s": 0.3, "reporters": [], "n_models": [2], "workers_per_model": [1]}
    kw.update(overrides)
    spec = {"model": model, "inputs": [{"shape": [2, 8]}], "device": device}
    return npf_core.benchmark(spec, output_dir=tmp_path / "out", **kw)


def test_neuron_model_loads_in_fresh_interpreters(
    neuron_model: Path, neuron_fakes: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert "torch_neuronx" not in sys.modules
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0-1")
    reports = run({"framework": "torch", "path": str(neuron_model)}, tmp_path)
    (r,) = reports
    assert r.status == "ok", r.error
    assert r.start_method == "fresh" and r.multiinterpreter is True
    assert r.device_type == "neuron"
    assert r.total_infs > 0
    imports = [e for e in read_jsonl(neuron_fakes) if e["event"] == "import"]
    assert len(imports) == 2, imports
    assert os.getpid() not in {e["pid"] for e in imports}
    assert sorted(e["NEURON_RT_VISIBLE_CORES"] for e in imports) == ["0", "1"]
    assert "torch_neuronx" not in sys.modules


def test_neuron_option_on_cpu_device(neuron_model: Path, neuron_fakes: Path, tmp_path: Path) -> None:
    """``neuron: true`` also imports torch_neuronx first, in fresh interpreters."""
    reports = run(
        {"framework": "torch", "path": str(neuron_model), "options": {"neuron": True}},
        tmp_path,
        device="cpu",
        n_models=[1],
    )
    (r,) = reports
    assert r.status == "ok", r.error
    assert r.start_method == "fresh"
    assert [e["event"] for e in read_jsonl(neuron_fakes)] == ["import"]
    assert "torch_neuronx" not in sys.modules


def test_neuron_model_without_neuron_says_what_to_do(neuron_model: Path, neuron_fakes: Path, tmp_path: Path) -> None:
    """Like a real torch-neuronx model, the fake's needs torch_neuronx to load."""
    reports = run({"framework": "torch", "path": str(neuron_model)}, tmp_path, device="cpu", n_models=[1])
    (r,) = reports
    assert r.status == "error"
    assert r.error is not None
    assert "is a Neuron model" in r.error.message
    assert "model.options.neuron" in r.error.message
    assert read_jsonl(neuron_fakes) == []


def test_module_class_on_neuron_sees_its_cores(
    neuron_fakes: Path, record: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A target on device neuron: torch_neuronx is imported before the class is built."""
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "2-3")
    reports = run({"framework": "torch", "target": f"{MODELS}:Probe"}, tmp_path)
    (r,) = reports
    assert r.status == "ok", r.error
    loads = [e for e in read_jsonl(record) if e["event"] == "load"]
    assert sorted(e["cores"] for e in loads) == ["2", "3"]
    assert all(e["torch_neuronx"] for e in loads)
    assert "torch_neuronx" not in sys.modules


def test_fake_trace_records_its_arguments(neuron_fakes: Path, tmp_path: Path) -> None:
    """The recording format part B's compile tests rely on (tests/fakes/README.md)."""
    import subprocess

    code = (
        "import torch, torch_neuronx\n"
        "m = torch_neuronx.trace(torch.nn.Linear(8, 4), torch.ones(4, 8), "
        f"compiler_args=['--auto-cast', 'none'], compiler_workdir={str(tmp_path / 'work')!r})\n"
        "print(m(torch.ones(4, 8)).shape)\n"
        "try:\n"
        "    torch_neuronx.trace(torch.nn.Linear(8, 4), torch.ones(4, 8), compiler_args='--fail-me')\n"
        "except RuntimeError as e:\n"
        "    print('failed:', e)\n"
    )
    env = {**os.environ, "NPF_FAKE_NEURON_FAIL_ON": "--fail-me"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "torch.Size([4, 4])" in proc.stdout and "failed:" in proc.stdout
    traces = [e for e in read_jsonl(neuron_fakes) if e["event"] == "trace"]
    assert [t["ok"] for t in traces] == [True, False]
    assert traces[0]["compiler_args"] == ["--auto-cast", "none"]
    assert traces[0]["example_shapes"] == [[4, 8]]
    assert traces[0]["signature"] == "batch=4 args=--auto-cast none"
    assert (tmp_path / "work" / "graph.neff").exists()
    assert traces[1]["compiler_args_list"] == ["--fail-me"]


def test_missing_torch_neuronx_is_caught_before_any_process(
    neuron_model: Path, clean_device_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the fake on PYTHONPATH, torch_neuronx is not installed: a clear error
    (exit 2 from the CLI), found without importing it."""
    from npf_core.errors import DeviceUnavailable

    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0-1")
    with pytest.raises(DeviceUnavailable, match="needs torch-neuronx"):
        run({"framework": "torch", "path": str(neuron_model)}, tmp_path)
    assert "torch_neuronx" not in sys.modules


# -- the runtime's start-up failures say what to do (NeuronPerf issues #493, #1040) ------


def test_cores_held_by_another_process_say_so(
    neuron_model: Path, neuron_fakes: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import torch

    import npf_core as npf

    monkeypatch.setenv("NPF_FAKE_NEURON_BUSY", "1")
    monkeypatch.chdir(tmp_path)
    (r,) = npf.torch.benchmark(str(neuron_model), [torch.randn(2, 8)], batch_sizes=2, n_models=1,
                               workers_per_model=1, duration=0.3, verbosity=0)  # fmt: skip
    assert r["status"] == "error"
    message = r["error_message"]
    assert "NeuronCore" in message and "another process holds the NeuronCores" in message, message
    assert "NEURON_RT_VISIBLE_CORES" in message


STATE_CHILD_SCRIPT = """
import sys, torch, torch_neuronx
import npf_core
model = torch.jit.load({model!r})
model(torch.randn(2, 8))  # this process initialises the Neuron runtime, then copies fork from it
(r,) = npf_core.benchmark({{"model": {{"framework": "torch", "path": {model!r}}},
                           "inputs": [{{"shape": [2, 8]}}], "device": "neuron", "start_method": "fork",
                           "n_models": [1], "workers_per_model": [1], "duration_s": 0.3,
                           "output": {{"dir": "out", "reporters": []}}}})
print("STATUS", r.status)
print("MESSAGE", r.error.message if r.error else "")
"""


def test_a_copy_forked_after_the_runtime_started_says_so(
    neuron_model: Path, neuron_fakes: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """NeuronPerf issue #1040: a script that traced (or ran) a Neuron model, then
    benchmarked in copies forked from itself: NRT_STATE_CHILD, and what to do."""
    import subprocess

    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0-1")
    script = tmp_path / "trace_then_benchmark.py"
    script.write_text(STATE_CHILD_SCRIPT.format(model=str(neuron_model)))
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "STATUS error" in proc.stdout, proc.stdout + proc.stderr[-2000:]
    message = proc.stdout.split("MESSAGE", 1)[1]
    assert "NRT_STATE_CHILD" in message and "start_method 'fresh'" in message, message
