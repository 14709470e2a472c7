"""Sparing a user's time: say the first thing that is wrong, and do not try again
what has already failed the same way twice.

- :func:`framework_first`: an unknown framework name is reported before an error
  about a later field (a missing model file for a framework that does not exist).
- :class:`LoadFailures`: a model that fails to load in the first configuration
  tried with an error that cannot depend on the configuration (a missing module,
  file or name), or fails on an input in warm-up, is not tried again in the
  configurations that would fail the same way; they are recorded as failed,
  naming the first (``error.same_as``), and the console says so once. A warm-up
  failure gets a hint: the model does not take the spec's inputs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from npf_core.log import get_logger
from npf_core.plugin.manager import Plugins
from npf_core.results.report import ErrorInfo, Report, error_report
from npf_core.spec.bounds import MAX_SPEC_BYTES
from npf_core.spec.config import RunConfig
from npf_core.spec.schema import LoadedSpec

__all__ = ["SAME_EVERYWHERE", "LoadFailures", "framework_first"]

logger = get_logger("npf_core.supervisor.run")

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


#: failures that may depend on the configuration (memory, copies, a crash, a hang):
#: never taken as what every configuration would do after one failure
NOT_REPEATABLE = frozenset(
    {"BenchmarkerDied", "LoadTimeout", "StopTimeout", "ProtocolError", "MemoryError", "ZygoteFailed"}
)
#: stages where a model's own exception repeats in every configuration that does the
#: same: loading the model, and its warm-up calls on the spec's inputs
REPEATING_STAGES = ("load", "warmup")


def inputs_hint(loaded: LoadedSpec) -> str:
    """What to do when the model fails on the spec's inputs (its warm-up calls)."""
    where = f"in {_shown(loaded.source)}" if loaded.source else "of the spec"
    if loaded.spec.inputs is not None:
        return (f'the model fails on the inputs {where}: edit "inputs" (shape, dtype) to what the model takes, '
                "then run again")  # fmt: skip
    return f"the model fails on the dataset's examples: check the dataset {where} and the model's input"


def _shown(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return path


class LoadFailures:
    """Remembers how each model's loads and warm-ups failed, over one run's plan.

    - The first configuration tried of a model fails in warm-up (its calls on the
      spec's input) with the model's own exception, or in load with an error that
      does not depend on the configuration (a missing module, file or name): every
      other configuration that calls the model with that input and batch size (that
      loads the model) would fail the same way, so they are not tried; the console
      says so once.
    - Any other load exception of the model's, twice the same way: the rest are not
      tried (once may depend on the configuration: a device, a copy).
    """

    def __init__(self, plan: list[RunConfig], loaded: LoadedSpec | None = None) -> None:
        self.plan = plan
        self.loaded = loaded
        #: model reference -> (how it failed -> the first config it failed so in)
        self._seen: dict[str, dict[tuple[str, str], str]] = {}
        #: a group (see _group) -> (the config whose failure the rest would repeat, the error)
        self._given_up: dict[tuple[Any, ...], tuple[str, ErrorInfo]] = {}
        #: groups that have had a configuration get past the stage (load, warm-up)
        self._passed: set[tuple[Any, ...]] = set()

    @staticmethod
    def _group(config: RunConfig, stage: str) -> tuple[Any, ...]:
        if stage == "load":
            return ("load", config.model_ref)
        return ("warmup", config.model_ref, config.input_idx, config.batch_size)

    def not_tried(self, config: RunConfig) -> Report | None:
        """The failed report of a configuration not to try, or None to run it."""
        for stage in REPEATING_STAGES:
            given_up = self._given_up.get(self._group(config, stage))
            if given_up is not None:
                break
        else:
            return None
        first_id, err = given_up
        what = err.message.splitlines()[0] if err.message else err.type
        what = what.partition(f": {err.stage}: ")[2] or what
        info = ErrorInfo(
            type=err.type, stage=err.stage, same_as=first_id, hint=err.hint,
            message=f"not tried: {first_id} failed in {err.stage} ({what}); this configuration would fail the same way",
        )  # fmt: skip
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()) + ".000"
        return error_report(config, info, start_dts=now, stop_dts=now)

    def advise(self, report: Report) -> Report:
        """The report, with a hint where npf can tell what to do (a warm-up failure:
        the model does not take the spec's inputs)."""
        err = report.error
        if err is None or err.hint or err.same_as or self.loaded is None:
            return report
        if err.stage == "warmup" and err.type not in NOT_REPEATABLE:
            hint = inputs_hint(self.loaded)
            return msgspec.structs.replace(report, error=msgspec.structs.replace(err, hint=hint))
        return report

    def record(self, index: int, config: RunConfig, report: Report) -> int:
        """Note a finished configuration's report (index: its place in the plan);
        returns how many later configurations will not be tried because of it."""
        err = report.error
        if err is None:
            self._passed.update(self._group(config, s) for s in REPEATING_STAGES)
            return 0
        if err.same_as:
            return 0
        if err.stage == "warmup":
            self._passed.add(self._group(config, "load"))
        if err.stage not in REPEATING_STAGES:
            self._passed.update(self._group(config, s) for s in REPEATING_STAGES)
            return 0
        group = self._group(config, err.stage)
        own = err.type not in NOT_REPEATABLE and bool(err.traceback)  # the model's own exception
        # the first try fails: in warm-up (the same calls on the same input), or in load with an
        # error that does not depend on the configuration (a missing module, file or name)
        first = group not in self._passed and own and (err.stage == "warmup" or err.type in SAME_EVERYWHERE)
        twice = False
        if err.stage == "load" and own:
            # once may depend on the configuration; twice the same way, the rest would fail too
            how = (err.type, err.message.partition(": load: ")[2] or err.message)
            first_id = self._seen.setdefault(config.model_ref, {}).setdefault(how, config.config_id)
            twice = first_id != config.config_id
        if not (first or twice) or group in self._given_up:
            return 0
        rest = [c for c in self.plan[index + 1 :] if self._group(c, err.stage) == group]
        if not rest:
            return 0
        self._given_up[group] = (config.config_id, err)
        logger.debug("the model failed; configurations that would fail the same way are not tried",
                     model=config.model_ref, stage=err.stage, error=err.type, not_tried=len(rest))  # fmt: skip
        return len(rest)
