"""A real local Ray cluster of two nodes on this one machine (``ray.cluster_utils``),
each advertising a custom resource that stands for NeuronCores. Kept small: one
CPU and 100 MB of object store per node. The nodes carry an ``instance-type`` label:
``fake.small`` (the head) and ``fake.large``.

The suite's per-test check for leftover child processes cannot apply while the
cluster (children of pytest) is up; here it checks the benchmarkers instead (each
test model records its pid), and the cluster's own processes once it is shut down.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

try:
    import ray
except ImportError:  # the default session: these tests belong to 'nox -s ray', which installs npf[ray]
    ray = None
    collect_ignore = ["test_ray_launcher.py"]

HERE = Path(__file__).resolve().parent
FAKE_CORES = "fake_neuron_cores"
NODE_ARGS: dict[str, Any] = dict(num_cpus=1, object_store_memory=100 * 2**20, resources={FAKE_CORES: 2})


@pytest.fixture(scope="session")
def pid_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("benchmarker-pids")
    os.environ["NPF_RAY_TEST_DIR"] = str(d)  # before the nodes start: their workers inherit it
    return d


@pytest.fixture(scope="session")
def cluster(pid_dir: Path) -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    head = {**NODE_ARGS, "include_dashboard": False, "labels": {"instance-type": "fake.small"}}
    c = Cluster(initialize_head=True, head_node_args=head)
    c.add_node(**NODE_ARGS, labels={"instance-type": "fake.large"})
    c.wait_for_nodes()
    c.connect()
    yield c
    ray.shutdown()
    c.shutdown()
    gone, alive = psutil.wait_procs(psutil.Process().children(recursive=True), timeout=15)
    left = [f"pid {p.pid} {p.name()}" for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    for p in alive:
        p.kill()
    assert not left, f"the Ray cluster left processes behind: {left}"


@pytest.fixture(autouse=True)
def no_child_processes_left(pid_dir: Path) -> Iterator[None]:
    """Overrides the suite's check: every benchmarker a test started has ended."""
    before = set(pid_dir.iterdir())
    yield
    left = []
    for f in set(pid_dir.iterdir()) - before:
        pid = int(f.name.split(".")[-2])
        try:
            p = psutil.Process(pid)
            psutil.wait_procs([p], timeout=5)
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{f.name}: {' '.join(p.cmdline())}")
        except psutil.NoSuchProcess:
            pass
    assert not left, f"benchmarkers outlived the run: {left}"


def benchmarkers(pid_dir: Path, since: set[Path]) -> list[tuple[str, int, int]]:
    """(config id, benchmarker pid, the Ray worker's pid) of the new pid files: the
    benchmarker's parent, or with the zygote start method the zygote's parent."""
    out = []
    for f in sorted(set(pid_dir.iterdir()) - since):
        config_id, pid, ppid = f.name.rsplit(".", 2)
        worker = int(ppid)
        try:
            parent = psutil.Process(worker)
            if any("npf_core.child.zygote" in part for part in parent.cmdline()):
                worker = parent.ppid()
        except psutil.Error:
            pass
        out.append((config_id, int(pid), worker))
    return out
