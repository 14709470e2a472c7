"""What a person sees in a real terminal: the quickstart run inside tmux at 80 and
160 columns, the screen captured while it runs and at the end.

Checked: the live display appears (configuration, time left in it and in the sweep,
live throughput); lines written while it is up (log lines at -v, a configuration
that fails) stand on lines of their own, never torn into the display; a failure
names the user's file and line once, and the same failure in another configuration
refers to the first; the final table keeps throughput, p50, p99 and status whole;
no fork-with-threads warning reaches the screen. Needs tmux (the nox session ``tui``
installs it with apt-get).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.tui

ROOT = Path(__file__).resolve().parents[2]
BAR = "━"

# a model that fails to start in every second copy (models.py line 9): the console
# says so while the live display is up
MODELS = '''
import os
import time


class Model:
    def __init__(self):
        if os.environ.get("NPF_COPY_INDEX") == "1":
            raise RuntimeError("copy 1 refuses to load")

    def __call__(self, x):
        time.sleep(0.0004)
        return x
'''


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def tmux() -> str:
    path = shutil.which("tmux")
    if path is None:
        pytest.fail("tmux is not installed: run these tests with `nox -s tui` (it installs tmux with apt-get)")
    return path


def _run_in_tmux(tmp_path: Path, width: int) -> tuple[list[str], str]:
    """Run the sweep in a detached tmux window ``width`` columns wide; the screens seen
    while it ran, and the whole output (scrollback included) at the end."""
    (tmp_path / "models.py").write_text(MODELS)
    spec = {
        "name": "tui",
        "model": {"framework": "python", "target": "models.py:Model"},
        "inputs": [{"shape": [8, 16], "dtype": "float32"}],
        "batch_sizes": [8],
        "n_models": [1, 2],
        "workers_per_model": [1, 2],
        "duration_s": 1.5,
        "timeouts": {"grace_s": 0.5},
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    session = f"npf-tui-{uuid.uuid4().hex[:8]}"
    done = tmp_path / "done"
    # as in a terminal: the width comes from the terminal, not from a COLUMNS the test runner set
    run = f"env -u COLUMNS -u LINES {sys.executable} -m npf_core run spec.json -v"  # -v: info log lines too
    cmd = f"cd {tmp_path} && {run}; echo $? > {done}; sleep 60"
    _tmux("new-session", "-d", "-s", session, "-x", str(width), "-y", "50", cmd)
    screens: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while not done.exists() and time.monotonic() < deadline:
            screens.append(_tmux("capture-pane", "-p", "-t", session))
            time.sleep(0.2)
        assert done.exists(), "the run did not finish within 90 s"
        time.sleep(0.3)
        final = _tmux("capture-pane", "-p", "-S", "-200", "-t", session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    assert done.read_text().strip() == "1", final  # two configurations failed: exit 1
    return screens, final


def _live_lines(screens: list[str]) -> list[str]:
    return [line for s in screens for line in s.splitlines() if BAR in line or "sweep:" in line]


ROW = re.compile(
    r"│\s+(?P<rate>[\d,.]+|-) │\s+(?P<p50>[\d.]+ (?:ns|µs|ms|s)|-) │\s+(?P<p99>[\d.]+ (?:ns|µs|ms|s)|-) │.*"
    r"│ (?P<status>ok\??|error)\s+│$"
)


@pytest.mark.parametrize("width", [80, 160])
def test_live_display_and_final_table_in_a_real_terminal(tmux: str, tmp_path: Path, width: int) -> None:
    screens, final = _run_in_tmux(tmp_path, width)

    # the live display was seen, with its parts
    live = _live_lines(screens)
    assert any(re.search(r"[\d,.]+ inf/s\s+\d+ s left", line) for line in live), "\n---\n".join(screens[-5:])
    assert any(re.search(r"sweep: \d+ more configurations?, about \d+ (s|min) left", line) for line in live)
    assert not any("sweep: 0 more" in line for line in live)
    assert any(re.search(r"\[\d/4\] tui-b8-p1-n\d-w\d", s) for s in screens)

    # every line written while the display is up stands alone: nothing of the display
    # on it, and it starts at column 0 (log lines with their time, failures with their head)
    seen = "\n".join([*screens, final]).splitlines()
    logs = [line for line in seen if "copies ready" in line]
    assert logs, "no log line (-v: 'copies ready') was ever on screen"
    failures = [line for line in seen if re.search(r"tui-(?:i0-)?b8-p1-n2-w\d: error", line)]
    assert failures, "the failing configurations' lines were never on screen"
    for line in logs + failures:
        assert BAR not in line and "sweep:" not in line and "inf/s" not in line, line
        assert re.match(r"^(\d\d:\d\d:\d\d info|\[\d/4\] tui-)", line), f"torn line: {line!r}"
    # the failure is told once, with the user's file and line; the other refers to it
    assert final.count("RuntimeError: copy 1 refuses to load") == 1, final
    assert final.count("at models.py:9 in __init__") == 1, final
    assert re.search(r"\[4/4\] tui-(?:i0-)?b8-p1-n2-w2: error in load: the same error as \[3/4\]", final), final
    assert not any("forking benchmarkers" in line or "fork() may lead" in line for line in seen)

    # the final table: four rows, figures whole, at this width
    table = final[final.index("┏") :]
    lines = table.splitlines()
    assert all(len(line) <= width for line in lines)
    rows = [m for m in (ROW.search(line) for line in lines) if m]
    assert len(rows) == 4, table
    assert sorted(m["status"] for m in rows).count("error") == 2
    for m in rows:
        if m["status"] != "error":
            assert re.fullmatch(r"\d{1,3}(,\d{3})*|\d+\.\d+", m["rate"]), m["rate"]
    assert "…" not in table.split("└")[0]  # nothing cut short with an ellipsis
    header = next(line for line in lines if "inf/s" in line)
    assert all(h in header for h in ("inf/s", "p50", "p99", "models", "workers", "batch", "status"))
    if width >= 160:
        assert "model " in header and "models.py:Model" in table
    # the best-configuration summary follows the table
    assert re.search(r"highest throughput: [\d,.]+ inf/s\s+\d models? x \d workers?, batch 8", final)
    # the live display is gone at the end (transient): no bar left after the table
    assert "sweep:" not in final and " s left" not in final
