"""Wall time: what a configuration costs beyond its configured duration.

    python benchmarks/walltime.py [--quick] [--reps N] [--duration S]

A sweep of N = 4 configurations (n_models 1 and 2 x workers_per_model 1 and 2,
the no-op model), each of ``--duration`` seconds, run two ways:

- ``api``: ``npf_core.benchmark(...)`` in this (already started) interpreter,
  writing results.json and results.csv;
- ``cli``: ``python -m npf_core run spec.json -q`` in a fresh interpreter (so its
  start-up and imports count), with its default reporters.

Per-configuration overhead = (wall - N x duration) / N: process start, model load,
warm-up, the start margin, stopping, collecting results, reaping and writing
files. The two ways alternate, in alternating order. From the reports we also
print the time between each configuration's start_dts and stop_dts beyond its
duration (the supervisor's own share, without run start-up and file writing).

Goal (issue 3): <= 0.3 s per configuration (NeuronPerf: about 1.5 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from _common import banner, median, parse_args, progress, spec, spread, table, verdict

from npf_core.results.store import resolve_results

GOAL_S = 0.3
N_MODELS = [1, 2]
WORKERS = [1, 2]


def in_config_overhead(reports: list[dict], duration_s: float) -> float:
    """Mean (stop_dts - start_dts) - duration over the reports."""
    extra = []
    for r in reports:
        start = datetime.fromisoformat(r["start_dts"])
        stop = datetime.fromisoformat(r["stop_dts"])
        extra.append((stop - start).total_seconds() - duration_s)
    return sum(extra) / len(extra)


def run_api(duration_s: float) -> tuple[float, int, float]:
    import npf_core

    with tempfile.TemporaryDirectory(prefix="npf-bench-wall-") as out:
        t0 = time.perf_counter()
        reports = npf_core.benchmark(
            spec("Noop", duration_s=duration_s, n_models=N_MODELS, workers=WORKERS),
            output_dir=out, reporters=["json", "csv"],
        )  # fmt: skip
        wall = time.perf_counter() - t0
    bad = [r for r in reports if r.status != "ok"]
    if bad:
        raise RuntimeError(f"api run failed: {bad[0].error}")
    return wall, len(reports), in_config_overhead([r.to_dict() for r in reports], duration_s)


def run_cli(duration_s: float) -> tuple[float, int, float]:
    with tempfile.TemporaryDirectory(prefix="npf-bench-wall-") as out:
        spec_file = Path(out, "spec.json")
        spec_file.write_text(json.dumps(spec("Noop", duration_s=duration_s, n_models=N_MODELS, workers=WORKERS)))
        cmd = [sys.executable, "-m", "npf_core", "run", str(spec_file), "--output-dir", str(Path(out, "res")), "-q"]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"cli run failed ({done.returncode}): {done.stdout[-1500:]}{done.stderr[-1500:]}")
        reports = json.loads(resolve_results(Path(out, "res")).read_text())["reports"]
    return wall, len(reports), in_config_overhead(reports, duration_s)


def main() -> None:
    args = parse_args(__doc__, reps=(3, 1), duration=(1.0, 1.0))
    banner("walltime: per-configuration overhead beyond the duration", args)
    run_api(0.2)  # once, untimed: the first in-process run pays one-time imports
    per: dict[str, list[float]] = {"api": [], "cli": []}
    inside: dict[str, list[float]] = {"api": [], "cli": []}
    walls: dict[str, list[float]] = {"api": [], "cli": []}
    n = 0
    for rep in range(args.reps):
        order = ("api", "cli") if rep % 2 == 0 else ("cli", "api")
        for way in order:
            wall, n, extra = (run_api if way == "api" else run_cli)(args.duration)
            walls[way].append(wall)
            per[way].append((wall - n * args.duration) / n)
            inside[way].append(extra)
            progress(f"rep {rep + 1}/{args.reps} {way}: {wall:.2f} s for {n} configs")
    print()
    rows = [
        [way, n, f"{args.duration:g}", f"{median(walls[way]):.2f}", f"{median(per[way]):.3f}",
         spread(per[way]), f"{median(inside[way]):.3f}"]
        for way in ("api", "cli")
    ]  # fmt: skip
    print(
        table(
            ["way", "configs", "duration s", "wall s", "overhead s/config", "per-rep", "in-config s/config"],
            rows,
        )
    )
    print("   overhead = (wall - N x duration) / N; in-config = stop_dts - start_dts - duration (from the reports)")
    print()
    for way in ("api", "cli"):
        o = median(per[way])
        verdict(f"walltime-{way}", o <= GOAL_S, f"{o:.3f} s per configuration (goal <= {GOAL_S} s; NeuronPerf ~1.5 s)")


if __name__ == "__main__":
    main()
