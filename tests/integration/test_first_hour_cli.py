"""The command line as a new user meets it: --version, the program name, a pipe closed
early, two specs in one folder, report and the best configurations, sweep flags,
duration "auto", a model that cannot load, npf init (docs/cli.md, docs/results.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from npf_core.results.store import resolve_results


def test_version_and_the_installed_scripts_program_name(cli: Any, tmp_path: Path) -> None:
    from npf_core.version import __version__

    proc = cli("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"npf {__version__}"
    assert cli("--help", cwd=tmp_path).stdout.startswith("usage: python -m npf_core")
    script = Path(sys.executable).parent / "npf"
    assert script.exists(), "the npf script is installed with the package"
    shown = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert shown.stdout.startswith("usage: npf "), shown.stdout[:80]


def test_a_reader_that_goes_away_is_not_an_error(tmp_path: Path) -> None:
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-m", "npf_core", "schema"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=tmp_path)  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # like `| head` that has read enough, before npf writes
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.wait(timeout=60) == 0, err
        assert "Traceback" not in err and "BrokenPipe" not in err, err


def test_two_specs_in_one_folder_keep_both_results_and_report_finds_each(
    cli: Any, write_spec: Any, sleepy_spec: dict[str, Any], tmp_path: Path
) -> None:
    base = {**sleepy_spec, "n_models": [1], "workers_per_model": [1, 2], "duration_s": 0.3, "latency_budget_ms": 50}
    for name in ("first", "second"):
        proc = cli("run", str(write_spec({**base, "name": name}, f"{name}.json")), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    again = cli("run", str(tmp_path / "first.json"), cwd=tmp_path)  # a second run of the first spec
    assert again.returncode == 0, again.stderr
    out = tmp_path / "out"
    runs = {p.name: sorted(q.name for q in p.iterdir() if q.name != "latest") for p in out.iterdir()}
    assert sorted(runs) == ["first", "second"] and len(runs["first"]) == 2 and len(runs["second"]) == 1
    for name in ("first", "second"):
        doc = json.loads(resolve_results(out / name).read_text())
        assert doc["spec"]["name"] == name and len(doc["reports"]) == 2
        shown = cli("report", str(out / name), cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert "highest throughput:" in shown.stdout and "best within p99 <= 50.0 ms:" in shown.stdout
        assert str(Path("out") / name / runs[name][-1]) in shown.stdout  # the run it read
    both = cli("report", "out", cwd=tmp_path)
    assert both.returncode == 2 and "several specs (first, second)" in both.stderr


def test_sweep_flags_and_duration_auto(
    cli: Any, write_spec: Any, sleepy_spec: dict[str, Any], tmp_path: Path
) -> None:
    spec = {**sleepy_spec, "duration_s": {"min_s": 0.2, "max_s": 20, "calls": 60}}
    proc = cli("run", str(write_spec(spec)), "--n-models", "1", "--workers", "2", "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (r,) = json.loads(resolve_results(tmp_path / "out").read_text())["reports"]
    assert (r["n_models"], r["workers_per_model"]) == (1, 2)
    assert r["stopped_by"] == "enough-calls" and r["total_calls"] >= 60 and r["total_s"] < 5
    bad = cli("run", str(write_spec(spec)), "--workers", "two", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip().endswith("e.g. 1,2)") and "--workers: 'two'" in bad.stderr


def test_a_model_that_fails_to_load_names_the_users_line_once_and_stops_the_sweep(
    cli: Any, write_spec: Any, sleepy_spec: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "models.py").write_text(
        "def helper():\n    import npf_no_such_module  # noqa: F401\n\n\n"
        "class Model:\n    def __init__(self):\n        helper()\n"
    )
    spec = {**sleepy_spec, "model": {"target": "models.py:Model"}, "n_models": [1, 2], "workers_per_model": [1, 2],
            "output": {"dir": "out", "reporters": ["console", "json"]}}  # fmt: skip
    proc = cli("run", str(write_spec(spec)), cwd=tmp_path)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    # where, in the user's own file, once; the error once; one line for the rest
    assert out.count("models.py:2 in helper: import npf_no_such_module") == 1, out
    assert out.count("models.py:7 in __init__: helper()") == 1, out
    assert out.count("No module named 'npf_no_such_module'") == 1, out
    assert out.count("not tried") == 1 and "3 more configurations, which would fail as [1/4] did" in out
    assert "configuration failed" not in out and "Traceback" not in out  # no log line repeating it
    reports = json.loads(resolve_results(tmp_path / "out").read_text())["reports"]
    assert [r["status"] for r in reports] == ["error"] * 4
    assert all(r["error"]["type"] == "ModuleNotFoundError" for r in reports)
    first = reports[0]["config_id"]
    assert all(r["error"]["same_as"] == first and r["error"]["message"].startswith("not tried") for r in reports[1:])
    # npf report says why, with the line
    shown = cli("report", "out", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "No module named 'npf_no_such_module'" in shown.stdout and "models.py:2 in helper" in shown.stdout
    assert "not tried: 3 more configurations" in shown.stdout


def test_a_failure_that_depends_on_the_configuration_does_not_stop_the_sweep(
    cli: Any, write_spec: Any, sleepy_spec: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "two.py").write_text(
        "import os\n\n\nclass Model:\n    def __init__(self):\n"
        "        if os.environ['NPF_COPY_INDEX'] == '1':\n            raise RuntimeError('copy 1 refuses')\n\n"
        "    def __call__(self, x):\n        return x\n"
    )
    spec = {**sleepy_spec, "model": {"target": "two.py:Model"}, "n_models": [1, 2], "workers_per_model": [1, 2],
            "output": {"dir": "out", "reporters": ["console", "json"]}}  # fmt: skip
    proc = cli("run", str(write_spec(spec)), cwd=tmp_path)
    assert proc.returncode == 1
    reports = json.loads(resolve_results(tmp_path / "out").read_text())["reports"]
    assert [r["status"] for r in reports] == ["ok", "ok", "error", "error"]
    assert proc.stdout.count("RuntimeError: copy 1 refuses") == 1, proc.stdout  # grouped: once
    assert "the same error as [3/4]" in proc.stdout and proc.stdout.count("two.py:7 in __init__") == 1


def test_init_then_run_with_the_placeholder_input_says_to_edit_the_inputs(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "import numpy as np\n\n\nclass Net:\n    def __init__(self):\n        self.w = np.ones((256, 4), np.float32)"
        "\n\n    def __call__(self, x):\n        return x @ self.w\n"
    )
    assert cli("init", "m.py", cwd=tmp_path).returncode == 0
    ran = cli("run", "spec.json", "--duration-s", "1", cwd=tmp_path)
    assert ran.returncode == 1
    out = ran.stdout
    assert out.count("error in warmup") == 1 and "m.py:9 in __call__: return x @ self.w" in out, out
    assert 'edit "inputs"' in out and "spec.json" in out
    assert out.count("not tried") == 1 and "which would fail as [1/4] did" in out
    assert "[2/4]" not in out and "[4/4]" not in out  # the rest was not run: no line each


def test_init_then_run(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("class Echo:\n    def __call__(self, x):\n        return x\n")
    made = cli("init", "m.py", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "wrote spec.json" in made.stdout
    data = json.loads((tmp_path / "spec.json").read_text())
    data.update(duration_s={"min_s": 0.2, "max_s": 2}, n_models=[1], workers_per_model=[1])
    (tmp_path / "spec.json").write_text(json.dumps(data))
    ran = cli("run", "spec.json", "-q", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "ok" in ran.stdout
