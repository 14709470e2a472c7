"""Device ``cpu``: the CPUs this process may use.

``max`` model copies is the number of usable CPUs (the process's affinity mask),
and asking for more copies than that is a spec error before anything starts:
copies that share cores measure the sharing, not the model. Options:
``{"oversubscribe": true}`` allows more copies than CPUs on purpose (e.g. models
that mostly wait), ``{"pin": true}`` gives copy ``i`` its own block of CPUs
(affinity), and ``{"count": N}`` overrides the count used for ``max``.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import msgspec

from npf_core.plugin import Assignment, Device, Registry, decode_options, hookimpl


class CpuOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pin: bool = False
    oversubscribe: bool = False
    count: Annotated[int, msgspec.Meta(ge=1)] | None = None


def usable_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


class CpuDevice(Device):
    """The host CPUs."""

    type_name = "cpu"
    exclusive_hint = "or set device.options.oversubscribe to true to let copies share CPUs"

    options_type = CpuOptions  # its options in `npf schema`

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.opts = decode_options(options, CpuOptions, "device.options")
        self.exclusive = not self.opts.oversubscribe

    def count(self) -> int:
        return self.opts.count or len(usable_cpus())

    def assign(self, copy_index: int, n_models: int, pipeline_size: int) -> Assignment:
        if not self.opts.pin:
            return Assignment(env={}, cpus=None, devices=[], label="cpu")
        cpus = usable_cpus()
        per = max(1, len(cpus) // max(1, n_models))
        start = (copy_index * per) % len(cpus)
        mine = cpus[start : start + per]
        return Assignment(env={}, cpus=mine, devices=[str(c) for c in mine], label=f"cpu{mine[0]}-{mine[-1]}")


@hookimpl
def npf_register_devices(registry: Registry[Device]) -> None:
    registry.add("cpu", CpuDevice)
