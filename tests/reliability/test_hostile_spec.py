"""Input that gets past the types but would do harm later (issue 20): nesting deep
enough to overflow a decoder's stack, a NUL or a control character where a path,
an environment variable or a terminal gets it, an infinite number, a spec file too
big to be settings. Each is exit 2 from the command line naming the field, one line,
no traceback, nothing started; or a SpecError from the API."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

import npf_core
from npf_core.errors import SpecError

from .conftest import sweep_spec, write_json


def _one_line_exit_2(run_cli: Any, spec: Path, where: str) -> str:
    code, _out, err = run_cli("run", str(spec), "-q")
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("npf: error: spec ") and where in lines[0], lines[0]
    return lines[0]


def test_a_spec_nested_100000_levels_is_exit_2_naming_where(run_cli, spawn_guard, tmp_path: Path) -> None:
    spec = sweep_spec(tmp_path / "out")
    text = json.dumps({**spec, "model": {**spec["model"], "options": {"a": "HOLE"}}})
    text = text.replace('"HOLE"', "[" * 100_000 + "]" * 100_000)
    (tmp_path / "spec.json").write_text(text)
    line = _one_line_exit_2(run_cli, tmp_path / "spec.json", "$.model.options.a[0]")
    from npf_core.spec.bounds import MAX_SPEC_DEPTH

    assert f"more than {MAX_SPEC_DEPTH} levels" in line
    assert spawn_guard == []
    assert not (tmp_path / "out").exists()


def test_nesting_the_decoder_survives_is_refused_too(run_cli, spawn_guard, tmp_path: Path) -> None:
    """200 levels decode (under the interpreter's recursion limit) but would break
    what encodes or pickles the spec later: refused at the same bound."""
    deep: Any = 1
    for _ in range(200):
        deep = {"k": deep}
    spec = write_json(tmp_path / "spec.json", sweep_spec(tmp_path / "out", device={"type": "cpu", "options": deep}))
    _one_line_exit_2(run_cli, spec, "$.device.options.k.k")
    assert spawn_guard == []


def test_a_nul_in_the_name_is_exit_2(run_cli, spawn_guard, tmp_path: Path) -> None:
    spec = write_json(tmp_path / "spec.json", sweep_spec(tmp_path / "out", name="a\x00b"))
    line = _one_line_exit_2(run_cli, spec, "$.name:")
    assert "NUL" in line
    assert spawn_guard == []


@pytest.mark.parametrize("char", ["\x1b", "\n", "\x07", "\u202e"])
def test_a_control_character_in_the_name_is_exit_2(char: str, run_cli, spawn_guard, tmp_path: Path) -> None:
    spec = write_json(tmp_path / "spec.json", sweep_spec(tmp_path / "out", name=f"model{char}[31m"))
    _one_line_exit_2(run_cli, spec, "$.name:")
    assert spawn_guard == []


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"model": {"framework": "python", "target": "models.py\x00:Sleepy"}}, "$.model.target"),
        ({"output": {"dir": "out\x00put"}}, "$.output.dir"),
        ({"device": {"type": "cpu", "options": {"oversubscribe": True, "x": ["a", "b\x00"]}}},
         "$.device.options.x[1]"),
        ({"inputs": [{"file": "x\x00.npy"}]}, "$.inputs[0].file"),
    ],
)  # fmt: skip
def test_a_nul_anywhere_names_its_field(fields: dict[str, Any], where: str, spawn_guard, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        npf_core.benchmark(sweep_spec(tmp_path / "out", **fields))
    assert info.value.path == where
    assert spawn_guard == []


def test_a_long_name_is_refused(run_cli, spawn_guard, tmp_path: Path) -> None:
    spec = write_json(tmp_path / "spec.json", sweep_spec(tmp_path / "out", name="n" * 5000))
    _one_line_exit_2(run_cli, spec, "$.name:")


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_non_finite_number_from_the_api_is_refused(value: float, spawn_guard, tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        npf_core.benchmark(sweep_spec(tmp_path / "out", window_s=value))
    assert info.value.path == "$.window_s"
    assert spawn_guard == []


def test_a_dict_that_holds_itself_is_refused(spawn_guard, tmp_path: Path) -> None:
    spec = sweep_spec(tmp_path / "out")
    options: dict[str, Any] = {}
    options["again"] = options
    spec["model"] = {**spec["model"], "options": options}
    with pytest.raises(SpecError) as info:
        npf_core.benchmark(spec)
    assert info.value.path.startswith("$.model.options.again.again")
    assert spawn_guard == []


def test_a_spec_file_too_big_is_refused_without_reading_it(run_cli, spawn_guard, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    with open(spec, "wb") as f:
        f.truncate(16 * 1024 * 1024 + 1)  # sparse: nothing is written
    line = _one_line_exit_2(run_cli, spec, "$:")
    assert "bytes" in line


@pytest.mark.parametrize("where", ["$.model.target", "$.preprocess"])
def test_paths_the_system_cannot_look_up_are_not_found(where: str, spawn_guard, tmp_path: Path) -> None:
    long = "d/" * 3000 + "m.py:Model"  # longer than PATH_MAX: looking it up raises ENAMETOOLONG
    field = where.removeprefix("$.")
    fields: dict[str, Any] = (
        {"model": {"framework": "python", "target": long}} if field == "model.target" else {field: long}
    )
    with pytest.raises(SpecError) as info:
        npf_core.benchmark(sweep_spec(tmp_path / "out", **fields))
    assert info.value.path == where


def test_the_deep_path_scanner_follows_keys_strings_and_lists() -> None:
    from npf_core.spec.bounds import deep_text_path

    text = '{"a": "[[[{", "b": [1, {"c, d": [[[[0]]]]}]}'
    assert deep_text_path(text, limit=4) == '$.b[1]["c, d"][0]'
    assert deep_text_path(text, limit=8) is None


def test_text_that_is_not_unicode_names_its_field(spawn_guard, tmp_path: Path) -> None:
    """A lone surrogate (possible in a Python str, not in UTF-8) made msgspec raise
    UnicodeEncodeError; found by the property tests."""
    spec = sweep_spec(tmp_path / "out", device={"type": "cpu", "options": {"oversubscribe": True, "x": "\ud800"}})
    with pytest.raises(SpecError) as info:
        npf_core.benchmark(spec)
    assert info.value.path == "$.device.options.x"
    with pytest.raises(SpecError) as info:
        npf_core.benchmark(sweep_spec(tmp_path / "out", name="\udcff"))
    assert info.value.path == "$.name"
