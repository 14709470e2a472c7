"""Fixtures of the plugin's tests; the helpers they use are in helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import matmul_relu


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    return matmul_relu(tmp_path / "model.onnx")
