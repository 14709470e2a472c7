"""The first hour, round 2, through real processes: ``--duration-s auto``, ``npf
plugins``' columns, and the log lines a person sees (an embedded run prints no
debug line; -v and -vv differ; NO_COLOR; JSON only when asked)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from npf_core.results.store import resolve_results


def test_duration_auto_on_the_command_line(cli: Any, write_spec: Any, sleepy_spec: dict[str, Any],
                                           tmp_path: Path) -> None:  # fmt: skip
    spec = {**sleepy_spec, "n_models": [1], "workers_per_model": [2]}
    proc = cli("run", str(write_spec(spec)), "--duration-s", "auto", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(resolve_results(tmp_path / "out").read_text())
    assert doc["spec"]["duration_s"] == "auto" and doc["reports"][0]["stopped_by"] == "enough-calls"
    bad = cli("run", str(write_spec(spec)), "--duration-s", "soon", cwd=tmp_path)
    assert bad.returncode == 2 and '\'soon\': give seconds (a number > 0) or "auto"' in bad.stderr


def test_plugins_are_listed_in_columns_and_missing_libraries_are_marked(cli: Any, tmp_path: Path) -> None:
    proc = cli("plugins", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    rows = [line for line in lines if line.startswith("  ") and not line.startswith("  to use")]
    assert all(len(line) <= 80 for line in lines), proc.stdout
    # the package column starts at the same place on every row: names never run into it
    starts = {len(re.match(r"  \S+\s+", line).group(0)) for line in rows}  # type: ignore[union-attr]
    assert len(starts) == 1, rows
    objects = next(line for line in rows if line.split()[0] == "objects-dataset")
    assert re.match(r"  objects-dataset\s{2,}npf \S+\s{2,}objects\s{2,}ok$", objects), objects
    import importlib.util

    for name in ("tensorflow", "mxnet", "ray"):
        row = next(line for line in rows if line.split()[0] == name)
        installed = importlib.util.find_spec(name) is not None
        assert row.endswith(" ok") == installed and row.endswith(f"missing {name}") != installed, row


def _python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env}, stdin=subprocess.DEVNULL)  # fmt: skip


def test_an_embedded_run_prints_no_debug_line(sleepy_file: Path, tmp_path: Path) -> None:
    code = (
        "import npf_core\n"
        f"r = npf_core.benchmark({{'model': {{'framework': 'python', 'target': '{sleepy_file}:Sleepy'}},"
        " 'inputs': [{'shape': [1, 4]}], 'n_models': [1], 'workers_per_model': [1], 'duration_s': 0.3},"
        " results=False)\n"
        "print('status', r[0].status)\n"
    )
    proc = _python(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "status ok" in proc.stdout
    assert proc.stderr == "", proc.stderr  # no debug, no info, nothing: the console table is on stdout
    assert "zygote ready" not in proc.stdout and "[debug]" not in proc.stdout
    # the host's logging level is honoured: at DEBUG, npf's debug lines reach the host's handler
    shown = _python("import logging\nlogging.basicConfig(level=logging.DEBUG, format='%(name)s|%(message)s')\n"
                    + code, tmp_path)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"^npf\.supervisor\.zygote_keeper\|zygote ready \(pid=\d+", shown.stderr, re.M), shown.stderr


def test_v_and_vv_differ_and_logs_are_plain_text_without_colour(
    cli: Any, write_spec: Any, sleepy_spec: dict[str, Any], tmp_path: Path
) -> None:
    spec = write_spec({**sleepy_spec, "n_models": [1], "workers_per_model": [1]})
    quiet = cli("run", str(spec), cwd=tmp_path)
    info = cli("run", str(spec), "-v", cwd=tmp_path)
    debug = cli("run", str(spec), "-vv", cwd=tmp_path)
    for proc in (quiet, info, debug):
        assert proc.returncode == 0, proc.stderr
        assert "\x1b[" not in proc.stderr and not any(line.startswith("{") for line in proc.stderr.splitlines())
    assert " info " not in quiet.stderr and " debug " not in quiet.stderr
    assert re.search(r"^\d\d:\d\d:\d\d info +copies ready", info.stderr, re.M), info.stderr
    assert " debug " not in info.stderr
    assert re.search(r"^\d\d:\d\d:\d\d debug +", debug.stderr, re.M), debug.stderr
    as_json = subprocess.run([sys.executable, "-m", "npf_core", "run", str(spec), "-v"], cwd=tmp_path,
                             text=True, capture_output=True, timeout=120,
                             env={**os.environ, "NPF_LOG_FORMAT": "json"})  # fmt: skip
    docs = [json.loads(line) for line in as_json.stderr.splitlines() if line.strip()]
    assert docs and all({"timestamp", "level", "logger", "event"} <= set(d) for d in docs)


def test_no_color_is_honoured_on_a_terminal(write_spec: Any, sleepy_spec: dict[str, Any], tmp_path: Path) -> None:
    import pty

    spec = write_spec({**sleepy_spec, "n_models": [1], "workers_per_model": [1]})

    def on_terminal(env: dict[str, str]) -> str:
        leader, follower = pty.openpty()
        try:
            proc = subprocess.run([sys.executable, "-m", "npf_core", "run", str(spec), "-v"], cwd=tmp_path,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=follower,
                                  env=env, timeout=120)  # fmt: skip
            assert proc.returncode == 0
            os.close(follower)
            follower = -1
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
        finally:
            os.close(leader)
            if follower >= 0:
                os.close(follower)

    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    coloured = on_terminal({**env, "TERM": "xterm"})
    assert "copies ready" in coloured and "\x1b[" in coloured
    plain = on_terminal({**env, "NO_COLOR": "1", "TERM": "xterm"})
    assert "copies ready" in plain and "\x1b[" not in plain
