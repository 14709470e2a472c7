"""The launcher plugin kind: the built-in ``local`` (the default), the spec field and
overrides, a third-party launcher, and the ``ray`` launcher's errors where Ray is not
installed — the engine never imports Ray unless a spec asks for it. (The ray
launcher on a real cluster: tests/ray_launcher, ``nox -s ray``.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import npf_core
from npf_core.errors import PluginError, SpecError, UnknownPluginError
from npf_core.plugin import Launcher, Registry, hookimpl
from npf_core.plugin import events as ev
from npf_core.plugin.manager import get_plugins
from npf_core.spec.overrides import prepare


@pytest.fixture
def base(sleepy_file: Path) -> dict[str, Any]:
    return {
        "model": {"target": f"{sleepy_file}:Sleepy"},
        "inputs": [{"shape": [1, 4]}],
        "n_models": [1],
        "workers_per_model": [1, 2],
        "duration_s": 0.2,
    }


def test_local_is_built_in_and_ray_comes_through_the_entry_point() -> None:
    launchers = get_plugins().launchers
    assert {"local", "ray"} <= set(launchers.names())
    assert launchers.origin("local") == "npf_core (built in)"
    assert launchers.origin("ray").startswith("ray (npf ")
    assert issubclass(launchers.get("ray"), Launcher)


def test_the_default_launcher_is_local(base: dict[str, Any]) -> None:
    loaded = prepare(base)
    assert loaded.launcher.plugin == "local" and loaded.launcher.options == {}
    sup = npf_core.Supervisor(loaded, reporters=[])
    sup.setup()  # plugins, plan and launcher are made off the event loop, before any process
    assert type(sup.launcher).__name__ == "LocalLauncher"


def test_the_launcher_field_and_its_overrides(base: dict[str, Any]) -> None:
    opts = {"address": "ray://head:10001", "retries": 1}
    spec = {**base, "launcher": {"plugin": "ray", "options": opts}}
    assert prepare(spec).launcher.options == opts
    # --launcher ray on a spec that already configures ray keeps its options
    assert prepare(spec, launcher="ray").launcher.options == opts
    assert prepare(spec, launcher="local").launcher.plugin == "local"
    assert prepare(base, launcher="ray").launcher.plugin == "ray"
    assert prepare(base, launcher={"plugin": "ray", "options": {"retries": 2}}).launcher.options == {"retries": 2}
    with pytest.raises(SpecError, match=r"\$\.launcher: unknown field 'option' \(did you mean 'options'"):
        prepare({**base, "launcher": {"plugin": "ray", "option": {}}})


def test_an_unknown_launcher_is_an_error_naming_the_field(base: dict[str, Any]) -> None:
    with pytest.raises(UnknownPluginError, match=r"launcher\.plugin.*slurm.*local.*ray"):
        npf_core.Supervisor({**base, "launcher": "slurm"}, reporters=[]).setup()


def test_bad_ray_options_are_errors_before_ray_is_needed(base: dict[str, Any]) -> None:
    spec = {**base, "launcher": {"plugin": "ray", "options": {"retries": -1}}}
    with pytest.raises(SpecError, match=r"\$\.launcher\.options\.retries"):
        npf_core.Supervisor(spec, reporters=[]).setup()
    spec = {**base, "launcher": {"plugin": "ray", "options": {"adress": "auto"}}}
    with pytest.raises(SpecError, match=r"\$\.launcher\.options.*adress.*did you mean 'address'"):
        npf_core.Supervisor(spec, reporters=[]).setup()


def test_the_ray_launcher_without_ray_says_what_to_install(
    base: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(PluginError, match=r"launcher.*needs Ray.*pip install 'npf\[ray\]'"):
        npf_core.Supervisor({**base, "launcher": "ray"}, reporters=[]).setup()


def test_a_local_run_never_imports_ray(base: dict[str, Any], tmp_path: Path) -> None:
    code = (
        "import json, sys, npf_core\n"
        f"reports = npf_core.benchmark(json.loads({json.dumps(json.dumps(base))!r}), reporters=[])\n"
        "import npf_plugins.launchers.ray as plugin\n"
        "print(json.dumps([[r.status for r in reports], 'ray' in sys.modules, plugin.__name__]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    statuses, imported, name = json.loads(out.stdout.strip().splitlines()[-1])
    assert statuses == ["ok", "ok"] and name == "npf_plugins.launchers.ray"
    assert imported is False, "a local run imported ray"


class Backwards(Launcher):
    """A third-party launcher: runs the plan from its end, here."""

    async def run(self, run: Any, todo: list[tuple[int, Any]]) -> None:
        for index, config in reversed(todo):
            run.config_started(index, config)
            run.config_done(index, config, await run.run_config(index, config))


class BackwardsPlugin:
    @hookimpl
    def npf_register_launchers(self, registry: Registry[Launcher]) -> None:
        registry.add("backwards", Backwards)


def test_a_third_party_launcher_runs_the_plan_and_results_keep_plan_order(
    base: dict[str, Any], tmp_path: Path
) -> None:
    spec = {**base, "launcher": {"plugin": "backwards"}}
    seen: list[ev.Event] = []

    class Watch:
        @hookimpl
        def npf_config_started(self, event: ev.ConfigStarted) -> None:
            seen.append(event)

    reports = npf_core.benchmark(spec, extra_plugins=(BackwardsPlugin(), Watch()), output_dir=str(tmp_path),
                                 reporters=["json"])  # fmt: skip
    assert [e.config.workers_per_model for e in seen] == [2, 1]  # ran from the end
    assert [r.workers_per_model for r in reports] == [1, 2]  # reported in plan order
    assert all(r.status == "ok" for r in reports)
    from npf_core.results.store import resolve_results

    doc = json.loads(resolve_results(tmp_path).read_text())
    assert [r["workers_per_model"] for r in doc["reports"]] == [1, 2]
    assert doc["spec"]["launcher"] == {"plugin": "backwards"}
    assert all(r["node_host"] == "" and r["node_id"] == "" for r in doc["reports"])  # local: no node


# -- the ray launcher's own logic, without Ray --------------------------------------


def ray_node(node_id: str, alive: bool = True, **resources: float) -> dict[str, Any]:
    """One entry of ``ray.nodes()`` as Ray 2.x gives it (the fields the launcher reads)."""
    labels = {"instance-type": str(resources.pop("itype"))} if "itype" in resources else {}
    return {"NodeID": node_id, "Alive": alive, "NodeManagerHostname": f"host-{node_id}",
            "Resources": {"CPU": 4.0, f"node:{node_id}": 1.0, **resources}, "Labels": labels}  # fmt: skip


def test_the_ray_launcher_chooses_nodes_by_device_and_instance_type() -> None:
    from npf_plugins.launchers.ray import RayLauncher

    table = [
        ray_node("cpu"),
        ray_node("inf2", neuron_cores=2.0, itype="inf2.xlarge"),
        ray_node("trn1", neuron_cores=32.0, itype="trn1.32xlarge"),
        ray_node("dead", alive=False, neuron_cores=2.0),
        ray_node("gpu", GPU=1.0),
    ]
    la = RayLauncher({})
    la.resource = "neuron_cores"
    assert [n.id for n in la.eligible_nodes(table)] == ["inf2", "trn1"]
    la = RayLauncher({"instance_type": "trn1.32xlarge"})
    la.resource = "neuron_cores"
    (trn1,) = la.eligible_nodes(table)
    assert (trn1.host, trn1.instance_type, trn1.resources["neuron_cores"]) == ("host-trn1", "trn1.32xlarge", 32.0)
    la = RayLauncher({"num_cpus": 8})
    la.resource = None
    assert la.eligible_nodes(table) == []
    assert "no alive Ray node has resource 'GPU'" not in la._no_node_message(table)
    la.resource = "GPU"
    assert "no alive Ray node has resource 'GPU' and 8 CPU (4 alive node(s), with resources: CPU, GPU, " \
           "neuron_cores)" in la._no_node_message(table)  # fmt: skip


@pytest.mark.anyio
async def test_the_node_pool_gives_a_node_one_configuration_at_a_time() -> None:
    import anyio

    from npf_plugins.launchers.ray import Node, NodePool

    a, b = (Node(id=i, host=i, resources={}, labels={}) for i in "ab")
    pool = NodePool([a, b])
    assert await pool.acquire() is a and await pool.acquire() is b
    got: list[Any] = []

    async def take(avoid: str | None = None) -> None:
        got.append(await pool.acquire(avoid=avoid))

    async with anyio.create_task_group() as tg:
        tg.start_soon(take, "a")  # a retry that avoids node a waits for another node ...
        await anyio.sleep(0.01)
        pool.release(a)
        await anyio.sleep(0.01)
        assert got == []  # ... not a, while b is alive (and busy)
        pool.release(b)
    assert got == [b]
    pool.drop(b)  # b died: the retry may use a after all
    assert await pool.acquire(avoid="b") is a
    pool.drop(a)
    assert await pool.acquire() is None  # no node left alive: the caller records a failure
