"""Which loaded copy fits which configuration (npf_core.supervisor.reuse), decided
before anything runs: the plan's reuse order and its count of loads, for the
devices and frameworks whose copies depend on more than the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from npf_core.plugin.hookspecs import Assignment, Device
from npf_core.plugin.manager import get_plugins
from npf_core.spec.config import RunConfig
from npf_core.spec.schema import decode_spec
from npf_core.supervisor.plan import make_plan
from npf_core.supervisor.reuse import ReuseRules, Slots, loads_without_reuse


class Pinned(Device):
    """Like the cpu device with ``pin: true`` on 4 CPUs: a copy's share depends on
    how many copies there are."""

    type_name = "pinned"

    def count(self) -> int:
        return 4

    def assign(self, copy_index: int, n_models: int, pipeline_size: int) -> Assignment:
        per = 4 // n_models
        mine = list(range(copy_index * per, (copy_index + 1) * per))
        return Assignment(env={}, cpus=mine, devices=[str(c) for c in mine], label=f"cpu{mine[0]}")


class Broken(Device):
    type_name = "broken"

    def assign(self, copy_index: int, n_models: int, pipeline_size: int) -> Assignment:
        if copy_index == 1:
            raise RuntimeError("planted: cannot assign copy 1")
        return Assignment(env={}, cpus=None, devices=[], label="")


def sweep(sleepy_file: Path, device: Any = None, **fields: Any) -> tuple[list[RunConfig], Any]:
    data = {
        "model": {"framework": "python", "target": f"{sleepy_file}:Sleepy"},
        "inputs": [{"shape": [1, 4]}, {"shape": [2, 4]}],
        "batch_sizes": [1, 2],
        "n_models": [1, 2],
        "workers_per_model": [1, 2],
        # (copies may share this machine's CPUs, however few it has)
        "device": device if isinstance(device, str) else {"type": "cpu", "options": {"oversubscribe": True}},
        **fields,
    }
    plugins = get_plugins()
    loaded = decode_spec(data)
    dev = device if isinstance(device, Device) else plugins.device(loaded.device.type, loaded.device.options)
    return make_plan(loaded, plugins, dev), dev


def ids(plan: list[RunConfig]) -> list[tuple[int, int, int]]:
    return [(c.batch_size, c.n_models, c.workers_per_model) for c in plan]


def test_one_model_on_the_cpu_loads_each_copy_once_in_the_plans_order(sleepy_file: Path) -> None:
    plan, device = sweep(sleepy_file)
    rules = ReuseRules(device, frozenset())
    ordered = rules.order(plan)
    assert ordered == plan  # nothing to gain: NeuronPerf's order stays
    assert rules.count_loads(ordered) == 2  # copy 0, then copy 1 once n_models grows
    assert loads_without_reuse(ordered) == 12  # 4 configurations of 1 copy, 4 of 2


def test_a_share_that_depends_on_the_copies_groups_the_sweep_by_it(sleepy_file: Path) -> None:
    plan, device = sweep(sleepy_file, Pinned({}))
    rules = ReuseRules(device, frozenset())
    # in the plan's order every change of n_models loads again: 1 + 2 + 1 + 2 copies
    assert rules.count_loads(plan) == 6
    ordered = rules.order(plan)
    assert ids(ordered) == [(1, 1, 1), (1, 1, 2), (2, 1, 1), (2, 1, 2), (1, 2, 1), (1, 2, 2), (2, 2, 1), (2, 2, 2)]
    assert rules.count_loads(ordered) == 3  # one copy on all CPUs, then two on half each


def test_a_framework_whose_load_fixes_n_models_is_grouped_the_same_way(sleepy_file: Path) -> None:
    plan, device = sweep(sleepy_file)
    rules = ReuseRules(device, frozenset({"n_models"}))  # what TensorFlow declares
    ordered = rules.order(plan)
    assert [c.n_models for c in ordered] == [1, 1, 1, 1, 2, 2, 2, 2]
    assert rules.count_loads(ordered) == 3
    mx = ReuseRules(device, frozenset({"n_models", "workers_per_model"}))  # what MXNet declares
    assert mx.count_loads(mx.order(plan)) == 1 + 1 + 2 + 2


def test_each_artifact_of_a_model_index_is_its_own_model(sleepy_file: Path) -> None:
    plan, device = sweep(sleepy_file)
    # one artifact per batch size, as a model index compiled per batch size has
    plan = [RunConfig(**{**_fields(c), "model_ref": f"{c.model_ref}-b{c.batch_size}"}) for c in plan]
    rules = ReuseRules(device, frozenset())
    assert rules.order(plan) == plan
    assert rules.count_loads(plan) == 4  # two copies of each artifact; the first's go before the second loads
    slots = Slots()
    first, second = plan[3], plan[4]  # the first artifact at 2 copies, the second at 1
    keys1, keys2 = rules.keys(first), rules.keys(second)
    assert keys1 is not None and keys2 is not None
    slots.step(keys1)
    reused, loaded, evicted = slots.step(keys2)
    assert (reused, loaded, evicted) == ([], [0], [0])  # copy 1 of the first artifact stays until trimmed
    assert slots.trim(rules.future(plan[5:])) == [1]


def test_neuron_cores_an_idle_copy_holds_are_freed_before_a_copy_is_given_them(
    sleepy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0-3")
    plan, device = sweep(sleepy_file, "neuron", n_models=[1, 2], workers_per_model=[1], pipeline_sizes=[1, 2],
                         batch_sizes=[1], inputs=[{"shape": [1, 4]}])  # fmt: skip
    rules = ReuseRules(device, frozenset())
    assert [(c.pipeline_size, c.n_models) for c in plan] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    slots = Slots()
    steps = []
    for c in plan:
        keys = rules.keys(c)
        assert keys is not None
        steps.append(slots.step(keys))
    # p1 n2 keeps copy 0 (core 0) and loads copy 1 (core 1)
    assert steps[1] == ([0], [1], [])
    # p2 n1: copy 0 is another pipeline (cores 0-1): it goes, and so does idle copy 1,
    # which holds core 1: no copy is ever given a core an idle copy holds
    assert steps[2] == ([], [0], [0, 1])
    assert steps[3] == ([0], [1], [])  # cores 2-3 for the second pipeline copy
    assert rules.count_loads(plan) == 4


def test_a_copy_a_later_configuration_loads_loads_ahead_when_that_costs_no_load(sleepy_file: Path) -> None:
    plan, device = sweep(sleepy_file)
    rules = ReuseRules(device, frozenset())
    slots = Slots()
    keys = rules.keys(plan[0])
    assert keys is not None
    slots.step(keys)
    # copy 1 of the first two-copy configuration loads beside copy 0: one load time, not two
    picks = rules.ahead(slots, keys, plan[1:])
    assert [(c.config_id, k.copy_index) for c, k in picks] == [(plan[2].config_id, 1)]
    # pinned CPUs: the next group's copies need CPUs the copy loading now holds: nothing ahead
    plan, device = sweep(sleepy_file, Pinned({}))
    rules = ReuseRules(device, frozenset())
    ordered = rules.order(plan)
    slots = Slots()
    keys = rules.keys(ordered[0])
    assert keys is not None
    slots.step(keys)
    assert rules.ahead(slots, keys, ordered[1:]) == []
    # the next configuration that loads is another model's, which needs copy 0's place
    # (in use now): nothing ahead; and nothing of the model after it either
    plan, device = sweep(sleepy_file, n_models=[1, 2], workers_per_model=[1])
    rules = ReuseRules(device, frozenset())
    other = [RunConfig(**{**_fields(c), "model_ref": "other.py:Model", "config_id": c.config_id + "-other"})
             for c in plan]  # fmt: skip
    mixed = [plan[0], other[0], other[1], plan[1]]
    slots = Slots()
    keys = rules.keys(mixed[0])
    assert keys is not None
    slots.step(keys)
    assert rules.ahead(slots, keys, mixed[1:]) == []


def test_a_device_that_cannot_assign_counts_as_loads_and_stays_in_place(sleepy_file: Path) -> None:
    plan, _ = sweep(sleepy_file, Broken({}))
    rules = ReuseRules(Broken({}), frozenset())
    assert [k is None for k in map(rules.keys, plan)] == [c.n_models == 2 for c in plan]
    assert rules.order(plan) == [c for c in plan if c.n_models == 1] + [c for c in plan if c.n_models == 2]
    assert rules.count_loads(rules.order(plan)) == 1 + 2 * 4


def _fields(c: RunConfig) -> dict[str, Any]:
    return {f: getattr(c, f) for f in c.__struct_fields__}
