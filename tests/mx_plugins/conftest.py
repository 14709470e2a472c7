"""Fixtures of the MXNet tests: tiny checkpoints (built in a subprocess, so the test
process — the supervisor — never imports MXNet) and the Neuron fake."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mx_helpers import FAKES, MODELS


@pytest.fixture(autouse=True)
def supervisor_never_imports_mxnet() -> Iterator[None]:
    assert "mxnet" not in sys.modules
    yield
    assert "mxnet" not in sys.modules
    assert "mx_neuron" not in sys.modules


@pytest.fixture(scope="session")
def mx_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """net-symbol.json, net-0000.params, net-0003.params, cls-symbol.json, cls-0000.params."""
    out = tmp_path_factory.mktemp("mx_models")
    subprocess.run([sys.executable, str(MODELS), str(out)], check=True, timeout=300)
    return out


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "record.jsonl"
    monkeypatch.setenv("NPF_TEST_RECORD", str(path))
    return path


@pytest.fixture
def neuron_fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake mx_neuron on PYTHONPATH (children only) and neuron-ls on PATH."""
    for name in ("NEURON_RT_VISIBLE_CORES", "NEURONCORE_GROUP_SIZES"):
        monkeypatch.delenv(name, raising=False)
    log = tmp_path / "neuron-fake.jsonl"
    monkeypatch.setenv("NPF_FAKE_NEURON_LOG", str(log))
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKES), *([old] if old else [])]))
    monkeypatch.setenv("PATH", os.pathsep.join([str(FAKES / "bin"), os.environ.get("PATH", "")]))
    return log
