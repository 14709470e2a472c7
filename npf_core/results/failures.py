"""Failures as a person reads them: where in *their* code it failed (the last frames
of the traceback that are not npf's, a library's or Python's), one line of what
failed, and failed configurations grouped by their error, so that the same error
in several configurations is told once (docs/troubleshooting.md).

Pure data: works on a report's :class:`~npf_core.results.report.ErrorInfo`, in the
run that made it or from a results file read later (``npf report``, the HTML page).
"""

from __future__ import annotations

import os
import re
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from npf_core.results.report import ErrorInfo, Report

__all__ = ["Frame", "FailureGroup", "describe_error", "error_key", "group_failures", "user_frames"]

#: frames shown per failure (the innermost of the user's own code)
MAX_FRAMES = 3

_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')
_WHO = re.compile(r"^copy (?P<copy>\d+) of (?P<n>\d+)(?: \(pid \d+\))?: ")
_PACKAGES = ("site-packages", "dist-packages")


@dataclass(frozen=True)
class Frame:
    """One frame of a traceback: ``models.py:12 in forward: return self.fc(x)``."""

    file: str
    line: int
    func: str = ""
    code: str = ""

    def where(self, cwd: Path | None = None) -> str:
        """``file:line``, the file relative to ``cwd`` (default: the current folder) when inside it."""
        return f"{shown_path(self.file, cwd)}:{self.line}"

    def text(self, cwd: Path | None = None) -> str:
        out = self.where(cwd)
        if self.func and self.func != "<module>":
            out += f" in {self.func}"
        return out + (f": {self.code}" if self.code else "")


def shown_path(path: str, cwd: Path | None = None) -> str:
    """A path as printed: relative to ``cwd`` (the current folder) when inside it."""
    try:
        return str(Path(path).relative_to(cwd or Path.cwd()))
    except ValueError:
        return path


def _library_roots() -> tuple[str, ...]:
    """Folders whose code is not the user's: npf's own packages and Python's library."""
    here = Path(__file__).resolve().parents[1]  # npf_core
    roots = {str(here), str(here.parent / "npf_plugins")}
    for key in ("stdlib", "platstdlib"):
        try:
            roots.add(str(Path(sysconfig.get_paths()[key]).resolve()))
        except (KeyError, OSError):
            pass
    return tuple(r + os.sep for r in roots)


_ROOTS = _library_roots()


def is_user_file(path: str) -> bool:
    """Whether a traceback's file is the user's code (not npf's, a package's, Python's)."""
    if path.startswith("<"):  # <frozen importlib._bootstrap>, <string>
        return False
    parts = Path(path).parts
    if any(p in _PACKAGES for p in parts) or "npf_core" in parts or "npf_plugins" in parts:
        return False
    try:
        resolved = str(Path(path).resolve())
    except OSError:
        resolved = path
    return not resolved.startswith(_ROOTS)


def frames(traceback: str) -> list[Frame]:
    """The frames of a traceback's last exception, outermost first (a SyntaxError's
    location counts as its last frame)."""
    text = traceback
    last = text.rfind("Traceback (most recent call last):")
    if last > 0:
        text = text[last:]
    out: list[Frame] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _FRAME.match(line)
        if not m:
            continue
        code = ""
        if i + 1 < len(lines) and lines[i + 1].startswith("    ") and not _FRAME.match(lines[i + 1]):
            code = lines[i + 1].strip()
        out.append(Frame(m["file"], int(m["line"]), m["func"] or "", code))
    return out


def user_frames(traceback: str, limit: int = MAX_FRAMES) -> list[Frame]:
    """The last ``limit`` frames of the user's own code in a traceback (outermost first)."""
    mine = [f for f in frames(traceback) if is_user_file(f.file)]
    return mine[-limit:] if limit else mine


def describe_error(error: ErrorInfo) -> tuple[str, str]:
    """``(who, what)`` of an error: ``("copy 1 of 2", "warmup: ValueError: bad shape")``;
    who is empty when the failure was not one copy's."""
    message = error.message or error.type
    m = _WHO.match(message)
    who = ""
    if m:
        message = message[m.end() :]
        who = f"copy {m['copy']} of {m['n']}"
    stage = error.stage
    if stage and not message.startswith(f"{stage}: ") and not message.startswith("not tried"):
        message = f"{stage}: {message}"
    return who, message


def error_key(error: ErrorInfo) -> tuple[str, str, str]:
    """What makes two failures the same: the stage, the type and the message (without
    which copy or process it was)."""
    return error.stage, error.type, describe_error(error)[1]


@dataclass
class FailureGroup:
    """Failed configurations that share one error (and those not tried because of it)."""

    error: ErrorInfo
    reports: list[Report] = field(default_factory=list)
    #: configurations not tried: they would have failed the same way
    not_tried: list[Report] = field(default_factory=list)

    @property
    def message(self) -> str:
        return describe_error(self.error)[1]

    def frames(self, limit: int = MAX_FRAMES) -> list[Frame]:
        return user_frames(self.error.traceback, limit)


def group_failures(reports: Sequence[Report]) -> list[FailureGroup]:
    """The failed reports grouped by error, in the order of their first failure; a
    report not tried because of another's failure (``error.same_as``) joins that one's group."""
    groups: dict[tuple[str, str, str], FailureGroup] = {}
    by_id: dict[str, FailureGroup] = {}
    later: list[Report] = []
    for r in reports:
        if r.status == "ok" or r.error is None:
            continue
        if r.error.same_as:
            later.append(r)
            continue
        key = error_key(r.error)
        group = groups.get(key)
        if group is None:
            group = groups[key] = FailureGroup(r.error)
        group.reports.append(r)
        by_id[r.config_id] = group
    for r in later:
        assert r.error is not None
        group = by_id.get(r.error.same_as)
        if group is None:  # its first failure is not among these reports (a narrowed list)
            group = groups.setdefault(("not tried", r.error.type, r.error.same_as), FailureGroup(r.error))
            group.reports.append(r)
        else:
            group.not_tried.append(r)
    return list(groups.values())
