"""The built-in ``local`` launcher: every configuration here, one after the other
(npf's behaviour before launchers existed, and the default)."""

from __future__ import annotations

from typing import Any

from npf_core.hookspecs import Launcher

__all__ = ["LocalLauncher"]


class LocalLauncher(Launcher):
    """Runs the configurations on this machine, in plan order, one at a time."""

    async def run(self, run: Any, todo: list[tuple[int, Any]]) -> None:
        for index, config in todo:
            run.config_started(index, config)
            report = await run.run_config(index, config)
            run.config_done(index, config, report)
