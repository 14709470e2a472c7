"""The sweep rules (NeuronPerf's): defaults, pipeline workers, MAX, de-duplication, order."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from npf_core.errors import DeviceUnavailable, SpecError
from npf_core.plugin.hookspecs import Assignment, Device, Registry, hookimpl
from npf_core.plugin.manager import Plugins, get_plugins
from npf_core.spec.config import RunConfig
from npf_core.spec.schema import decode_spec
from npf_core.supervisor.plan import make_plan


class FakeAccelerator(Device):
    """An exclusive device (one copy per device), ``options.count`` of them (None: unknown)."""

    exclusive = True
    type_name = "fake"

    def count(self) -> int | None:
        return self.options.get("count")

    def assign(self, copy_index: int, n_models: int, pipeline_size: int) -> Assignment:
        first = copy_index * pipeline_size
        return Assignment(env={"FAKE_VISIBLE": f"{first}-{first + pipeline_size - 1}"}, cpus=None, devices=[], label="")


class FakePlugin:
    @hookimpl
    def npf_register_devices(self, registry: Registry[Device]) -> None:
        registry.add("fake", FakeAccelerator)


@pytest.fixture(scope="module")
def plugins() -> Plugins:
    return get_plugins(extra=[FakePlugin()])


@pytest.fixture
def target(sleepy_file: Path) -> str:
    return f"{sleepy_file}:Sleepy"


def plan(plugins: Plugins, target: str, **fields: Any) -> list[RunConfig]:
    data = {"model": {"framework": "python", "target": target}, "inputs": [{"shape": [1, 4]}], **fields}
    return make_plan(decode_spec(data), plugins)


def grid(configs: list[RunConfig]) -> list[tuple[int, int, int, int]]:
    """(input_idx, pipeline_size, n_models, workers_per_model) of each config, in order."""
    return [(c.input_idx, c.pipeline_size, c.n_models, c.workers_per_model) for c in configs]


def test_default_sweep_on_cpu_is_1_and_max_by_1_and_2(plugins: Plugins, target: str) -> None:
    cpus = len(os.sched_getaffinity(0))
    configs = plan(plugins, target)
    expected = [(0, 1, n, w) for n in dict.fromkeys([1, cpus]) for w in (1, 2)]
    assert grid(configs) == expected


def test_default_sweep_with_a_device_count_of_four(plugins: Plugins, target: str) -> None:
    configs = plan(plugins, target, device={"type": "cpu", "options": {"count": 4}})
    assert grid(configs) == [(0, 1, 1, 1), (0, 1, 1, 2), (0, 1, 4, 1), (0, 1, 4, 2)]
    assert all(c.device_type == "cpu" and c.batch_size == 1 for c in configs)


def test_max_of_one_removes_the_duplicates(plugins: Plugins, target: str) -> None:
    configs = plan(plugins, target, device={"type": "cpu", "options": {"count": 1}})
    assert grid(configs) == [(0, 1, 1, 1), (0, 1, 1, 2)]
    assert len({c.config_id for c in configs}) == 2


def test_explicit_duplicates_are_removed_keeping_the_first(plugins: Plugins, target: str) -> None:
    configs = plan(
        plugins,
        target,
        n_models=[2, 1, "max", 2],
        workers_per_model=[1, 1],
        device={"type": "cpu", "options": {"count": 2}},
    )
    assert grid(configs) == [(0, 1, 2, 1), (0, 1, 1, 1)]


def test_pipeline_workers_default_to_pipeline_size_minus_one(plugins: Plugins, target: str) -> None:
    configs = plan(plugins, target, device={"type": "fake", "options": {"count": 8}}, pipeline_sizes=[1, 4])
    assert grid(configs) == [
        (0, 1, 1, 1), (0, 1, 1, 2), (0, 1, 8, 1), (0, 1, 8, 2),  # data parallel: max = 8 // 1
        (0, 4, 1, 3), (0, 4, 2, 3),  # pipeline size 4: max = 8 // 4, workers = 3
    ]  # fmt: skip


def test_explicit_workers_apply_to_every_pipeline_size(plugins: Plugins, target: str) -> None:
    configs = plan(
        plugins, target, device={"type": "fake", "options": {"count": 4}}, pipeline_sizes=[2], workers_per_model=[5]
    )
    assert grid(configs) == [(0, 2, 1, 5), (0, 2, 2, 5)]


def test_order_is_input_then_pipeline_then_models_then_workers(plugins: Plugins, target: str) -> None:
    configs = plan(
        plugins,
        target,
        inputs=[{"shape": [1, 4]}, {"shape": [8, 4]}],
        batch_sizes=[1, 8],
        n_models=[1, 2],
        workers_per_model=[1, 2],
    )
    assert grid(configs) == [(i, 1, n, w) for i in (0, 1) for n in (1, 2) for w in (1, 2)]
    assert [c.batch_size for c in configs] == [1] * 4 + [8] * 4
    assert len({c.config_id for c in configs}) == 8


def test_one_input_per_batch_size_defaults_to_batch_one(plugins: Plugins, target: str) -> None:
    configs = plan(plugins, target, inputs=[{"shape": [1]}, {"shape": [1]}], n_models=[1], workers_per_model=[1])
    assert [(c.input_idx, c.batch_size) for c in configs] == [(0, 1), (1, 1)]


def test_more_copies_than_exclusive_devices_is_an_error(plugins: Plugins, target: str) -> None:
    with pytest.raises(DeviceUnavailable) as info:
        plan(plugins, target, device={"type": "fake", "options": {"count": 2}}, n_models=[3])
    message = str(info.value)
    assert message.startswith("spec $.n_models: 3 model copies")
    assert "but 2 are available" in message


def test_more_copies_than_cpus_is_an_error_that_says_how_to_allow_it(plugins: Plugins, target: str) -> None:
    with pytest.raises(DeviceUnavailable) as info:
        plan(plugins, target, device={"type": "cpu", "options": {"count": 2}}, n_models=[3], workers_per_model=[1])
    message = str(info.value)
    assert message.startswith("spec $.n_models: 3 model copies")
    assert "device.options.oversubscribe" in message


def test_more_copies_than_cpus_when_oversubscribing(plugins: Plugins, target: str) -> None:
    configs = plan(
        plugins, target, device={"type": "cpu", "options": {"count": 2, "oversubscribe": True}},
        n_models=[3], workers_per_model=[1],
    )  # fmt: skip
    assert grid(configs) == [(0, 1, 3, 1)]


def test_pipeline_larger_than_the_device_is_an_error(plugins: Plugins, target: str) -> None:
    with pytest.raises(DeviceUnavailable) as info:
        plan(plugins, target, device={"type": "fake", "options": {"count": 2}}, pipeline_sizes=[4])
    assert str(info.value).startswith("spec $.pipeline_sizes: pipeline size 4 needs 4")


def test_unknown_device_count_skips_max(plugins: Plugins, target: str) -> None:
    configs = plan(plugins, target, device="fake")
    assert grid(configs) == [(0, 1, 1, 1), (0, 1, 1, 2)]
    with pytest.raises(SpecError) as info:
        plan(plugins, target, device="fake", n_models=["max"])
    assert str(info.value).startswith("spec $.n_models: the sweep is empty")


def test_start_method_auto_is_the_frameworks(plugins: Plugins, target: str) -> None:
    assert {c.start_method for c in plan(plugins, target)} == {"zygote"}
    assert {c.start_method for c in plan(plugins, target, start_method="fork")} == {"fork"}
    assert {c.start_method for c in plan(plugins, target, start_method="fresh")} == {"fresh"}
    assert {c.start_method for c in plan(plugins, target, start_method="inline")} == {"inline"}


@pytest.mark.parametrize("method", ["auto", "zygote", "fresh", "fork", "inline"])
def test_python_objects_are_planned_under_every_start_method(plugins: Plugins, method: str) -> None:
    class Model:
        def __call__(self, x: Any) -> Any:
            return x

    data = {"model": {"target": Model}, "inputs": [{"shape": [1]}], "start_method": method}
    (config, *_) = make_plan(decode_spec(data), plugins)
    assert config.model_name == "Model"
    assert config.start_method == ("zygote" if method == "auto" else method)


def test_model_name_comes_from_the_spec_or_the_target(plugins: Plugins, target: str) -> None:
    assert {c.model_name for c in plan(plugins, target)} == {"Sleepy"}
    named = plan(plugins, target, name="my-model")
    assert {c.model_name for c in named} == {"my-model"}
    assert all(c.config_id.startswith("my-model-") for c in named)
    assert {c.model_filename for c in named} == {target}


def test_assignment_is_the_devices(plugins: Plugins) -> None:
    device = plugins.device("fake", {"count": 8})
    assert [device.assign(i, 2, 4)["env"]["FAKE_VISIBLE"] for i in range(2)] == ["0-3", "4-7"]
