"""The built-in ``local`` launcher: every configuration here, one after the other
(npf's behaviour before launchers existed, and the default)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from npf_core.plugin.hookspecs import Launcher

if TYPE_CHECKING:
    from npf_core.plugin.hookspecs import LaunchHost
    from npf_core.spec.config import RunConfig

__all__ = ["LocalLauncher"]


class LocalLauncher(Launcher):
    """Runs the configurations on this machine, in plan order, one at a time."""

    async def run(self, run: LaunchHost, todo: list[tuple[int, RunConfig]]) -> None:
        for index, config in todo:
            run.config_started(index, config)
            report = await run.run_config(index, config)
            run.config_done(index, config, report)
