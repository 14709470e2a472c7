"""GPU telemetry on a real GPU: npf's NVML figures for a saturating matmul model,
side by side with nvidia-smi sampling the same GPU from outside npf.

    python benchmarks/gpu_telemetry.py [--duration S] [--size N] [--depth D] [--gpu I]

Not run by CI: it needs an NVIDIA GPU and driver (nvidia-smi), a CUDA build of
torch==2.13.0 and nvidia-ml-py (``pip install -e '.[torch,gpu]'``; see
benchmarks/gpu_check.sh for getting a CUDA torch).

The model multiplies an N x N float32 input by D N x N weights in turn (4096 and 8,
about 1.1 TFLOP per call), one copy with two workers so that one worker's call is
queued while the other's runs: the GPU should be busy nearly all the time. npf runs
it on device ``gpu`` with ``telemetry: ["nvml", "host"]`` (named, so a missing NVML is
an error, not a null). Meanwhile ``nvidia-smi --query-gpu=... -lms 250`` samples the
same GPU in its own process; its averages over the measurement are the reference.
Before the run, NVML gives the idle power and the enforced power limit.

Goals:
- ``device_util_avg_percent`` > 90;
- ``power_avg_w`` plausible: above the idle draw by at least a fifth of the way to the
  power limit, and at most 5% over the limit;
- npf's utilisation and power within 10 points / 10% of nvidia-smi's over the same time;
- ``device_mem_used_peak_mb`` at least the model's weights and input;
- ``inf_per_joule`` = ``throughput_avg / power_avg_w``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import table, verdict

MODEL = '''
import torch


class MatmulChain(torch.nn.Module):
    """x @ w[0] @ w[1] ... : DEPTH float32 matmuls of SIZE x SIZE per call."""

    def __init__(self, size={size}, depth={depth}):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w = torch.nn.Parameter(torch.randn(depth, size, size, generator=g) / size**0.5, requires_grad=False)

    def forward(self, x):
        if not x.is_cuda:
            raise RuntimeError(f"input on {{x.device}}, expected a CUDA device")
        for i in range(self.w.shape[0]):
            x = x @ self.w[i]
        return x
'''


def nvml_reference(gpu: int) -> dict[str, Any]:
    """The GPU's name, its idle power (median of five readings 0.2 s apart, before the
    run) and its enforced power limit, from NVML."""
    import pynvml

    pynvml.nvmlInit()
    try:
        h = pynvml.nvmlDeviceGetHandleByIndex(gpu)
        readings = []
        for _ in range(5):
            readings.append(pynvml.nvmlDeviceGetPowerUsage(h) / 1000)
            time.sleep(0.2)
        limit = pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000
        return {"idle_w": statistics.median(readings), "limit_w": limit, "name": pynvml.nvmlDeviceGetName(h)}
    finally:
        pynvml.nvmlShutdown()


def start_smi(gpu: int, out: Path) -> subprocess.Popen[bytes]:
    cmd = ["nvidia-smi", f"--id={gpu}", "--query-gpu=timestamp,utilization.gpu,power.draw,memory.used",
           "--format=csv,noheader,nounits", "-lms", "250"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=out.open("wb"), stderr=subprocess.DEVNULL)


def smi_samples(path: Path) -> list[tuple[float, float, float, float]]:
    """(unix time, util %, power W, memory MiB) per nvidia-smi line."""
    import datetime as dt

    rows = []
    for line in path.read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            continue
        try:
            t = dt.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
            rows.append((t, float(parts[1]), float(parts[2]), float(parts[3])))
        except ValueError:
            continue
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--gpu", type=int, default=0)
    args = parser.parse_args()
    if shutil.which("nvidia-smi") is None:
        print("nvidia-smi not found: this check needs an NVIDIA GPU and its driver", file=sys.stderr)
        return 2
    import npf_core

    ref = nvml_reference(args.gpu)
    print(f"== GPU telemetry check: GPU {args.gpu} ({ref['name']}), idle {ref['idle_w']:.0f} W, "
          f"power limit {ref['limit_w']:.0f} W; npf {npf_core.__version__}")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="npf-gpu-telemetry-"))
    (work / "matmul.py").write_text(MODEL.format(size=args.size, depth=args.depth))
    spec = {
        "name": "gpu-telemetry",
        "model": {"framework": "torch", "target": "matmul.py:MatmulChain"},
        "inputs": [{"shape": [args.size, args.size], "dtype": "float32"}],
        "batch_sizes": [args.size],
        "device": "gpu",
        "n_models": [1],
        "workers_per_model": [2],
        "duration_s": args.duration,
        "warmup": {"iterations": 3, "seconds": 2.0},
        "telemetry": ["nvml", "host"],
        "output": {"dir": str(work / "out"), "reporters": ["json", "csv"]},
    }
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", str(args.gpu))
    smi_log = work / "smi.csv"
    smi = start_smi(args.gpu, smi_log)
    try:
        (r,) = npf_core.benchmark(spec)
    finally:
        smi.terminate()
        smi.wait()
    if r.status != "ok":
        print(f"npf run failed: {r.error}", file=sys.stderr)
        return 1
    # nvidia-smi's samples over the same measurement: from GO (stop - total_s) to the stop
    stop = time.mktime(time.strptime(r.stop_dts.split(".")[0], "%Y-%m-%dT%H:%M:%S"))
    rows = [x for x in smi_samples(smi_log) if stop - r.total_s + 0.5 <= x[0] <= stop - 0.5]
    smi_util = statistics.mean(x[1] for x in rows) if rows else float("nan")
    smi_power = statistics.mean(x[2] for x in rows) if rows else float("nan")
    smi_mem = max((x[3] for x in rows), default=float("nan"))
    flop = 2 * args.size**3 * args.depth
    print(table(
        ["figure", "npf (NVML, in the supervisor)", "nvidia-smi (its own process)"],
        [["utilisation %", f"{r.device_util_avg_percent:.1f}", f"{smi_util:.1f}"],
         ["power W", f"{r.power_avg_w:.1f}", f"{smi_power:.1f}"],
         ["memory used MiB (peak)", f"{r.device_mem_used_peak_mb:.0f}", f"{smi_mem:.0f}"],
         ["SM clock MHz", f"{r.device_clock_avg_mhz:.0f}", "-"],
         ["windows / samples", str(len(r.telemetry_windows.get("t_s", []))), str(len(rows))]],
    ))  # fmt: skip
    calls_s = r.throughput_avg / args.size
    print(f"\nthroughput {r.throughput_avg:,.0f} rows/s ({calls_s:.1f} calls/s, "
          f"{calls_s * flop / 1e12:.1f} TFLOP/s), inf_per_joule {r.inf_per_joule:.1f}, p50 {r.latency_ms_p50:.2f} ms")
    print(json.dumps({k: getattr(r, k) for k in ("device_util_avg_percent", "device_mem_used_peak_mb", "power_avg_w",
                                                 "inf_per_joule", "telemetry_note")}))  # fmt: skip
    weights_mib = (args.depth + 1) * args.size**2 * 4 / 2**20
    floor = ref["idle_w"] + 0.2 * (ref["limit_w"] - ref["idle_w"])
    ok = [
        verdict("utilisation > 90 %", r.device_util_avg_percent > 90, f"{r.device_util_avg_percent:.1f} %"),
        verdict("plausible power", floor <= r.power_avg_w <= 1.05 * ref["limit_w"],
                f"{r.power_avg_w:.0f} W (idle {ref['idle_w']:.0f} W, limit {ref['limit_w']:.0f} W, "
                f"floor {floor:.0f} W)"),  # fmt: skip
        verdict("agrees with nvidia-smi", abs(r.device_util_avg_percent - smi_util) <= 10
                and abs(r.power_avg_w - smi_power) <= 0.1 * smi_power,
                f"utilisation {r.device_util_avg_percent:.1f} vs {smi_util:.1f}, power {r.power_avg_w:.0f} vs "
                f"{smi_power:.0f} W"),  # fmt: skip
        verdict("memory holds the model", r.device_mem_used_peak_mb >= weights_mib,
                f"{r.device_mem_used_peak_mb:.0f} MiB >= {weights_mib:.0f} MiB of weights and input"),
        verdict("inf_per_joule = throughput / power", abs(r.inf_per_joule - r.throughput_avg / r.power_avg_w) < 1e-9,
                f"{r.inf_per_joule:.2f}"),
    ]  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
