"""Measurement through real benchmarker processes: short durations, the uncertainty
and validity fields, stages, warm-up, stability early stop and open-loop load.

Tolerances are loose on purpose (a 2-core machine shared with other work): the tight
figures are measured by benchmarks/, side by side; these tests prove the behaviour.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest

import npf_core

SLEEP_MS = 2.0


def run(spec: dict[str, Any], **overrides: Any) -> npf_core.Report:
    (report,) = npf_core.benchmark(spec, reporters=[], results=False, **overrides)
    assert report.status == "ok", report.error
    return report


@pytest.fixture
def one(sleepy_spec: dict[str, Any]) -> dict[str, Any]:
    """One copy, one worker of the 2 ms model."""
    return {**sleepy_spec, "n_models": [1], "workers_per_model": [1]}


def test_a_fifth_of_a_second_gives_a_finite_throughput_with_its_interval(one: dict[str, Any]) -> None:
    r = run(one, duration_s=0.2, workers_per_model=[2])
    assert r.total_s == pytest.approx(0.2, abs=0.03)
    # two workers of a ~2.1 ms call: just under 1,000 calls per second
    assert 600 < r.throughput_avg < 1000
    assert r.total_infs == r.total_calls >= 100
    assert r.throughput_ci95_low <= r.throughput_avg <= r.throughput_ci95_high
    assert len(r.throughput_windows) >= 3 and r.throughput_ci_method == "batch_means"
    assert r.throughput_peak >= max(r.throughput_windows) - 1e-9
    for q in ("p0", "p50", "p90", "p95", "p99", "p999", "p100"):
        assert getattr(r, f"latency_ms_{q}") >= SLEEP_MS * 0.99, q
    assert r.latency_ms_p0 <= r.latency_ms_p50 <= r.latency_ms_p99 <= r.latency_ms_p999 <= r.latency_ms_p100
    # a few hundred samples: the p99 cannot be trusted, and the report says so
    assert not r.valid and any("p99" in reason for reason in r.validity_reasons)


def test_batches_count_inferences_and_the_median_has_bounds(one: dict[str, Any]) -> None:
    r = run({**one, "inputs": [{"shape": [4, 4]}], "batch_sizes": [4]}, duration_s=0.5)
    assert r.total_infs == 4 * r.total_calls
    assert r.throughput_avg == pytest.approx(4 * r.total_calls / r.total_s, rel=0.02)
    assert r.latency_ms_p50_ci_low is not None and r.latency_ms_p50_ci_high is not None
    assert r.latency_ms_p50_ci_low <= r.latency_ms_p50 <= r.latency_ms_p50_ci_high


def test_stages_resources_and_warm_up_are_reported(one: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "stages.py").write_text(
        "import time\n"
        "def pre(x):\n    time.sleep(0.001)\n    return x\n"
        "def post(y):\n    return y\n"
    )
    spec = {
        **one,
        "preprocess": f"{tmp_path / 'stages.py'}:pre",
        "postprocess": f"{tmp_path / 'stages.py'}:post",
        "warmup": {"iterations": 2, "seconds": 0.2},
    }
    r = run(spec, duration_s=0.5)
    assert r.preprocess_avg_ms == pytest.approx(1.0, abs=0.6)
    assert r.infer_avg_ms == pytest.approx(SLEEP_MS, abs=0.8)
    assert r.postprocess_avg_ms is not None and r.postprocess_avg_ms < 0.5
    assert r.input_avg_ms is not None and r.input_avg_ms < 0.5
    assert r.e2e_avg_ms >= r.preprocess_avg_ms + r.infer_avg_ms
    assert r.warmup_avg_ms >= 200  # at least warmup.seconds, never counted
    assert r.total_s == pytest.approx(0.5, abs=0.05)
    assert r.proc_rss_peak_mb is not None and r.proc_rss_peak_mb > 1
    assert not math.isnan(r.cpu_avg_percent) and not math.isnan(r.mem_avg_percent)


@pytest.mark.parametrize("start_method", ["fork", "inline"])
def test_every_worker_thread_warms_up_before_the_measurement(
    one: dict[str, Any], tmp_path: Path, start_method: str
) -> None:
    """A model whose first call in each thread is slow (thread-local set-up, as a
    GPU library's per-thread handles are): with warm-up, no worker pays it while
    measured."""
    (tmp_path / "coldthreads.py").write_text(
        "import threading, time\n"
        "class Cold:\n"
        "    def __init__(self):\n        self.local = threading.local()\n"
        "    def __call__(self, *x):\n"
        "        if not getattr(self.local, 'warm', False):\n"
        "            time.sleep(0.15)\n            self.local.warm = True\n"
        "        time.sleep(0.002)\n        return 0\n"
    )
    spec = {
        **one,
        "model": {"framework": "python", "target": f"{tmp_path / 'coldthreads.py'}:Cold"},
        "workers_per_model": [3],
        "warmup": {"iterations": 1},
        "start_method": start_method,
    }
    r = run(spec, duration_s=0.4)
    assert r.latency_ms_p100 < 100, "a worker thread's first call was measured"
    # the three workers warmed up at once: about one cold call, not three in a row
    assert 150 <= r.warmup_avg_ms < 400


def test_without_stages_there_is_no_stage_timer_and_infer_is_the_call(one: dict[str, Any]) -> None:
    r = run(one)
    assert r.preprocess_avg_ms is None and r.postprocess_avg_ms is None and r.input_avg_ms is None
    assert r.infer_avg_ms == pytest.approx(r.e2e_avg_ms)


def test_stable_windows_stop_a_configuration_early(one: dict[str, Any]) -> None:
    spec = {**one, "window_s": 0.2, "stability": {"windows": 3, "tolerance": 0.2, "min_s": 0.5}}
    t0 = time.monotonic()
    r = run(spec, duration_s=30)
    assert r.stopped_by == "stable"
    assert 0.5 <= r.total_s < 5 and time.monotonic() - t0 < 15


def test_without_stability_the_deadline_ends_the_run(one: dict[str, Any]) -> None:
    assert run(one).stopped_by == "deadline"


@pytest.mark.parametrize("mode", ["constant", "poisson"])
def test_open_loop_serves_its_rate_and_measures_from_the_schedule(one: dict[str, Any], mode: str) -> None:
    r = run({**one, "workers_per_model": [2], "load": {"mode": mode, "rate": 200}}, duration_s=1.0)
    assert r.load_mode == mode and r.target_rate == 200
    assert r.scheduled is not None and r.dropped == 0
    # constant: exactly the schedule; poisson: 200 arrivals have a 7% spread of their own
    assert r.achieved_rate == pytest.approx(200, rel=0.03 if mode == "constant" else 0.25)
    assert r.throughput_avg == pytest.approx(r.achieved_rate, rel=0.05)
    assert r.latency_ms_p50 >= SLEEP_MS * 0.99
    assert r.valid or all("p99" in reason for reason in r.validity_reasons)


def test_an_open_loop_rate_the_model_cannot_serve_is_flagged(one: dict[str, Any]) -> None:
    r = run({**one, "load": {"mode": "constant", "rate": 2000}}, duration_s=0.5)
    # one worker of a 2 ms call serves under 500/s: the queue grows, latency with it
    assert r.throughput_avg < 600
    assert r.dropped is not None and r.dropped > 100
    assert r.late is not None and r.late > 0
    assert r.latency_ms_p99 > 50  # measured from the scheduled time: the queueing shows
    assert not r.valid and any("falling behind" in reason for reason in r.validity_reasons)
