"""Faults on the supervisor's side: a plugin that raises while a configuration
starts, and a results file that cannot be written."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest

import npf_core
from npf_core.plugin.hookspecs import Assignment, Device, hookimpl

from .support import make_spec


class HalfBrokenDevice(Device):
    """Assigns copy 0 fine, then fails for copy 1: a bug in a plugin, met after one
    benchmarker of the configuration has already started."""

    exclusive: ClassVar[bool] = False
    type_name: ClassVar[str] = "half-broken"

    def count(self) -> int:
        return 4

    def assign(self, copy_index: int, n_models: int, pipeline_size: int) -> Assignment:
        if copy_index == 1:
            raise RuntimeError("planted: the device plugin cannot assign copy 1")
        return Assignment(env={}, cpus=None, devices=[], label="")


class HalfBrokenPlugin:
    @hookimpl
    def npf_register_devices(self, registry: Any) -> None:
        registry.add("half-broken", HalfBrokenDevice)


@pytest.mark.parametrize("reuse", [False, True])
def test_plugin_bug_while_starting_is_a_failed_config(tmp_path: Path, spawn_guard, reuse: bool) -> None:
    spec = make_spec(tmp_path / "out", device="half-broken", n_models=[1, 2], workers_per_model=[1],
                     start_method="fork", reuse_copies=reuse)  # fmt: skip
    reports = npf_core.benchmark(spec, extra_plugins=(HalfBrokenPlugin(),))
    assert [(r.n_models, r.status) for r in reports] == [(1, "ok"), (2, "error")]
    error = reports[1].error
    assert error is not None
    assert error.type == "RuntimeError" and error.stage == "supervisor"
    assert "planted: the device plugin cannot assign copy 1" in error.message
    assert "assign" in error.traceback
    # without reuse, copy 0 of the failed configuration had started: it was reaped all the
    # same; with reuse, the copy 0 kept from the first configuration waited, and the run
    # released it at its end (nothing is left either way)
    assert spawn_guard == ([(0, "fork")] if reuse else [(0, "fork"), (0, "fork")])
    assert psutil.Process().children(recursive=True) == []


def test_output_folder_that_cannot_be_made_is_exit_2(write_spec, run_cli, spawn_guard, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the output folder should be")
    spec = write_spec(start_method="fork", output={"dir": str(blocker / "out"), "reporters": ["json", "csv"]})
    res = run_cli("run", str(spec), "-q")
    assert res.code == 2
    assert res.err.strip().splitlines() == [res.err.strip()]  # one line
    assert "$.output.dir" in res.err and "not-a-folder" in res.err
    assert spawn_guard == []


def test_results_that_cannot_be_written_mid_run_is_exit_1(
    write_spec, run_cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The disk fills up during the sweep: the sweep still runs to its end, and the
    command line says what was not written, and exits 1."""
    from npf_plugins.reporters import files

    def no_space(path: Path, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    import npf_core.results.store

    monkeypatch.setattr(files, "write_atomic", no_space)
    monkeypatch.setattr(npf_core.results.store, "write_atomic", no_space)
    res = run_cli("run", str(write_spec(start_method="fork")), "-q")
    assert res.code == 1
    said = [line for line in res.err.splitlines() if line.startswith("npf: error: ")]
    assert len(said) == 2 and all("No space left on device" in line for line in said), res.err
    assert any(line.startswith("npf: error: results file: ") for line in said), res.err
    assert any(line.startswith("npf: error: reporter failed: CsvReporter") for line in said), res.err
    assert "Traceback" not in res.err
