"""Telemetry source ``host``: the CPU cores the copies run on, and each copy's RSS.

For every device (``devices = None``). Per window it gives

- ``cpu_util_percent``: the busy share of the cores the copies may run on, averaged
  over those cores: the CPUs the device pinned the copies to, else the union of the
  copies' CPU affinity masks (read at GO), from the kernel's per-CPU time counters
  (``/proc/stat`` through psutil), as a difference over the window;
- ``copy_rss_mb``: each copy's resident set size (MiB), in copy order (null for a
  copy that is not a process of its own: ``start_method: "inline"``).

These are host figures, not device ones: a ``cpu`` run's device fields stay null.
"""

from __future__ import annotations

import os
from typing import Any

import psutil

from npf_core.plugin import Device, Registry, Telemetry, TelemetryTarget, hookimpl

__all__ = ["HostTelemetry", "busy_fraction"]


def busy_fraction(before: Any, after: Any) -> float | None:
    """The busy share of one CPU between two ``psutil.cpu_times`` readings (None when
    no time passed). Idle and I/O wait count as idle; Linux counts guest time inside
    user time, so it is not added twice."""
    def total(t: Any) -> float:
        return sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)

    def idle(t: Any) -> float:
        return t.idle + getattr(t, "iowait", 0.0)

    spent = total(after) - total(before)
    if spent <= 0:
        return None
    return max(0.0, min(1.0, 1.0 - (idle(after) - idle(before)) / spent))


class HostTelemetry(Telemetry):
    """The copies' CPU cores (utilisation) and each copy's resident memory."""

    devices = None

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self._cores: list[int] = []
        self._procs: list[psutil.Process | None] = []
        self._last: list[Any] = []

    def probe(self, device: Device, window_s: float) -> str | None:
        try:
            psutil.cpu_times(percpu=True)
        except Exception as exc:  # a container without /proc/stat
            return f"cannot read per-CPU times: {exc}"
        return None

    def begin(self, target: TelemetryTarget) -> None:
        pinned = {c for copy in target.copies for c in copy.get("cpus") or []}
        cores: set[int] = set(pinned)
        self._procs = []
        for copy in target.copies:
            proc = None
            if copy.get("pid") is not None:
                try:
                    proc = psutil.Process(copy["pid"])
                    if not pinned:
                        cores.update(proc.cpu_affinity() or [])
                except (psutil.Error, AttributeError):  # gone already, or no affinity on this platform
                    proc = None
            self._procs.append(proc)
        if not cores:
            try:
                cores = set(os.sched_getaffinity(0))
            except AttributeError:
                cores = set(range(psutil.cpu_count() or 1))
        self._last = psutil.cpu_times(percpu=True)
        self._cores = sorted(c for c in cores if c < len(self._last))

    def sample(self) -> dict[str, Any]:
        now = psutil.cpu_times(percpu=True)
        busy = [busy_fraction(self._last[c], now[c]) for c in self._cores if c < len(now)]
        self._last = now
        shares = [b for b in busy if b is not None]
        out: dict[str, Any] = {}
        if shares:
            out["cpu_util_percent"] = 100.0 * sum(shares) / len(shares)
        rss: list[float | None] = []
        for proc in self._procs:
            try:
                size = proc.memory_info().rss if proc is not None else 0
            except psutil.Error:  # the copy has exited
                size = 0
            rss.append(size / 2**20 if size else None)  # 0: an exited copy not yet reaped
        if any(r is not None for r in rss):
            out["copy_rss_mb"] = rss
        return out

    def end(self) -> None:
        self._procs = []


@hookimpl
def npf_register_telemetry(registry: Registry[Telemetry]) -> None:
    registry.add("host", HostTelemetry)
