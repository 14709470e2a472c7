"""The capacity search with real copies: probes on the same loaded copies and worker
threads, configurations that cannot beat the incumbent, max_s, a model that breaks
mid-search; and (``slow``) the search against an M/G/1 queue on the model's own
service times, and a copies x workers sweep in the time the issue gives it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import npf_core
from npf_core.results.queueing import capacity_at
from npf_core.results.store import read_results

MODELS = Path(__file__).resolve().parent / "capacity_models.py"
sys.path.insert(0, str(MODELS.parent))
import capacity_models  # noqa: E402


def spec(tmp_path: Path, model: str, **fields: Any) -> dict[str, Any]:
    load = {"mode": "capacity", "p99_ms": 10, "probe_s": 0.5, "probe_max_s": 1.5, **fields.pop("load", {})}
    return {
        "model": {"framework": "python", "target": f"{MODELS}:{model}"},
        "inputs": [{"shape": [1], "dtype": "float32"}],
        "n_models": [1],
        "load": load,
        "output": {"dir": str(tmp_path / "out"), "reporters": []},
        **fields,
    }


def test_probes_reuse_the_loaded_copies_and_their_worker_threads(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A search of several probes loads each copy once and runs every probe on the
    same worker threads (one model call site per thread for the whole search)."""
    record = tmp_path / "record"
    record.mkdir()
    monkeypatch.setenv("NPF_RECORD_DIR", str(record))
    (r,) = npf_core.benchmark(spec(tmp_path, "Recorder", n_models=[2], workers_per_model=[2],
                                   load={"max_probes": 3}))  # fmt: skip
    assert r.status == "ok", r.error
    modes = [p.mode for p in r.slo_probes]
    assert modes[0] == "closed" and modes[1:] and set(modes[1:]) == {"poisson"}
    assert len({round(p.rate) for p in r.slo_probes}) == len(r.slo_probes)  # each probe its own rate
    for p in r.slo_probes[1:]:  # the copies ran each probe at its rate, not the previous one's
        assert 0.5 * p.inf_s <= p.achieved_inf_s <= 1.35 * p.inf_s, (p.inf_s, p.achieved_inf_s)
    files = sorted(record.iterdir())
    assert len(files) == 2  # two copies, one process each
    for f in files:
        lines = f.read_text().splitlines()
        assert lines.count("load") == 1
        assert len([x for x in lines if x.startswith("thread ")]) == 2
    assert r.load_mode == "capacity" and r.slo_p99_ms == 10.0
    assert r.total_calls >= 1000  # the closed loop's figures: a supported p99


def test_a_configuration_that_cannot_beat_the_incumbent_is_not_searched(tmp_path: Path) -> None:
    """A call of the 2 ms model takes 2 ms whatever its batch: at batch 16 it carries
    thousands of inferences/s within 10 ms, at batch 1 it serves under 500/s even in a
    closed loop, so that configuration (second in the plan) gets its closed loop only."""
    t0 = time.monotonic()
    best, other = npf_core.benchmark(spec(tmp_path, "Sleep2ms", workers_per_model=[1], batch_sizes=[16, 1],
                                          inputs=[{"shape": [16]}, {"shape": [1]}]))  # fmt: skip
    assert best.status == other.status == "ok"
    assert best.slo_capacity_inf_s is not None and len(best.slo_probes) > 1
    assert other.slo_search.startswith("not searched"), other.slo_search
    assert best.config_id in other.slo_search
    assert [p.mode for p in other.slo_probes] == ["closed"]
    assert other.slo_capacity_inf_s is None
    assert other.slo_capacity_ci_high == pytest.approx(other.throughput_ci95_high)
    assert time.monotonic() - t0 < 60


def test_the_cli_flag_exits_2_on_a_bad_budget(
    tmp_path: Path, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"model": {"framework": "python", "target": f"{MODELS}:Sleep2ms"},
                                     "inputs": [{"shape": [1]}]}))  # fmt: skip
    done = cli("run", str(spec_file), "--slo-p99-ms", "0", "--output-dir", "out", cwd=tmp_path)
    assert done.returncode == 2
    assert "--slo-p99-ms" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_max_s_ends_the_search(tmp_path: Path) -> None:
    (r,) = npf_core.benchmark(spec(tmp_path, "Sleep2ms", workers_per_model=[1], load={"max_s": 0.5}))
    assert r.status == "ok"
    assert r.slo_search.startswith("stopped: max_s"), r.slo_search
    assert [p.mode for p in r.slo_probes] == ["closed"]
    assert r.slo_capacity_inf_s is None and r.slo_capacity_ci_low == 0.0


def test_a_model_that_breaks_mid_search_fails_its_configuration_and_the_sweep_goes_on(tmp_path: Path) -> None:
    reports = npf_core.benchmark(spec(tmp_path, "FailsInTheOpenLoop", workers_per_model=[1, 2]))
    assert [r.status for r in reports] == ["error", "error"]
    for r in reports:
        assert r.error is not None and r.error.type == "RuntimeError"
        assert "broke during a probe" in r.error.message


# -- the checks (slow: a minute or two each) ---------------------------------


def service_times(seconds: float) -> np.ndarray:
    """The model's service times (s): its calls timed one after another on a thread
    of this process (not npf's measurement), after a warm-up call."""
    model = capacity_models.Sleep2ms()
    out: list[int] = []

    def loop() -> None:
        model()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t0 = time.perf_counter_ns()
            model()
            out.append(time.perf_counter_ns() - t0)

    t = threading.Thread(target=loop)
    t.start()
    t.join()
    return np.asarray(out) / 1e9


@pytest.mark.slow
def test_one_copy_one_worker_matches_an_mg1_queue_on_its_own_service_times(tmp_path: Path) -> None:
    """The capacity of 1 x 1 at p99 <= 10 ms against the M/G/1 queue fed by the
    model's service times, timed just before (5 s of calls on a thread here)."""
    predicted = capacity_at(service_times(5.0), 0.010)
    (r,) = npf_core.benchmark(spec(tmp_path, "Sleep2ms", workers_per_model=[1],
                                   load={"probe_s": 2.0, "probe_max_s": 8.0}))  # fmt: skip
    assert r.status == "ok" and r.slo_capacity_inf_s is not None
    print(f"capacity {r.slo_capacity_inf_s:.0f}/s ({r.slo_search}); M/G/1 {predicted:.0f}/s")
    assert r.slo_capacity_inf_s == pytest.approx(predicted, rel=0.15)


@pytest.mark.slow
def test_two_by_two_carries_three_times_one_by_one_and_is_named(
    tmp_path: Path, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"model": {"framework": "python", "target": f"{MODELS}:Sleep2ms"},
                                     "inputs": [{"shape": [1]}]}))  # fmt: skip
    t0 = time.monotonic()
    done = cli("run", str(spec_file), "--slo-p99-ms", "10", "--n-models", "1,2", "--workers", "1,2",
                   "--output-dir", str(tmp_path / "out"), cwd=tmp_path, timeout=300)  # fmt: skip
    took = time.monotonic() - t0
    assert done.returncode == 0, done.stderr[-3000:]
    line = re.search(r"highest capacity at p99 <= 10 ms: ([\d,]+) inf/s with (.*?), batch 1", done.stdout)
    assert line is not None, done.stdout[-3000:]
    assert line.group(2) == "2 models x 2 workers"
    results = read_results(tmp_path / "out")
    cap = {(r.n_models, r.workers_per_model): r.slo_capacity_inf_s for r in results.reports}
    print(f"{took:.0f} s; capacities {cap}")
    assert cap[(2, 2)] is not None and cap[(1, 1)] is not None
    assert cap[(2, 2)] >= 3 * cap[(1, 1)]
    assert took <= 150


def test_a_copy_measures_again_on_each_go_and_ignores_a_stop_crossed_with_its_result() -> None:
    """The child's side of a repeat job, over a real socket: Go -> Result, a late early
    stop (sent as the copy finished on its own) is ignored, the next Go runs the loop
    it names at its rate, and only Stop("done") ends the copy."""
    import socket

    from npf_core.child.benchmarker import serve
    from npf_core.plugin.manager import get_plugins
    from npf_core.spec.schema import DeviceSpec, InputItem
    from npf_core.wire import protocol as pr

    parent, child = socket.socketpair()
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(serve(child, {}, get_plugins(), inline=True)))
    thread.start()
    wire = pr.Channel(parent)
    try:
        assert isinstance(wire.recv(10), pr.Hello)
        job = pr.Job(config_id="c", copy_index=0, n_models=1, workers=2, batch_size=1, pipeline_size=1,
                     framework="python", model_kind="target", model_ref=f"{MODELS}:Sleep2ms",
                     inputs=[InputItem(shape=[1])], device=DeviceSpec(), load_mode="closed", warmup_iterations=1,
                     warmup_s=0.0, window_ns=100_000_000, repeat=True, slo_ns=1_000_000)  # fmt: skip
        wire.send(pr.Setup(job=job))
        assert isinstance(wire.recv(10), pr.Loaded)  # loaded: warm-up begins
        assert isinstance(wire.recv(10), pr.Ready)

        def measure(seconds: float, **load: Any) -> pr.Result:
            now = time.perf_counter_ns()
            wire.send(pr.Go(go_at_ns=now + 10_000_000, stop_at_ns=now + int(seconds * 1e9), **load))
            while True:
                msg = wire.recv(10)
                assert msg is not None and not isinstance(msg, pr.Failed), msg
                if isinstance(msg, pr.Result):
                    return msg

        closed = measure(0.5)
        assert closed.completed > 300  # two workers, 2 ms calls: about 1,000/s
        assert closed.over == closed.latency.n  # every timed call is slower than slo_ns (1 ms)
        wire.send(pr.Stop(reason="decided"))  # crossed with the Result: the copy must not end
        slow = measure(1.0, load_mode="poisson", rate_per_copy=100.0)
        assert slow.scheduled == pytest.approx(100, abs=40) and slow.completed <= slow.scheduled
        fast = measure(1.0, load_mode="poisson", rate_per_copy=400.0)
        assert fast.scheduled == pytest.approx(400, abs=80)
        wire.send(pr.Stop(reason=pr.STOP_DONE))
        thread.join(10)
        assert not thread.is_alive() and code == [pr.ChildExit.OK]
    finally:
        parent.close()
        thread.join(10)
        child.close()
