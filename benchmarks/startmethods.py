"""Start methods: the caller's state in the figures, and what each configuration costs.

    python benchmarks/startmethods.py [--quick] [--reps N] [--duration S] [--sweep-duration S] [--threads N]

Needs torch (``pip install -e '.[torch]'``). The model is a small TorchScript CNN
(two 3x3 convolutions and a linear layer, input 1x3x64x64), on the CPU, built once
into a temporary folder by a helper process (this script never imports torch).

1. **Caller state** (issue 8). One copy, one worker, ``--duration`` seconds, run by
   ``npf_core.benchmark`` from a new Python process in two states:
   ``clean``, a caller that never imported torch, and ``used``, a caller that
   loaded the model and ran it 20 times first (what every notebook and every
   NeuronPerf script does). For each start method (``zygote``, the default;
   ``fresh``; ``fork``, NeuronPerf's fork-from-the-caller) we print p50 in both
   states and their ratio. Goal: used/clean p50 within 5% by default.
2. **Per-configuration cost** (issue 8). A 2 x 2 sweep (n_models 1, 2 x
   workers_per_model 1, 2) at ``--sweep-duration`` seconds per configuration, timed
   around the ``npf_core.benchmark`` call in a caller that (for ``fork``, as
   NeuronPerf does) imported torch and loaded the model before. Overhead per
   configuration = (wall - measured time - the model's load time) / 4, where the
   measured time is the reports' ``total_s`` and the load time the
   model's own load time (``torch.jit.load`` timed in a process that imported torch),
   4 x. The run's start-up (the zygote's torch import) counts as overhead. We also
   print the time inside each configuration (``stop_dts - start_dts`` minus the
   measured time). Goal: <= 0.5 s per configuration by default, and ``load_avg_ms``
   the model's own load (tens of ms), not an interpreter's imports.

The variants alternate, in alternating order, each repetition; we print medians.
``--threads N`` sets ``model.options.threads`` (default 0: torch's own choice, one
intra-op thread per usable CPU). On a small shared machine a 2-thread pool is at the
mercy of other load (one descheduled thread stalls every call), so ``--threads 1``
gives steadier figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import banner, median, parse_args, progress, spread, table, verdict

METHODS = ("zygote", "fresh", "fork")
CALLER_GOAL = 0.05
OVERHEAD_GOAL_S = 0.5

BUILD = """
import sys, torch
class CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = torch.nn.Conv2d(16, 16, 3, padding=1)
        self.fc = torch.nn.Linear(16 * 64 * 64, 10)
    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        return self.fc(x.flatten(1))
torch.manual_seed(0)
torch.jit.save(torch.jit.trace(CNN().eval(), torch.rand(1, 3, 64, 64)), sys.argv[1])
"""
#: the model's own load time, as a new process that has imported torch sees it
LOAD = """
import sys, time, warnings, torch
warnings.simplefilter("ignore")
t0 = time.perf_counter()
torch.jit.load(sys.argv[1]).eval()
print((time.perf_counter() - t0) * 1e3)
"""


def child(argv: list[str]) -> None:
    """One caller: ``--child MODE STATE METHOD MODEL DURATION OUT THREADS``; prints JSON."""
    mode, state, method, model, duration, out, threads = argv
    if state == "used":
        import warnings

        import torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = torch.jit.load(model)
        x = torch.rand(1, 3, 64, 64)
        with torch.inference_mode():
            for _ in range(20):
                m(x)
    import npf_core

    spec: dict[str, Any] = {
        "model": {"framework": "torch", "path": model, "options": {"threads": int(threads)} if int(threads) else {}},
        "inputs": [{"shape": [1, 3, 64, 64]}],
        "duration_s": float(duration),
        "start_method": method,
        "output": {"dir": out, "reporters": []},
    }
    if mode == "caller":
        spec.update(n_models=[1], workers_per_model=[1])
    else:
        spec.update(n_models=[1, 2], workers_per_model=[1, 2])
    t0 = time.perf_counter()
    reports = npf_core.benchmark(spec)
    wall = time.perf_counter() - t0
    bad = [r.error for r in reports if r.status != "ok"]
    if bad:
        raise SystemExit(f"failed: {bad}")
    from datetime import datetime

    def span(r: Any) -> float:
        return (datetime.fromisoformat(r.stop_dts) - datetime.fromisoformat(r.start_dts)).total_seconds()

    print(json.dumps({
        "wall": wall,
        "in_config": [span(r) - r.total_s for r in reports],
        "p50": [r.latency_ms_p50 for r in reports],
        "total_s": sum(r.total_s for r in reports),
        "load_ms": [r.load_avg_ms for r in reports],
        "valid": [r.valid for r in reports],
        "reasons": sorted({x for r in reports for x in r.validity_reasons}),
    }))  # fmt: skip


def run_child(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"caller failed ({done.returncode}): {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    args = parse_args(__doc__, reps=(3, 1), duration=(3.0, 1.0), sweep_duration=(1.0, 0.5), threads=(0, 0))
    banner("start methods: caller state and per-configuration cost (torch CNN, cpu)", args)
    with tempfile.TemporaryDirectory(prefix="npf-bench-") as tmp:
        model = str(Path(tmp) / "cnn.pt")
        subprocess.run([sys.executable, "-c", BUILD, model], check=True)
        own_load_ms = median([
            float(subprocess.run([sys.executable, "-c", LOAD, model], capture_output=True, text=True,
                                 check=True).stdout) for _ in range(3)
        ])  # fmt: skip
        out = str(Path(tmp) / "out")
        p50: dict[tuple[str, str], list[float]] = {}
        notes: dict[tuple[str, str], list[str]] = {}
        sweeps: dict[str, list[dict[str, Any]]] = {}
        variants = [(m, s) for m in METHODS for s in ("clean", "used")]
        for rep in range(args.reps):
            order = variants if rep % 2 == 0 else variants[::-1]
            for method, state in order:
                progress(f"rep {rep + 1}/{args.reps}: caller {state}, {method}")
                r = run_child("caller", state, method, model, str(args.duration), out, str(args.threads))
                p50.setdefault((method, state), []).append(r["p50"][0])
                notes[(method, state)] = [n for n in r["reasons"] if "forked from a process" in n]
            for method in METHODS if rep % 2 == 0 else METHODS[::-1]:
                progress(f"rep {rep + 1}/{args.reps}: 2x2 sweep, {method}")
                state = "used" if method == "fork" else "clean"
                sweeps.setdefault(method, []).append(
                    run_child("sweep", state, method, model, str(args.sweep_duration), out, str(args.threads))
                )

    print("\n1. Caller state: p50 (ms) of 1 copy x 1 worker, caller clean vs caller that ran the model 20 times")
    rows = []
    ratios = {}
    for method in METHODS:
        clean, used = median(p50[(method, "clean")]), median(p50[(method, "used")])
        ratios[method] = used / clean
        rows.append([method, f"{clean:.3f}", f"{used:.3f}", f"{used / clean:.3f}",
                     spread(p50[(method, "used")]), "yes" if notes[(method, "used")] else "no"])  # fmt: skip
    print(table(["start method", "p50 clean", "p50 used", "used/clean", "used range", "fork warning"], rows))

    print(f"\n2. Per-configuration cost: 2 x 2 sweep at {args.sweep_duration:g} s per configuration; "
          f"the model's own load (torch.jit.load in a process that imported torch): {own_load_ms:.0f} ms")
    rows = []
    overhead = {}
    for method in METHODS:
        runs = sweeps[method]
        per_config = [(r["wall"] - r["total_s"] - 4 * own_load_ms / 1e3) / 4 for r in runs]
        overhead[method] = median(per_config)
        loads = [x for r in runs for x in r["load_ms"]]
        inside = [x for r in runs for x in r["in_config"]]
        rows.append([method, f"{median([r['wall'] for r in runs]):.2f}", f"{median([r['total_s'] for r in runs]):.2f}",
                     f"{median(loads):.0f}", spread(loads, "{:.0f}"), f"{median(inside):.3f}",
                     f"{overhead[method]:.3f}"])  # fmt: skip
    print(table(["start method", "wall s", "measured s", "load_avg_ms", "load range", "in-config s",
                 "overhead s/config"], rows))  # fmt: skip
    print("   overhead = (wall - measured - 4 x the model's own load) / 4, the run's start-up included (for zygote:")
    print("   its torch import, once); in-config = stop_dts - start_dts - measured, per configuration.")
    print("   fork: the caller imported torch and ran the model first, as NeuronPerf scripts do.\n")
    verdict(
        "caller state within 5% (zygote, the default)",
        abs(ratios["zygote"] - 1) <= CALLER_GOAL,
        f"used/clean p50 {ratios['zygote']:.3f} (fresh {ratios['fresh']:.3f}, fork {ratios['fork']:.3f})",
    )
    verdict(
        "per-configuration overhead <= 0.5 s (zygote, the default)",
        overhead["zygote"] <= OVERHEAD_GOAL_S,
        f"{overhead['zygote']:.3f} s/config (fresh {overhead['fresh']:.3f}, fork {overhead['fork']:.3f})",
    )
    zl = median([x for r in sweeps["zygote"] for x in r["load_ms"]])
    verdict(
        "load_avg_ms is the model's load (zygote, the default)",
        zl <= 5 * own_load_ms + 50,
        f"median load_avg_ms {zl:.0f} ms vs the model's own load {own_load_ms:.0f} ms "
        f"(fresh {median([x for r in sweeps['fresh'] for x in r['load_ms']]):.0f} ms: it imports torch)",
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        main()
