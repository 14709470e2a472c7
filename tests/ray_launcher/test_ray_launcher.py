"""The ``ray`` launcher on a real two-node Ray cluster (tests/ray_launcher/conftest.py):
a sweep spread over the nodes, one configuration per node at a time; a Ray worker
killed mid-run; cancellation; resume; shipping the spec folder; clear errors
before anything runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

import npf_core
from npf_core.errors import DeviceUnavailable, SpecError
from npf_core.plugin import events as ev
from npf_core.results.store import resolve_results
from npf_core.spec.schema import decode_spec

from .conftest import FAKE_CORES, HERE, NODE_ARGS, benchmarkers

pytestmark = pytest.mark.ray


def spec(cluster: Any, **fields: Any) -> dict[str, Any]:
    options = {"address": cluster.address, "files": "shared", "node_resource": FAKE_CORES}
    options.update(fields.pop("options", {}))
    return {
        "model": {"target": "models.py:nap"},
        "inputs": [{"shape": [1]}, {"shape": [2]}],
        "batch_sizes": [1, 2],
        "n_models": [1, 2],
        "workers_per_model": [1, 2],
        "duration_s": 1.0,
        "launcher": {"plugin": "ray", "options": options},
        **fields,
    }


def loaded(data: dict[str, Any], folder: Path = HERE) -> Any:
    return decode_spec(data, folder)


def when(dts: str) -> float:
    return datetime.strptime(dts, "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def node_ids() -> set[str]:
    import ray

    return {n["NodeID"] for n in ray.nodes() if n["Alive"]}


def test_a_sweep_spreads_over_the_nodes_one_configuration_per_node(cluster: Any, tmp_path: Path) -> None:
    seen: list[ev.Event] = []

    async def main() -> list[Any]:
        sup = npf_core.Supervisor(loaded(spec(cluster)), output_dir=str(tmp_path), reporters=["json", "csv"])
        async with sup:
            async for event in sup.events():
                seen.append(event)
        return sup.reports

    t0 = time.monotonic()
    reports = anyio.run(main)
    wall = time.monotonic() - t0

    assert len(reports) == 8
    assert [r.status for r in reports] == ["ok"] * 8, [r.error for r in reports]
    assert [r.config_id for r in reports] == [f"nap-b{b}-p1-n{n}-w{w}" for b in (1, 2)
                                              for n in (1, 2) for w in (1, 2)]  # fmt: skip
    assert all(r.total_infs > 0 for r in reports)
    # each report names its node; both nodes took part
    assert {r.node_id for r in reports} == node_ids()
    assert all(r.node_host for r in reports)
    # a node never ran two configurations at once
    for node in node_ids():
        spans = sorted((when(r.start_dts), when(r.stop_dts)) for r in reports if r.node_id == node)
        for (_, stop), (start, _) in zip(spans, spans[1:], strict=False):
            assert start >= stop, f"node {node} ran two configurations at once: {spans}"
    # ... and the nodes ran in parallel: faster than one after the other
    total = sum(when(r.stop_dts) - when(r.start_dts) for r in reports)
    assert wall < total, (wall, total)

    # events streamed back as in a local run
    kinds = [type(e).__name__ for e in seen]
    assert kinds[0] == "RunStarted" and kinds[-1] == "RunFinished"
    assert kinds.count("ConfigStarted") == 8 and kinds.count("ConfigFinished") == 8
    progress = [e for e in seen if isinstance(e, ev.Progress)]
    assert progress and all(e.total == 8 for e in progress)
    assert {e.config.config_id for e in progress} == {r.config_id for r in reports}
    for e in progress:  # the driver's plan index, not the node's
        assert reports[e.index].config_id == e.config.config_id

    doc = json.loads(resolve_results(tmp_path).read_text())
    assert [r["node_id"] for r in doc["reports"]] == [r.node_id for r in reports]
    header = resolve_results(tmp_path).with_name("results.csv").read_text().splitlines()[0].split(",")
    assert "node_host" in header and "node_id" in header


@pytest.mark.parametrize("retries", [0, 1])
def test_a_ray_worker_killed_mid_run_fails_one_configuration(
    cluster: Any, pid_dir: Path, tmp_path: Path, retries: int
) -> None:
    data = spec(cluster, n_models=[1], duration_s=2.0, options={"retries": retries})
    before = set(pid_dir.iterdir())
    killed: list[tuple[str, int]] = []

    async def main() -> list[Any]:
        async with npf_core.Supervisor(loaded(data), output_dir=str(tmp_path), reporters=["json"]) as sup:
            async for event in sup.events():
                if isinstance(event, ev.Progress) and not killed:
                    # the Ray worker running this configuration: its benchmarker's parent
                    found = [b for b in benchmarkers(pid_dir, before) if b[0] == event.config.config_id]
                    config_id, _, worker = found[0]
                    os.kill(worker, signal.SIGKILL)
                    killed.append((config_id, worker))
        return sup.reports

    reports = anyio.run(main)
    assert len(killed) == 1 and len(reports) == 4
    by_id = {r.config_id: r for r in reports}
    victim = by_id[killed[0][0]]
    others = [r for r in reports if r is not victim]
    assert all(r.status == "ok" for r in others), [r.error for r in others]
    if retries:
        assert victim.status == "ok", victim.error
        assert any("ran 2 times" in reason for reason in victim.validity_reasons)
    else:
        assert victim.status == "error"
        assert victim.error is not None and victim.error.stage == "ray"
        assert "lost the configuration" in victim.error.message and victim.node_id in node_ids()
    assert not still_alive([killed[0][1]])
    # every benchmarker of the run, the killed worker's included, has ended (the fixture checks it too)
    started = benchmarkers(pid_dir, before)
    # each node's agent loads the copy and keeps it for the configurations after
    # (reuse_copies); the killed agent's node starts a new agent, which loads again
    assert len(started) >= 2
    assert not still_alive([pid for _, pid, _ in started])
    # the cluster is whole again for the next test
    assert len(node_ids()) == 2


def test_cancelling_the_embedding_task_stops_the_remote_work(cluster: Any, pid_dir: Path, tmp_path: Path) -> None:
    data = spec(cluster, n_models=[1], workers_per_model=[1], duration_s=60.0)
    before = set(pid_dir.iterdir())

    async def main() -> None:
        with anyio.move_on_after(60):
            async with npf_core.Supervisor(loaded(data), output_dir=str(tmp_path), reporters=[]) as sup:
                async for event in sup.events():
                    if isinstance(event, ev.Progress):
                        break
                t0 = time.monotonic()
                raise _Stop(t0)

    with pytest.raises(_Stop) as info:
        anyio.run(main)
    stopped_in = time.monotonic() - info.value.args[0]
    assert stopped_in < 20, stopped_in  # not the 60 s the configurations would take
    started = benchmarkers(pid_dir, before)
    assert started
    assert not still_alive([pid for _, pid, _ in started]), "benchmarkers run on after the cancellation"


class _Stop(Exception):
    pass


def still_alive(pids: list[int], wait_s: float = 10.0) -> list[int]:
    """The pids still running (not zombies) after up to ``wait_s``."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_resume_skips_finished_configurations(cluster: Any, tmp_path: Path) -> None:
    data = spec(cluster, batch_sizes=[1], inputs=[{"shape": [1]}], n_models=[1], duration_s=0.5)
    first = npf_core.benchmark(loaded(data), output_dir=str(tmp_path), reporters=["json"])
    assert [r.status for r in first] == ["ok", "ok"]
    sup = npf_core.Supervisor(loaded(data), output_dir=str(tmp_path), reporters=["json"], resume=True)
    seen: list[ev.Event] = []

    async def main() -> None:
        async with sup:
            async for event in sup.events():
                seen.append(event)

    anyio.run(main)
    assert [type(e).__name__ for e in seen].count("ConfigSkipped") == 2
    assert not any(isinstance(e, ev.ConfigStarted) for e in seen)
    assert [r.node_id for r in sup.reports] == [r.node_id for r in first]


def test_ship_sends_the_spec_folder_through_ray(cluster: Any, tmp_path: Path) -> None:
    folder = tmp_path / "spec"
    folder.mkdir()
    shutil.copy(HERE / "models.py", folder / "models.py")
    data = spec(cluster, batch_sizes=[1], inputs=[{"shape": [1]}], n_models=[1], workers_per_model=[1],
                duration_s=0.5, options={"files": "ship"})  # fmt: skip
    (r,) = npf_core.benchmark(loaded(data, folder), output_dir=str(tmp_path / "out"), reporters=[])
    assert r.status == "ok", r.error
    assert r.total_infs > 0


def test_too_big_a_folder_to_ship_is_an_error_before_anything_runs(cluster: Any, tmp_path: Path) -> None:
    (tmp_path / "models.py").write_text((HERE / "models.py").read_text())
    (tmp_path / "weights.bin").write_bytes(b"\0" * 300_000)
    data = spec(cluster, options={"files": "ship", "max_ship_mb": 0.1})
    with pytest.raises(SpecError, match=r"launcher\.options\.files.*over 0.1 MB"):
        npf_core.Supervisor(loaded(data, tmp_path), reporters=[]).setup()


def test_a_file_outside_the_shipped_folder_is_an_error(cluster: Any, tmp_path: Path) -> None:
    import numpy as np

    folder = tmp_path / "spec"
    folder.mkdir()
    shutil.copy(HERE / "models.py", folder / "models.py")
    np.save(tmp_path / "input.npy", np.zeros((1,), dtype="float32"))
    data = spec(cluster, batch_sizes=[1], inputs=[{"file": "../input.npy"}], options={"files": "ship"})
    with pytest.raises(SpecError, match=r"inputs\[0\]\.file.*outside the spec's folder"):
        npf_core.Supervisor(loaded(data, folder), reporters=[]).setup()
    data["inputs"] = [{"file": str(tmp_path / "input.npy")}]
    with pytest.raises(SpecError, match=r"inputs\[0\]\.file.*absolute path"):
        npf_core.Supervisor(loaded(data, folder), reporters=[]).setup()


def test_nodes_are_chosen_by_instance_type(cluster: Any, tmp_path: Path) -> None:
    import ray

    (large,) = [n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Labels"].get("instance-type") == "fake.large"]
    data = spec(cluster, batch_sizes=[1], inputs=[{"shape": [1]}], n_models=[1], duration_s=0.5,
                options={"instance_type": "fake.large"})  # fmt: skip
    reports = npf_core.benchmark(loaded(data), output_dir=str(tmp_path), reporters=[])
    assert [r.status for r in reports] == ["ok", "ok"]
    assert [(r.node_id, r.instance_type) for r in reports] == [(large, "fake.large")] * 2


def test_a_cluster_without_the_resource_is_an_error_before_anything_runs(cluster: Any) -> None:
    with pytest.raises(DeviceUnavailable, match=r"no alive Ray node has resource 'neuron_cores'.*fake_neuron_cores"):
        npf_core.Supervisor(loaded(spec(cluster, options={"node_resource": "neuron_cores"})), reporters=[]).setup()
    with pytest.raises(DeviceUnavailable, match=r"label instance-type=inf2.xlarge"):
        npf_core.Supervisor(loaded(spec(cluster, options={"instance_type": "inf2.xlarge"})), reporters=[]).setup()
    many = spec(cluster, n_models=[4], device={"type": "cpu", "options": {"oversubscribe": True}})
    with pytest.raises(DeviceUnavailable, match=r"needs 4 fake_neuron_cores on one node.*has 2"):
        npf_core.Supervisor(loaded(many), reporters=[]).setup()


def write_spec(folder: Path, data: dict[str, Any]) -> Path:
    shutil.copy(HERE / "models.py", folder / "models.py")
    path = folder / "spec.json"
    path.write_text(json.dumps(data))
    return path


def cli(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "npf_core", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_the_cli_runs_a_spec_with_launcher_ray(cluster: Any, tmp_path: Path) -> None:
    data = spec(cluster, batch_sizes=[1], inputs=[{"shape": [1]}], n_models=[1], duration_s=0.5)
    # the spec configures ray (the cluster's address), --launcher ray keeps those options
    data["launcher"] = {"plugin": "ray", "options": {"address": cluster.address, "node_resource": FAKE_CORES}}
    path = write_spec(tmp_path, data)
    proc = cli("run", str(path), "--launcher", "ray", "--output-dir", "out", cwd=tmp_path)
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    doc = json.loads(resolve_results(tmp_path / "out").read_text())
    assert [r["status"] for r in doc["reports"]] == ["ok", "ok"]
    assert {r["node_id"] for r in doc["reports"]} <= node_ids()
    assert "nap-b1-p1-n1-w1" in out


def test_ctrl_c_stops_the_remote_work_and_keeps_what_finished(cluster: Any, pid_dir: Path, tmp_path: Path) -> None:
    data = spec(cluster, batch_sizes=[1], inputs=[{"shape": [1]}], n_models=[1], duration_s=60.0)
    path = write_spec(tmp_path, data)
    before = set(pid_dir.iterdir())
    proc = cli("run", str(path), "--output-dir", "out", cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(benchmarkers(pid_dir, before)) < 2 and proc.poll() is None:
            time.sleep(0.2)
        started = benchmarkers(pid_dir, before)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert len(started) == 2, f"both configurations should have been running, one per node: {started}\n{err}"
    assert proc.returncode == 130, err
    assert not still_alive([pid for _, pid, _ in started]), "benchmarkers run on after Ctrl-C"


def test_a_node_that_dies_mid_run_fails_only_its_configuration(cluster: Any, pid_dir: Path, tmp_path: Path) -> None:
    """Last in this file: it adds a third node and takes it away again."""
    extra = cluster.add_node(**NODE_ARGS)
    cluster.wait_for_nodes()
    raylet = extra.all_processes["raylet"][0].process.pid
    data = spec(cluster, n_models=[1], duration_s=2.0)
    before = set(pid_dir.iterdir())
    victim: list[str] = []

    async def main() -> list[Any]:
        async with npf_core.Supervisor(loaded(data), output_dir=str(tmp_path), reporters=["json"]) as sup:
            async for event in sup.events():
                if isinstance(event, ev.Progress) and not victim:
                    for config_id, _, worker in benchmarkers(pid_dir, before):
                        if psutil.Process(worker).ppid() == raylet:
                            cluster.remove_node(extra, allow_graceful=False)
                            victim.append(config_id)
                            break
        return sup.reports

    reports = anyio.run(main)
    assert len(victim) == 1, "no configuration ran on the extra node"
    by_id = {r.config_id: r for r in reports}
    lost = by_id[victim[0]]
    assert lost.status == "error" and lost.error is not None and lost.error.stage == "ray"
    assert "lost the configuration" in lost.error.message
    assert all(r.status == "ok" for r in reports if r is not lost), [r.error for r in reports]
    assert len(reports) == 4
    assert not still_alive([pid for _, pid, _ in benchmarkers(pid_dir, before)])


def test_a_node_ray_still_lists_alive_after_it_vanished_gets_no_more_configurations(cluster: Any) -> None:
    """After a fault, a node goes back to the pool only if it runs a probe task: Ray
    keeps listing a node that vanished as alive until its heartbeats are missed (the
    race that once sent the next configuration to a dead node). A live node that lost
    only its agent's worker goes back."""
    import ray

    from npf_plugins.launchers.ray import Node, NodePool, RayLauncher

    launcher = RayLauncher({"address": cluster.address})
    live = next(n for n in ray.nodes() if n["Alive"])
    extra = cluster.add_node(**NODE_ARGS)
    cluster.wait_for_nodes()
    gone_id = extra.node_id
    nodes = [Node(id=i, host="", resources={}, labels={}) for i in (live["NodeID"], gone_id)]
    pool = NodePool(nodes)
    pool.free = []  # both were running a configuration
    cluster.remove_node(extra, allow_graceful=False)
    listed_alive = any(n["NodeID"] == gone_id and n["Alive"] for n in ray.nodes())

    async def main() -> None:
        await launcher._release(ray, pool, nodes[1], "worker")
        await launcher._release(ray, pool, nodes[0], "worker")

    anyio.run(main)
    assert gone_id not in pool.alive and [n.id for n in pool.free] == [live["NodeID"]], listed_alive
