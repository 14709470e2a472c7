"""examples/torch runs as written (with a shorter duration): the PyTorch example next
to the numpy quickstart."""

from __future__ import annotations

from pathlib import Path

import pytest

import npf_core

pytestmark = pytest.mark.torch

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "torch" / "spec.json"


def test_the_torch_example_runs(tmp_path: Path) -> None:
    reports = npf_core.benchmark(
        EXAMPLE, duration_s={"min_s": 0.2, "max_s": 5, "calls": 40}, workers_per_model=[1],
        output_dir=str(tmp_path), reporters=["json"],
    )  # fmt: skip
    assert [(r.batch_size, r.status) for r in reports] == [(1, "ok"), (8, "ok")], [r.error for r in reports]
    assert all(r.total_calls >= 40 and r.stopped_by == "enough-calls" for r in reports)
    assert all(r.model_filename == "models.py:SmallConvNet" and r.total_infs == r.total_calls * r.batch_size
               for r in reports)  # fmt: skip
