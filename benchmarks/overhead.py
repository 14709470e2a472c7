"""Overhead: npf's reported call rate for a no-op model vs the bare timed loop.

    python benchmarks/overhead.py [--quick] [--reps N] [--duration S] [--telemetry]

The model is ``def __call__(self, x): return x`` (python framework). The bare loop
is issue 3's, in one thread::

    while perf_counter() < end:
        t0 = perf_counter_ns(); model(*inputs); t1 = perf_counter_ns(); lat.append(t1 - t0)

run in a fresh interpreter that has imported npf_core (so it holds the same modules
as a benchmarker); for two workers, two threads run that loop in one process and
their rates are summed. npf runs one model copy with 1 or 2 workers through the
Python API and we read ``throughput_avg`` (batch size 1, so calls per second).
Variants are interleaved, their order alternating each repetition; the verdict uses
the median of the per-repetition ratios npf / bare.

Goals (issue 3): ratio >= 0.9 with one worker, >= 0.5 with two.

``--telemetry`` (issue 22) runs npf three ways side by side, each against the same
bare loop: ``telemetry: "off"``; ``"auto"`` (the default; on ``cpu``: the ``host``
source, the copies' CPU cores and memory); and device ``neuron`` with the
``neuron-monitor`` source, whose monitor is tests/fakes/bin/neuron-monitor streaming
a JSON report every window (NEURON_RT_VISIBLE_CORES=0-1 gives the pool; the no-op
model runs on the CPU whatever the device). Goal: telemetry costs the copies nothing:
the median per-repetition npf/bare ratio with telemetry at least 0.97 times the one
without (a faster run is noise, not a cost).

When ``NEURONPERF_SRC`` names a NeuronPerf source tree (the folder holding the
``neuronperf`` package, or its parent with ``src/neuronperf``), NeuronPerf's
``cpu.benchmark`` of the same model runs side by side (in its own interpreter) and
the npf / NeuronPerf ratio is printed; goal >= 3x. The PyPI package
``neuronperf==1.0`` is a placeholder that raises ImportError ("WRONG PACKAGE"), so
without ``NEURONPERF_SRC`` that column is left out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from _common import (
    HERE,
    SystemCpu,
    banner,
    fmt_num,
    median,
    parse_args,
    progress,
    run_bare,
    run_npf,
    spread,
    table,
    verdict,
)

GOALS = {1: 0.9, 2: 0.5}
TELEMETRY_GOAL = 0.03  # telemetry's ratio no more than 3% below the ratio without it
FAKE_MONITOR = HERE.parent / "tests" / "fakes" / "bin" / "neuron-monitor"
#: npf variant -> (spec fields, environment) for --telemetry
TELEMETRY_VARIANTS: dict[str, tuple[dict[str, object], dict[str, str]]] = {
    "npf": ({"telemetry": "off"}, {}),
    "npf+host": ({"telemetry": "auto"}, {}),
    "npf+neuron-monitor": (
        {"device": "neuron", "telemetry": ["neuron-monitor", "host"]},
        {"NPF_NEURON_MONITOR": str(FAKE_MONITOR), "NEURON_RT_VISIBLE_CORES": "0-1"},
    ),
}
NEURONPERF_GOAL = 3.0
NEURONPERF_MIN_S = 5.0  # NeuronPerf's throughput_avg drops the first and last 1 s buckets


def neuronperf_path(src: str) -> Path:
    root = Path(src).expanduser().resolve()
    for cand in (root, root / "src"):
        if (cand / "neuronperf" / "__init__.py").is_file():
            return cand
    raise SystemExit(f"NEURONPERF_SRC={src!r}: no neuronperf/__init__.py in it or in its src/ folder")


def run_neuronperf(workers: int, duration_s: float) -> float:
    """NeuronPerf's throughput_avg for the no-op model, in a fresh interpreter."""
    cmd = [sys.executable, __file__, "--neuronperf-child", str(workers), str(duration_s)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"NeuronPerf run failed ({done.returncode}): {done.stderr[-3000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["throughput_avg"])


def neuronperf_child(workers: int, duration_s: float) -> None:
    sys.path.insert(0, str(neuronperf_path(os.environ["NEURONPERF_SRC"])))
    sys.path.insert(0, str(HERE))
    import bench_models
    import neuronperf
    import neuronperf.cpu
    import numpy as np

    x = np.random.default_rng(0).random((1,), dtype=np.float32)
    out = neuronperf.cpu.benchmark(
        bench_models.Noop, [x], batch_sizes=[1], duration=duration_s, n_models=1,
        workers_per_model=workers, multiprocess=True, verbosity=0,
    )  # fmt: skip
    reports = out[0] if isinstance(out, tuple) else out
    print(json.dumps({"throughput_avg": float(reports[0]["throughput_avg"])}))


class _Env:
    """Environment variables set for a ``with`` block (the supervisor runs in-process)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.old: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for k, v in self.env.items():
            self.old[k] = os.environ.get(k)
            os.environ[k] = v

    def __exit__(self, *exc: object) -> None:
        for k, v in self.old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_telemetry_variant(kind: str, workers: int, duration_s: float) -> tuple[float, float, dict[str, object]]:
    """(calls/s, p50 ns, what it sampled) of npf with one of TELEMETRY_VARIANTS; the
    supervisor runs in this process, so this process's CPU time over the run is the
    supervisor's (the copies and the monitor are processes of their own)."""
    fields, env = TELEMETRY_VARIANTS[kind]
    with _Env(env):
        t0 = time.process_time()
        r = run_npf("Noop", duration_s=duration_s, workers=workers, **fields)
        t1 = time.process_time()
    seen = {"sources": sorted(set(r.telemetry_sources.values())), "windows": len(r.telemetry_windows.get("t_s", [])),
            "device_util": r.device_util_avg_percent, "supervisor_cpu_s": t1 - t0}
    return r.throughput_avg, r.latency_ms_p50 * 1e6, seen


def telemetry_main(args: object) -> None:
    """--telemetry: npf without telemetry, with the host source, and with neuron-monitor, vs the bare loop."""
    reps, duration = args.reps, args.duration  # type: ignore[attr-defined]
    kinds = ["bare", *TELEMETRY_VARIANTS]
    variants = [(k, w) for w in (1, 2) for k in kinds]
    rate: dict[tuple[str, int], list[float]] = defaultdict(list)
    p50: dict[tuple[str, int], list[float]] = defaultdict(list)
    cpu: dict[tuple[str, int], list[float]] = defaultdict(list)
    seen: dict[str, dict[str, object]] = {}
    sup_cpu: dict[tuple[str, int], list[float]] = defaultdict(list)
    run_telemetry_variant("npf+neuron-monitor", 1, 0.5)  # imports and first-use costs, not counted
    for rep in range(reps):
        order = variants if rep % 2 == 0 else variants[::-1]
        for kind, w in order:
            with SystemCpu() as busy:
                if kind == "bare":
                    b = run_bare("Noop", threads=w, duration_s=duration)
                    rate[kind, w].append(b["rate"])
                    p50[kind, w].append(b["p50_ns"])
                else:
                    r, p, seen[kind] = run_telemetry_variant(kind, w, duration)
                    rate[kind, w].append(r)
                    p50[kind, w].append(p)
                    sup_cpu[kind, w].append(float(seen[kind]["supervisor_cpu_s"]))  # type: ignore[arg-type]
            cpu[kind, w].append(busy.other_percent)
            progress(f"rep {rep + 1}/{reps} {kind} w{w}: {rate[kind, w][-1]:,.0f} calls/s")
    print("\nper repetition (calls/s), and the CPU other processes used (% of the machine):")
    print(table(["variant", *(f"rep {i + 1}" for i in range(reps)), "other load %"],
                [[f"{k} w{w}", *(fmt_num(v) for v in rate[k, w]), spread(cpu[k, w], "{:.0f}")]
                 for k, w in variants]))  # fmt: skip
    print("\nwhat each variant sampled (last repetition):")
    for kind, info in seen.items():
        print(f"   {kind:<20} sources {info['sources']}, {info['windows']} windows, device_util {info['device_util']}")
    print("\nmedians (ratio: median of per-repetition npf/bare; vs off: median of per-repetition ratio / off's):")
    rows = []
    ratio: dict[tuple[str, int], float] = {}
    moved: dict[tuple[str, int], float] = {}
    for w in (1, 2):
        row: list[object] = [w, fmt_num(median(rate["bare", w]))]
        per_rep_off = [n / b for n, b in zip(rate["npf", w], rate["bare", w], strict=True)]
        for kind in TELEMETRY_VARIANTS:
            per_rep = [n / b for n, b in zip(rate[kind, w], rate["bare", w], strict=True)]
            ratio[kind, w] = median(per_rep)
            moved[kind, w] = median([x / o for x, o in zip(per_rep, per_rep_off, strict=True)])
            row += [fmt_num(median(rate[kind, w])), f"{ratio[kind, w]:.3f}"]
            if kind != "npf":
                row.append(f"{moved[kind, w]:.3f}")
        rows.append(row)
    headers = ["workers", "bare calls/s", "off calls/s", "off/bare", "host calls/s", "host/bare", "host vs off",
               "nm calls/s", "nm/bare", "nm vs off"]  # fmt: skip
    print(table(headers, rows))
    print("\nthe supervisor's CPU time per run (median s; the run measures "
          f"{duration:g} s, and also starts the zygote and the copies):")
    print(table(["workers", *(f"{k} s" for k in TELEMETRY_VARIANTS), "host - off", "nm - off"],
                [[w, *(f"{median(sup_cpu[k, w]):.3f}" for k in TELEMETRY_VARIANTS),
                  f"{median(sup_cpu['npf+host', w]) - median(sup_cpu['npf', w]):+.3f}",
                  f"{median(sup_cpu['npf+neuron-monitor', w]) - median(sup_cpu['npf', w]):+.3f}"]
                 for w in (1, 2)]))  # fmt: skip
    print()
    for w in (1, 2):
        for kind in ("npf+host", "npf+neuron-monitor"):
            m = moved[kind, w]
            verdict(f"telemetry-free-{kind.split('+')[1]}-{w}w", m >= 1 - TELEMETRY_GOAL,
                    f"npf/bare {ratio[kind, w]:.3f} with {kind.split('+')[1]} vs {ratio['npf', w]:.3f} off "
                    f"(x{m:.3f}; goal: no slower than {1 - TELEMETRY_GOAL:.2f}x)")  # fmt: skip


def main() -> None:
    if "--telemetry" in sys.argv:
        sys.argv.remove("--telemetry")
        args = parse_args(__doc__, reps=(5, 2), duration=(4.0, 1.5))
        banner("overhead with device telemetry: npf (telemetry off, host, neuron-monitor) vs the bare loop", args)
        telemetry_main(args)
        return
    args = parse_args(__doc__, reps=(5, 2), duration=(4.0, 1.5))
    banner("overhead: npf vs the bare timed loop, no-op model", args)
    np_src = os.environ.get("NEURONPERF_SRC")
    if np_src:
        print(f"   NeuronPerf from {neuronperf_path(np_src)} (NEURONPERF_SRC), duration >= {NEURONPERF_MIN_S} s")
    else:
        print("   NeuronPerf column off: set NEURONPERF_SRC to a NeuronPerf source tree (PyPI's 1.0 is a placeholder)")
    variants = [("bare", 1), ("npf", 1), ("bare", 2), ("npf", 2)]
    if np_src:
        variants += [("neuronperf", 1), ("neuronperf", 2)]
    rate: dict[tuple[str, int], list[float]] = defaultdict(list)
    p50: dict[tuple[str, int], list[float]] = defaultdict(list)
    cpu: dict[tuple[str, int], list[float]] = defaultdict(list)
    for rep in range(args.reps):
        order = variants if rep % 2 == 0 else variants[::-1]
        for kind, w in order:
            with SystemCpu() as busy:
                if kind == "bare":
                    b = run_bare("Noop", threads=w, duration_s=args.duration)
                    rate[kind, w].append(b["rate"])
                    p50[kind, w].append(b["p50_ns"])
                elif kind == "npf":
                    r = run_npf("Noop", duration_s=args.duration, workers=w)
                    rate[kind, w].append(r.throughput_avg)
                    p50[kind, w].append(r.latency_ms_p50 * 1e6)
                else:
                    rate[kind, w].append(run_neuronperf(w, max(args.duration, NEURONPERF_MIN_S)))
            cpu[kind, w].append(busy.other_percent)
            progress(f"rep {rep + 1}/{args.reps} {kind} w{w}: {rate[kind, w][-1]:,.0f} calls/s")

    print("\nper repetition (calls/s):")
    print(
        table(
            ["variant", *(f"rep {i + 1}" for i in range(args.reps))],
            [[f"{k} w{w}", *(fmt_num(v) for v in rate[k, w])] for k, w in variants],
        )
    )
    print("\nother load during each run (CPU used by other processes, % of the machine):")
    print(
        table(
            ["variant", *(f"rep {i + 1}" for i in range(args.reps))],
            [[f"{k} w{w}", *(f"{v:.0f}" for v in cpu[k, w])] for k, w in variants],
        )
    )
    headers = ["workers", "bare calls/s", "npf calls/s", "npf/bare", "per-rep range", "bare p50 ns", "npf p50 ns"]
    if np_src:
        headers += ["NeuronPerf calls/s", "npf/NeuronPerf"]
    rows = []
    ratios: dict[int, float] = {}
    np_ratios: dict[int, float] = {}
    for w in (1, 2):
        pair = [n / b for n, b in zip(rate["npf", w], rate["bare", w], strict=True)]
        ratios[w] = median(pair)
        row = [
            w, fmt_num(median(rate["bare", w])), fmt_num(median(rate["npf", w])), f"{ratios[w]:.3f}",
            spread(pair), fmt_num(median(p50["bare", w])), fmt_num(median(p50["npf", w])),
        ]  # fmt: skip
        if np_src:
            np_pair = [n / q for n, q in zip(rate["npf", w], rate["neuronperf", w], strict=True)]
            np_ratios[w] = median(np_pair)
            row += [fmt_num(median(rate["neuronperf", w])), f"{np_ratios[w]:.2f}x"]
        rows.append(row)
    print("\nmedians (npf/bare: median of per-repetition ratios):")
    print(table(headers, rows))
    print()
    for w in (1, 2):
        verdict(
            f"overhead-{w}-worker{'s' if w > 1 else ''}",
            ratios[w] >= GOALS[w],
            f"npf/bare = {ratios[w]:.3f} (goal >= {GOALS[w]}; NeuronPerf was {0.31 if w == 1 else 0.13})",
        )
    for w, r in np_ratios.items():
        verdict(f"vs-neuronperf-{w}w", r >= NEURONPERF_GOAL, f"npf/NeuronPerf = {r:.2f}x (goal >= {NEURONPERF_GOAL}x)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--neuronperf-child":
        neuronperf_child(int(sys.argv[2]), float(sys.argv[3]))
    else:
        main()
