"""Every exception npf raises on purpose, in one hierarchy.

Each class builds its own actionable message: what was wrong, where (the spec
field path, the configuration, the process) and what to do. The CLI maps the
user-error classes to exit code 2 and prints the message as one line, without a
traceback; everything else keeps its traceback.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterable

__all__ = [
    "StageError",
    "BenchmarkerFailed",
    "DeviceUnavailable",
    "ModelIndexError",
    "NpfError",
    "PluginError",
    "PluginLoadError",
    "ProtocolError",
    "ResultsError",
    "SpecError",
    "UnknownPluginError",
    "UserError",
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
        planned = _PLANNED.get((kind, name))
        what = f"unknown {kind} plugin {name!r}"
        if planned:
            what = f"{kind} plugin {name!r} is not supported yet ({planned})"
        super().__init__(
            f"{where}{what}; installed {kind} plugins: {names}"
            " (run 'python -m npf_core plugins' to see where each comes from)"
        )


#: names the contract reserves for built-ins that are not built yet
_PLANNED = {
    ("reporter", "html"): "plots are planned; a third-party reporter can add them now",
}


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


class ResultsError(UserError):
    """An existing results file cannot be resumed or read."""


class ProtocolError(NpfError):
    """A benchmarker sent something that is not a valid message of the protocol."""


class BenchmarkerFailed(NpfError):
    """A benchmarker process failed; the configuration is recorded as an error."""

    def __init__(
        self,
        message: str,
        *,
        error_type: str = "BenchmarkerFailed",
        traceback: str = "",
        stage: str = "",
        exitcode: int | None = None,
        output_tail: str = "",
    ) -> None:
        self.error_type = error_type
        self.traceback = traceback
        self.stage = stage
        self.exitcode = exitcode
        self.output_tail = output_tail
        super().__init__(message)


class StageError(Exception):
    """An exception raised by user or plugin code, tagged with the stage it hit."""

    def __init__(self, stage: str, exc: BaseException) -> None:
        self.stage = stage
        self.exc = exc
        self.tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        super().__init__(f"{stage}: {type(exc).__name__}: {exc}")
