"""Load: many model copies on a small machine (the ``slow`` nox session)."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

import npf_core

from .conftest import sweep_spec

SLEEP_S = 0.05


@pytest.mark.slow
@pytest.mark.parametrize("method", ["zygote", "fork", "fresh"])
def test_32_copies_x_2_workers_of_a_sleeping_model(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 workers, each call a 50 ms sleep: 64 / 0.05 = 1280 inferences per second,
    whatever the number of cores, if the supervisor starts every copy, starts them
    together and measures them over the same interval."""
    monkeypatch.setenv("NPF_SLEEP_S", str(SLEEP_S))
    spec = sweep_spec(
        tmp_path / "out", n_models=[32], workers_per_model=[2], duration_s=3.0, start_method=method,
        timeouts={"load_s": 120, "stop_s": 10, "grace_s": 5},
    )  # fmt: skip
    (report,) = npf_core.benchmark(spec)
    assert report.status == "ok", report.error
    expected = 32 * 2 / SLEEP_S
    assert report.throughput_avg == pytest.approx(expected, rel=0.08)
    assert report.latency_ms_p50 == pytest.approx(SLEEP_S * 1000, rel=0.1)
    assert report.total_infs == pytest.approx(expected * 3.0, rel=0.08)
    assert psutil.Process().children(recursive=True) == []
