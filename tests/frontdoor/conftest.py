"""Fixtures of the front-door tests (NeuronPerf's API on the engine)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FAKES = HERE.parent / "fakes"


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "record.jsonl"
    monkeypatch.setenv("NPF_TEST_RECORD", str(path))
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in a temporary folder: the guide's calls write files into the current one."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def neuron_fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake torch_neuronx / torch_neuron (child processes only) and neuron-ls."""
    for name in ("NEURON_RT_VISIBLE_CORES", "NEURONCORE_GROUP_SIZES", "NEURON_LOGICAL_NC_CONFIG",
                 "CUDA_VISIBLE_DEVICES"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    log = tmp_path / "neuron-fake.jsonl"
    monkeypatch.setenv("NPF_FAKE_NEURON_LOG", str(log))
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKES), *([old] if old else [])]))
    monkeypatch.setenv("PATH", os.pathsep.join([str(FAKES / "bin"), os.environ.get("PATH", "")]))
    return log
