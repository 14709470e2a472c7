"""Results files: atomic writes, the environment record, and reading for ``--resume``."""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from npf_core.errors import ResultsError
from npf_core.report import Report

__all__ = [
    "RESULTS_FORMAT",
    "RESULTS_FORMAT_VERSION",
    "RESULTS_NAME",
    "Results",
    "ResultsFile",
    "environment",
    "load_results",
    "read_results",
    "resolve_results",
    "write_atomic",
]

#: results.json's ``format`` and ``format_version`` (docs/reports.md). Version 1 (no
#: such keys) had no latency histograms; version 2 adds ``latency_histogram``.
RESULTS_FORMAT = "npf-results"
RESULTS_FORMAT_VERSION = 2
RESULTS_NAME = "results.json"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one,
    never a part: a temporary file in the same folder, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def environment() -> dict[str, Any]:
    """Facts about the machine and software a result was measured on."""
    from importlib.metadata import PackageNotFoundError, version

    packages = {}
    for name in ("npf", "numpy", "torch", "torch-neuronx", "tensorflow", "mxnet"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            pass
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "cpus_usable": cpus,
        "cpus_total": os.cpu_count(),
        "packages": packages,
    }


def comparable_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The part of a spec that must match for results to be resumed."""
    return {k: v for k, v in spec.items() if k != "output"}


def load_results(path: Path) -> tuple[dict[str, Any], list[Report]]:
    """The spec and reports of an existing results.json."""
    try:
        data = json.loads(path.read_bytes())
        reports = [Report.from_dict(r) for r in data.get("reports", [])]
    except (OSError, ValueError, TypeError) as exc:
        raise ResultsError(f"cannot read results file {str(path)!r} to resume: {exc}") from None
    return data.get("spec", {}), reports


class ResultsFile:
    """The run's ``results.json``, kept by the core (not a reporter): every finished,
    failed or resumed configuration is written at once, atomically, in plan order,
    so an interrupted or crashed run keeps all it had finished and ``--resume``
    works whatever reporters run.

    Format (docs/reports.md): ``{"format", "format_version", "npf_version", "run_id",
    "spec", "environment", "reports": [...]}``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.run_id = ""
        self.spec: dict[str, Any] = {}
        self.env: dict[str, Any] | None = None
        self.by_index: dict[int, Report] = {}

    def start(self, run_id: str, spec: dict[str, Any]) -> None:
        self.run_id, self.spec = run_id, spec
        self.env = environment()

    def record(self, index: int, report: Report) -> None:
        self.by_index[index] = report
        self.write()

    def write(self) -> None:
        from npf_core import __version__

        doc = {
            "format": RESULTS_FORMAT,
            "format_version": RESULTS_FORMAT_VERSION,
            "npf_version": __version__,
            "run_id": self.run_id,
            "spec": self.spec,
            "environment": self.env if self.env is not None else environment(),
            "reports": [self.by_index[i].to_dict() for i in sorted(self.by_index)],
        }
        write_atomic(self.path, json.dumps(doc, indent=1, allow_nan=False).encode())


def resolve_results(path: str | os.PathLike[str]) -> Path:
    """The results.json a user means by ``path``: the file itself, or the one in the
    folder ``path``. (The one place that maps a user's path to a results file.)"""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise ResultsError(f"no results file at {str(p)!r} (give a results.json or the folder holding one)")
    return p


@dataclass
class Results:
    """A results.json, read: its reports and what was recorded with them."""

    path: Path
    reports: list[Report]
    spec: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    run_id: str = ""
    npf_version: str = ""
    format_version: int = 1


def read_results(path: str | os.PathLike[str]) -> Results:
    """Read a results.json (or the one in a folder), any format version up to ours."""
    p = resolve_results(path)
    try:
        data = json.loads(p.read_bytes())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        version = int(data.get("format_version", 1))
        if version > RESULTS_FORMAT_VERSION:
            raise ValueError(
                f"format version {version} is newer than this npf reads ({RESULTS_FORMAT_VERSION}); upgrade npf"
            )
        reports = [Report.from_dict(r) for r in data.get("reports", [])]
    except (OSError, ValueError, TypeError) as exc:
        raise ResultsError(f"cannot read results file {str(p)!r}: {exc}") from None
    return Results(
        path=p,
        reports=reports,
        spec=data.get("spec") or {},
        environment=data.get("environment") or {},
        run_id=str(data.get("run_id") or ""),
        npf_version=str(data.get("npf_version") or ""),
        format_version=version,
    )
