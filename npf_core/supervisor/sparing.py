"""Sparing a user's time: say the first thing that is wrong, and do not try again
what has already failed the same way twice.

- :func:`framework_first`: an unknown framework name is reported before an error
  about a later field (a missing model file for a framework that does not exist).
- :class:`LoadFailures`: a model whose load failed twice the same way with an error
  that does not depend on the configuration (a wrong class name, a missing module or
  file) is not tried again; its remaining configurations are recorded as failed,
  naming the first, and one warning says so.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from npf_core.plugin.manager import Plugins
from npf_core.results.report import ErrorInfo, Report, error_report
from npf_core.spec.bounds import MAX_SPEC_BYTES
from npf_core.spec.config import RunConfig

__all__ = ["SAME_EVERYWHERE", "LoadFailures", "framework_first"]

logger = structlog.get_logger("npf_core.supervisor.run")

#: load errors that do not depend on the configuration (twice the same: every time)
SAME_EVERYWHERE = frozenset(
    {"ImportError", "ModuleNotFoundError", "AttributeError", "FileNotFoundError", "SyntaxError", "NameError"}
)


def framework_first(spec: Any, plugins: Plugins) -> None:
    """Raise the unknown-framework error, if that is what is wrong with ``spec`` (a
    path, JSON text or a dict), before an error about a later field."""
    data: Any = spec
    try:
        if isinstance(spec, (str, os.PathLike)) and not str(spec).lstrip().startswith("{"):
            if Path(spec).stat().st_size > MAX_SPEC_BYTES:
                return
            data = json.loads(Path(spec).read_bytes())
        elif isinstance(spec, (str, bytes)):
            data = json.loads(spec)
    except (OSError, ValueError, RecursionError):  # the decoder's error says what is wrong
        return
    model = data.get("model") if isinstance(data, Mapping) else None
    name = model.get("framework", "python") if isinstance(model, Mapping) else None
    if isinstance(name, str) and name:
        plugins.frameworks.get(name, "model.framework")


class LoadFailures:
    """Remembers how each model's loads failed, over one run's plan."""

    def __init__(self, plan: list[RunConfig]) -> None:
        self.plan = plan
        #: model reference -> (how it failed -> the first config it failed so in)
        self._seen: dict[str, dict[tuple[str, str], str]] = {}
        #: model reference -> (the first config, the error): not tried again
        self._given_up: dict[str, tuple[str, ErrorInfo]] = {}

    def not_tried(self, config: RunConfig) -> Report | None:
        """The failed report of a configuration not to try, or None to run it."""
        given_up = self._given_up.get(config.model_ref)
        if given_up is None:
            return None
        first_id, err = given_up
        first_line = err.message.splitlines()[0] if err.message else err.type
        what = first_line.partition(": load: ")[2] or first_line
        info = ErrorInfo(
            type=err.type, stage="load",
            message=f"not tried: the model failed to load the same way in {first_id} and the next ({what})",
        )  # fmt: skip
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()) + ".000"
        return error_report(config, info, start_dts=now, stop_dts=now)

    def record(self, index: int, config: RunConfig, report: Report) -> None:
        """Note a finished configuration's report (index: its place in the plan)."""
        err = report.error
        if err is None or err.stage != "load" or err.type not in SAME_EVERYWHERE:
            return
        # once may depend on the configuration; twice the same way, the rest would fail too
        how = (err.type, err.message.partition(": load: ")[2] or err.message)
        first_id = self._seen.setdefault(config.model_ref, {}).setdefault(how, config.config_id)
        rest = sum(c.model_ref == config.model_ref for c in self.plan[index + 1 :])
        if first_id != config.config_id and rest:
            self._given_up[config.model_ref] = (first_id, err)
            logger.warning(
                "the model failed to load; its other configurations are not tried",
                model=config.model_ref, error=err.type, not_tried=rest,
            )  # fmt: skip
