"""Fixtures of the TensorFlow tests: tiny saved models (built in a subprocess, so the
test process — the supervisor — never imports TensorFlow) and the Neuron fake."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tf_helpers import FAKES, MODELS


@pytest.fixture(autouse=True)
def supervisor_never_imports_tensorflow() -> Iterator[None]:
    """Every test here also checks that this process never imported TensorFlow."""
    assert "tensorflow" not in sys.modules
    yield
    assert "tensorflow" not in sys.modules
    assert "keras" not in sys.modules
    assert "tensorflow_neuronx" not in sys.modules


@pytest.fixture(scope="session")
def tf_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dense.keras, dense.h5, dense_saved/, two.keras, two_saved/ (see tf_models.build)."""
    out = tmp_path_factory.mktemp("tf_models")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    subprocess.run([sys.executable, str(MODELS), str(out)], env=env, check=True, timeout=300)
    return out


@pytest.fixture
def neuron_fakes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fake tensorflow_neuronx on PYTHONPATH (children only); returns its log."""
    for name in ("NEURON_RT_VISIBLE_CORES", "NEURONCORE_GROUP_SIZES", "NEURON_CC_FLAGS"):
        monkeypatch.delenv(name, raising=False)
    log = tmp_path / "neuron-fake.jsonl"
    monkeypatch.setenv("NPF_FAKE_NEURON_LOG", str(log))
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKES), *([old] if old else [])]))
    monkeypatch.setenv("PATH", os.pathsep.join([str(FAKES / "bin"), os.environ.get("PATH", "")]))
    return log
