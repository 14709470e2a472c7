"""Fixtures for the evaluate tests: the metric registry restored after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from npf_core import metrics

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models.py"


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    """register_metric changes process-wide state: undo it after each test."""
    entries = dict(metrics._REGISTRY.entries)
    runtime = set(metrics._RUNTIME)
    yield
    metrics._REGISTRY.entries.clear()
    metrics._REGISTRY.entries.update(entries)
    metrics._RUNTIME.clear()
    metrics._RUNTIME.update(runtime)


def ref(attr: str) -> str:
    """An import reference to tests/evaluate/models.py."""
    return f"{MODELS}:{attr}"
