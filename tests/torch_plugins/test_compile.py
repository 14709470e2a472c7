"""``compile`` with torch-neuronx (the fake), and model indexes of torch models.

The fake ``torch_neuronx`` (tests/fakes) is on PYTHONPATH of child processes only;
it records every import and ``trace`` call, and fails the traces whose signature
contains ``NPF_FAKE_NEURON_FAIL_ON``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from torch_helpers import MODELS, read_jsonl  # noqa: E402

import npf_core  # noqa: E402
from npf_core import model_index  # noqa: E402

pytestmark = pytest.mark.torch

QUIET = r"`torch\.jit\.[\w.]+` is deprecated"
FAIL = "batch=4 args=--optlevel 1 --target inf2 --auto-cast matmult --auto-cast-type fp16 --neuroncore-pipeline-cores 2"


def test_compile_command_builds_every_variant_and_run_accepts_the_index(
    tmp_path: Path, neuron_fakes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NPF_FAKE_NEURON_FAIL_ON", FAIL)
    inputs = [{"shape": [1, 8]}, {"shape": [4, 8]}]
    spec = {
        "name": "net",
        "model": {"framework": "torch", "target": f"{MODELS}:Net"},
        "inputs": inputs,
        "batch_sizes": [1, 4],
        "pipeline_sizes": [1, 2],
        "compile": {"auto_cast": ["matmult"], "auto_cast_type": "fp16", "compiler_target": "inf2",
                    "compiler_args": ["--optlevel", "1"]},
    }  # fmt: skip
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.Popen(
        [sys.executable, "-m", "npf_core", "compile", "spec.json", "--models-dir", "artifacts"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, out + err  # one variant failed
    assert "[4/4] error" in out and "neuronx-cc failed (fake)" in out
    assert "model index: " in out and "Traceback" not in err

    index = model_index.load(tmp_path / "net_index.json")
    got = [(e["batch_size"], e["pipeline_size"], e["cast_mode"], e["status"]) for e in index["model_configs"]]
    assert got == [(1, 1, "matmult", "finished"), (1, 2, "matmult", "finished"),
                   (4, 1, "matmult", "finished"), (4, 2, "matmult", "error")]  # fmt: skip
    for e in index["model_configs"][:3]:
        f = Path(model_index.resolve_filename(e["filename"], tmp_path / "net_index.json"))
        assert f.parent == tmp_path / "artifacts" and f.is_file()
        assert e["compile_s"] > 0
    assert not (tmp_path / "artifacts" / "net_i1_b4_p2_matmult.pt").exists()
    assert "neuronx-cc failed (fake)" in index["model_configs"][3]["error"]

    log = read_jsonl(neuron_fakes)
    traces = [e for e in log if e["event"] == "trace"]
    base = ["--optlevel", "1", "--target", "inf2", "--auto-cast", "matmult", "--auto-cast-type", "fp16"]
    assert [e["compiler_args_list"] for e in traces] == [
        base, [*base, "--neuroncore-pipeline-cores", "2"], base, [*base, "--neuroncore-pipeline-cores", "2"]
    ]  # fmt: skip
    assert [e["example_shapes"] for e in traces] == [[[1, 8]], [[1, 8]], [[4, 8]], [[4, 8]]]
    assert [e["ok"] for e in traces] == [True, True, True, False]
    importers = {e["pid"] for e in log if e["event"] == "import"}
    assert len(importers) == 4 and proc.pid not in importers  # one compile process per variant, never the CLI
    assert {e["pid"] for e in traces} == importers

    # the index runs as it is: on Neuron, each copy gets its block of cores
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0-3")
    neuron_fakes.unlink()
    run_spec = {"model": {"framework": "torch", "index": str(tmp_path / "net_index.json")}, "inputs": inputs,
                "device": "neuron", "n_models": [1], "workers_per_model": [1], "duration_s": 0.3}  # fmt: skip
    reports = npf_core.benchmark(run_spec, output_dir=tmp_path / "out", reporters=[])
    assert [(r.batch_size, r.pipeline_size, r.status) for r in reports] == [
        (1, 1, "ok"), (1, 2, "ok"), (4, 1, "ok")
    ], [r.error for r in reports]  # fmt: skip
    assert all(r.total_infs == r.total_calls * r.batch_size > 0 for r in reports)
    loads = [e["NEURON_RT_VISIBLE_CORES"] for e in read_jsonl(neuron_fakes) if e["event"] == "import"]
    assert loads == ["0", "0-1", "0"]
    assert "torch_neuronx" not in sys.modules


def test_neuronperf_shaped_compile_with_tensors_and_a_class(tmp_path: Path, neuron_fakes: Path) -> None:
    import torch_models  # tests/torch_plugins, importable by the compile processes through the parent's sys.path

    path = npf_core.compile(
        torch_models.Net,
        [torch.zeros(1, 8), torch.ones(2, 8)],
        batch_sizes=[1, 2],
        performance_levels=[1],
        models_dir=tmp_path / "models",
        filename=tmp_path / "index.json",
        compiler_args={"--model-type": "transformer"},
    )
    assert path == str(tmp_path / "index.json")
    index = model_index.load(path)
    assert [(e["batch_size"], e["performance_level"], e["status"]) for e in index["model_configs"]] == [
        (1, 1, "finished"), (2, 1, "finished")
    ], index  # fmt: skip
    traces = [e for e in read_jsonl(neuron_fakes) if e["event"] == "trace"]
    level_1 = ["--model-type", "transformer", "--auto-cast", "matmult", "--auto-cast-type", "tf32"]
    assert [e["compiler_args_list"] for e in traces] == [level_1, level_1]
    assert [e["example_shapes"] for e in traces] == [[[1, 8]], [[2, 8]]]
    assert [e["model"] for e in traces] == ["Net", "Net"]
    assert "torch_neuronx" not in sys.modules


class FixedBatch(torch.nn.Module):
    """Fails unless called with its own batch size (scripted: the check survives saving)."""

    def __init__(self, batch: int) -> None:
        super().__init__()
        self.batch = batch
        self.linear = torch.nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.batch:
            raise RuntimeError("called with the wrong input")
        return self.linear(x)


@pytest.fixture
def torchscript_index(tmp_path: Path) -> Path:
    """An index of two TorchScript files: batch size 1 (input 0) and 4 (input 1)."""
    (tmp_path / "models").mkdir()
    entries = []
    for idx, b in enumerate((1, 4)):
        f = tmp_path / "models" / f"fixed_b{b}.pt"
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=QUIET, category=DeprecationWarning)
            torch.jit.save(torch.jit.script(FixedBatch(b)), str(f))
        entries.append(model_index.create(f, model_name="fixed", input_idx=idx, batch_size=b))
    return Path(model_index.save(model_index.append(*entries), tmp_path / "index.json"))


def run_index(index: Path, **fields: Any) -> list[Any]:
    spec = {"model": {"framework": "torch", "index": index.name},
            "inputs": [{"shape": [1, 8]}, {"shape": [4, 8]}],
            "n_models": [1], "workers_per_model": [1], "duration_s": 0.3, **fields}  # fmt: skip
    (index.parent / "run.json").write_text(json.dumps(spec))
    return npf_core.benchmark(index.parent / "run.json", output_dir=index.parent / "out", reporters=[])


def test_an_index_with_batch_sizes_1_and_4_yields_one_report_per_entry(torchscript_index: Path) -> None:
    reports = run_index(torchscript_index)
    assert [(r.model_filename, r.batch_size, r.status) for r in reports] == [
        ("fixed_b1.pt", 1, "ok"), ("fixed_b4.pt", 4, "ok")
    ], [r.error for r in reports]  # fmt: skip
    for r in reports:
        assert r.total_calls > 0 and r.total_infs == r.total_calls * r.batch_size


def test_batch_sizes_4_runs_only_that_entry(torchscript_index: Path) -> None:
    (r,) = run_index(torchscript_index, batch_sizes=[4])
    assert (r.model_filename, r.batch_size, r.status) == ("fixed_b4.pt", 4, "ok"), r.error
    assert r.total_infs == r.total_calls * 4 > 0
    assert os.path.exists(torchscript_index)
