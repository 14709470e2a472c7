"""npf_core.compilation.compiler without torch: variants, compile processes, failures, the index.

A small framework plugin (``fakecc``, written to a temporary module so that the
compile processes can import it too) records every request it gets and writes a
JSON "artifact"; its behaviour depends on the batch size: 3 raises, 5 is killed by
SIGKILL, 7 hangs (with a child process of its own) until the timeout.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

import npf_core
from npf_core.compilation import model_index
from npf_core.compilation.compiler import compile_spec, plan_requests
from npf_core.errors import PluginError, SpecError, UserError
from npf_core.spec.schema import decode_spec
from npf_core.supervisor.run import benchmark

PLUGIN = '''
import json, os, signal, subprocess, sys, time
from pathlib import Path

from npf_core.plugin import resolve_reference
from npf_core.plugin.hookspecs import Framework, hookimpl


def record(**fields):
    with open(os.environ["FAKECC_LOG"], "a") as f:
        f.write(json.dumps({"pid": os.getpid(), **fields}) + "\\n")


class FakeCompiler(Framework):
    start_method = "fork"

    def compile(self, request):
        example = request.example()
        made = None
        if request.model_kind == "target" and request.model_ref.startswith("<object:"):
            made = resolve_reference(request.model_ref, Path(request.base_dir), {})()
        record(event="compile", made=type(made).__name__, tag=getattr(made, "tag", None),
               batch_size=request.batch_size, pipeline_size=request.pipeline_size,
               performance_level=request.performance_level, auto_cast=request.auto_cast,
               compiler_args=request.compiler_args, compiler_target=request.compiler_target,
               input_idx=request.input_idx, model_kind=request.model_kind, model_ref=request.model_ref,
               shapes=[list(x.shape) for x in example], output=request.output,
               modules=sorted(m for m in ("torch", "torch_neuronx") if m in sys.modules))
        if request.batch_size == 3:
            raise ValueError("batch 3 is not supported by this compiler")
        if request.batch_size == 5:
            os.kill(os.getpid(), signal.SIGKILL)
        if request.batch_size == 7:
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            record(event="grandchild", child=child.pid)
            time.sleep(60)
        Path(request.output).write_text(json.dumps({"shapes": [list(x.shape) for x in example]}))
        return {"args": request.compiler_args}

    def load(self, kind, ref, ctx):
        shapes = json.loads(Path(ref).read_text())["shapes"]

        def call(*xs):
            assert [list(x.shape) for x in xs] == shapes, (shapes, [x.shape for x in xs])
            time.sleep(0.001)

        return call


class Model:
    """A compile target (the fake compiler instantiates only one given as a live object)."""

    def __init__(self, tag="class"):
        self.tag = tag


@hookimpl
def npf_register_frameworks(registry):
    registry.add("fakecc", FakeCompiler)
'''


@pytest.fixture(scope="session")
def fakecc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[types.ModuleType]:
    folder = tmp_path_factory.mktemp("fakecc")
    (folder / "npf_test_fakecc.py").write_text(PLUGIN)
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("npf_test_fakecc")
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("npf_test_fakecc", None)


@pytest.fixture
def log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "fakecc.jsonl"
    monkeypatch.setenv("FAKECC_LOG", str(path))
    return path


def records(path: Path, event: str = "compile") -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [e for e in map(json.loads, path.read_text().splitlines()) if e["event"] == event]


def assert_gone(pid: int, within_s: float = 5.0) -> None:
    """The process exits (or is a zombie awaiting its reaper) within ``within_s``."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.05)
    pytest.fail(f"process {pid} is still running")


def write_spec(folder: Path, **fields: Any) -> Path:
    spec = {"model": {"framework": "fakecc", "target": "npf_test_fakecc:Model"}, **fields}
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def test_every_variant_compiles_in_its_own_process_and_failures_are_recorded(
    tmp_path: Path, fakecc: types.ModuleType, log: Path
) -> None:
    spec = write_spec(
        tmp_path,
        name="net",
        inputs=[{"shape": [1, 2]}, {"shape": [3, 2]}, [{"shape": [5, 2]}, {"shape": [5], "dtype": "int64"}]],
        batch_sizes=[1, 3, 5],
        compile={"performance_levels": [0, 2], "compiler_args": "--optlevel 1 --model-type 'generic'",
                 "compiler_target": "trn1"},
    )  # fmt: skip
    path = compile_spec(spec, extra_plugins=(fakecc,))
    assert path == str(tmp_path / "net_index.json")
    on_disk = json.loads(Path(path).read_text())
    got = [(e["filename"], e["input_idx"], e["batch_size"], e["performance_level"], e["status"])
           for e in on_disk["model_configs"]]  # fmt: skip
    assert got == [
        ("models/net_i0_b1_p1_l0.pt", 0, 1, 0, "finished"),
        ("models/net_i0_b1_p1_l2.pt", 0, 1, 2, "finished"),
        ("models/net_i1_b3_p1_l0.pt", 1, 3, 0, "error"),
        ("models/net_i1_b3_p1_l2.pt", 1, 3, 2, "error"),
        ("models/net_i2_b5_p1_l0.pt", 2, 5, 0, "error"),
        ("models/net_i2_b5_p1_l2.pt", 2, 5, 2, "error"),
    ]
    entries = on_disk["model_configs"]
    assert all(e["compile_s"] >= 0 for e in entries[:2]) and all(e["compile_s"] is None for e in entries[2:])
    assert entries[0]["compile_info"] == {"args": ["--optlevel", "1", "--model-type", "generic"]}
    assert entries[2]["error"].startswith("ValueError: batch 3 is not supported by this compiler")
    assert "killed by SIGKILL" in entries[4]["error"]
    models = tmp_path / "models"
    assert sorted(p.name for p in models.iterdir()) == [
        "net_i0_b1_p1_l0.pt", "net_i0_b1_p1_l2.pt",
        "net_i1_b3_p1_l0.pt.log", "net_i1_b3_p1_l2.pt.log", "net_i2_b5_p1_l0.pt.log", "net_i2_b5_p1_l2.pt.log",
    ]  # fmt: skip  (no partial artifacts are left; failures keep their output)
    assert "Traceback" in (models / "net_i1_b3_p1_l0.pt.log").read_text()

    seen = records(log)
    assert len(seen) == 6
    pids = {e["pid"] for e in seen}
    assert len(pids) == 6 and os.getpid() not in pids  # one fresh process per variant
    assert [e["shapes"] for e in seen[::2]] == [[[1, 2]], [[3, 2]], [[5, 2], [5]]]
    assert {e["compiler_target"] for e in seen} == {"trn1"}
    assert [e["performance_level"] for e in seen] == [0, 2] * 3
    assert all(e["model_kind"] == "target" and e["model_ref"] == "npf_test_fakecc:Model" for e in seen)


def test_the_index_a_compile_writes_is_what_run_benchmarks(tmp_path: Path, fakecc: types.ModuleType, log: Path) -> None:
    spec = write_spec(
        tmp_path,
        inputs=[{"shape": [1, 2]}, {"shape": [3, 2]}, {"shape": [4, 2]}],
        batch_sizes=[1, 3, 4],
        compile={"auto_cast": ["matmult"], "models_dir": "out/models", "filename": "{model_name}.json"},
    )
    path = compile_spec(spec, extra_plugins=(fakecc,))
    assert path == str(tmp_path / "Model.json")
    index = model_index.load(path)
    assert [(e["batch_size"], e["status"], e.get("cast_mode")) for e in index["model_configs"]] == [
        (1, "finished", "matmult"), (3, "error", "matmult"), (4, "finished", "matmult")
    ]  # fmt: skip
    first = model_index.resolve_filename(index["model_configs"][0]["filename"], path)
    assert index["model_configs"][0]["filename"] == "out/models/Model_i0_b1_p1_matmult.pt"  # relative to the index
    assert Path(first) == tmp_path / "out" / "models" / "Model_i0_b1_p1_matmult.pt"
    run_spec = {
        "model": {"framework": "fakecc", "index": path},
        "inputs": [{"shape": [1, 2]}, {"shape": [3, 2]}, {"shape": [4, 2]}],
        "n_models": [1], "workers_per_model": [1], "duration_s": 0.3,
    }  # fmt: skip
    reports = benchmark(run_spec, extra_plugins=(fakecc,), reporters=[])
    assert [(r.batch_size, r.status, r.performance_level) for r in reports] == [
        (1, "ok", "matmult"), (4, "ok", "matmult")
    ], [r.error for r in reports]  # fmt: skip
    assert all(r.total_infs == r.total_calls * r.batch_size > 0 for r in reports)


def test_a_hung_compile_times_out_and_its_whole_process_group_is_killed(
    tmp_path: Path, fakecc: types.ModuleType, log: Path
) -> None:
    spec = write_spec(tmp_path, inputs=[{"shape": [7, 2]}, {"shape": [1, 2]}], batch_sizes=[7, 1])
    t0 = time.monotonic()
    path = compile_spec(spec, timeout_s=2, extra_plugins=(fakecc,))
    assert time.monotonic() - t0 < 30
    hung, fine = model_index.load(path)["model_configs"]
    assert hung["status"] == "error" and "timed out after 2 s" in hung["error"]
    assert fine["status"] == "finished"
    (grandchild,) = records(log, "grandchild")
    assert_gone(grandchild["child"])  # the compiler's own children go with it


def test_neuronperf_shaped_call_with_arrays_and_a_class(tmp_path: Path, fakecc: types.ModuleType, log: Path) -> None:
    inputs = [np.zeros((1, 4), np.float32), (np.ones((2, 4), np.float32), np.arange(2))]
    path = npf_core.compile(
        fakecc.Model,
        inputs,
        batch_sizes=[1, 2],
        pipeline_sizes=[1, 2],
        models_dir=tmp_path / "m",
        model_name="np",
        filename=tmp_path / "np_index.json",
        compiler_args={"--optlevel": 1, "--verbose": None},
        framework="fakecc",
        extra_plugins=(fakecc,),
    )
    assert path == str(tmp_path / "np_index.json")
    index = model_index.load(path)
    got = [(e["input_idx"], e["batch_size"], e["pipeline_size"], e["status"]) for e in index["model_configs"]]
    assert got == [(0, 1, 1, "finished"), (0, 1, 2, "finished"), (1, 2, 1, "finished"), (1, 2, 2, "finished")]
    assert all(Path(model_index.resolve_filename(e["filename"], path)).parent == tmp_path / "m"
               for e in index["model_configs"])  # fmt: skip
    seen = records(log)
    assert [e["pipeline_size"] for e in seen] == [1, 2, 1, 2]
    assert {tuple(e["compiler_args"]) for e in seen} == {("--optlevel", "1", "--verbose")}
    assert [e["shapes"] for e in seen[::2]] == [[[1, 4]], [[2, 4], [2]]]
    assert seen[0]["model_ref"] == "npf_test_fakecc:Model"


def plan(tmp_path: Path, **fields: Any) -> list[Any]:
    data = {"model": {"framework": "fakecc", "target": "npf_test_fakecc:Model"}, "inputs": [{"shape": [1]}], **fields}
    return plan_requests(decode_spec(data, tmp_path))[1]


@pytest.mark.parametrize(
    ("fields", "path", "text"),
    [
        ({"compile": {"performance_levels": [1], "auto_cast": ["all"]}}, "compile.auto_cast", "not both"),
        ({"compile": {"performance_levels": []}}, "compile", "at least one"),
        ({"compile": {"artifact": "{model_name}.pt"}, "pipeline_sizes": [1, 2]}, "compile.artifact", "both"),
        ({"compile": {"artifact": "{batch}.pt"}}, "compile.artifact", "placeholders"),
        ({"compile": {"artifact": "../x{cast}.pt"}}, "compile.artifact", "inside models_dir"),
        ({"inputs": None, "dataset": {"plugin": "synthetic", "options": {"shapes": [[1]]}}}, "inputs", "dataset"),
    ],
)
def test_compile_plans_reject_what_cannot_be_compiled(
    tmp_path: Path, fakecc: types.ModuleType, fields: dict[str, Any], path: str, text: str
) -> None:
    with pytest.raises(SpecError) as info:
        plan(tmp_path, **fields)
    assert info.value.path == f"$.{path}" and text in str(info.value), str(info.value)


def test_compile_spec_checks_before_starting_anything(tmp_path: Path, fakecc: types.ModuleType, log: Path) -> None:
    with pytest.raises(SpecError, match=r"\$\.compile\.performance_levels\[0\]: Expected `int` <= 3"):
        compile_spec(write_spec(tmp_path, inputs=[{"shape": [1]}], compile={"performance_levels": [4]}))
    (tmp_path / "i.json").write_text(json.dumps(model_index.create("x.pt")))
    with pytest.raises(SpecError, match=r"model.index: compile needs the model itself"):
        compile_spec({"model": {"framework": "fakecc", "index": str(tmp_path / "i.json")}, "inputs": [{"shape": [1]}]},
                     extra_plugins=(fakecc,))  # fmt: skip
    with pytest.raises(PluginError, match=r"framework 'python' cannot compile models"):
        compile_spec({"model": {"framework": "python", "target": "npf_test_fakecc:Model"}, "inputs": [{"shape": [1]}]})
    assert not records(log) and not (tmp_path / "models").exists()


def test_api_sends_an_instance_and_a_local_class_to_the_compile_process(
    tmp_path: Path, fakecc: types.ModuleType, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NeuronPerf's docs pass the model instance (``npf.torch.compile(model, ...)``): it
    reaches the fresh compile process by cloudpickle, as does a class defined in a
    function."""

    class Local:
        tag = "local"

    monkeypatch.chdir(tmp_path)
    path = npf_core.compile(fakecc.Model(tag="instance-7"), [np.zeros((1, 2))], framework="fakecc",
                            extra_plugins=(fakecc,))  # fmt: skip
    index = model_index.load(path)
    assert index["model_name"] == "Model" and [e["status"] for e in index["model_configs"]] == ["finished"]
    npf_core.compile(Local, [np.zeros((1, 2))], framework="fakecc", extra_plugins=(fakecc,))
    seen = records(log)
    assert [(e["made"], e["tag"]) for e in seen] == [("Model", "instance-7"), ("Local", "local")]
    assert all(e["model_ref"].startswith("<object:") for e in seen)
    with pytest.raises(UserError, match=r"batch_sizes given without inputs"):
        npf_core.compile("spec.json", batch_sizes=[1])


def test_compile_command_exit_codes(tmp_path: Path) -> None:
    def npf(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "npf_core", "compile", *args],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip

    missing = npf("nope.json")
    assert missing.returncode == 2 and "nope.json" in missing.stderr and "Traceback" not in missing.stderr
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"model": {"framework": "python", "target": "os:getcwd"}, "inputs": [{"shape": [1]}]}))
    cannot = npf(str(spec))
    assert cannot.returncode == 2 and cannot.stderr.strip().count("\n") == 0
    assert "cannot compile models" in cannot.stderr


def test_interrupting_a_compile_kills_the_compile_process_and_its_children(
    tmp_path: Path, fakecc: types.ModuleType, log: Path
) -> None:
    spec = write_spec(tmp_path, inputs=[{"shape": [7, 2]}], batch_sizes=[7])
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(fakecc.__file__).parent)!r})\n"
        "import npf_test_fakecc\n"
        "from npf_core.compilation.compiler import compile_spec\n"
        f"compile_spec({str(spec)!r}, extra_plugins=(npf_test_fakecc,))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while not records(log, "grandchild") and time.monotonic() < deadline:
        time.sleep(0.05)
    (grandchild,) = records(log, "grandchild")
    (worker,) = records(log)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert b"KeyboardInterrupt" in out
    assert_gone(worker["pid"])
    assert_gone(grandchild["child"])
    assert not (tmp_path / "Model_index.json").exists()  # nothing finished, nothing written
