"""How many model copies this machine can take, decided before they start.

A spec's ``n_models`` is checked against the machine, not only against the device:

- **processes and threads** the user may still start: ``RLIMIT_NPROC`` (counted
  per user, threads included), the cgroup's ``pids.max`` (v1 or v2, every level up
  to the root) and the kernel's ``threads-max`` / ``pid_max``;
- **memory** still available: ``MemAvailable`` and the cgroup's memory limit
  (``memory.max`` or ``memory.limit_in_bytes``, every level up);
- what **one copy** costs: a floor before anything has run (its process, the wire
  watchdog thread, its workers; a few MB), then what the first copy of the run
  really uses once it is loaded and warm (its threads and unique memory, with
  whatever it started), measured before more than :data:`UNMEASURED_COPIES` copies
  have started, and for later configurations before any of their copies start.

Too many copies is a :class:`~npf_core.errors.MachineLimit` (exit code 2) naming
``n_models`` and the bound, raised before the copies start. Cores are the device's
business: the ``cpu`` device refuses more copies than CPUs unless ``oversubscribe``.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

import psutil

from npf_core.errors import MachineLimit
from npf_core.spec.config import RunConfig

__all__ = [
    "RESERVE_MEMORY_FRACTION",
    "RESERVE_TASKS",
    "UNMEASURED_COPIES",
    "CopyCost",
    "Headroom",
    "check_copies",
    "copy_cost",
    "floor_cost",
    "headroom",
]

#: copies of a configuration started at once before any copy of the run was measured (a
#: small configuration starts as it always did); the others wait for the first's figures
UNMEASURED_COPIES = 4
#: processes and threads kept for npf itself (its worker threads, the zygote) and the rest of the machine
RESERVE_TASKS = 48
#: the share of the available memory kept free (and at least RESERVE_MEMORY_MIN)
RESERVE_MEMORY_FRACTION = 0.10
RESERVE_MEMORY_MIN = 64 * 2**20
#: the least unique memory a copy takes, by start method (measured: a forked copy of a
#: sleeping model 8-10 MB, a fresh interpreter 32 MB)
FLOOR_MEMORY = {"fork": 4 * 2**20, "zygote": 4 * 2**20, "fresh": 16 * 2**20, "inline": 0}
_UNLIMITED = 2**62  # cgroup v1 writes "no limit" as a huge number
_MEMORY_FILES = (("memory.max", "memory.current"), ("memory.limit_in_bytes", "memory.usage_in_bytes"))  # v2, v1


@dataclass(frozen=True)
class CopyCost:
    """What one copy takes: processes and threads besides its workers, and bytes of
    memory of its own; ``measured`` says whether a real copy was measured."""

    tasks_besides_workers: int
    memory: int
    measured: bool = False

    def tasks(self, workers: int) -> int:
        return self.tasks_besides_workers + workers

    def at_least(self, other: CopyCost) -> CopyCost:
        return CopyCost(max(self.tasks_besides_workers, other.tasks_besides_workers),
                        max(self.memory, other.memory), self.measured or other.measured)  # fmt: skip


@dataclass(frozen=True)
class Headroom:
    """What may still be started: tasks (processes and threads) and bytes of memory,
    each with what bounds it (None: no bound found)."""

    tasks: int | None
    tasks_by: str
    memory: int | None
    memory_by: str


def floor_cost(method: str) -> CopyCost:
    """A copy's least cost before any has run: its process and the wire watchdog
    (threads of the supervisor for ``inline``), and a few MB."""
    besides = 0 if method == "inline" else 2
    return CopyCost(besides, FLOOR_MEMORY.get(method, FLOOR_MEMORY["fresh"]))


def check_copies(config: RunConfig, cost: CopyCost, room: Headroom, *, started: int = 0) -> None:
    """Raise :class:`MachineLimit` when the copies of ``config`` not yet started
    (``n_models - started``) do not fit in ``room`` at ``cost`` each; the message
    names the tighter bound (processes and threads, or memory) and how many fit."""
    todo = config.n_models - started
    if todo <= 0:
        return
    how = ", measured on the first copy" if cost.measured else " at least"
    limits: list[tuple[int, str]] = []  # (copies that fit, why) for each bound exceeded
    per_tasks = cost.tasks(config.workers_per_model)
    if room.tasks is not None and per_tasks > 0:
        usable = room.tasks - RESERVE_TASKS
        if todo * per_tasks > usable:
            limits.append((started + max(0, usable // per_tasks),
                           f"need {todo * per_tasks} more processes and threads ({per_tasks} a copy{how}: "
                           f"its process, the wire watchdog, {config.workers_per_model} worker(s)), but this "
                           f"machine lets npf start {max(0, room.tasks)} more ({room.tasks_by}; "
                           f"{RESERVE_TASKS} kept in reserve)"))  # fmt: skip
    if room.memory is not None and cost.memory > 0:
        usable = room.memory - max(RESERVE_MEMORY_MIN, int(room.memory * RESERVE_MEMORY_FRACTION))
        if todo * cost.memory > usable:
            limits.append((started + max(0, usable // cost.memory),
                           f"need {_mb(todo * cost.memory)} more memory ({_mb(cost.memory)} a copy{how}), but "
                           f"{_mb(max(0, room.memory))} is available ({room.memory_by}; "
                           f"{RESERVE_MEMORY_FRACTION:.0%} kept free)"))  # fmt: skip
    if limits:
        fit, why = min(limits)
        raise MachineLimit(
            f"{config.n_models} copies ({config.config_id}) {why}: at most {fit} copies",
            "ask for fewer copies" + (", or raise the limit" if "memory" not in why else ", or free memory"),
        )


def _mb(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


# ---------------------------------------------------------------------------
# the machine
# ---------------------------------------------------------------------------


def headroom() -> Headroom:
    """What this process may still start now (tasks, memory), and what bounds each."""
    tasks: list[tuple[int, str]] = []
    soft, _hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY:
        used = _user_tasks(os.getuid())
        tasks.append((soft - used, f"RLIMIT_NPROC {soft}, {used} in use by this user"))
    for folder in _cgroup_chain("pids"):
        limit, current = _read_int(folder / "pids.max"), _read_int(folder / "pids.current")
        if limit is not None and current is not None:
            tasks.append((limit - current, f"cgroup pids.max {limit} at {folder}, {current} in use"))
    total = _system_tasks()
    for name in ("threads-max", "pid_max"):
        limit = _read_int(Path("/proc/sys/kernel") / name)
        if limit is not None and total is not None:
            tasks.append((limit - total, f"kernel {name} {limit}, {total} in use"))
    memory: list[tuple[int, str]] = []
    try:
        memory.append((int(psutil.virtual_memory().available), "available memory"))
    except (OSError, RuntimeError):  # pragma: no cover - no /proc/meminfo
        pass
    for folder in _cgroup_chain("memory"):
        for max_name, cur_name in _MEMORY_FILES:
            limit, current = _read_int(folder / max_name), _read_int(folder / cur_name)
            if limit is not None and current is not None and limit < _UNLIMITED:
                memory.append((limit - current, f"cgroup {max_name} {_mb(limit)} at {folder}, {_mb(current)} in use"))
    t = min(tasks, default=(None, ""))
    m = min(memory, default=(None, ""))
    return Headroom(tasks=t[0], tasks_by=t[1], memory=m[0], memory_by=m[1])


def _read_int(path: Path) -> int | None:
    """An integer file of /proc or a cgroup; None when absent or "max"."""
    try:
        text = path.read_text().split()
    except OSError:
        return None
    try:
        return int(text[0]) if text else None
    except ValueError:  # "max"
        return None


def _system_tasks() -> int | None:
    """Every thread of the machine (the 4th field of /proc/loadavg: running/total)."""
    try:
        return int(Path("/proc/loadavg").read_text().split()[3].split("/")[1])
    except (OSError, IndexError, ValueError):
        return None


def _user_tasks(uid: int) -> int:
    """Threads of every process whose real user is ``uid`` (what RLIMIT_NPROC counts)."""
    n = 0
    for p in psutil.process_iter(["uids", "num_threads"]):
        try:
            uids, threads = p.info["uids"], p.info["num_threads"]
        except (psutil.Error, KeyError):
            continue
        if uids is not None and uids.real == uid:
            n += threads or 1
    return n


def _cgroup_chain(controller: str) -> list[Path]:
    """The cgroup folders of this process for ``controller`` ("pids", "memory"), from
    its own up to the root of the mounted hierarchy; v2 and v1 alike."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    found: list[Path] = []
    for line in lines:
        hier, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        v2 = hier == "0" and controllers == ""
        if not v2 and controller not in controllers.split(","):
            continue
        for mount in mounts:
            fields, _, tail = mount.partition(" - ")
            parts, fs = fields.split(), tail.split()
            if len(parts) < 5 or len(fs) < 3:
                continue
            root, point = parts[3], parts[4]
            if v2 and fs[0] != "cgroup2":
                continue
            if not v2 and (fs[0] != "cgroup" or controller not in fs[2].split(",")):
                continue
            rel = os.path.relpath(path, root) if path.startswith(root) else None
            if rel is None or rel.startswith(".."):
                continue
            folder = Path(point) / rel if rel != "." else Path(point)
            while True:
                found.append(folder)
                if folder == Path(point) or folder.parent == folder:
                    break
                folder = folder.parent
    return found


# ---------------------------------------------------------------------------
# one copy
# ---------------------------------------------------------------------------


def copy_cost(pid: int, workers: int) -> CopyCost | None:
    """What the copy ``pid`` (with ``workers`` worker threads) takes now, with what it
    started: threads, and memory of its own (private pages and swap). None if gone."""
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.Error:
        return None
    tasks = memory = 0
    for p in procs:
        try:
            tasks += p.num_threads()
            memory += _unique_memory(p)
        except psutil.Error:
            continue
    if tasks == 0:
        return None
    return CopyCost(max(0, tasks - workers), memory, measured=True)


def _unique_memory(p: psutil.Process) -> int:
    """Private pages and swap of one process (smaps_rollup: cheap even for a big one)."""
    try:
        text = Path(f"/proc/{p.pid}/smaps_rollup").read_text()
    except OSError:
        return int(getattr(p.memory_full_info(), "uss", 0))
    kb = 0
    for line in text.splitlines():
        if line.startswith(("Private_Clean:", "Private_Dirty:", "Swap:")):
            kb += int(line.split()[1])
    return kb * 1024
