"""Every exception npf raises on purpose, in one hierarchy.

Each class builds its own actionable message: what was wrong, where (the spec
field path, the configuration, the process) and what to do. The CLI maps the
user-error classes to exit code 2 and prints the message as one line, without a
traceback; everything else keeps its traceback.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from typing import Any

__all__ = [
    "ArgumentError",
    "ConfigFailure",
    "DeviceUnavailable",
    "FlagError",
    "MachineLimit",
    "MetricError",
    "ModelIndexError",
    "NpfError",
    "ObjectTransferError",
    "PluginError",
    "PluginLoadError",
    "ProtocolError",
    "ResultsError",
    "SpecError",
    "StageError",
    "TelemetryUnavailable",
    "UnknownPluginError",
    "UserError",
    "ZygoteFailed",
]


class NpfError(Exception):
    """Root of every error npf raises on purpose."""


class UserError(NpfError):
    """Bad input from the user: the CLI exits 2 and prints one line."""


class SpecError(UserError):
    """A run spec field is missing, misspelt or out of range."""

    def __init__(self, path: str, problem: str, hint: str | None = None) -> None:
        #: the JSON path of the field, always in the form ``$.a.b[0]``
        self.path = path if path.startswith("$") else f"$.{path}" if path else "$"
        self.problem = problem
        self.hint = hint
        message = f"spec {self.path}: {problem}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class ArgumentError(SpecError):
    """A bad argument of a call that takes no spec (NeuronPerf's API): the message
    names the argument, not a spec field."""

    def __init__(self, argument: str, problem: str, hint: str | None = None, call: str = "benchmark") -> None:
        super().__init__(argument, problem, hint)
        self.argument = argument
        self.args = (f"{call}() argument {argument}: {problem}" + (f" ({hint})" if hint else ""),)


class ObjectTransferError(SpecError):
    """A Python object given through the API (or a plugin registered programmatically)
    cannot be serialised for a benchmarker that is not a fork of the caller."""

    def __init__(self, kind: str, name: str, cause: str, method: str = "zygote") -> None:
        self.kind = kind
        self.name = name
        self.cause = cause
        field = name.removeprefix("<object:").removesuffix(">") if kind == "object" else "extra_plugins"
        what = f"the Python object at {field}" if kind == "object" else f"the plugin {name}"
        super().__init__(
            field,
            f"{what} cannot be serialised for a {method!r} benchmarker ({cause})",
            "define it at the top level of an importable module and give 'package.module:attr' or "
            "'path/file.py:attr' (or install the plugin with an entry point), "
            "or use start_method 'fork' so that copies inherit it",
        )


class MachineLimit(SpecError):
    """A spec asks for more model copies than this machine can start (processes
    and threads the user may start, memory): refused before they start."""

    def __init__(self, problem: str, hint: str | None = None) -> None:
        super().__init__("n_models", problem, hint)


class PluginError(UserError):
    """A plugin is missing, broken or misbehaving."""


class UnknownPluginError(PluginError):
    """A spec names a plugin that is not installed."""

    def __init__(self, kind: str, name: str, installed: Iterable[str], path: str = "") -> None:
        self.kind = kind
        self.name = name
        self.installed = sorted(installed)
        self.path = path
        names = ", ".join(self.installed) or "none"
        where = f"spec $.{path}: " if path else ""
        what = f"unknown {kind} plugin {name!r}"
        super().__init__(
            f"{where}{what}; installed {kind} plugins: {names}"
            " (run 'python -m npf_core plugins' to see where each comes from)"
        )


class PluginLoadError(PluginError):
    """An entry point could not be imported or registered."""

    def __init__(self, entry_point: str, cause: BaseException) -> None:
        self.entry_point = entry_point
        super().__init__(
            f"error loading npf plugin {entry_point!r}: {type(cause).__name__}: {cause}"
            " (uninstall it, or set NPF_DISABLE_PLUGINS to its name)"
        )


class DeviceUnavailable(UserError):
    """The spec asks for a device this machine does not have (or not enough of it)."""


class TelemetryUnavailable(UserError):
    """A telemetry source the spec names cannot sample on this machine."""

    def __init__(self, path: str, name: str, why: str) -> None:
        self.path = path
        self.name = name
        self.why = why
        super().__init__(
            f"spec $.{path}: telemetry source {name!r} cannot sample here: {why} "
            '(remove it from telemetry, or use "auto" to sample with what is available)'
        )


class ModelIndexError(UserError):
    """A model index file is missing, malformed or names what it does not hold."""

    def __init__(self, where: str, problem: str, hint: str | None = None) -> None:
        self.where = where
        self.problem = problem
        self.hint = hint
        message = f"model index {where}: {problem}" if where else f"model index: {problem}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class FlagError(UserError):
    """A sweep flag's value is wrong: names the flag and what to give."""

    def __init__(self, flag: str, problem: str, hint: str) -> None:
        super().__init__(f"{flag}: {problem} ({hint})")


class ResultsError(UserError):
    """An existing results file cannot be resumed or read."""


class ProtocolError(NpfError):
    """A benchmarker sent something that is not a valid message of the protocol."""


class ConfigFailure(NpfError):
    """One configuration failed (a benchmarker raised, died, hung or broke the
    protocol, or a bug was met): the supervisor records it as an error report and
    the sweep goes on. ``info`` is the report's error (an ``ErrorInfo``); ``child``
    the benchmarker at fault, if one was."""

    def __init__(self, info: Any, child: Any = None) -> None:
        self.info = info
        self.child = child
        super().__init__(info.message)


class StageError(NpfError):
    """An exception raised by user or plugin code inside a benchmarker, tagged with
    the stage it hit; it travels to the supervisor as a ``Failed`` message."""

    def __init__(self, stage: str, exc: BaseException) -> None:
        self.stage = stage
        self.exc = exc
        self.tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        super().__init__(f"{stage}: {type(exc).__name__}: {exc}")


class MetricError(NpfError):
    """A metric failed while combining the workers' states (evaluate mode)."""

    def __init__(self, key: str, exc: BaseException) -> None:
        self.key = key
        self.exc = exc
        self.tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        super().__init__(f"metric {key!r} failed in aggregate: {type(exc).__name__}: {exc}")


class ZygoteFailed(NpfError):
    """The zygote could not start, or died: the configuration fails with this
    (at start-up, with the zygote's traceback or output)."""

    def __init__(self, message: str, *, type: str = "ZygoteFailed", traceback: str = "", output_tail: str = "",
                 exitcode: int | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.message = message
        self.type = type
        self.traceback = traceback
        self.output_tail = output_tail
        self.exitcode = exitcode
