"""Fixtures for the evaluate tests: the metric registry restored after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from npf_core.evaluation import registry as metrics


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
