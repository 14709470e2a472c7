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
from npf_core.results.imds import instance_type
from npf_core.results.report import Report

__all__ = [
    "LATEST",
    "RESULTS_FORMAT",
    "RESULTS_FORMAT_VERSION",
    "RESULTS_NAME",
    "Results",
    "ResultsFile",
    "environment",
    "latest_run",
    "load_results",
    "new_run_folder",
    "read_results",
    "resolve_results",
    "results_file",
    "set_latest",
    "spec_folder",
    "write_atomic",
]

#: results.json's ``format`` and ``format_version`` (docs/reports.md). Version 1 (no
#: such keys) had no latency histograms; version 2 adds ``latency_histogram``.
RESULTS_FORMAT = "npf-results"
RESULTS_FORMAT_VERSION = 2
RESULTS_NAME = RESULTS_FILE = "results.json"
#: The pointer in a spec's results folder to its newest run folder (a relative symlink).
LATEST = "latest"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one,
    never a part: a temporary file in the same folder, fsync, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # as open() would make it, not mkstemp's 0600
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


def _umask() -> int:
    """The process's umask (read by setting it and back: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _safe_name(name: str) -> str:
    """A spec name as a folder name: path separators and odd characters become '-'."""
    cleaned = "".join(ch if ch.isalnum() or ch in "-_.+" else "-" for ch in name).strip(".-")
    return cleaned or "run"


def spec_folder(root: Path, name: str) -> Path:
    """``ROOT/NAME``: where a spec's runs go."""
    return root / _safe_name(name)


def run_folder(root: Path, name: str, run_id: str, when: float | None = None) -> Path:
    """The path of a new run's folder (see :func:`new_run_folder`), not made yet."""
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if when is None else when))
    return spec_folder(root, name) / f"{stamp}-{run_id[:6]}"


def new_run_folder(root: Path, name: str, run_id: str, when: float | None = None) -> Path:
    """``ROOT/NAME/YYYYmmdd-HHMMSS-RUNID/``: one folder per run, so that no run
    overwrites another's results (made at once; the ``latest`` pointer follows with
    :func:`set_latest` once the run has something in it)."""
    folder = run_folder(root, name, run_id, when)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def set_latest(run_folder: Path) -> None:
    """Point ``<spec folder>/latest`` at ``run_folder`` (a relative symlink, replaced
    atomically, so a reader sees the old run or the new one)."""
    link = run_folder.parent / LATEST
    tmp = run_folder.parent / f".{LATEST}.{os.getpid()}.tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    os.symlink(run_folder.name, tmp)
    os.replace(tmp, link)


def latest_run(spec_folder: Path) -> Path | None:
    """The newest run folder of a spec's results folder: where ``latest`` points, else
    the newest run folder holding a results file (None if there is none)."""
    link = spec_folder / LATEST
    if (link / RESULTS_FILE).is_file():
        return link.resolve()
    runs = sorted(p for p in spec_folder.iterdir() if (p / RESULTS_FILE).is_file() and p.name != LATEST)
    return runs[-1] if runs else None


def resolve_results(path: str | os.PathLike[str]) -> Path:
    """The ``results.json`` that ``path`` means — the one resolver every command uses:

    - a results file: itself;
    - a run folder (holds ``results.json``): its results file;
    - a spec's folder (``ROOT/NAME``): its latest run's;
    - an output root (``npf-results``) holding one spec's folder: that spec's latest run's
      (with several, the error lists them: name one).

    Raises :class:`~npf_core.errors.ResultsError` naming what was looked for."""
    p = Path(path)
    if p.is_file():
        return p
    if not p.is_dir():
        raise ResultsError(f"no results at {str(p)!r}: not a file or folder")
    if (p / RESULTS_FILE).is_file():
        return p / RESULTS_FILE
    run = latest_run(p)
    if run is not None:
        return run / RESULTS_FILE
    specs = sorted(d for d in p.iterdir() if d.is_dir() and latest_run(d) is not None)
    if len(specs) == 1:
        return latest_run(specs[0]) / RESULTS_FILE  # type: ignore[operator]
    if specs:
        names = ", ".join(d.name for d in specs)
        raise ResultsError(f"{str(p)!r} holds the results of several specs ({names}): name one, e.g. {str(specs[0])!r}")
    raise ResultsError(f"no results file in {str(p)!r} (looked for {RESULTS_FILE}, a run folder, or {LATEST})")


def results_file(path: str | os.PathLike[str]) -> Path:
    """:func:`resolve_results`, or ``path/results.json`` when there is none yet (for
    code that waits for a run's first results)."""
    try:
        return resolve_results(path)
    except ResultsError:
        return Path(path) / RESULTS_FILE


def environment() -> dict[str, Any]:
    """Facts about the machine and software a result was measured on."""
    from importlib.metadata import PackageNotFoundError, version

    packages = {}
    for name in ("npf", "numpy", "torch", "torch-neuronx", "tensorflow", "tensorflow-cpu", "tensorflow-neuronx",
                 "mxnet", "mx-neuron"):
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
        "instance_type": instance_type(),
    }


def comparable_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The part of a spec that must match for results to be resumed (where the
    configurations ran, ``launcher``, and whether copies were reused,
    ``reuse_copies``, may differ)."""
    return {k: v for k, v in spec.items() if k not in ("output", "launcher", "reuse_copies")}


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
        from npf_core.version import __version__

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
