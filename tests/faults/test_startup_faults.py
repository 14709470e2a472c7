"""Faults before the model is even loaded: a benchmarker that dies before (or just
after) its Hello, and a fresh interpreter that cannot import what it needs."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import npf_core
from npf_core.child import benchmarker

from .support import read_results

BOUND_S = 6.0  # see test_fault_modes.BASE_BOUND_S

# A sitecustomize for fresh interpreters (found first through the PYTHONPATH the
# supervisor passes on); it strikes only in the configuration NPF_FAULT_CONFIG names.
SITECUSTOMIZE = '''
import os, sys
if os.environ.get("NPF_CONFIG_ID", "").endswith(os.environ.get("NPF_FAULT_CONFIG", "-w1")):
    plant = os.environ.get("NPF_PLANT_STARTUP")
    if plant == "exit":
        sys.stderr.write("planted: dying before hello\\n")
        sys.stderr.flush()
        os._exit(7)
    if plant == "block-numpy":
        class _Block:
            def find_spec(self, name, path=None, target=None):
                if name == "numpy" or name.startswith("numpy."):
                    raise ImportError("planted: numpy cannot be imported in this interpreter")
                return None
        sys.meta_path.insert(0, _Block())
'''


@pytest.fixture
def plant_startup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Plant a start-up fault in the benchmarkers of the ``-w1`` configuration: for
    fork, by replacing the child's entry point; for fresh, by a sitecustomize."""

    def plant(method: str, what: str) -> None:
        if method == "fresh":
            site = tmp_path / "site"
            site.mkdir()
            (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
            monkeypatch.syspath_prepend(str(site))
            monkeypatch.setenv("NPF_PLANT_STARTUP", what)
            return
        real = benchmarker.child_main

        def child_main(sock: Any, out_fd: int, parent_pid: int, objects: Any, plugins: Any) -> None:
            if os.environ.get("NPF_CONFIG_ID", "").endswith("-w1"):
                if what == "exit":
                    os.write(out_fd, b"planted: dying before hello\n")
                    os._exit(7)
                if what == "exit-after-hello":
                    from npf_core.wire.protocol import PROTOCOL_VERSION, Channel, Hello

                    Channel(sock).send(Hello(protocol=PROTOCOL_VERSION, pid=os.getpid()))
                    os.write(out_fd, b"planted: dying after hello\n")
                    os._exit(8)
            real(sock, out_fd, parent_pid, objects, plugins)

        monkeypatch.setattr(benchmarker, "child_main", child_main)

    return plant


def first_failed(res: Any, out_dir: Path, bound: bool = True) -> dict[str, Any]:
    """The run failed one configuration and ran the next: exit 1, [error, ok], in
    bounded time; the error of the first."""
    assert res.code == 1, res.err
    if bound:
        assert res.elapsed < BOUND_S
    reports, _ = read_results(out_dir)
    assert [r["status"] for r in reports] == ["error", "ok"]
    return reports[0]["error"]


@pytest.mark.parametrize("method", ["fork", "fresh"])
def test_dies_before_hello(method: str, plant_startup, write_spec, run_cli, tmp_path) -> None:
    plant_startup(method, "exit")
    res = run_cli("run", str(write_spec(start_method=method)), "-q")
    error = first_failed(res, tmp_path / "out")
    assert error["type"] == "BenchmarkerDied"
    assert error["stage"] == "start-up"
    assert error["exitcode"] == 7
    assert "exited with code 7 during start-up" in error["message"]
    assert "planted: dying before hello" in error["output_tail"]


def test_dies_right_after_hello(plant_startup, write_spec, run_cli, tmp_path) -> None:
    """The supervisor's Setup then meets a closed socket (EPIPE): still a recorded
    death, not a crash of the sweep."""
    plant_startup("fork", "exit-after-hello")
    res = run_cli("run", str(write_spec(start_method="fork")), "-q")
    error = first_failed(res, tmp_path / "out", bound=False)
    assert error["type"] == "BenchmarkerDied"
    assert error["stage"] == "load"
    assert error["exitcode"] == 8
    assert "planted: dying after hello" in error["output_tail"]


def test_fresh_interpreter_cannot_import_npf_dependency(plant_startup, write_spec, run_cli, tmp_path) -> None:
    """numpy is importable in the supervisor but not in the fresh benchmarker."""
    plant_startup("fresh", "block-numpy")
    res = run_cli("run", str(write_spec(start_method="fresh")), "-q")
    error = first_failed(res, tmp_path / "out")
    assert error["type"] == "BenchmarkerDied"
    assert error["stage"] == "start-up"
    assert error["exitcode"] == 1
    assert "ImportError: planted: numpy cannot be imported" in error["output_tail"]
    assert "Traceback" in error["output_tail"]


@pytest.mark.parametrize("method", ["fork", "fresh"])
def test_module_only_the_supervisor_has(method: str, write_spec, run_cli, monkeypatch, tmp_path) -> None:
    """A module that exists only in the supervisor's memory: a forked benchmarker
    inherits it, a fresh interpreter cannot import it, and says so (once: the
    configurations after it would fail the same way and are not tried)."""
    monkeypatch.setitem(sys.modules, "npf_fault_parent_only", types.ModuleType("npf_fault_parent_only"))
    monkeypatch.setenv("NPF_FAULT_IMPORT", "npf_fault_parent_only")
    res = run_cli("run", str(write_spec(start_method=method)), "-q")
    reports, _ = read_results(tmp_path / "out")
    if method == "fork":
        assert res.code == 0, res.err
        assert [r["status"] for r in reports] == ["ok", "ok"]
        return
    # a missing module cannot depend on the configuration: the next configuration,
    # which would fail the same way, is not tried (docs/results.md#failures)
    assert res.code == 1, res.err
    assert res.elapsed < BOUND_S
    assert [r["status"] for r in reports] == ["error", "error"]
    error = reports[0]["error"]
    assert error["type"] == "ModuleNotFoundError"
    assert error["stage"] == "load"
    assert "npf_fault_parent_only" in error["message"]
    assert "Traceback" in error["traceback"]
    assert reports[1]["error"]["same_as"] == reports[0]["config_id"]


@pytest.mark.parametrize("method", ["zygote", "fresh", "fork"])
def test_plugin_registered_in_process_reaches_every_start_method(method: str, tmp_path) -> None:
    """A framework plugin registered through the API (a class defined here, not
    importable by a new interpreter) is sent to zygote and fresh benchmarkers
    serialised, and inherited by fork."""
    from npf_core.plugin.hookspecs import hookimpl
    from npf_plugins.frameworks.python import PythonFramework

    from .support import MODELS

    class InProcessOnly:
        @hookimpl
        def npf_register_frameworks(self, registry: Any) -> None:
            registry.add("in-process-only", PythonFramework)

    spec = {
        "model": {"framework": "in-process-only", "target": f"{MODELS}:Faulty"},
        "inputs": [{"shape": [1]}],
        "start_method": method,
        "duration_s": 0.2,
        "output": {"dir": str(tmp_path / "out"), "reporters": []},
    }
    reports = npf_core.benchmark(spec, extra_plugins=(InProcessOnly(),))
    assert [(r.status, r.start_method) for r in reports] == [("ok", method)] * 4, [r.error for r in reports]


def test_plugin_that_cannot_be_serialised_is_a_clear_error(spawn_guard, tmp_path) -> None:
    import threading

    from npf_core.errors import ObjectTransferError
    from npf_core.plugin.hookspecs import hookimpl
    from npf_plugins.frameworks.python import PythonFramework

    from .support import MODELS

    class HoldsALock:
        def __init__(self) -> None:
            self.lock = threading.Lock()

        @hookimpl
        def npf_register_frameworks(self, registry: Any) -> None:
            registry.add("holds-a-lock", PythonFramework)

    spec = {
        "model": {"framework": "holds-a-lock", "target": f"{MODELS}:Faulty"},
        "inputs": [{"shape": [1]}],
        "duration_s": 0.2,
        "output": {"dir": str(tmp_path / "out"), "reporters": []},
    }
    with pytest.raises(ObjectTransferError, match=r"\$\.extra_plugins: the plugin .*HoldsALock.* cannot be "
                       r"serialised for a 'zygote' benchmarker \(TypeError: cannot pickle '_thread.lock'.*'fork'"):
        npf_core.benchmark(spec, extra_plugins=(HoldsALock(),))
    assert spawn_guard == []
    # the same plugin is fine where plugins are inherited: fork
    reports = npf_core.benchmark(
        {**spec, "start_method": "fork", "n_models": [1], "workers_per_model": [1]}, extra_plugins=(HoldsALock(),)
    )
    assert [r.status for r in reports] == ["ok"]
