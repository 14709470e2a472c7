"""Helpers shared by the benchmark scripts: arguments, npf runs through the Python
API, the bare loop in a fresh interpreter, medians and plain-text tables.

The scripts measure on noisy, shared machines, so they interleave the variants
they compare (alternating the order each repetition), repeat, and report medians
and the median of per-repetition ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODELS = HERE / "bench_models.py"
BARE_LOOP = HERE / "_bare_loop.py"


def model_ref(name: str) -> str:
    """The spec reference of a model in bench_models.py."""
    return f"{MODELS}:{name}"


def parse_args(doc: str | None, **defaults: Any) -> argparse.Namespace:
    """``--quick`` plus overrides of the script's default repetitions and duration.

    ``defaults`` maps ``reps``, ``duration`` to ``(default, quick)`` pairs."""
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    parser.add_argument("--quick", action="store_true", help="a short run (well under a minute)")
    for name, (full, quick) in defaults.items():
        parser.add_argument(f"--{name}", type=type(full), default=None, help=f"default {full} ({quick} with --quick)")
    args = parser.parse_args()
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def banner(title: str, args: argparse.Namespace) -> None:
    import npf_core

    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    settings = ", ".join(f"{k}={v}" for k, v in vars(args).items())
    print(f"== {title}")
    print(
        f"   npf {npf_core.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {time.strftime('%Y-%m-%d %H:%M:%S')}"
    )
    print(f"   settings: {settings}")
    sys.stdout.flush()


def spec(
    model: str,
    *,
    duration_s: float,
    workers: int | Sequence[int] = 1,
    n_models: int | Sequence[int] = 1,
    **extra: Any,
) -> dict[str, Any]:
    """An npf spec for a bench_models model on a (1,) float32 input."""
    return {
        "model": {"framework": "python", "target": model_ref(model)},
        "inputs": [{"shape": [1], "dtype": "float32"}],
        "n_models": list(n_models) if isinstance(n_models, Sequence) else [n_models],
        "workers_per_model": list(workers) if isinstance(workers, Sequence) else [workers],
        "duration_s": duration_s,
        **extra,
    }


def run_npf(model: str, **kw: Any) -> Any:
    """One configuration through ``npf_core.benchmark``; returns its Report."""
    import npf_core

    with tempfile.TemporaryDirectory(prefix="npf-bench-") as out:
        reports = npf_core.benchmark(spec(model, **kw), output_dir=out, reporters=[])
    report = reports[0]
    if report.status != "ok":
        raise RuntimeError(f"npf run of {model} failed: {report.error}")
    return report


def run_bare(model: str, *, threads: int, duration_s: float) -> dict[str, float]:
    """The bare timed loop in a fresh interpreter (see _bare_loop.py)."""
    cmd = [sys.executable, str(BARE_LOOP), "--model", model, "--threads", str(threads), "--duration", str(duration_s)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bare loop failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class SystemCpu:
    """CPU use over a ``with`` block: ``percent`` is the whole machine's (percent of
    all CPUs, from ``psutil.cpu_times``; npf's supervisor resets
    ``psutil.cpu_percent``'s state, so that is not used), ``other_percent`` the part
    not used by this process and its reaped children (``os.times``): other load
    competing with the measurement. On 2 CPUs one busy core reads 50%."""

    def __enter__(self) -> SystemCpu:
        import psutil

        self._sys0, self._own0, self._wall0 = psutil.cpu_times(), _own_cpu_s(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        import psutil

        sys1, own1, wall1 = psutil.cpu_times(), _own_cpu_s(), time.perf_counter()
        total = _cpu_total(sys1) - _cpu_total(self._sys0)
        idle = _cpu_idle(sys1) - _cpu_idle(self._sys0)
        self.percent = 100.0 * (1.0 - idle / total) if total > 0 else math.nan
        capacity = (wall1 - self._wall0) * (os.cpu_count() or 1)
        other = (total - idle) * capacity / total - (own1 - self._own0) if total > 0 else math.nan
        self.other_percent = max(0.0, 100.0 * other / capacity) if capacity > 0 else math.nan


def _cpu_total(t: Any) -> float:
    # Linux counts guest time inside user time as well
    return sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)


def _cpu_idle(t: Any) -> float:
    return t.idle + getattr(t, "iowait", 0.0)


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def median(values: Sequence[float]) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return statistics.median(vals) if vals else math.nan


def spread(values: Sequence[float], fmt: str = "{:.3f}") -> str:
    """``min..max`` of the values."""
    vals = [v for v in values if not math.isnan(v)]
    return f"{fmt.format(min(vals))}..{fmt.format(max(vals))}" if vals else "-"


def fmt_num(x: float | None, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:,.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: the first column left-aligned, the rest right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def verdict(goal: str, met: bool, detail: str) -> bool:
    print(f"VERDICT {goal}: {'MET' if met else 'MISSED'} - {detail}")
    return met


def progress(text: str) -> None:
    """A progress line (stderr, so that the printed figures stay clean)."""
    print(f"   .. {text}", file=sys.stderr, flush=True)
