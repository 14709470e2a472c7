"""The third-party plugin package in tests/plugin_pkg, installed by pip (see
noxfile.py): discovered through its entry point, used by a spec under both start
methods, and listed with its origin."""

from __future__ import annotations

import json
import re
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import pytest

from npf_core.results.store import results_file

DIST = "npf-demo-plugin"


@pytest.fixture(scope="module")
def demo_version() -> str:
    try:
        return distribution(DIST).version
    except PackageNotFoundError:
        pytest.fail(f"{DIST} is not installed: pip install ./tests/plugin_pkg (the nox tests session does)")


def test_plugins_command_lists_the_package_with_its_origin(cli: Any, tmp_path: Path, demo_version: str) -> None:
    proc = cli("plugins", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    sections: dict[str, dict[str, list[str]]] = {}
    current = ""
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["name", "package", "entry", "point", "status"]
    for line in lines[1:]:
        if line.startswith("missing:"):
            break
        if not line.startswith(" "):
            current = line.rstrip(":")
            sections[current] = {}
        elif line.strip():
            name, *rest = re.split(r"\s{2,}", line.strip())  # columns are two spaces apart at least
            sections[current][name] = rest
    assert set(sections) == {"frameworks", "devices", "datasets", "reporters", "launchers", "telemetry"}
    assert {"neuron-monitor", "nvml", "host"} <= set(sections["telemetry"])
    assert sections["launchers"]["local"] == ["npf_core (built in)", "-", "ok"]
    package = re.compile(rf"npf[-_]demo[-_]plugin {re.escape(demo_version)}")
    for kind, name in (("frameworks", "demo"), ("reporters", "demo-report")):
        got = sections[kind][name]
        assert package.fullmatch(got[0]) and got[1:] == ["demo", "ok"], got
    assert sections["frameworks"]["python"][0].startswith("npf ") and sections["frameworks"]["python"][1] == "python"
    assert {"console", "json", "csv"} <= set(sections["reporters"])


@pytest.mark.parametrize("start_method", ["fork", "fresh"])
def test_a_spec_uses_the_plugins_framework_and_reporter(
    cli: Any, write_spec: Any, tmp_path: Path, start_method: str, demo_version: str
) -> None:
    spec = {
        "model": {"framework": "demo", "target": "npf_demo_plugin.models:checksum", "options": {"marks": "marks"}},
        "inputs": [{"shape": [2, 3], "fill": "ones"}],
        "n_models": [2],
        "workers_per_model": [1],
        "duration_s": 0.3,
        "start_method": start_method,
        "output": {"dir": "out", "reporters": ["json", "demo-report"]},
    }
    proc = cli("run", str(write_spec(spec)), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (report,) = json.loads(results_file(tmp_path / "out").read_text())["reports"]
    assert report["status"] == "ok", report.get("error")
    assert report["start_method"] == start_method
    assert report["total_infs"] > 0
    assert report["latency_ms_p50"] >= 1.0  # the demo function sleeps 1 ms
    # the framework ran in both benchmarker processes (each wrote its mark) ...
    marks = sorted((tmp_path / "marks").iterdir())
    assert len(marks) == 2
    assert {m.read_text().split(" copy ")[0] for m in marks} == {"demo npf_demo_plugin.models:checksum"}
    # ... and the reporter saw the run in the supervisor
    lines = results_file(tmp_path / "out").with_name("demo-report.txt").read_text().splitlines()  # the run folder
    assert lines[0].startswith("run ") and lines[0].endswith("configs=1")
    assert lines[1] == f"config {report['config_id']} framework=demo status=ok total_infs={report['total_infs']}"
    assert lines[-1] == "closed"


def test_the_plugins_options_are_checked_by_the_plugin(cli: Any, write_spec: Any, tmp_path: Path) -> None:
    spec = {
        "model": {"framework": "demo", "target": "npf_demo_plugin.models:checksum", "options": {"mark": "x"}},
        "inputs": [{"shape": [1]}],
    }
    proc = cli("run", str(write_spec(spec)), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "spec $.model.options" in proc.stderr and "'mark'" in proc.stderr


@pytest.mark.parametrize(
    ("where", "value", "needle"),
    [
        ("framework", "dmeo", "unknown framework plugin 'dmeo'; installed framework plugins: demo, "),
        ("reporter", "demo-reprot", "unknown reporter plugin 'demo-reprot'; installed reporter plugins: "),
    ],
)
def test_unknown_plugin_names_list_the_installed_ones(
    cli: Any, write_spec: Any, tmp_path: Path, where: str, value: str, needle: str, demo_version: str
) -> None:
    spec: dict[str, Any] = {
        "model": {"framework": "demo", "target": "npf_demo_plugin.models:checksum"},
        "inputs": [{"shape": [1]}],
    }
    if where == "framework":
        spec["model"]["framework"] = value
    else:
        spec["output"] = {"reporters": ["json", value]}
    proc = cli("run", str(write_spec(spec)), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert needle in line
    installed = line.split("installed ")[1].split(": ", 1)[1].split(" (")[0].split(", ")
    assert installed == sorted(installed)
    assert (
        {"demo", "python"} <= set(installed) if where == "framework" else {"demo-report", "console"} <= set(installed)
    )
    assert "python -m npf_core plugins" in line
