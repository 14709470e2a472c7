"""Results files: atomic writes, the environment record, and reading for ``--resume``."""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from npf_core.errors import ResultsError
from npf_core.report import Report

__all__ = ["environment", "load_results", "write_atomic"]


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
    """The part of a spec that must match for results to be resumed (where the
    configurations ran, ``launcher``, may differ)."""
    return {k: v for k, v in spec.items() if k not in ("output", "launcher")}


def load_results(path: Path) -> tuple[dict[str, Any], list[Report]]:
    """The spec and reports of an existing results.json."""
    try:
        data = json.loads(path.read_bytes())
        reports = [Report.from_dict(r) for r in data.get("reports", [])]
    except (OSError, ValueError, TypeError) as exc:
        raise ResultsError(f"cannot read results file {str(path)!r} to resume: {exc}") from None
    return data.get("spec", {}), reports
