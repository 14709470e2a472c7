"""The zygote start method with real processes: one clean zygote serves the run,
its copies lead their own process groups and are not forks of the caller, exit
statuses come from the zygote, a zygote that dies or cannot start fails the
configuration (the next starts a new one), and nothing outlives a run."""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

import npf_core
from npf_core.plugin import events as ev
from npf_core.plugin.hookspecs import Framework, hookimpl
from npf_core.supervisor.run import Supervisor

from .conftest import Cli, sweep_spec, wait_for, write_json

PROBE = '''
import os, sys, threading, time
from pathlib import Path


class Probe:
    """Leaves "pid ppid pgrp torch-imported threads" in NPF_MARKER_DIR as it loads;
    each call sleeps NPF_PROBE_S (default 1 ms)."""

    def __init__(self):
        ps = len(os.listdir("/proc/self/task"))
        line = f"{os.getpid()} {os.getppid()} {os.getpgrp()} {int('torch' in sys.modules)} {ps}"
        (Path(os.environ["NPF_MARKER_DIR"]) / str(os.getpid())).write_text(line)
        self.s = float(os.environ.get("NPF_PROBE_S", "0.001"))

    def __call__(self, x):
        time.sleep(self.s)
        return x
'''


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], Path]:
    (tmp_path / "probe.py").write_text(textwrap.dedent(PROBE))
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv("NPF_MARKER_DIR", str(markers))
    return {"framework": "python", "target": f"{tmp_path / 'probe.py'}:Probe"}, markers


def marks(markers: Path) -> list[list[int]]:
    return [[int(x) for x in m.read_text().split()] for m in sorted(markers.iterdir())]


def zygote_processes() -> list[psutil.Process]:
    return [p for p in psutil.Process().children() if "npf_core.child.zygote" in " ".join(p.cmdline())]


@pytest.mark.parametrize("reuse", [True, False])
def test_one_zygote_forks_every_copy_of_the_run(
    probe: tuple[dict[str, Any], Path], tmp_path: Path, reuse: bool
) -> None:
    model, markers = probe
    spec = sweep_spec(tmp_path / "out", model=model, n_models=[1, 2], workers_per_model=[1, 2], duration_s=0.1,
                      reuse_copies=reuse)  # fmt: skip
    reports = npf_core.benchmark(spec)
    assert [(r.status, r.start_method) for r in reports] == [("ok", "zygote")] * 4, [r.error for r in reports]
    assert all(r.valid or "fork" not in " ".join(r.validity_reasons) for r in reports)
    seen = marks(markers)
    # reuse: copy 0, and copy 1 once n_models grows, each kept for the rest; else 1 + 1 + 2 + 2 copies
    assert len(seen) == (2 if reuse else 6)
    parents = {ppid for _, ppid, _, _, _ in seen}
    assert len(parents) == 1 and os.getpid() not in parents  # one zygote, not this process
    assert all(pgrp == pid for pid, _, pgrp, _, _ in seen)  # each leads its own process group
    assert not psutil.pid_exists(parents.pop()) or zygote_processes() == []
    assert psutil.Process().children(recursive=True) == []


def test_the_zygote_imports_the_frameworks_preimport_and_runs_nothing(
    probe: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    """A framework's preimport is imported once, in the zygote: its copies find it
    imported (the python framework imports nothing; a test framework asks for json)."""

    from npf_plugins.frameworks.python import PythonFramework

    class Preimporting(PythonFramework):
        preimport = ("xml.dom.minidom",)

    class Plugin:
        @hookimpl
        def npf_register_frameworks(self, registry: Any) -> None:
            registry.add("preimporting", Preimporting)

    model, markers = probe
    (tmp_path / "probe.py").write_text(
        textwrap.dedent(PROBE).replace("int('torch' in sys.modules)", "int('xml.dom.minidom' in sys.modules)")
    )
    spec = sweep_spec(tmp_path / "out", model={**model, "framework": "preimporting"}, duration_s=0.1)
    (r,) = npf_core.benchmark(spec, extra_plugins=(Plugin(),))
    assert r.status == "ok", r.error
    ((_, _, _, imported, _),) = marks(markers)
    assert imported == 1


def test_a_zygote_that_cannot_import_fails_each_configuration_clearly(tmp_path: Path) -> None:
    from npf_plugins.frameworks.python import PythonFramework

    class Missing(PythonFramework):
        preimport = ("npf_no_such_module_anywhere",)

    class Plugin:
        @hookimpl
        def npf_register_frameworks(self, registry: Any) -> None:
            registry.add("missing", Missing)

    spec = sweep_spec(tmp_path / "out", model={"framework": "missing", "target": "json:dumps"},
                      workers_per_model=[1, 2])  # fmt: skip
    reports = npf_core.benchmark(spec, extra_plugins=(Plugin(),))
    assert [r.status for r in reports] == ["error", "error"]  # a new zygote is tried for the second
    for r in reports:
        assert r.error is not None
        assert (r.error.type, r.error.stage) == ("ModuleNotFoundError", "start-up")
        assert r.error.message.startswith("the zygote (framework 'missing') could not start: ModuleNotFoundError")
        assert "npf_no_such_module_anywhere" in r.error.traceback
    assert psutil.Process().children(recursive=True) == []


@pytest.mark.anyio
async def test_a_zygote_killed_during_a_configuration_fails_it_and_the_next_gets_a_new_one(
    probe: tuple[dict[str, Any], Path], tmp_path: Path, anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, markers = probe
    monkeypatch.setenv("NPF_PROBE_S", "0.01")
    spec = sweep_spec(tmp_path / "out", model=model, n_models=[2], workers_per_model=[1, 2], duration_s=1.0)
    killed = []
    with anyio.fail_after(60):
        async with Supervisor(spec) as sup:
            async for event in sup.events():
                if isinstance(event, ev.Progress) and event.index == 0 and not killed:
                    (zygote,) = zygote_processes()
                    killed.append(zygote.pid)
                    zygote.kill()
    first, second = sup.reports
    assert first.status == "error" and second.status == "ok", (first.error, second.error)
    assert first.error is not None and first.error.type == "BenchmarkerDied"
    assert f"was killed by SIGKILL with its zygote (pid {killed[0]}), which was killed by SIGKILL" in (
        first.error.message
    )
    parents = [ppid for _, ppid, _, _, _ in marks(markers)]
    assert parents.count(killed[0]) == 2 and len(set(parents)) == 2  # the second configuration: a new zygote
    assert psutil.Process().children(recursive=True) == []


@pytest.mark.anyio
async def test_cancelling_an_embedding_task_ends_the_zygote_and_its_copies(
    probe: tuple[dict[str, Any], Path], tmp_path: Path, anyio_backend: str
) -> None:
    model, markers = probe
    spec = sweep_spec(tmp_path / "out", model=model, n_models=[2], duration_s=30)
    pids: list[int] = []
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                await npf_core.abenchmark(spec)

            tg.start_soon(run)
            await anyio.to_thread.run_sync(wait_for, lambda: len(list(markers.iterdir())) == 2, 20, "two copies")
            pids = [p.pid for p in psutil.Process().children(recursive=True)]
            tg.cancel_scope.cancel()
    assert len(pids) == 3  # the zygote and its two copies
    assert psutil.Process().children(recursive=True) == []
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_fork_after_the_caller_imported_the_framework_is_flagged(tmp_path: Path) -> None:
    """start_method 'fork' marks each report when the caller has imported what the
    framework pre-imports; the zygote (the default) does not."""
    import json  # noqa: F401 - the framework's preimport, imported here

    from npf_plugins.frameworks.python import PythonFramework

    class JsonFramework(PythonFramework):
        preimport = ("json",)

    class Plugin:
        @hookimpl
        def npf_register_frameworks(self, registry: Any) -> None:
            registry.add("json-fw", JsonFramework)

    base = sweep_spec(tmp_path / "out", model={"framework": "json-fw", "target": "json:JSONDecoder"},
                      inputs=[{"shape": [1]}])  # fmt: skip
    base["model"]["target"] = lambda: (lambda x: x)
    (forked,) = npf_core.benchmark({**base, "start_method": "fork"}, extra_plugins=(Plugin(),))
    (zygote,) = npf_core.benchmark(base, extra_plugins=(Plugin(),))
    assert forked.status == zygote.status == "ok"
    note = next(n for n in forked.validity_reasons if "forked from a process that had already imported json" in n)
    assert "start_method 'zygote'" in note and not forked.valid
    assert zygote.start_method == "zygote" and not any("forked" in n for n in zygote.validity_reasons)
    assert Framework({}).fork_note() is None  # nothing to pre-import: nothing to flag


def test_a_zygote_killed_from_outside_fails_one_configuration(
    probe: tuple[dict[str, Any], Path], cli: Cli, tmp_path: Path
) -> None:
    """The command line: the configuration whose copy died with the zygote fails;
    the next ones run on a new zygote; nothing is left."""
    model, markers = probe
    spec = write_json(tmp_path / "spec.json", sweep_spec(tmp_path / "out", model=model, n_models=[1],
                                                          workers_per_model=[1, 2, 3], duration_s=0.5))  # fmt: skip
    proc = cli.start("run", str(spec), "-q", NPF_MARKER_DIR=str(markers))
    try:
        wait_for(lambda: len(list(markers.iterdir())) >= 1, 30, "the first copy")
        zygote = next(p for p in cli.survivors() if "npf_core.child.zygote" in " ".join(p.cmdline()))
        zygote.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err  # one configuration failed, the others ran
    assert "Traceback" not in err
    parents = [ppid for _, ppid, _, _, _ in marks(markers)]
    assert len(set(parents)) == 2 and parents.count(zygote.pid) == 1
    time.sleep(0.1)
    assert cli.survivors() == []
