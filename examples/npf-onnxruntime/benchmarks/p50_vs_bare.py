"""npf's p50 for an ONNX model against a bare ``InferenceSession.run`` loop, side by side.

    python benchmarks/p50_vs_bare.py [--reps 5] [--duration 3] [--batch 16] [--size 512] [--threads N]
                                     [--device cpu|gpu]

The model is ``relu(x @ W)``, ``x`` float32 ``[batch, size]``, ``W`` ``[size, size]``,
built with ``onnx.helper`` in a temporary folder. Each repetition measures, in an
order that alternates between repetitions:

- npf: a spec with this plugin, one copy, one worker, ``duration_s`` seconds
  (``npf_core.benchmark``; its copy forks from npf's zygote as usual); its report's
  ``latency_ms_p50``;
- bare: a fresh interpreter that makes an ``InferenceSession`` with the same session
  options (the threads npf's copy gets: ``--threads``, else every usable CPU, which is
  one copy's share) and providers, and times ``session.run(None, {"x": x})`` in a loop
  for the same time, after one warm-up call (npf's default warm-up); the median of its
  latencies.

``--device gpu`` runs both on the first GPU: npf's ``gpu`` device (its copy sees only
that GPU, through ``CUDA_VISIBLE_DEVICES``) and a bare session with
``CUDAExecutionProvider`` on the same GPU (needs onnxruntime-gpu; see gpu_check.sh).

It prints each repetition's two p50s and their ratio, then the median ratio and one
line ``VERDICT p50 within 10%: MET|MISSED - ...``. Needs npf, this plugin and onnx.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL = 0.10  # |npf p50 / bare p50 - 1|


def build_model(path: Path, batch: int, size: int) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((size, size)).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "matmul_relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", size])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def bare_loop(model: str, batch: int, size: int, threads: int, duration: float, device: str) -> dict[str, Any]:
    """The reference, run in a fresh interpreter (``--bare``)."""
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = threads
    providers: list[Any] = ["CPUExecutionProvider"]
    if device == "gpu":
        if hasattr(ort, "preload_dlls"):
            ort.preload_dlls()  # as the plugin does
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": "0"}))
    session = ort.InferenceSession(model, so, providers=providers)
    if device == "gpu" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise SystemExit(f"the bare session did not start CUDA: {session.get_providers()}")
    feed = {"x": np.random.default_rng(0).standard_normal((batch, size)).astype(np.float32)}
    run = session.run
    pc, pc_ns = time.perf_counter, time.perf_counter_ns
    lat: list[int] = []
    run(None, feed)  # one warm-up call, as npf's default warm-up
    end = pc() + duration
    while pc() < end:
        t0 = pc_ns()
        run(None, feed)
        t1 = pc_ns()
        lat.append(t1 - t0)
    return {"p50_ms": float(np.median(lat)) / 1e6, "calls": len(lat)}


def run_bare(model: Path, args: argparse.Namespace, threads: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--bare", str(model), "--batch", str(args.batch), "--size", str(args.size),
           "--threads", str(threads), "--duration", str(args.duration), "--device", args.device]  # fmt: skip
    env = dict(os.environ)
    if args.device == "gpu":
        env["CUDA_VISIBLE_DEVICES"] = first_gpu()  # the GPU npf's one copy gets
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=args.duration + 120, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def first_gpu() -> str:
    """The GPU npf's ``gpu`` device gives its first copy: the first of CUDA_VISIBLE_DEVICES, else GPU 0."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return visible.split(",")[0].strip() if visible else "0"


def run_npf(spec: Path, args: argparse.Namespace) -> dict[str, Any]:
    import npf_core

    (report,) = npf_core.benchmark(str(spec), duration_s=args.duration, reporters=[], results=False)
    if report.status != "ok":
        raise SystemExit(f"npf's configuration failed: {report.error}")
    return {"p50_ms": report.latency_ms_p50, "calls": report.total_calls}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--threads", type=int, help="intra-op threads (default: every usable CPU, npf's one-copy share)")
    p.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    p.add_argument("--bare", metavar="MODEL", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = args.threads or usable
    if args.bare:
        print(json.dumps(bare_loop(args.bare, args.batch, args.size, threads, args.duration, args.device)))
        return 0

    with tempfile.TemporaryDirectory(prefix="npf-ort-p50-") as tmp:
        folder = Path(tmp)
        build_model(folder / "model.onnx", args.batch, args.size)
        spec = {
            "name": "ort-p50",
            "model": {"framework": "onnxruntime", "path": "model.onnx"},
            "inputs": [{"shape": [args.batch, args.size], "dtype": "float32"}],
            "batch_sizes": [args.batch],
            "n_models": [1],
            "workers_per_model": [1],
            "device": args.device,
        }
        if args.threads:
            spec["model"]["options"] = {"intra_op_num_threads": args.threads}  # type: ignore[index]
        (folder / "spec.json").write_text(json.dumps(spec))
        print(f"model relu(x @ W): x [{args.batch}, {args.size}], W [{args.size}, {args.size}]; "
              f"device {args.device}; {threads} intra-op thread(s); {args.reps} x {args.duration} s each; "
              f"usable CPUs {usable}")  # fmt: skip
        print(f"{'rep':>3}  {'order':<9}  {'npf p50 ms':>10}  {'bare p50 ms':>11}  {'ratio':>6}  calls npf/bare")
        ratios = []
        for rep in range(args.reps):
            order = ("npf", "bare") if rep % 2 == 0 else ("bare", "npf")
            got: dict[str, dict[str, Any]] = {}
            for which in order:
                print(f"rep {rep + 1}: {which} ...", file=sys.stderr, flush=True)
                got[which] = (
                    run_npf(folder / "spec.json", args)
                    if which == "npf"
                    else run_bare(folder / "model.onnx", args, threads)
                )
            ratio = got["npf"]["p50_ms"] / got["bare"]["p50_ms"]
            ratios.append(ratio)
            print(f"{rep + 1:>3}  {'-'.join(order):<9}  {got['npf']['p50_ms']:>10.4f}  {got['bare']['p50_ms']:>11.4f}  "
                  f"{ratio:>6.3f}  {got['npf']['calls']}/{got['bare']['calls']}")  # fmt: skip
    med = statistics.median(ratios)
    print(f"median ratio npf/bare: {med:.3f} (range {min(ratios):.3f}-{max(ratios):.3f})")
    verdict = "MET" if abs(med - 1) <= GOAL else "MISSED"
    print(f"VERDICT p50 within {GOAL:.0%}: {verdict} - npf p50 / bare InferenceSession.run p50 = {med:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
