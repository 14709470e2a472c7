"""The model copies a run keeps between configurations (issue 23), supervisor side.

With ``reuse_copies`` (the default) a copy that ran a configuration well is not
ended after its Result: it keeps its loaded model and blocks on its wire, idle, until
the pool gives it the next configuration that can use it (``Reconfigure``: the copy
rebuilds its workers and inputs, warms up again and sends Ready) or releases it
(``Release``: it exits). :mod:`npf_core.supervisor.reuse` decides which copy fits
which configuration; this module holds the copies and ends them.

What holds:

- a copy that failed, or whose configuration failed (or was interrupted), is reaped
  at once by the configuration, never kept;
- a kept copy that died or spoke while idle is not reused: it is reaped and loaded
  again;
- an idle copy runs nothing (no worker thread of npf's exists; it waits in a
  blocking read): it takes no CPU and no device time from the configuration being
  measured. It does hold its memory and, on Neuron, its NeuronCores: a copy of the
  running configuration is never given a device an idle copy holds, because the pool
  releases every idle copy whose devices a new copy is assigned before that copy
  starts (see docs/copy-reuse.md);
- copies no configuration still to run can use are released before the next
  configuration starts; every copy left is released when the run ends, on every
  exit path (the supervisor closes the pool under a shielded scope, before its
  zygote);
- copies a later configuration will load may load *ahead*, beside the loads of the
  configuration starting (:meth:`CopyPool.ahead`); they are ready, idle, before its
  GO (the configuration runner waits for them), or dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio

import npf_core.supervisor.processes as processes
import npf_core.wire.protocol as pr
from npf_core.log import get_logger
from npf_core.spec.config import RunConfig
from npf_core.supervisor.processes import Child
from npf_core.supervisor.reuse import CopyKey, ReuseRules, Slots

__all__ = ["CopyPool"]

logger = get_logger("npf_core.supervisor.run")


class CopyPool:
    """Idle copies of one run, by copy index, with what each holds."""

    def __init__(self, rules: ReuseRules, grace_s: float) -> None:
        self.rules = rules
        self.grace_s = grace_s
        self.slots = Slots()
        self.idle: dict[int, Child] = {}
        #: the supervisor's run is on: copies may be kept (off: every copy is reaped
        #: with its configuration, as when a launcher runs a configuration outside run())
        self.open = False
        #: the configurations still to run after the current one (set by trim): what
        #: copies are kept and loaded ahead for
        self.upcoming: list[RunConfig] = []

    def keys(self, config: RunConfig, assignments: Sequence[dict[str, Any]]) -> list[CopyKey]:
        keys = self.rules.keys(config, assignments)
        assert keys is not None
        return keys

    async def take(self, keys: Sequence[CopyKey]) -> dict[int, Child]:
        """The idle copies a configuration with these copy keys reuses, by copy index,
        each ready for its next job; idle copies in its way (their index is loaded
        anew, or they hold a device a new copy is given) are released first. Every
        copy returned is the caller's to keep or reap."""
        # what the last configuration held and did not hand back (it failed) is gone
        self.slots.forget([j for j in list(self.slots.held) if j not in self.idle])
        for j, child in list(self.idle.items()):
            if not child.idle_and_well():
                logger.warning("a kept model copy died or spoke while idle; it is loaded again",
                               copy=j, pid=child.pid, how=child.describe_exit())  # fmt: skip
                self.slots.forget([j])
                await self._release([self.idle.pop(j)])
        reused, _, evicted = self.slots.step(keys)
        await self._release([self.idle.pop(j) for j in evicted if j in self.idle])
        out = {j: self.idle.pop(j) for j in reused}
        for child in out.values():
            child.next_config()
        return out

    def ahead(self, keys: Sequence[CopyKey]) -> list[tuple[RunConfig, CopyKey]]:
        """Copies of a later configuration to load beside this one's (after
        :meth:`take`): see :meth:`~npf_core.supervisor.reuse.ReuseRules.ahead`."""
        return self.rules.ahead(self.slots, keys, self.upcoming)

    def keep(self, children: Sequence[Child]) -> None:
        """A configuration ended well: its copies wait for the next one, and so do
        the copies it loaded ahead and that are ready (``ahead_key`` set). (Those of
        a configuration that failed are reaped by it and never handed back.)"""
        for c in children:
            self.idle[c.copy_index] = c
            if c.ahead_key is not None:
                self.slots.held[c.copy_index] = c.ahead_key

    async def trim(self, still_to_run: Sequence[RunConfig]) -> None:
        """Release the idle copies no configuration still to run can use (the first
        of ``still_to_run`` is the one starting)."""
        self.upcoming = list(still_to_run[1:])
        gone = self.slots.trim(self.rules.future(still_to_run))
        await self._release([self.idle.pop(j) for j in gone if j in self.idle])

    async def close(self) -> None:
        """Release every idle copy (the run ends). Call under a shielded scope."""
        self.open = False
        self.slots.forget(list(self.slots.held))
        children, self.idle = list(self.idle.values()), {}
        await self._release(children)

    async def _release(self, children: list[Child]) -> None:
        """Tell each copy to exit, and reap it (SIGTERM, SIGKILL if it does not)."""
        if not children:
            return
        with anyio.CancelScope(shield=True):
            for c in children:
                c.released = True
                await processes.send(c, pr.Release())
            async with anyio.create_task_group() as tg:
                for c in children:
                    tg.start_soon(c.reap, self.grace_s)
