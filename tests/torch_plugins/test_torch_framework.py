"""The torch framework on cpu: TorchScript, torch.export and nn.Module targets, in
real benchmarker processes; thread settings, eval/inference mode, input conversion."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# "torch.nn", not "torch": with tests/ on sys.path, this folder passes for a namespace package "torch"
pytest.importorskip("torch.nn")

from torch_helpers import MODELS, read_jsonl  # noqa: E402

import npf_core  # noqa: E402
from npf_core.errors import SpecError  # noqa: E402
from npf_core.results.store import results_file
from npf_plugins.frameworks.torch import TorchFramework  # noqa: E402

pytestmark = pytest.mark.torch

INPUTS = [{"shape": [2, 8], "dtype": "float32"}]


def run(model: dict[str, Any], tmp_path: Path, **overrides: Any) -> list[Any]:
    kw: dict[str, Any] = {"duration_s": 0.3, "reporters": [], "n_models": [1], "workers_per_model": [1]}
    kw.update(overrides)
    return npf_core.benchmark({"model": model, "inputs": INPUTS}, output_dir=tmp_path / "out", **kw)


def assert_ok(reports: list[Any], n: int = 1) -> None:
    assert len(reports) == n
    for r in reports:
        assert r.status == "ok", r.error
        assert r.total_infs > 0
        assert r.throughput_avg > 0 and math.isfinite(r.throughput_avg)
        assert r.device_type == "cpu"


@pytest.mark.parametrize("kind", ["script", "export"])
def test_saved_model_benchmarks_on_cpu(kind: str, saved_models: dict[str, Path], tmp_path: Path) -> None:
    reports = run({"framework": "torch", "path": str(saved_models[kind])}, tmp_path)
    assert_ok(reports)
    assert reports[0].model_filename == saved_models[kind].name
    assert reports[0].start_method == "zygote"


def test_module_class_benchmarks_on_cpu(tmp_path: Path, record: Path) -> None:
    reports = run({"framework": "torch", "target": f"{MODELS}:Probe"}, tmp_path, batch_sizes=[2])
    assert_ok(reports)
    assert reports[0].total_infs == 2 * reports[0].total_calls
    calls = [e for e in read_jsonl(record) if e["event"] == "call"]
    assert calls, "the model was never called"
    for c in calls:
        assert c["pid"] != os.getpid()
        assert c["training"] is False  # eval()
        assert c["inference_mode"] is True
        assert c["input_type"] == "Tensor"
        assert c["input_device"] == "cpu"
        assert c["input_dtype"] == "torch.float32"


def test_factory_target_and_no_grad_option(tmp_path: Path) -> None:
    reports = run(
        {"framework": "torch", "target": f"{MODELS}:make_net", "options": {"inference_mode": False}}, tmp_path
    )
    assert_ok(reports)


def test_module_object_through_the_api(tmp_path: Path) -> None:
    sys.path.insert(0, str(MODELS.parent))
    try:
        import torch_models
    finally:
        sys.path.remove(str(MODELS.parent))
    reports = run({"framework": "torch", "target": torch_models.Net()}, tmp_path)
    assert_ok(reports)


@pytest.mark.parametrize("reuse", [False, True])
def test_threads_are_shared_between_copies(tmp_path: Path, record: Path, reuse: bool) -> None:
    usable = len(os.sched_getaffinity(0))
    reports = run({"framework": "torch", "target": f"{MODELS}:Probe"}, tmp_path, n_models=[1, 2],
                  reuse_copies=reuse)  # fmt: skip
    assert_ok(reports, 2)
    loads = [e for e in read_jsonl(record) if e["event"] == "load"]
    if not reuse:
        # copies of the n=1 config, then the two of the n=2 config (warm-up runs in the
        # same process as its load, so the order of 'load' events per config is kept)
        assert len(loads) == 3
        assert loads[0]["threads"] == usable
        assert {e["threads"] for e in loads[1:]} == {max(1, usable // 2)}
    else:
        # copy 0 loads for n=1, copy 1 for n=2 (ahead, beside it); copy 0 is kept for n=2
        # and its pool resized for two copies (Framework.reconfigure)
        assert sorted(e["threads"] for e in loads) == sorted([usable, max(1, usable // 2)])
    calls = {(e["config"], e["pid"]): e["threads"] for e in read_jsonl(record) if e["event"] == "call"}
    assert {t for (config, _), t in calls.items() if "-n1-" in config} == {usable}
    assert {t for (config, _), t in calls.items() if "-n2-" in config} == {max(1, usable // 2)}
    assert len([c for c, _ in calls if "-n2-" in c]) == 2


def test_threads_option(tmp_path: Path, record: Path) -> None:
    reports = run({"framework": "torch", "target": f"{MODELS}:Probe", "options": {"threads": 3}}, tmp_path)
    assert_ok(reports)
    (load,) = [e for e in read_jsonl(record) if e["event"] == "load"]
    assert load["threads"] == 3


def test_inputs_from_a_pt_file(tmp_path: Path, saved_models: dict[str, Path], record: Path) -> None:
    import torch

    torch.save(torch.randn(2, 8, dtype=torch.float64).float(), tmp_path / "x.pt")
    reports = npf_core.benchmark(
        {"model": {"framework": "torch", "target": f"{MODELS}:Probe"}, "inputs": [{"file": str(tmp_path / "x.pt")}]},
        duration_s=0.3,
        reporters=[],
        n_models=[1],
        workers_per_model=[1],
        output_dir=tmp_path / "out",
    )
    assert_ok(reports)
    (call,) = [e for e in read_jsonl(record) if e["event"] == "call"]
    assert call["input_type"] == "Tensor"


def test_unknown_option_names_the_field() -> None:
    with pytest.raises(SpecError, match=r"model\.options.*threadz|threadz.*model\.options"):
        TorchFramework({"threadz": 2})
    with pytest.raises(SpecError, match=r"model\.options\.threads"):
        TorchFramework({"threads": 0})


def test_check_rejects_bad_paths(tmp_path: Path) -> None:
    fw = TorchFramework({})
    with pytest.raises(SpecError, match="not a file the torch framework loads"):
        fw.check("path", str(tmp_path / "model.onnx"), None)
    with pytest.raises(SpecError, match="no such model file"):
        fw.check("path", str(tmp_path / "missing.pt"), None)
    (tmp_path / "junk.pt").write_text("not a zip")
    with pytest.raises(SpecError, match="not a TorchScript or torch.export archive"):
        fw.check("path", str(tmp_path / "junk.pt"), None)


def test_start_methods() -> None:
    from npf_plugins.devices.cpu import CpuDevice
    from npf_plugins.devices.gpu import GpuDevice
    from npf_plugins.devices.neuron import NeuronDevice

    cpu, gpu, neuron = CpuDevice({}), GpuDevice({}), NeuronDevice({})
    assert TorchFramework({}).start_method_for(cpu) == "zygote"
    assert TorchFramework({}).start_method_for(gpu) == "zygote"  # CUDA is never initialised in the zygote
    assert TorchFramework({}).start_method_for(neuron) == "fresh"
    assert TorchFramework({"neuron": True}).start_method_for(cpu) == "fresh"


def test_cli_runs_a_torch_spec(tmp_path: Path, saved_models: dict[str, Path]) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "model": {"framework": "torch", "path": str(saved_models["export"])},
                "inputs": [{"shape": [2, 8]}],
                "n_models": [1],
                "workers_per_model": [1],
                "duration_s": 0.3,
            }
        )
    )
    proc = subprocess.run(
        [sys.executable, "-m", "npf_core", "run", str(spec), "--output-dir", str(tmp_path / "out"), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    results = json.loads(results_file(tmp_path / "out").read_text())
    assert [r["status"] for r in results["reports"]] == ["ok"]
    assert "Traceback" not in proc.stderr


def _child_context(tmp_path: Path) -> Any:
    from types import SimpleNamespace

    from npf_core.plugin.hookspecs import Assignment, ChildContext
    from npf_plugins.devices.cpu import CpuDevice

    return ChildContext(
        job=SimpleNamespace(n_models=1),
        base_dir=tmp_path,
        assignment=Assignment(env={}, cpus=None, devices=[], label=""),
        device=CpuDevice({}),
        objects={},
    )


def test_model_and_inputs_are_really_moved(tmp_path: Path) -> None:
    """``x = x.to(device)``: on the 'meta' device (which a CPU build has) the model's
    parameters and the converted inputs end up there, not on the CPU."""
    import numpy as np
    import torch

    fw = TorchFramework({"device": "meta", "threads": torch.get_num_threads()})
    ctx = _child_context(tmp_path)
    model = fw.load("target", f"{MODELS}:Net", ctx)
    assert {p.device.type for p in model.parameters()} == {"meta"}
    assert model.training is False
    (x,) = fw.convert_inputs((np.ones((2, 8), dtype=np.float32),), ctx)
    assert isinstance(x, torch.Tensor) and x.device.type == "meta"
    (y,) = fw.convert_inputs((torch.ones(2, 8),), ctx)
    assert y.device.type == "meta"
    out = fw.callable(model, ctx)(x)
    assert out.shape == (2, 4) and out.device.type == "meta"


def test_cuda_calls_synchronize_after_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    events: list[Any] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: events.append(("sync", str(device))))
    fw = TorchFramework({})
    fw.device = torch.device("cuda")

    def model(x: Any) -> Any:
        events.append("model")
        return x + 1

    fn = fw.callable(model, _child_context(tmp_path))
    assert fn(1) == 2
    assert events == ["model", ("sync", "cuda")]
    fw.device = torch.device("cpu")
    assert fw.callable(model, _child_context(tmp_path)) is model


def test_a_pickled_module_is_refused_with_a_hint(tmp_path: Path) -> None:
    import torch

    sys.path.insert(0, str(MODELS.parent))
    try:
        import torch_models
    finally:
        sys.path.remove(str(MODELS.parent))
    torch.save(torch_models.Net(), tmp_path / "pickled.pt")
    (r,) = run({"framework": "torch", "path": str(tmp_path / "pickled.pt")}, tmp_path)
    assert r.status == "error"
    assert r.error is not None and r.error.stage == "load"
    assert "not a TorchScript archive" in r.error.message
    assert "torch.jit.save" in r.error.message
