"""npf_core.compilation.model_index: NeuronPerf's index API and JSON shape, and a spec's ``model.index``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from npf_core.compilation import model_index
from npf_core.errors import ModelIndexError, SpecError, UserError
from npf_core.plugin.hookspecs import ChildContext, Framework, Registry, hookimpl
from npf_core.supervisor.run import benchmark


def touch(path: Path, text: str = "model") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_create_has_neuronperf_shape_and_defaults() -> None:
    index = model_index.create("models/m.pt", batch_size=4, compile_s=1.5)
    assert index["model_name"] == "models/m.pt"  # NeuronPerf: the filename, as given
    assert index["npf_index_format"] == model_index.INDEX_FORMAT
    assert isinstance(index["version"], str) and index["version"]
    assert index["model_configs"] == [
        {
            "filename": "models/m.pt",
            "input_idx": 0,
            "batch_size": 4,
            "pipeline_size": 1,
            "compile_s": 1.5,
            "status": "finished",
            "performance_level": 3,
        }
    ]
    # NeuronPerf's positional order: filename, model_name, batch_size, pipeline_size,
    # performance_level, compile_s, status
    level = model_index.create("a.pt", "net", 2, 3, 1, 0.5, "error", input_idx=1, error="boom")
    (entry,) = level["model_configs"]
    assert level["model_name"] == "net"
    assert (entry["input_idx"], entry["batch_size"], entry["pipeline_size"]) == (1, 2, 3)
    assert (entry["performance_level"], entry["compile_s"]) == (1, 0.5)
    assert (entry["status"], entry["error"]) == ("error", "boom")
    # the docs' positional order: filename, input_idx, batch_size, pipeline_size, cast_mode, compile_s
    docs = model_index.create("b.pt", 1, 8, 2, "matmult", 2.0)
    (entry,) = docs["model_configs"]
    assert (entry["input_idx"], entry["batch_size"], entry["pipeline_size"]) == (1, 8, 2)
    assert (entry["cast_mode"], entry["compile_s"], "performance_level" in entry) == ("matmult", 2.0, False)
    assert docs["model_name"] == "b.pt"
    assert model_index.create("b.pt", cast_mode="matmult")["model_configs"][0]["cast_mode"] == "matmult"
    assert "performance_level" not in model_index.create("c.pt", performance_level=None)["model_configs"][0]


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"batch_size": 0}, "$.model_configs[0].batch_size"),
        ({"pipeline_size": "2"}, "$.model_configs[0].pipeline_size"),
        ({"input_idx": -1}, "$.model_configs[0].input_idx"),
        ({"compile_s": -1.0}, "$.model_configs[0].compile_s"),
    ],
)
def test_create_rejects_bad_values_naming_the_field(kwargs: dict[str, Any], where: str) -> None:
    with pytest.raises(ModelIndexError) as info:
        model_index.create("m.pt", **kwargs)
    assert where in str(info.value)
    assert isinstance(info.value, UserError)


def test_save_and_load_keep_filenames_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NeuronPerf's rule: an index holds its filenames exactly as given, in memory and
    in the file; ``save`` adds ``.json`` and returns the name as given."""
    monkeypatch.chdir(tmp_path)
    outside = touch(tmp_path / "elsewhere" / "b.pt")
    index = model_index.append(model_index.create("proj/models/a.pt"), model_index.create(str(outside)))
    path = model_index.save(index, "proj/idx")
    assert path == os.path.join("proj", "idx.json")
    on_disk = json.loads(Path(path).read_text())
    assert [e["filename"] for e in on_disk["model_configs"]] == ["proj/models/a.pt", str(outside)]
    assert on_disk["npf_index_format"] == model_index.INDEX_FORMAT
    assert model_index.load(path) == index


def test_relative_filenames_resolve_beside_the_index_else_in_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    beside = touch(tmp_path / "proj" / "models" / "a.pt")
    in_cwd = touch(tmp_path / "models" / "b.pt")
    index_file = tmp_path / "proj" / "idx.json"
    # npf's compile writes artifacts relative to the index: they follow the index
    assert model_index.resolve_filename("models/a.pt", index_file) == str(beside)
    # NeuronPerf's indexes hold names relative to the cwd
    assert model_index.resolve_filename("models/b.pt", index_file) == str(in_cwd)
    assert model_index.resolve_filename(str(in_cwd), index_file) == str(in_cwd)
    # neither exists: beside the index (where an error message should point)
    assert model_index.resolve_filename("models/c.pt", index_file) == str(tmp_path / "proj" / "models" / "c.pt")
    assert model_index.relative_path(beside, tmp_path / "proj") == "models/a.pt"
    assert model_index.relative_path(in_cwd, tmp_path / "proj") == str(in_cwd)
    # rebased: the same files seen from an index written elsewhere
    moved = model_index.rebased(model_index.create("models/a.pt"), index_file, tmp_path / "out" / "x.json")
    assert model_index.resolve_filename(moved["model_configs"][0]["filename"], tmp_path / "out" / "x.json") == str(
        beside
    )


def test_save_without_a_filename_generates_one_and_root_dir_places_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    index = model_index.create("m.pt", model_name="resnet")
    first, second = model_index.save(index), model_index.save(index)
    assert first != second
    for p in (first, second):
        assert Path(p).parent == Path(".") and Path(p).name.startswith("resnet_") and p.endswith(".json")
        assert len(Path(p).stem) == len("resnet_") + 8
        assert model_index.load(p)["model_name"] == "resnet"
    placed = model_index.save(index, "i.json", root_dir=str(tmp_path / "sub"))
    assert placed == str(tmp_path / "sub" / "i.json")
    assert model_index.load(placed)["model_configs"][0]["filename"] == "m.pt"
    name = model_index.generate_name("net")
    assert name.startswith("net_") and name.endswith(model_index.MODEL_INDEX_SUFFIX)
    assert len(model_index.generate_id(12)) == 12 and model_index.generate_id().isalnum()


def test_load_accepts_a_neuronperf_index_and_keeps_unknown_keys(tmp_path: Path) -> None:
    # NeuronPerf's documented example: no model_name, no status, no format field
    (tmp_path / "np.json").write_text(
        json.dumps(
            {
                "version": "0.0.0.0+0bc220a",
                "model_configs": [
                    {"filename": "models/model_b1_p1_38793jda.pt", "input_idx": 0, "batch_size": 1,
                     "pipeline_size": 1, "compile_s": 5.32, "cast_mode": None, "vendor_note": "x"}
                ],
                "custom_top": [1, 2],
            }
        )
    )  # fmt: skip
    index = model_index.load(tmp_path / "np.json")
    (entry,) = index["model_configs"]
    assert entry["status"] == "finished"
    assert entry["filename"] == "models/model_b1_p1_38793jda.pt"
    assert entry["vendor_note"] == "x" and "cast_mode" not in entry
    assert index["version"] == "0.0.0.0+0bc220a" and index["custom_top"] == [1, 2]
    again = model_index.load(model_index.save(index, tmp_path / "copy.json"))
    assert again["model_configs"][0]["vendor_note"] == "x" and again["custom_top"] == [1, 2]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "expected a JSON object"),
        ('{"version": "1"}', "model_configs"),
        ('{"model_configs": [{"filename": "a.pt"}, {"filename": "b.pt", "batch_size": 1.5}]}',
         "$.model_configs[1].batch_size"),
        ('{"model_configs": [{"batch_size": 1}]}', "filename"),
        ('{"npf_index_format": 99, "model_configs": []}', "upgrade npf"),
    ],
)  # fmt: skip
def test_load_rejects_malformed_indexes_with_the_file_and_field(tmp_path: Path, content: str, expected: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(content)
    with pytest.raises(ModelIndexError) as info:
        model_index.load(f)
    message = str(info.value)
    assert str(f) in message and expected in message, message


def test_load_of_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelIndexError, match=r"cannot read it: No such file"):
        model_index.load(tmp_path / "nope.json")


def test_append_keeps_order_removes_duplicates_and_takes_the_first_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    a = model_index.create("m_b1.pt", model_name="first", batch_size=1)
    b = model_index.create("m_b4.pt", model_name="second", batch_size=4)
    saved_a = model_index.save(a, "sub/a.json")  # written as "../m_b1.pt": not inside sub/, so absolute
    same_as_a = model_index.create(str(tmp_path / "m_b1.pt"), batch_size=1, compile_s=9.0)
    other_pipeline = model_index.create("m_b1.pt", batch_size=1, pipeline_size=2)
    combined = model_index.append(saved_a, b, same_as_a, other_pipeline, b)
    assert combined["model_name"] == "first"
    got = [(Path(e["filename"]).name, e["batch_size"], e["pipeline_size"]) for e in combined["model_configs"]]
    assert got == [("m_b1.pt", 1, 1), ("m_b4.pt", 4, 1), ("m_b1.pt", 1, 2)]
    assert combined["model_configs"][0]["compile_s"] is None  # the first of the duplicates is kept
    assert a["model_configs"][0]["filename"] == "m_b1.pt"  # inputs untouched
    with pytest.raises(ModelIndexError):
        model_index.append()


def test_filter_takes_scalars_lists_and_neuronperf_plurals() -> None:
    index = model_index.append(
        *(
            model_index.create(f"m_b{b}_p{p}.pt", batch_size=b, pipeline_size=p, status=s)
            for b, p, s in [(1, 1, "finished"), (4, 1, "finished"), (4, 2, "error"), (8, 2, "finished")]
        )
    )

    def names(i: dict[str, Any]) -> list[str]:
        return [e["filename"] for e in i["model_configs"]]

    assert names(model_index.filter(index, batch_size=4)) == ["m_b4_p1.pt", "m_b4_p2.pt"]
    assert names(model_index.filter(index, batch_sizes=[1, 8])) == ["m_b1_p1.pt", "m_b8_p2.pt"]
    assert names(model_index.filter(index, pipeline_sizes=2, status="finished")) == ["m_b8_p2.pt"]
    assert names(model_index.filter(index, statuses=("error",))) == ["m_b4_p2.pt"]
    assert names(model_index.filter(index, performance_level=None)) == names(index)
    assert names(model_index.filter(index, batch_size=[1, 4], batch_sizes=[4, 8])) == ["m_b4_p1.pt", "m_b4_p2.pt"]
    assert names(model_index.filter(index, batch_size=[])) == []
    assert len(index["model_configs"]) == 4  # a new index; the old one is unchanged
    with pytest.raises(ModelIndexError, match=r"cannot filter on 'batch'.*batch_size"):
        model_index.filter(index, batch=1)


def test_copy_copies_the_model_files_and_rewrites_the_paths(tmp_path: Path) -> None:
    touch(tmp_path / "a" / "net.pt", "A")
    touch(tmp_path / "b" / "net.pt", "B")  # the same name from another folder
    touch(tmp_path / "saved" / "variables" / "v.bin", "dir")  # a folder artifact (e.g. a SavedModel)
    index = model_index.append(
        model_index.create(str(tmp_path / "a" / "net.pt"), model_name="m", batch_size=1),
        model_index.create(str(tmp_path / "b" / "net.pt"), batch_size=2),
        model_index.create(str(tmp_path / "saved"), batch_size=3),
        model_index.create(str(tmp_path / "never_built.pt"), batch_size=4, status="error", error="x"),
    )
    old = model_index.save(index, tmp_path / "old.json")
    new = model_index.copy(old, tmp_path / "new" / "index.json", tmp_path / "new" / "models")
    assert new == str(tmp_path / "new" / "index.json")
    on_disk = json.loads(Path(new).read_text())
    dest = tmp_path / "new" / "models"
    assert [e["filename"] for e in on_disk["model_configs"]] == [
        str(dest / "net.pt"), str(dest / "net_1.pt"), str(dest / "saved"), str(dest / "never_built.pt")
    ]  # fmt: skip
    assert (tmp_path / "new" / "models" / "net.pt").read_text() == "A"
    assert (tmp_path / "new" / "models" / "net_1.pt").read_text() == "B"
    assert (tmp_path / "new" / "models" / "saved" / "variables" / "v.bin").read_text() == "dir"
    assert (tmp_path / "a" / "net.pt").exists() and Path(old).exists()  # copy leaves the old ones


def test_copy_refuses_an_index_whose_finished_model_is_missing(tmp_path: Path) -> None:
    index = model_index.create(str(tmp_path / "gone.pt"))
    with pytest.raises(ModelIndexError, match=r"model_configs\[0\].*model file not found"):
        model_index.copy(index, tmp_path / "n.json", tmp_path / "n")
    assert not (tmp_path / "n.json").exists() and not (tmp_path / "n").exists()


def test_move_removes_the_old_files_and_index(tmp_path: Path) -> None:
    touch(tmp_path / "old" / "m.pt", "M")
    old = model_index.save(model_index.create(str(tmp_path / "old" / "m.pt")), tmp_path / "old" / "i.json")
    new = model_index.move(old, tmp_path / "new" / "i.json", tmp_path / "new" / "models")
    assert not Path(old).exists() and not (tmp_path / "old" / "m.pt").exists()
    (entry,) = model_index.load(new)["model_configs"]
    assert Path(entry["filename"]).read_text() == "M"
    # moving an index onto its own folder keeps its files
    again = model_index.move(new, new, tmp_path / "new" / "models")
    assert Path(again).exists() and Path(entry["filename"]).read_text() == "M"


def test_delete_removes_the_index_and_its_models_only(tmp_path: Path) -> None:
    touch(tmp_path / "models" / "a.pt")
    touch(tmp_path / "models" / "dir" / "x.bin")
    keep = touch(tmp_path / "models" / "unrelated.pt")
    index = model_index.append(
        model_index.create(str(tmp_path / "models" / "a.pt")),
        model_index.create(str(tmp_path / "models" / "dir"), batch_size=2),
        model_index.create(str(tmp_path / "models" / "missing.pt"), batch_size=3, status="error"),
    )
    path = model_index.save(index, tmp_path / "i.json")
    model_index.delete(path)
    assert not Path(path).exists()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [keep.name]


def test_index_command_line(tmp_path: Path) -> None:
    touch(tmp_path / "m1.pt")
    touch(tmp_path / "m4.pt")
    index = model_index.append(
        model_index.create(str(tmp_path / "m1.pt"), model_name="cli", batch_size=1),
        model_index.create(str(tmp_path / "m4.pt"), batch_size=4, status="error", error="compiler said no"),
    )
    path = model_index.save(index, tmp_path / "i.json")

    def npf(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "npf_core", "index", *args], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )

    shown = npf("show", path)
    assert shown.returncode == 0, shown.stderr
    assert "model cli, 2 entries" in shown.stdout and "compiler said no" in shown.stdout
    assert "batch 4" in shown.stdout and "m4.pt" in shown.stdout
    filtered = npf("filter", path, "four.json", "batch_size=4", "status=error,finished")
    assert filtered.returncode == 0, filtered.stderr
    assert [e["batch_size"] for e in model_index.load(tmp_path / "four.json")["model_configs"]] == [4]
    bad = npf("filter", path, "x.json", "batch=4")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "cannot filter on 'batch'" in bad.stderr
    missing = npf("show", "nope.json")
    assert missing.returncode == 2 and "nope.json" in missing.stderr and "Traceback" not in missing.stderr
    assert npf("delete", path).returncode == 0
    assert not Path(path).exists() and not (tmp_path / "m1.pt").exists()


# ---------------------------------------------------------------------------
# A spec with model.index (through a small framework that loads .py model files)
# ---------------------------------------------------------------------------

MODEL_FILE = """
import time

BATCH = {batch}


class Model:
    def __call__(self, x):
        if x.shape[0] != BATCH:  # the benchmarker must pass the input this entry's input_idx names
            raise ValueError(f"compiled for batch {{BATCH}}, called with {{x.shape}}")
        time.sleep(0.001)
        return x
"""


class PyFileFramework(Framework):
    """Loads ``model.py`` files (an index's entries) and instantiates their ``Model``."""

    def check(self, kind: str, ref: str, spec: Any) -> None:
        if kind == "path" and not Path(ref).is_file():
            raise SpecError("model.index", f"no such model file {ref!r}")

    def load(self, kind: str, ref: str, ctx: ChildContext) -> Any:
        from npf_core.plugin.references import resolve_reference

        return resolve_reference(f"{ctx.resolve(ref)}:Model", ctx.base_dir, ctx.objects)()


class PyFilePlugin:
    @hookimpl
    def npf_register_frameworks(self, registry: Registry[Framework]) -> None:
        registry.add("pyfile", PyFileFramework)


@pytest.fixture
def batch_index(tmp_path: Path) -> Path:
    """An index with batch sizes 1 (input 0) and 4 (input 1), and a failed variant."""
    proj = tmp_path / "proj"
    configs = []
    for idx, b in enumerate((1, 4)):
        touch(proj / "models" / f"m_b{b}.py", MODEL_FILE.format(batch=b))
        # relative to the index, as npf's compile writes them
        configs.append(model_index.create(f"models/m_b{b}.py", model_name="indexed", input_idx=idx, batch_size=b))
    configs.append(model_index.create("models/m_b8.py", input_idx=0, batch_size=8, status="error"))
    return Path(model_index.save(model_index.append(*configs), proj / "index.json"))


def run_index(index: Path, **fields: Any) -> list[Any]:
    spec = {
        "model": {"framework": "pyfile", "index": index.name},
        "inputs": [{"shape": [1, 3]}, {"shape": [4, 3]}],
        "n_models": [1],
        "workers_per_model": [1],
        "duration_s": 0.3,
        **fields,
    }
    spec_file = index.parent / "spec.json"
    spec_file.write_text(json.dumps(spec))
    return benchmark(spec_file, extra_plugins=(PyFilePlugin(),), reporters=[])


def test_a_spec_with_model_index_runs_every_finished_entry_on_its_input(batch_index: Path) -> None:
    reports = run_index(batch_index)
    assert [(r.batch_size, r.status) for r in reports] == [(1, "ok"), (4, "ok")], [r.error for r in reports]
    assert [r.model_filename for r in reports] == ["m_b1.py", "m_b4.py"]
    assert {r.model_name for r in reports} == {"indexed"}
    for r in reports:
        assert r.total_calls > 0
        assert r.total_infs == r.total_calls * r.batch_size


def test_batch_sizes_only_filter_the_index(batch_index: Path) -> None:
    reports = run_index(batch_index, batch_sizes=[4])
    assert [(r.batch_size, r.model_filename, r.status) for r in reports] == [(4, "m_b4.py", "ok")]
    assert reports[0].total_infs == reports[0].total_calls * 4
    with pytest.raises(SpecError, match=r"no finished entry"):
        run_index(batch_index, batch_sizes=[8])  # only a failed variant has batch size 8


def test_an_index_entry_needs_its_input_in_the_spec(batch_index: Path) -> None:
    with pytest.raises(SpecError, match=r"input_idx 1.*1 inputs"):
        run_index(batch_index, inputs=[{"shape": [1, 3]}])


def test_a_malformed_index_in_a_spec_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "index.json").write_text('{"model_configs": [{"filename": 3}]}')
    with pytest.raises(ModelIndexError, match=r"model_configs\[0\]\.filename"):
        run_index(tmp_path / "index.json")


def test_relative_paths_in_an_index_follow_the_index_file(batch_index: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere"
    shutil.copytree(batch_index.parent, moved)
    shutil.rmtree(batch_index.parent / "models")
    cwd = os.getcwd()
    reports = run_index(moved / "index.json", batch_sizes=[1])
    assert os.getcwd() == cwd
    assert [(r.batch_size, r.status) for r in reports] == [(1, "ok")], [r.error for r in reports]


def test_copy_and_move_to_a_relative_folder_store_relative_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NeuronPerf's scripts: ``copy(index, "new.json", "new_models")`` stores
    ``new_models/<name>``; ``move`` leaves the emptied old folder."""
    monkeypatch.chdir(tmp_path)
    touch(tmp_path / "models" / "m.model")
    index = model_index.create(os.path.join("models", "m.model"), model_name="M")
    assert model_index.save(index, "old") == "old.json"
    copied = model_index.copy(index, "new.json", "new_models")
    assert copied == "new.json"
    (entry,) = model_index.load("new.json")["model_configs"]
    assert entry["filename"] == os.path.join("new_models", "m.model")
    assert (tmp_path / "new_models" / "m.model").exists() and (tmp_path / "models" / "m.model").exists()
    assert index["model_configs"][0]["filename"] == os.path.join("models", "m.model")  # the argument is untouched
    moved = model_index.move("old.json", "moved.json", "moved_models")
    (entry,) = model_index.load(moved)["model_configs"]
    assert entry["filename"] == os.path.join("moved_models", "m.model")
    assert not (tmp_path / "old.json").exists() and not (tmp_path / "models" / "m.model").exists()
    assert (tmp_path / "models").is_dir()  # the folder stays; only the model files go


def test_filter_with_none_filters_nothing_and_delete_of_a_missing_index_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = model_index.append(model_index.create("fake", performance_level=2, compile_s=1),
                               model_index.create("fake2", compile_s=2))  # fmt: skip
    assert index["model_name"] == "fake"
    assert len(model_index.filter(index, compile_s=None)["model_configs"]) == 2
    assert [e["filename"] for e in model_index.filter(index, performance_level=2)["model_configs"]] == ["fake"]
    assert model_index.filter_configs(index["model_configs"], "compile_s", None) == index["model_configs"]
    assert model_index.filter_configs(index["model_configs"], "compile_s", 2) == [index["model_configs"][1]]
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        assert model_index.delete(tmp_path / "nothing.json") is None
    assert any(e["log_level"] == "warning" and "does not exist" in e["event"] for e in logs)
