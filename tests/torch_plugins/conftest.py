"""Fixtures of the torch tests: saved models, the Neuron fakes, child records.

torch is imported lazily (inside fixtures) so that collecting this folder without
torch installed only skips it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from torch_helpers import FAKES, HERE, MODELS, read_jsonl

# MODELS and read_jsonl are re-exported for modules that import them from here; prefer
# "from torch_helpers import ...": "conftest" is also the name of tests/conftest.py
__all__ = ["FAKES", "HERE", "MODELS", "read_jsonl"]

DEVICE_ENV = ("NEURON_RT_VISIBLE_CORES", "NEURONCORE_GROUP_SIZES", "NEURON_LOGICAL_NC_CONFIG", "CUDA_VISIBLE_DEVICES")


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file benchmarker children record into (see torch_models.record)."""
    path = tmp_path / "record.jsonl"
    monkeypatch.setenv("NPF_TEST_RECORD", str(path))
    return path


@pytest.fixture
def clean_device_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in DEVICE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def neuron_fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_device_env: None) -> Path:
    """Install the fakes for child processes: torch_neuronx on PYTHONPATH and
    neuron-ls on PATH. Returns the fakes' JSON Lines log."""
    log = tmp_path / "neuron-fake.jsonl"
    monkeypatch.setenv("NPF_FAKE_NEURON_LOG", str(log))
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKES), *([old] if old else [])]))
    monkeypatch.setenv("PATH", os.pathsep.join([str(FAKES / "bin"), os.environ.get("PATH", "")]))
    return log


@pytest.fixture(scope="session")
def saved_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """net.pt (TorchScript, traced) and net.pt2 (torch.export) of torch_models.Net."""
    import torch

    sys.path.insert(0, str(HERE))
    try:
        import torch_models
    finally:
        sys.path.remove(str(HERE))
    out = tmp_path_factory.mktemp("models")
    net = torch_models.Net().eval()
    example = (torch.randn(2, 8),)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.[\w.]+` is deprecated", category=DeprecationWarning)
        torch.jit.save(torch.jit.trace(net, example), str(out / "net.pt"))
    torch.export.save(torch.export.export(net, example), str(out / "net.pt2"))
    return {"script": out / "net.pt", "export": out / "net.pt2"}


@pytest.fixture(scope="session")
def neuron_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model traced by the fake torch_neuronx, saved with torch.jit.save — made in a
    subprocess, so torch_neuronx never enters the test process."""
    out = tmp_path_factory.mktemp("neuron") / "net_neuron.pt"
    code = (
        "import sys, warnings, torch, torch_neuronx\n"
        f"sys.path.insert(0, {str(HERE)!r})\n"
        "import torch_models\n"
        "m = torch_neuronx.trace(torch_models.Net().eval(), torch.randn(2, 8), compiler_args=['--target', 'inf2'])\n"
        "warnings.simplefilter('ignore', DeprecationWarning)\n"
        f"torch.jit.save(m, {str(out)!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(FAKES)}
    env.pop("NPF_FAKE_NEURON_LOG", None)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    return out
