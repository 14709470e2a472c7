"""Process and system CPU/memory sampling during a configuration (supervisor side)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from npf_core.supervisor.processes import Child

__all__ = ["ps_processes", "sample_resources"]


def ps_processes(children: list[Child]) -> list[psutil.Process]:
    procs = []
    for c in children:
        if c.pid is None:
            continue
        try:
            p = psutil.Process(c.pid)
            p.cpu_percent(None)
            procs.append(p)
        except psutil.Error:
            pass
    return procs


def sample_resources(procs: list[psutil.Process], resources: dict[str, list[float]]) -> None:
    resources["cpu"].append(psutil.cpu_percent(None))
    resources["mem"].append(psutil.virtual_memory().percent)
    cpu = rss = 0.0
    for p in procs:
        try:
            cpu += p.cpu_percent(None)
            rss += p.memory_info().rss
        except psutil.Error:
            pass
    if procs:
        resources["proc_cpu"].append(cpu)
        resources["proc_rss"].append(rss)
