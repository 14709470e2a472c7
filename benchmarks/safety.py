"""Safety under any input (issue 20): what npf bounds, and what the bounds cost.

    python benchmarks/safety.py [--quick] [--reps N]

1. ``n_models: [100000]`` (cpu, oversubscribe) through the command line, for each
   start method: time to the refusal (exit 2), processes started (benchmarkers and
   zygotes, counted where npf starts them) and the most processes alive at once
   under npf; beside it, in the same run, the smallest real run (1 copy, 0.2 s).
2. More copies than memory, found on the first copy: a model holding 256 MB,
   ``n_models`` worth 1.5x the available memory: time to the refusal, copies started.
3. Signals: seconds from SIGTERM to exit 130 while the run is built (a device probe
   made slow), while copies are being started (each start made slow) and while
   measuring; a second SIGINT 50-100 ms after the first: how many runs still exit 130.
4. What the checks cost: decoding a spec with and without the value checks, refusing
   a spec nested 100,000 levels, reading the machine's headroom, noting the copies'
   descendants (one process-table read), measuring one copy.

Goals: exit 2 within 15 s and fewer than 50 processes for 100000 copies; every
signal honoured within 1 s; every double Ctrl-C exits 130.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

import psutil
from _common import banner, median, model_ref, parse_args, progress, spread, table, verdict

#: the command line with counters (and, for the signal figures, one stage made slow)
WRAPPER = """
import atexit, json, os, sys, time
import npf_core.supervisor.processes as processes
import npf_core.supervisor.zygote_keeper as zk
counts = {"spawns": 0, "zygotes": 0}
real_spawn, real_launch = processes.spawn, zk.Zygote._launch
def spawn(*args, **kwargs):
    counts["spawns"] += 1
    child = real_spawn(*args, **kwargs)
    if os.environ.get("SLOW") == "spawn":
        open("marker", "a").write("x")
        time.sleep(0.25)
    return child
def launch(self):
    counts["zygotes"] += 1
    return real_launch(self)
processes.spawn, zk.Zygote._launch = spawn, launch
if os.environ.get("SLOW") == "setup":
    import npf_core.supervisor.run as run
    real_plan = run.make_plan
    def plan(*args, **kwargs):
        open("marker", "a").write("x")
        time.sleep(60)
        return real_plan(*args, **kwargs)
    run.make_plan = plan
atexit.register(lambda: open("counts.json", "w").write(json.dumps(counts)))
from npf_core.cli import main
sys.argv[0] = "npf"
raise SystemExit(main())
"""


def _spec(folder: Path, **fields: Any) -> Path:
    spec = {
        "model": {"framework": "python", "target": model_ref("Sleep1ms")},
        "inputs": [{"shape": [1], "dtype": "float32"}],
        "n_models": [1], "workers_per_model": [1], "duration_s": 0.2,
        "device": {"type": "cpu", "options": {"oversubscribe": True}},
        "warmup": {"iterations": 0}, "timeouts": {"load_s": 120, "stop_s": 5, "grace_s": 0.5},
        "output": {"dir": str(folder / "out"), "reporters": ["json"]}, **fields,
    }  # fmt: skip
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def _cli(folder: Path, env: dict[str, str] | None = None, after: Any = None) -> dict[str, Any]:
    """Run the wrapped command line in ``folder``; ``after(proc)`` runs while it does.
    Returns its exit code, wall time, counts and the most processes alive under it."""
    (folder / "wrapper.py").write_text(WRAPPER)
    for name in ("marker", "counts.json"):
        (folder / name).unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "wrapper.py", "run", "spec.json", "-q"], cwd=folder,
                            env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    most = 0
    extra: dict[str, Any] = {}
    if after is not None:
        extra = after(proc) or {}
    while proc.poll() is None:
        try:
            most = max(most, len(psutil.Process(proc.pid).children(recursive=True)))
        except psutil.Error:
            pass
        time.sleep(0.005)
    err = proc.stderr.read() if proc.stderr else ""
    wall = time.perf_counter() - t0
    counts = json.loads((folder / "counts.json").read_text()) if (folder / "counts.json").exists() else {}
    return {"code": proc.returncode, "wall": wall, "err": err, "most": most, **counts, **extra}


def _wait_marker(folder: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not (folder / "marker").exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the slowed stage was never reached")
        time.sleep(0.005)


def refuse_many(reps: int) -> bool:
    print("\n-- 1. n_models 100000 (oversubscribe), command line; reference: 1 copy for 0.2 s, same method")
    rows, ok = [], True
    for method in ("zygote", "fork", "fresh"):
        walls, refs, spawned, most = [], [], [], []
        for rep in range(reps):
            progress(f"{method} rep {rep + 1}/{reps}")
            with tempfile.TemporaryDirectory(prefix="npf-safety-") as d:
                folder = Path(d)
                for which in (("big", "small") if rep % 2 == 0 else ("small", "big")):
                    _spec(folder, n_models=[100_000 if which == "big" else 1], start_method=method)
                    res = _cli(folder)
                    if which == "big":
                        ok &= res["code"] == 2 and "$.n_models" in res["err"]
                        walls.append(res["wall"])
                        spawned.append(res.get("spawns", 0) + res.get("zygotes", 0))
                        most.append(res["most"])
                        said = res["err"].strip()
                    else:
                        refs.append(res["wall"])
        rows.append([method, f"{median(walls):.2f}", spread(walls, "{:.2f}"), f"{median(refs):.2f}",
                     max(spawned), max(most)])  # fmt: skip
        worst_wall, worst_procs = max(walls), max(max(spawned), max(most))
        ok &= worst_wall < 15 and worst_procs < 50
    print(table(["method", "refused in s (median)", "range", "1-copy run s", "processes started", "most alive"],
                rows))  # fmt: skip
    print(f"   it says: {said}")
    return verdict("100000 copies refused", ok, "exit 2 naming n_models, within 15 s, under 50 processes each time")


def refuse_memory() -> bool:
    print("\n-- 2. more copies than memory, measured on the first copy (a model holding 256 MB)")
    available = psutil.virtual_memory().available
    hog_mb = 256
    n = int(available * 1.5 / (hog_mb * 2**20)) + 1
    with tempfile.TemporaryDirectory(prefix="npf-safety-") as d:
        folder = Path(d)
        _spec(folder, model={"framework": "python", "target": model_ref("Hog")}, n_models=[n], start_method="zygote")
        res = _cli(folder, env={"NPF_BENCH_HOG_MB": str(hog_mb)})
    print(table(["available", "copies asked", "would need", "exit", "refused in s", "copies started"],
                [[f"{available / 2**30:.1f} GB", n, f"{n * hog_mb / 1024:.1f} GB", res["code"], f"{res['wall']:.2f}",
                  res.get("spawns", 0)]]))  # fmt: skip
    print(f"   it says: {res['err'].strip()}")
    return verdict("memory bound", res["code"] == 2 and res.get("spawns", 99) <= 4,
                   "refused after the first copies were measured, before the rest started")  # fmt: skip


def signals(reps: int) -> bool:
    print("\n-- 3. signals: seconds from SIGTERM to exit, and double Ctrl-C")
    rows, ok = [], True
    for stage in ("setup", "spawn", "measure"):
        took, codes = [], []
        for rep in range(reps):
            progress(f"SIGTERM during {stage} {rep + 1}/{reps}")
            with tempfile.TemporaryDirectory(prefix="npf-safety-") as d:
                folder = Path(d)
                _spec(folder, n_models=[20 if stage == "spawn" else 1], duration_s=30, start_method="fork")

                def hit(proc: subprocess.Popen[str], folder: Path = folder, stage: str = stage) -> dict[str, Any]:
                    if stage == "measure":
                        deadline = time.monotonic() + 60
                        while not list((folder / "out").rglob("*.csv")) and not _measuring(proc):
                            if time.monotonic() > deadline:
                                break
                            time.sleep(0.01)
                        time.sleep(0.5)
                    else:
                        _wait_marker(folder)
                    t0 = time.perf_counter()
                    os.kill(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=60)
                    return {"took": time.perf_counter() - t0}

                res = _cli(folder, env={"SLOW": stage}, after=hit)
                took.append(res["took"])
                codes.append(res["code"])
        ok &= all(c == 130 for c in codes) and max(took) < 1.0 + (0.5 if stage != "setup" else 0.0)  # + grace_s
        rows.append([stage, f"{median(took):.2f}", spread(took, "{:.2f}"), ",".join(sorted(set(map(str, codes))))])
    print(table(["SIGTERM while", "to exit s (median)", "range", "exit codes"], rows))
    print("   (while copies start, each start blocks for 0.25 s; while measuring, the copies' grace_s is 0.5 s)")
    exits = []
    for rep in range(max(6, reps * 2)):
        gap = 0.05 + 0.05 * (rep % 3) / 2
        progress(f"double Ctrl-C {rep + 1}, gap {gap * 1000:.0f} ms")
        with tempfile.TemporaryDirectory(prefix="npf-safety-") as d:
            folder = Path(d)
            _spec(folder, workers_per_model=[1, 2], duration_s=1.0, start_method="fork")

            def twice(proc: subprocess.Popen[str], folder: Path = folder, gap: float = gap) -> None:
                deadline = time.monotonic() + 60
                while not list((folder / "out").rglob("results.json")) and time.monotonic() < deadline:
                    time.sleep(0.01)
                os.kill(proc.pid, signal.SIGINT)
                time.sleep(gap)
                os.kill(proc.pid, signal.SIGINT)

            exits.append(_cli(folder, after=twice)["code"])
    print(f"   double Ctrl-C (second 50-100 ms after the first): exit codes {exits}")
    ok &= all(c == 130 for c in exits)
    return verdict("signals honoured", ok, "exit 130 within 1 s of SIGTERM (+ grace_s to reap), and after every "
                                           "double Ctrl-C")  # fmt: skip


def _measuring(proc: subprocess.Popen[str]) -> bool:
    try:
        return len(psutil.Process(proc.pid).children(recursive=True)) > 0
    except psutil.Error:
        return False


def costs() -> None:
    from npf_core.errors import SpecError
    from npf_core.spec.bounds import check_values
    from npf_core.spec.schema import decode_spec
    from npf_core.supervisor import limits, lineage
    from npf_core.supervisor.processes import Child

    print("\n-- 4. what the checks cost (median of repeated calls)")
    with tempfile.TemporaryDirectory(prefix="npf-safety-") as d:
        text = _spec(Path(d)).read_bytes()
        loaded = decode_spec(text, d)
        doc = json.loads(text)
        doc["device"]["options"] = {"x": "HOLE"}
        deep = json.dumps(doc).replace('"HOLE"', "[" * 100_000 + "]" * 100_000).encode()

        def refuse_deep() -> None:
            try:
                decode_spec(deep, d)
            except SpecError:
                return
            raise AssertionError("a spec nested 100,000 levels was accepted")

        def per_call(fn: Any, number: int) -> float:
            return median([t / number for t in timeit.repeat(fn, number=number, repeat=5)])

        me = psutil.Process()
        fake = [Child(0, None, None, pid=os.getppid())]  # type: ignore[arg-type]
        rows = [
            ["decode a spec (all checks)", f"{per_call(lambda: decode_spec(text, d), 200) * 1e6:.0f} us"],
            ["  of which the value checks", f"{per_call(lambda: check_values(loaded.spec), 2000) * 1e6:.0f} us"],
            ["refuse a spec nested 100,000 levels", f"{per_call(refuse_deep, 5) * 1e3:.1f} ms"],
            ["the machine's headroom (once per run, per config)", f"{per_call(limits.headroom, 20) * 1e3:.1f} ms"],
            ["note copies' descendants (5 s measuring)", f"{per_call(lambda: lineage.note(fake), 20) * 1e3:.1f} ms"],
            ["measure one copy (this process)", f"{per_call(lambda: limits.copy_cost(me.pid, 1), 20) * 1e3:.1f} ms"],
        ]  # fmt: skip
    print(table(["check", "cost"], rows))
    print(f"   processes on this machine: {len(psutil.pids())}")


def main() -> None:
    args = parse_args(__doc__, reps=(3, 1))
    banner("safety: bounds decided before anything starts, signals at every stage", args)
    met = [refuse_many(args.reps), refuse_memory(), signals(args.reps)]
    costs()
    sys.exit(0 if all(met) else 1)


if __name__ == "__main__":
    main()
