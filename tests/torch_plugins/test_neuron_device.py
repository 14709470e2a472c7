"""The neuron device: core lists, the pool's sources (environment, neuron-ls through
the fake executable, sysfs, the option), and the cores each copy really sees."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from torch_helpers import HERE, read_jsonl

import npf_core
from npf_core.errors import DeviceUnavailable, SpecError
from npf_plugins.devices import neuron as neuron_mod
from npf_plugins.devices.neuron import NeuronDevice, cores_from_neuron_ls, format_cores, parse_cores

pytestmark = pytest.mark.torch

PLAIN = HERE / "plain_models.py"


# -- core lists ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cores"),
    [
        ("4-11", [4, 5, 6, 7, 8, 9, 10, 11]),
        ("0,2,3", [0, 2, 3]),
        ("3-5,6", [3, 4, 5, 6]),
        ("7", [7]),
        (" 1 - 2 , 0 ", [0, 1, 2]),
        ("8-9,0-1", [0, 1, 8, 9]),
        ("5-5", [5]),
    ],
)
def test_parse_cores(text: str, cores: list[int]) -> None:
    assert parse_cores(text) == cores


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("  ", "empty"),
        ("11-4", "backwards"),
        ("a", "'a' is not a core id"),
        ("1,,2", "'' is not a core id"),
        ("-1", "'-1' is not a core id"),
        ("1-2-3", "'1-2-3' is not a core id"),
        ("0-3,2", "core 2 is listed twice"),
        ("1.5", "'1.5' is not a core id"),
    ],
)
def test_parse_cores_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_cores(text)


def test_format_cores() -> None:
    assert format_cores([4, 5]) == "4-5"
    assert format_cores([3]) == "3"
    assert format_cores([0, 2]) == "0,2"
    with pytest.raises(ValueError):
        format_cores([])


# -- the pool --------------------------------------------------------------------


@pytest.fixture
def no_sysfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "sysfs"
    root.mkdir()
    monkeypatch.setattr(neuron_mod, "SYSFS_ROOT", root)
    return root


@pytest.fixture
def no_neuron_ls(monkeypatch: pytest.MonkeyPatch, clean_device_env: None, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_pool_from_the_environment(monkeypatch: pytest.MonkeyPatch, no_sysfs: Path) -> None:
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "4-11")
    dev = NeuronDevice({})
    dev.check()
    assert dev.count() == 8
    assert dev.source == "NEURON_RT_VISIBLE_CORES"
    envs = [dev.assign(i, 4, 2)["env"]["NEURON_RT_VISIBLE_CORES"] for i in range(4)]
    assert envs == ["4-5", "6-7", "8-9", "10-11"]
    assert dev.assign(1, 4, 2)["label"] == "nc6-7"
    assert dev.assign(1, 4, 2)["devices"] == ["6", "7"]
    assert "NEURONCORE_GROUP_SIZES" not in dev.assign(0, 4, 2)["env"]


def test_bad_environment_value_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "4-x")
    with pytest.raises(DeviceUnavailable, match=r"NEURON_RT_VISIBLE_CORES='4-x'.*not a core list"):
        NeuronDevice({}).check()


def test_pool_from_the_fake_neuron_ls(neuron_fakes: Path, no_sysfs: Path) -> None:
    dev = NeuronDevice({})
    assert dev.count() == 4
    assert dev.source == "neuron-ls"
    assert dev.pool() == [0, 1, 2, 3]
    calls = [e for e in read_jsonl(neuron_fakes) if e["event"] == "neuron-ls"]
    assert calls and calls[0]["argv"] == ["--json-output"]


def test_neuron_ls_without_core_ids(neuron_fakes: Path, no_sysfs: Path, tmp_path: Path, monkeypatch: Any) -> None:
    """An older neuron-ls (before 2.25) prints nc_count only: ids run on across devices."""
    old = [{"neuron_device": 1, "bdf": "20:1d.0", "nc_count": 4}, {"neuron_device": 0, "nc_count": 4}]
    out = tmp_path / "ls.json"
    out.write_text(json.dumps(old))
    monkeypatch.setenv("NPF_FAKE_NEURON_LS_OUTPUT", str(out))
    assert NeuronDevice({}).pool() == list(range(8))


def test_neuron_ls_new_output_format(neuron_fakes: Path, no_sysfs: Path, monkeypatch: Any) -> None:
    """Neuron 2.34 drops --json-output for --output-format json."""
    monkeypatch.setenv("NPF_FAKE_NEURON_LS_NEW", "1")
    assert NeuronDevice({}).count() == 4
    argvs = [e["argv"] for e in read_jsonl(neuron_fakes) if e["event"] == "neuron-ls"]
    assert argvs == [["--json-output"], ["--output-format", "json"]]


def test_broken_neuron_ls_falls_back_to_sysfs(neuron_fakes: Path, no_sysfs: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("NPF_FAKE_NEURON_LS_EXIT", "1")
    for n in range(3):
        (no_sysfs / f"neuron{n}").mkdir()
        (no_sysfs / f"neuron{n}" / "core_count").write_text("2")
    (no_sysfs / "not-a-device").mkdir()
    dev = NeuronDevice({})
    assert dev.pool() == list(range(6))
    assert dev.source == "sysfs"


def test_sysfs_counts_logical_cores(no_neuron_ls: None, no_sysfs: Path, monkeypatch: Any) -> None:
    (no_sysfs / "neuron0" / "info").mkdir(parents=True)
    (no_sysfs / "neuron0" / "info" / "core_count").write_text("8")  # moved one level down (driver 2.31+)
    monkeypatch.setenv("NEURON_LOGICAL_NC_CONFIG", "2")
    assert NeuronDevice({}).count() == 4


def test_cores_option_is_the_last_resort(no_neuron_ls: None, no_sysfs: Path) -> None:
    assert NeuronDevice({"cores": 6}).pool() == list(range(6))
    dev = NeuronDevice({"cores": "2-5"})
    assert dev.pool() == [2, 3, 4, 5]
    assert dev.source == "device.options.cores"


def test_no_cores_anywhere(no_neuron_ls: None, no_sysfs: Path) -> None:
    with pytest.raises(DeviceUnavailable, match="no NeuronCores found"):
        NeuronDevice({}).check()


def test_bad_options() -> None:
    with pytest.raises(SpecError, match=r"device\.options\.cores"):
        NeuronDevice({"cores": "3-1"})
    with pytest.raises(SpecError, match=r"device\.options\.cores"):
        NeuronDevice({"cores": 0})
    with pytest.raises(SpecError, match=r"device\.options"):
        NeuronDevice({"corez": 2})


def test_legacy_group_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0-3")
    monkeypatch.setenv("NEURONCORE_GROUP_SIZES", "4x1")
    a = NeuronDevice({}).assign(1, 2, 2)
    assert a["env"] == {"NEURON_RT_VISIBLE_CORES": "2-3", "NEURONCORE_GROUP_SIZES": "2"}


def test_neuron_ls_parser_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        cores_from_neuron_ls('{"hello": 1}')
    with pytest.raises(ValueError):
        cores_from_neuron_ls('[{"neuron_device": 0}]')


# -- copies really see their cores ---------------------------------------------------


def _loads(record: Path) -> list[dict[str, Any]]:
    return [e for e in read_jsonl(record) if e["event"] == "load"]


def test_four_copies_see_their_own_cores(
    monkeypatch: pytest.MonkeyPatch, clean_device_env: None, record: Path, tmp_path: Path
) -> None:
    """NEURON_RT_VISIBLE_CORES=4-11, pipeline size 2, n_models max: four copies
    (workers = pipeline size - 1), each seeing its own block, proven from inside."""
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "4-11")
    reports = npf_core.benchmark(
        {
            "model": {"framework": "python", "target": f"{PLAIN}:EnvRecorder"},
            "inputs": [{"shape": [1, 4]}],
            "device": "neuron",
            "pipeline_sizes": [2],
            "n_models": ["max"],
        },
        duration_s=0.3,
        reporters=[],
        output_dir=tmp_path / "out",
    )
    assert len(reports) == 1
    (r,) = reports
    assert r.status == "ok", r.error
    assert (r.n_models, r.pipeline_size, r.workers_per_model) == (4, 2, 1)
    assert r.device_type == "neuron"
    loads = _loads(record)
    assert len(loads) == 4
    assert len({e["pid"] for e in loads}) == 4 and os.getpid() not in {e["pid"] for e in loads}
    assert sorted(e["cores"] for e in loads) == sorted(["4-5", "6-7", "8-9", "10-11"])
    assert all(e["group_sizes"] is None for e in loads)
    assert sorted(r.devices) == sorted(["nc4-5", "nc6-7", "nc8-9", "nc10-11"])


def test_too_many_copies_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, clean_device_env: None) -> None:
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0-3")
    with pytest.raises(DeviceUnavailable, match="n_models"):
        npf_core.benchmark(
            {
                "model": {"framework": "python", "target": f"{PLAIN}:EnvRecorder"},
                "inputs": [{"shape": [1, 4]}],
                "device": "neuron",
                "pipeline_sizes": [2],
                "n_models": [3],
            },
            duration_s=0.3,
            reporters=[],
        )
