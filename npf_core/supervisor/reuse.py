"""Which model copies a sweep can keep and reuse, and in what order to run it so
that it loads the fewest copies (issue 23). Decisions only: no process is started
or ended here (:mod:`npf_core.supervisor.copy_pool` does that).

A loaded copy holds what its load fixed, its :class:`CopyKey`:

- the model: its kind and reference (a model index's entries are separate
  artifacts, one per batch size, so each is its own model) and performance level;
- its pipeline size and start method;
- its place: the copy index and the device plugin's assignment for it (cores,
  GPUs, CPUs, environment);
- with some frameworks, configuration fields its load fixed and that cannot change
  later (:meth:`~npf_core.plugin.hookspecs.Framework.copy_depends_on`: TensorFlow's
  thread pools are sized from ``n_models``).

Copy ``i`` of a configuration reuses the idle copy ``i`` when their keys are equal;
anything else (another artifact, another device share, another pipeline size) is
loaded. What a configuration changes only in workers per copy, batch size (the same
loaded model takes it), duration or load mode keeps every copy.

:class:`Slots` is the one rule of what stays loaded, used both to count the loads of
a plan before it runs (the plan's first line) and by the pool as it runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from npf_core.spec.config import RunConfig
from npf_core.wire.protocol import AssignmentBlock

if TYPE_CHECKING:
    from npf_core.plugin.hookspecs import Device

__all__ = ["CopyKey", "ReuseRules", "Slots", "loads_without_reuse"]


class CopyKey(msgspec.Struct, frozen=True, kw_only=True):
    """What a loaded copy holds; two copies with equal keys are interchangeable."""

    model_kind: str
    model_ref: str
    performance_level: str
    pipeline_size: int
    start_method: str
    copy_index: int
    #: the device plugin's assignment, encoded (equal shares encode equally)
    share: bytes
    #: the devices it names (cores, GPUs, CPUs): what the copy occupies while loaded
    devices: tuple[str, ...]
    #: configuration fields the load fixed (Framework.copy_depends_on), with their values
    fixed: tuple[tuple[str, Any], ...] = ()


def copy_key(config: RunConfig, copy_index: int, assignment: dict[str, Any], depends: frozenset[str]) -> CopyKey:
    block = AssignmentBlock.of(assignment)
    return CopyKey(
        model_kind=config.model_kind,
        model_ref=config.model_ref,
        performance_level=repr(config.performance_level),
        pipeline_size=config.pipeline_size,
        start_method=config.start_method,
        copy_index=copy_index,
        share=msgspec.msgpack.encode(block),
        devices=tuple(block.devices),
        fixed=tuple((name, getattr(config, name)) for name in sorted(depends)),
    )


class Slots:
    """What is loaded, by copy index (one copy per index at a time)."""

    def __init__(self) -> None:
        self.held: dict[int, CopyKey] = {}

    def step(self, keys: Sequence[CopyKey]) -> tuple[list[int], list[int], list[int]]:
        """A configuration with these copy keys starts: ``(reused, loaded, evicted)``
        copy indices. Evicted: held copies that must go first, because their index is
        loaded anew, or because they occupy a device one of the new copies is given
        (on Neuron a loaded copy holds its cores). The configuration's copies are
        held afterwards; other idle copies stay."""
        reused = [k.copy_index for k in keys if self.held.get(k.copy_index) == k]
        loaded = [k.copy_index for k in keys if self.held.get(k.copy_index) != k]
        wanted = {d for k in keys if k.copy_index in loaded for d in k.devices}
        n = len(keys)
        evicted = [
            j for j, held in self.held.items()
            if j in loaded or (j >= n and wanted.intersection(held.devices))
        ]  # fmt: skip
        for j in evicted:
            del self.held[j]
        for k in keys:
            self.held[k.copy_index] = k
        return reused, loaded, evicted

    def copy(self) -> Slots:
        other = Slots()
        other.held = dict(self.held)
        return other

    def forget(self, indices: Iterable[int]) -> None:
        """Copies that are gone (failed, or their configuration failed)."""
        for j in indices:
            self.held.pop(j, None)

    def trim(self, future: set[CopyKey]) -> list[int]:
        """Held copies no configuration still to run can use: evicted now."""
        gone = [j for j, k in self.held.items() if k not in future]
        self.forget(gone)
        return gone


class ReuseRules:
    """The copy keys of one run's configurations (from its device's assignments and
    its framework's :meth:`~npf_core.plugin.hookspecs.Framework.copy_depends_on`),
    the reuse order of its plan, and the loads that plan needs."""

    def __init__(self, device: Device, depends: frozenset[str]) -> None:
        self.device = device
        self.depends = frozenset(depends)
        self._keys: dict[str, list[CopyKey] | None] = {}

    def keys(self, config: RunConfig, assignments: Sequence[dict[str, Any]] | None = None) -> list[CopyKey] | None:
        """The key of each copy of ``config``; None when the device plugin cannot say
        (its ``assign`` raised: the configuration will fail when it runs, and nothing
        of it is counted as reusable)."""
        if assignments is not None:
            keys = [copy_key(config, i, dict(a), self.depends) for i, a in enumerate(assignments)]
            self._keys[config.config_id] = keys
            return keys
        if config.config_id not in self._keys:
            try:
                got: list[CopyKey] | None = [
                    copy_key(config, i, dict(self.device.assign(i, config.n_models, config.pipeline_size)),
                             self.depends)
                    for i in range(config.n_models)
                ]  # fmt: skip
            except Exception:  # noqa: BLE001 - the configuration reports it when it runs
                got = None
            self._keys[config.config_id] = got
        return self._keys[config.config_id]

    def order(self, plan: Sequence[RunConfig]) -> list[RunConfig]:
        """The plan reordered for reuse: configurations whose first copy is the same
        run one after the other (groups in the order they first appear, the plan's
        order within a group). For a sweep of one model on a device whose shares do
        not depend on the number of copies, nothing moves."""
        groups: dict[Any, list[RunConfig]] = {}
        for c in plan:
            keys = self.keys(c)
            group = keys[0] if keys else ("alone", c.config_id)
            groups.setdefault(group, []).append(c)
        return [c for members in groups.values() for c in members]

    def future(self, configs: Iterable[RunConfig]) -> set[CopyKey]:
        """Every copy key some of ``configs`` could reuse."""
        return {k for c in configs for k in (self.keys(c) or [])}

    def count_loads(self, plan: Sequence[RunConfig], slots: Slots | None = None) -> int:
        """The copies the plan loads with reuse, if nothing fails: what the pool
        will do, step by step (from what ``slots`` holds, else from nothing)."""
        slots = slots.copy() if slots is not None else Slots()
        loads = 0
        for i, c in enumerate(plan):
            keys = self.keys(c)
            if keys is None:
                loads += c.n_models
                slots.forget(list(slots.held))
                continue
            loads += len(slots.step(keys)[1])
            slots.trim(self.future(plan[i + 1 :]))
        return loads

    def ahead(
        self, slots: Slots, now: Sequence[CopyKey], upcoming: Sequence[RunConfig]
    ) -> list[tuple[RunConfig, CopyKey]]:
        """Copies a later configuration will load that can load now, beside the
        copies of the configuration starting (``now``, already stepped into
        ``slots``), so that loads overlap instead of following each other: those the
        next configuration that loads anything loads, at a copy index this one does
        not use and nothing holds, on devices nothing holds. Taken only when they
        cost no extra load: the plan, simulated from here, loads as many copies with
        them loaded ahead (and counted) as without."""
        n = len(now)
        sim = slots.copy()
        for i, c in enumerate(upcoming):
            keys = self.keys(c)
            if keys is None:
                return []
            loaded = sim.step(keys)[1]
            if loaded:
                break
            sim.trim(self.future(upcoming[i + 1 :]))
        else:
            return []
        held = {d for k in slots.held.values() for d in k.devices}
        picks = [(c, keys[j]) for j in loaded if j >= n and j not in slots.held and not held & set(keys[j].devices)]
        if not picks:
            return []
        with_them = slots.copy()
        for _, k in picks:
            with_them.held[k.copy_index] = k
        if self.count_loads(upcoming, with_them) + len(picks) > self.count_loads(upcoming, slots):
            return []
        return picks


def loads_without_reuse(plan: Sequence[RunConfig]) -> int:
    """Every configuration loads all its copies (``reuse_copies: false``)."""
    return sum(c.n_models for c in plan)
