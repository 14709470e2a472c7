"""Bad input never reaches a process: each is a typed error naming the field (exit 2
from the command line, one line, no traceback), and no benchmarker is started."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

import npf_core
from npf_core.errors import DeviceUnavailable, SpecError, UserError
from npf_core.plugin.hookspecs import Assignment, Device, hookimpl

from .conftest import sweep_spec, write_json

BAD = {
    "inputs-null": ({"inputs": None}, "$.inputs"),
    "inputs-null-entry": ({"inputs": [None]}, "$.inputs[0]"),
    "inputs-null-shape": ({"inputs": [{"shape": None}]}, "$.inputs[0]"),
    "inputs-empty": ({"inputs": []}, "$.inputs"),
    "inputs-negative-dim": ({"inputs": [{"shape": [1, -4]}]}, "$.inputs[0].shape[1]"),
    "batch-size-0": ({"batch_sizes": [0]}, "$.batch_sizes[0]"),
    "batch-size-0-scalar": ({"batch_sizes": 0}, "$.batch_sizes"),
    "n-models-0": ({"n_models": [1, 0]}, "$.n_models[1]"),
    "n-models-0-scalar": ({"n_models": 0}, "$.n_models"),
    "n-models-empty": ({"n_models": []}, "$.n_models"),
    "workers-0": ({"workers_per_model": [0]}, "$.workers_per_model[0]"),
    "workers-negative": ({"workers_per_model": -2}, "$.workers_per_model"),
    "duration-0": ({"duration_s": 0}, "$.duration_s"),
    "duration-negative": ({"duration_s": -1.5}, "$.duration_s"),
    "duration-null": ({"duration_s": None}, "$.duration_s"),
    "more-batch-sizes-than-inputs": ({"batch_sizes": [1, 2]}, "$.batch_sizes"),
    "more-inputs-than-batch-sizes": (
        {"inputs": [{"shape": [1, 4]}, {"shape": [2, 4]}], "batch_sizes": [1]}, "$.batch_sizes"
    ),
    "load-timeout-0": ({"timeouts": {"load_s": 0}}, "$.timeouts.load_s"),
    "stop-timeout-negative": ({"timeouts": {"stop_s": -1}}, "$.timeouts.stop_s"),
    "pipeline-0": ({"pipeline_sizes": [0]}, "$.pipeline_sizes[0]"),
    "rate-0": ({"load": {"mode": "poisson", "rate": 0}}, "$.load.rate"),
    "unknown-field": ({"n_model": [1]}, "$"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_spec_is_exit_2_naming_the_field(case: str, run_cli, spawn_guard, tmp_path: Path) -> None:
    fields, where = BAD[case]
    spec = write_json(tmp_path / "spec.json", sweep_spec(tmp_path / "out", **fields))
    code, out, err = run_cli("run", str(spec), "-q")
    assert code == 2
    assert spawn_guard == []
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("npf: error: spec ") and f"{where}:" in lines[0], lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing written either


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_spec_is_a_typed_error_from_the_api(case: str, spawn_guard, tmp_path: Path) -> None:
    fields, where = BAD[case]
    with pytest.raises(SpecError) as info:
        npf_core.benchmark(sweep_spec(tmp_path / "out", **fields))
    assert str(info.value).startswith(f"spec {where}:")
    assert spawn_guard == []


@pytest.mark.parametrize("value", ["0", "-1"])
def test_bad_duration_override_on_the_command_line(value: str, run_cli, spawn_guard, tmp_path: Path) -> None:
    spec = write_json(tmp_path / "spec.json", sweep_spec(tmp_path / "out"))
    code, _, err = run_cli("run", str(spec), "--duration-s", value)
    assert code == 2
    assert "$.duration_s" in err and "Traceback" not in err
    assert spawn_guard == []


def test_bad_override_through_the_api(spawn_guard, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"\$\.n_models\[0\]"):
        npf_core.benchmark(sweep_spec(tmp_path / "out"), n_models=[0])
    assert spawn_guard == []


class FakeAccelerator(Device):
    """An exclusive device with two units: each model copy needs its own."""

    exclusive: ClassVar[bool] = True
    type_name: ClassVar[str] = "fake-accel"

    def count(self) -> int:
        return 2

    def assign(self, copy_index: int, n_models: int, pipeline_size: int) -> Assignment:
        return Assignment(env={"FAKE_ACCEL_UNIT": str(copy_index)}, cpus=None, devices=[str(copy_index)], label="")


class FakeAcceleratorPlugin:
    @hookimpl
    def npf_register_devices(self, registry: Any) -> None:
        registry.add("fake-accel", FakeAccelerator)


def test_more_model_copies_than_devices(spawn_guard, tmp_path: Path) -> None:
    spec = sweep_spec(tmp_path / "out", device="fake-accel", n_models=[1, 3])
    with pytest.raises(DeviceUnavailable) as info:
        npf_core.benchmark(spec, extra_plugins=(FakeAcceleratorPlugin(),))
    message = str(info.value)
    assert "$.n_models" in message and "3 model copies" in message and "2 are available" in message
    assert isinstance(info.value, UserError)  # the command line's exit 2
    assert spawn_guard == []


def test_pipeline_larger_than_the_device_count(spawn_guard, tmp_path: Path) -> None:
    spec = sweep_spec(tmp_path / "out", device="fake-accel", pipeline_sizes=[4], workers_per_model=[3])
    with pytest.raises(DeviceUnavailable, match=r"\$\.pipeline_sizes"):
        npf_core.benchmark(spec, extra_plugins=(FakeAcceleratorPlugin(),))
    assert spawn_guard == []


def test_as_many_copies_as_devices_runs(spawn_guard, tmp_path: Path) -> None:
    """The control: two copies on two units is fine (and "max" means 2)."""
    spec = sweep_spec(tmp_path / "out", device="fake-accel", n_models=[2, "max"], start_method="fork")
    reports = npf_core.benchmark(spec, extra_plugins=(FakeAcceleratorPlugin(),))
    assert [(r.n_models, r.status) for r in reports] == [(2, "ok")]
    assert spawn_guard == [(0, "fork"), (1, "fork")]


def test_more_model_copies_than_neuron_cores(run_cli, spawn_guard, monkeypatch, tmp_path: Path) -> None:
    """The built-in exclusive device, its pool given as the Neuron runtime's own
    variable: four copies on two NeuronCores is exit 2, naming n_models."""
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "4-5")
    spec = write_json(tmp_path / "spec.json", sweep_spec(tmp_path / "out", device="neuron", n_models=[1, 4]))
    code, _, err = run_cli("run", str(spec), "-q")
    assert code == 2
    assert "$.n_models" in err and "4 model copies" in err and "2 are available" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert spawn_guard == []
