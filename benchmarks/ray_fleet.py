"""Wall time of one sweep on the ``local`` launcher and on the ``ray`` launcher over
a local Ray cluster of two nodes (ray.cluster_utils, one CPU each), in the same run.

Needs ``pip install -e '.[ray]'``. Prints, per launcher, the sweep's wall time and
the sum of its configurations' own durations (each report's stop - start), and the
speed-up ray / local. On a machine with two free cores, two nodes should finish the
sweep in well under the sum of the durations; on one machine the nodes share its
cores, so this measures npf's fleet overhead, not a fleet's speed.

``--reps N`` runs both launchers N times, in alternating order, and prints the
median of the per-repetition ratios (issue 23's goal: ray / local <= 0.62 for
8 x 1 s, copies kept on each node by its agent).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODELS = HERE.parent / "tests" / "ray_launcher"


def when(dts: str) -> float:
    return datetime.strptime(dts, "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=1.0, help="seconds per configuration")
    ap.add_argument("--configs", type=int, default=8, choices=(2, 4, 8), help="configurations in the sweep")
    ap.add_argument("--reps", type=int, default=1, help="repetitions of both launchers, in alternating order")
    args = ap.parse_args()

    import ray
    from ray.cluster_utils import Cluster

    import npf_core
    from npf_core.spec.schema import decode_spec

    node = dict(num_cpus=1, object_store_memory=100 * 2**20, resources={"fake_neuron_cores": 2})
    t0 = time.monotonic()
    cluster = Cluster(initialize_head=True, head_node_args={**node, "include_dashboard": False})
    cluster.add_node(**node)
    cluster.wait_for_nodes()
    cluster.connect()
    print(f"cluster of 2 nodes up in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    sweep = {
        2: dict(n_models=[1], workers_per_model=[1, 2], inputs=[{"shape": [1]}], batch_sizes=[1]),
        4: dict(n_models=[1, 2], workers_per_model=[1, 2], inputs=[{"shape": [1]}], batch_sizes=[1]),
        8: dict(n_models=[1, 2], workers_per_model=[1, 2], inputs=[{"shape": [1]}, {"shape": [2]}], batch_sizes=[1, 2]),
    }[args.configs]
    base = {"model": {"target": "models.py:nap"}, "duration_s": args.duration, **sweep}
    launchers = {
        "local": "local",
        "ray": {"plugin": "ray", "options": {"address": cluster.address, "files": "shared",
                                             "node_resource": "fake_neuron_cores"}},
    }  # fmt: skip
    walls: dict[str, list[float]] = {"local": [], "ray": []}
    try:
        for rep in range(args.reps):
            order = list(launchers) if rep % 2 == 0 else list(reversed(launchers))
            for name in order:
                loaded = decode_spec({**base, "launcher": launchers[name]}, MODELS)
                t = time.monotonic()
                reports = npf_core.benchmark(loaded, reporters=[])
                wall = time.monotonic() - t
                busy = sum(when(r.stop_dts) - when(r.start_dts) for r in reports)
                ok = sum(r.status == "ok" for r in reports)
                nodes = len({r.node_id for r in reports})
                walls[name].append(wall)
                print(f"{name:>5}: {len(reports)} configurations ({ok} ok) on {nodes} node(s): wall {wall:.2f} s, "
                      f"sum of configuration durations {busy:.2f} s, wall/sum {wall / busy:.2f}")  # fmt: skip
                sys.stdout.flush()
    finally:
        ray.shutdown()
        cluster.shutdown()
    ratios = [r / lo for r, lo in zip(walls["ray"], walls["local"], strict=True)]
    print(f"ray/local wall time: {statistics.median(ratios):.2f} (median of {len(ratios)}; "
          f"per repetition: {', '.join(f'{x:.2f}' for x in ratios)})")


if __name__ == "__main__":
    main()
