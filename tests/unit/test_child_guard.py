"""The suite-wide guard in tests/conftest.py: a test that leaves a child process
(running, or exited but never reaped) fails, and the leftover is cleaned up."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

LEAKY_TESTS = """
import os
import subprocess
import sys
import time

def test_leaks_a_sleeper(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    (tmp_path.parent.parent / "sleeper.pid").write_text(str(p.pid))
    p.returncode = 0  # keep Popen.__del__ quiet: the guard must find it on its own

def test_leaves_a_zombie():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    time.sleep(0.2)

def test_reaps_its_children():
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    p.wait()
"""


def test_guard_fails_leaky_tests_and_kills_their_children(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NPF_TEST_CHILD_GRACE_S", "0.3")
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_leaky=LEAKY_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--basetemp", str(pytester.path / "tmp"))
    result.assert_outcomes(passed=3, errors=2)
    out = result.stdout.str()
    assert "ERROR at teardown of test_leaks_a_sleeper" in out
    assert "ERROR at teardown of test_leaves_a_zombie" in out
    assert "test left child processes behind (killed now)" in out
    assert "[zombie]" in out
    assert "time.sleep(120)" in out
    sleeper = int((pytester.path / "sleeper.pid").read_text())
    assert not psutil.pid_exists(sleeper) or psutil.Process(sleeper).status() == psutil.STATUS_ZOMBIE


def test_guard_lets_clean_tests_pass() -> None:
    assert psutil.Process().children(recursive=True) == []
