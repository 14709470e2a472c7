"""Memory: peak RSS of the benchmarker for a fast no-op model, 2 s vs 30 s.

    python benchmarks/memory.py [--quick] [--reps N] [--short S] [--long S]

Each measurement is one npf run (one model copy, two workers, the no-op model at a
few million calls per second) in its own fresh interpreter, so that nothing from
an earlier run is counted. Three figures per run:

- ``kernel peak``: the benchmarker's peak resident set as the kernel recorded it
  (``getrusage(RUSAGE_CHILDREN).ru_maxrss`` in the process that ran npf, once npf
  has reaped its benchmarker; the benchmarker is that process's only child);
- ``report peak``: ``proc_rss_peak_mb`` from npf's report (the supervisor samples
  its children every 0.5 s, so it may miss a short peak; the kernel's high-water
  mark may in turn lag the sampled RSS by a few pages, as Linux syncs per-thread
  RSS counters lazily). ``peak RSS`` is the larger of the two;
- ``growth``: the peak minus the RSS the benchmarker had after loading the model
  (noted by an npf ``setup`` hook, ``bench_models.py:record_rss``), i.e. what the
  measurement itself added.

Short and long runs alternate. Goal (issue 3): peak RSS at 30 s within 10% of the
peak at 2 s (``--quick``: 2 s vs 10 s). NeuronPerf keeps every timestamp (about
300 bytes per inference), which at these rates would be gigabytes.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import banner, fmt_num, median, model_ref, parse_args, progress, run_npf, table, verdict

GOAL = 0.10
WORKERS = 2


def child(duration_s: float) -> None:
    """Run npf once and print the figures as JSON (in a fresh interpreter)."""
    with tempfile.TemporaryDirectory(prefix="npf-bench-rss-") as folder:
        os.environ["NPF_BENCH_RSS_DIR"] = folder
        report = run_npf("Noop", duration_s=duration_s, workers=WORKERS, setup=model_ref("record_rss"))
        setup_kb = [int(p.read_text()) for p in Path(folder).glob("setup-*.kb")]
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        json.dumps(
            {
                "peak_mb": usage.ru_maxrss / 1024,  # kB on Linux
                "report_peak_mb": report.proc_rss_peak_mb,
                "setup_mb": setup_kb[0] / 1024 if setup_kb else None,
                "calls": report.total_calls,
                "rate": report.throughput_avg,
                "seconds": report.total_s,
            }
        )
    )


def peak(m: dict[str, float]) -> float:
    return max(m["peak_mb"], m["report_peak_mb"] or 0.0)


def measure(duration_s: float) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(duration_s)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed ({done.returncode}): {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse_args(__doc__, reps=(2, 1), short=(2.0, 2.0), long=(30.0, 10.0))
    banner("memory: benchmarker peak RSS, short vs long run, no-op model", args)
    runs: dict[float, list[dict[str, float]]] = {args.short: [], args.long: []}
    for rep in range(args.reps):
        order = (args.short, args.long) if rep % 2 == 0 else (args.long, args.short)
        for d in order:
            m = measure(d)
            runs[d].append(m)
            progress(f"rep {rep + 1}/{args.reps} {d:g} s: peak {peak(m):.1f} MB, {m['calls']:,} calls")

    rows = []
    for d, ms in runs.items():
        for i, m in enumerate(ms):
            growth = peak(m) - m["setup_mb"] if m["setup_mb"] is not None else float("nan")
            rows.append([
                f"{d:g} s", i + 1, fmt_num(m["calls"]), fmt_num(m["rate"]), f"{peak(m):.1f}", f"{m['peak_mb']:.1f}",
                f"{m['report_peak_mb']:.1f}" if m["report_peak_mb"] is not None else "-",
                f"{m['setup_mb']:.1f}" if m["setup_mb"] is not None else "-", f"{growth:+.1f}",
                f"{growth * 2**20 / m['calls']:.4f}" if m["calls"] else "-",
            ])  # fmt: skip
    print()
    print(
        table(
            [
                "duration",
                "rep",
                "calls",
                "calls/s",
                "peak RSS MB",
                "kernel peak MB",
                "report peak MB",
                "RSS after load MB",
                "growth MB",
                "bytes/call",
            ],
            rows,
        )
    )
    short = median([peak(m) for m in runs[args.short]])
    long = median([peak(m) for m in runs[args.long]])
    ratio = long / short
    calls = median([m["calls"] for m in runs[args.long]])
    print(f"\n   median peak RSS: {short:.1f} MB at {args.short:g} s, {long:.1f} MB at {args.long:g} s")
    print(f"   NeuronPerf at ~300 B/inference would hold ~{calls * 300 / 2**30:.1f} GB for the {args.long:g} s run")
    print()
    verdict(
        "memory", ratio <= 1 + GOAL,
        f"peak RSS {args.long:g} s / {args.short:g} s = {ratio:.3f} (goal <= {1 + GOAL:.2f})",
    )  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(float(sys.argv[2]))
    else:
        main()
