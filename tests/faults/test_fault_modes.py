"""Every planted fault, run beside a healthy configuration of the same sweep, with
every start method (zygote, fork, fresh): one error report with its reason, one ok report, exit code 1,
a bounded run time, and no surviving process (the autouse fixture checks that)."""

from __future__ import annotations

import dataclasses
import signal
from dataclasses import dataclass
from typing import Any

import pytest

from npf_core.supervisor.run import GROUP_SIGNAL_WAIT_S

from .support import load_timeout, read_results


@dataclass(frozen=True)
class Expect:
    type: str
    stage: str
    message: tuple[str, ...]  # each must appear in the error message
    exitcode: int | None = None  # how the process at fault ended (1: it reported the exception and exited)
    tail: tuple[str, ...] = ("planted",)  # each must appear in the output tail
    traceback: str = ""  # must appear in the traceback
    extra_s: float = 0.0  # timeouts the fault must wait out (on top of the base bound)
    waits_load_s: bool = False  # and timeouts.load_s too (it depends on the start method)


TERM, KILL = -signal.SIGTERM, -signal.SIGKILL
STOP_S, GRACE_S = 0.5, 0.5
EXPECTED = {
    "load-raise": Expect("RuntimeError", "load", ("load: RuntimeError: planted: load failed",), 1,
                         tail=("planted model loading",), traceback="planted: load failed"),
    "load-hang": Expect("LoadTimeout", "load", ("timeouts.load_s", "stopped with SIGTERM"), TERM,
                        tail=("planted model loading",), extra_s=GRACE_S, waits_load_s=True),
    "setup-raise": Expect("KeyError", "setup", ("setup: KeyError", "planted: setup failed"), 1,
                          tail=("planted model loading",), traceback="in setup"),
    "call-raise": Expect("ValueError", "call", ("call: ValueError: planted: call failed",), 1,
                         traceback="_strike"),
    "call-exit": Expect("BenchmarkerDied", "measurement", ("exited with code 3",), 3,
                        tail=("strikes now",)),
    "call-abort": Expect("BenchmarkerDied", "measurement", ("killed by SIGABRT",), -signal.SIGABRT,
                         tail=("strikes now", "Fatal Python error: Aborted")),
    "call-sigkill": Expect("BenchmarkerDied", "measurement", ("killed by SIGKILL", "OOM killer"), KILL,
                           tail=("strikes now",)),
    # no stop of the supervisor follows within GROUP_SIGNAL_WAIT_S: a failure after all
    "call-sigterm": Expect("BenchmarkerDied", "measurement", ("killed by SIGTERM (not sent by npf)",), TERM,
                           tail=("strikes now",), extra_s=GROUP_SIGNAL_WAIT_S),
    "call-segfault": Expect("BenchmarkerDied", "measurement", ("killed by SIGSEGV",), -signal.SIGSEGV,
                            tail=("strikes now", "Fatal Python error: Segmentation fault", "_strike")),
    "call-hang": Expect("StopTimeout", "stop", ("timeouts.stop_s", "stopped with SIGTERM"), TERM,
                        tail=("strikes now",), extra_s=STOP_S + GRACE_S),
    "call-hang-noterm": Expect("StopTimeout", "stop", ("timeouts.stop_s", "ignored SIGTERM", "SIGKILL"), KILL,
                               tail=("strikes now",), extra_s=STOP_S + 2 * GRACE_S),
    "wire-garbage": Expect("ProtocolError", "call", ("garbage on the wire", "undecodable"), TERM,
                           tail=("strikes now",)),
    "wire-oversized": Expect("ProtocolError", "call", ("garbage on the wire", "over the 67108864-byte limit"), TERM,
                             tail=("strikes now",)),
    "wire-unexpected": Expect("ProtocolError", "call", ("sent Go while measuring",), TERM,
                              tail=("strikes now",)),
}  # fmt: skip
#: two configurations of 0.2 s, start-up, loading and reaping on a busy 2-core
#: machine (about 0.5 s with fork, 1.5 s with fresh interpreters); a hang is 3600 s
BASE_BOUND_S = 6.0


def check_error(error: dict[str, Any], expect: Expect) -> None:
    assert error["type"] == expect.type, error
    assert error["stage"] == expect.stage, error
    for part in expect.message:
        assert part in error["message"], (part, error["message"])
    assert error["message"].startswith("copy "), error["message"]  # names the process
    assert error["exitcode"] == expect.exitcode, error
    for part in expect.tail:
        assert part in error["output_tail"], (part, error["output_tail"])
    if expect.traceback:
        assert "Traceback" in error["traceback"] and expect.traceback in error["traceback"], error["traceback"]


@pytest.mark.parametrize("method", ["zygote", "fork", "fresh"])
@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_fault_beside_healthy_config(mode: str, method: str, write_spec, run_cli, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NPF_FAULT", mode)
    expect = EXPECTED[mode]
    if expect.waits_load_s:
        expect = dataclasses.replace(expect, extra_s=expect.extra_s + load_timeout(method == "fresh"))
    spec = write_spec(start_method=method)

    res = run_cli("run", str(spec), "-q")

    assert res.code == 1, res.err
    assert res.elapsed < BASE_BOUND_S + expect.extra_s, f"took {res.elapsed:.2f} s"
    if expect.extra_s:
        assert res.elapsed >= expect.extra_s - GRACE_S  # it did wait for the timeout
    reports, rows = read_results(tmp_path / "out")
    assert [r["config_id"] for r in reports] == ["Faulty-b1-p1-n2-w1", "Faulty-b1-p1-n2-w2"]
    bad, good = reports
    assert bad["status"] == "error"
    check_error(bad["error"], expect)
    assert good["status"] == "ok" and good["error"] is None
    assert good["total_infs"] > 0 and good["throughput_avg"] > 0
    assert [r["status"] for r in rows] == ["error", "ok"]
    assert expect.type in rows[0]["error"]


@pytest.mark.parametrize("method", ["zygote", "fork", "fresh"])
def test_fault_in_the_second_config_too(method: str, write_spec, run_cli, monkeypatch, tmp_path) -> None:
    """The healthy configuration first, then the faulty one: a death in the last
    configuration of a sweep is recorded as well."""
    monkeypatch.setenv("NPF_FAULT", "call-sigkill")
    monkeypatch.setenv("NPF_FAULT_CONFIG", "-w2")
    res = run_cli("run", str(write_spec(start_method=method)), "-q")
    assert res.code == 1
    reports, _ = read_results(tmp_path / "out")
    assert [r["status"] for r in reports] == ["ok", "error"]
    check_error(reports[1]["error"], EXPECTED["call-sigkill"])


@pytest.mark.parametrize("method", ["zygote", "fork", "fresh"])
def test_binary_garbage_on_stdout_and_stderr_is_harmless(method: str, write_spec, run_cli, tmp_path) -> None:
    from .support import MODELS

    spec = write_spec(start_method=method, model={"framework": "python", "target": f"{MODELS}:Noisy"})
    res = run_cli("run", str(spec), "-q")
    assert res.code == 0, res.err
    assert res.elapsed < BASE_BOUND_S
    reports, rows = read_results(tmp_path / "out")
    assert [r["status"] for r in reports] == ["ok", "ok"]
    for r in reports:
        # about 1 ms per call: hundreds of calls per copy in 0.2 s, every one writing junk
        assert r["total_infs"] > 50
    assert [r["status"] for r in rows] == ["ok", "ok"]


@pytest.mark.parametrize("method", ["zygote", "fork", "fresh"])
def test_healthy_sweep_exits_0(method: str, write_spec, run_cli, tmp_path) -> None:
    """The control: the planted model with nothing planted."""
    res = run_cli("run", str(write_spec(start_method=method)), "-q")
    assert res.code == 0, res.err
    reports, _ = read_results(tmp_path / "out")
    assert [r["status"] for r in reports] == ["ok", "ok"]
