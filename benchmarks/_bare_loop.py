"""The bare timed loop of issue 3, run in a fresh interpreter; prints one JSON line.

    python benchmarks/_bare_loop.py --model Noop --threads 2 --duration 3

Each thread runs, for ``--duration`` seconds from a common start::

    while perf_counter() < end:
        t0 = perf_counter_ns(); model(*inputs); t1 = perf_counter_ns(); lat.append(t1 - t0)

``npf_core`` is imported first so that this interpreter holds the same modules
(numpy, msgspec, anyio, ...) as a benchmarker, and the inputs are built the way a
benchmarker builds them for ``{"shape": [1], "dtype": "float32"}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import npf_core  # noqa: F401 - same import state as a benchmarker

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_models  # noqa: E402


def timed_loop(
    model: Any, inputs: tuple[Any, ...], end_box: list[float], lat: list[int], done: list[float],
    barrier: threading.Barrier,
) -> None:  # fmt: skip
    perf_counter = time.perf_counter
    perf_counter_ns = time.perf_counter_ns
    model(*inputs)  # one warm-up call, as npf's default warm-up
    barrier.wait()
    end = end_box[0]
    while perf_counter() < end:
        t0 = perf_counter_ns()
        model(*inputs)
        t1 = perf_counter_ns()
        lat.append(t1 - t0)
    done.append(perf_counter())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--samples", help="also save every latency (ns) to this .npy file")
    args = parser.parse_args()
    model = getattr(bench_models, args.model)()
    inputs = (np.random.default_rng(0).random((1,), dtype=np.float32),)
    end = [0.0]
    lats: list[list[int]] = [[] for _ in range(args.threads)]
    done: list[float] = []
    start = [0.0]

    def go() -> None:  # runs once every thread is warmed up and waiting
        start[0] = time.perf_counter()
        end[0] = start[0] + args.duration

    barrier = threading.Barrier(args.threads, action=go)
    threads = [
        threading.Thread(target=timed_loop, args=(model, inputs, end, lats[i], done, barrier))
        for i in range(args.threads)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    calls = sum(len(x) for x in lats)
    elapsed = max(done) - start[0]
    all_lat = np.concatenate([np.asarray(x, dtype=np.int64) for x in lats])
    if args.samples:
        np.save(args.samples, all_lat)
    print(
        json.dumps(
            {
                "calls": calls,
                "elapsed_s": elapsed,
                "rate": calls / elapsed,
                "p50_ns": float(np.percentile(all_lat, 50)),
                "p99_ns": float(np.percentile(all_lat, 99)),
                "mean_ns": float(all_lat.mean()),
            }
        )
    )


if __name__ == "__main__":
    main()
