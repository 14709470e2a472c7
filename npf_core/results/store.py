"""Results files: atomic writes, the environment record, and reading for ``--resume``."""

from __future__ import annotations

import json
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from npf_core.errors import ResultsError
from npf_core.results.imds import instance_type
from npf_core.results.report import NEURONPERF_COLUMNS, Report

__all__ = [
    "LATEST",
    "RESULTS_FORMAT",
    "RESULTS_FORMAT_VERSION",
    "RESULTS_NAME",
    "Results",
    "Resumable",
    "ResultsFile",
    "decode_row",
    "environment",
    "git_commit",
    "json_safe",
    "latest_run",
    "load_resumable",
    "load_results",
    "new_run_folder",
    "read_results",
    "resolve_results",
    "results_file",
    "results_schema",
    "set_latest",
    "spec_differences",
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


#: seconds ``git`` may take to name the commit (a slow network file system)
GIT_TIMEOUT_S = 10.0


def git_commit(folder: Path) -> tuple[str, bool] | None:
    """The commit checked out in the git repository holding ``folder``, and whether
    its work tree has changes (files a run may have used that no commit holds); None
    when ``folder`` is in no repository or git is not installed."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                                 timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL)  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout if out.returncode == 0 else None

    commit = git("rev-parse", "--verify", "HEAD")
    if not commit or not commit.strip():
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit.strip(), bool(status and status.strip())


def comparable_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The part of a spec that must match for results to be resumed (where the
    configurations ran, ``launcher``, what sampled the devices, ``telemetry``, and
    whether copies were reused, ``reuse_copies``, may differ)."""
    return {k: v for k, v in spec.items() if k not in ("output", "launcher", "telemetry", "reuse_copies")}


#: the command-line flag that sets a spec field, named when a resume finds it changed
FLAGS = {
    "duration_s": "--duration-s", "n_models": "--n-models", "workers_per_model": "--workers",
    "batch_sizes": "--batch-sizes", "inputs": "--batch-sizes", "device": "--device",
}  # fmt: skip


def spec_differences(old: dict[str, Any], new: dict[str, Any], limit: int = 3) -> str:
    """The fields where two specs differ, in words: ``duration_s (2 in the results,
    "auto" now: --duration-s)``; empty when they are the same."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        flag = f": {FLAGS[key]}" if key in FLAGS else ""
        out.append(f"{key} ({_short(a)} in the results, {_short(b)} now{flag})")
    if len(out) > limit:
        out = [*out[:limit], f"and {len(out) - limit} more"]
    return "; ".join(out)


def _short(value: Any) -> str:
    text = "not set" if value is None else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def load_results(path: Path) -> tuple[dict[str, Any], list[Report]]:
    """The spec and the sound reports of an existing results.json (see
    :func:`load_resumable`, which also says what was left out and why)."""
    found = load_resumable(path)
    return found.spec, found.reports


@dataclass
class Resumable:
    """What ``--resume`` may take from a results.json: its spec, the reports it can
    trust, and a line for each report it cannot (which is run again)."""

    spec: dict[str, Any]
    reports: list[Report]
    damaged: list[str] = field(default_factory=list)


def load_resumable(path: Path) -> Resumable:
    """Read a results.json for ``--resume``. A file that is not a results document
    at all is a :class:`~npf_core.errors.ResultsError`; a report in it that is
    damaged (a field missing, of the wrong type, or a number that is not finite:
    the file was edited or cut short) is left out, with a line saying why, so that
    its configuration is run again."""
    data = _read_document(path, "to resume")
    spec = data.get("spec")
    found = Resumable(spec=spec if isinstance(spec, dict) else {}, reports=[])
    for i, row in enumerate(_rows(data, path)):
        report, problems = decode_row(row, strict=True)
        if report is not None and not problems:
            found.reports.append(report)
        else:
            found.damaged.append(f"reports[{i}]{_row_id(row)}: {'; '.join(problems)}")
    return found


def _read_document(path: Path, why: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ResultsError(f"cannot read results file {str(path)!r} {why}: {exc}") from None
    except RecursionError:
        raise ResultsError(f"cannot read results file {str(path)!r} {why}: nested too deep to decode") from None
    if not isinstance(data, dict):
        raise ResultsError(f"cannot read results file {str(path)!r} {why}: not a JSON object")
    return data


def _rows(data: dict[str, Any], path: Path) -> list[Any]:
    rows = data.get("reports", [])
    if not isinstance(rows, list):
        raise ResultsError(f"results file {str(path)!r}: $.reports is {type(rows).__name__}, not a list")
    return rows


def _row_id(row: Any) -> str:
    cid = row.get("config_id") if isinstance(row, dict) else None
    return f" ({cid})" if isinstance(cid, str) and cid else ""


#: what every report npf writes holds, whatever its version: NeuronPerf's fields and the identity
CORE_FIELDS = (*NEURONPERF_COLUMNS, "config_id")
#: report fields added after results format 2 first shipped: a file written before them
#: lacks them, and that is no damage (its rows are resumed, with the defaults)
LATER_FIELDS = frozenset({
    "input_signature", "reused_copies", "device_util_avg_percent", "device_util_peak_percent",
    "device_mem_used_peak_mb", "power_avg_w", "power_peak_w", "inf_per_joule", "device_clock_avg_mhz",
    "copy_cores_util_avg_percent", "copy_rss_peak_mb", "telemetry_avg", "telemetry_sources", "telemetry_note",
    "telemetry_windows", "slo_p99_ms", "slo_capacity_inf_s", "slo_capacity_ci_low", "slo_capacity_ci_high",
    "slo_search", "slo_probes",
})  # fmt: skip
_REPORT_FIELDS = tuple(f.encode_name for f in msgspec.structs.fields(Report) if f.encode_name not in LATER_FIELDS)


def decode_row(row: Any, *, strict: bool) -> tuple[Report | None, list[str]]:
    """One stored report: the Report (None when it cannot be decoded) and what is
    wrong with it, each problem naming its field. A number that is not finite
    (``Infinity``, ``-1e999``: JSON has no such numbers) is such a problem, and is
    read as missing (NaN). ``strict`` (resume): a finished report lacking any field
    npf writes is damaged; otherwise only NeuronPerf's fields and the identity count."""
    if not isinstance(row, dict):
        return None, [f"a report is {type(row).__name__}, not an object"]
    problems = [f"{k} is {v}, not a finite number" for k, v in _non_finite(row)]
    if row.get("status", "ok") == "ok":
        wanted = _REPORT_FIELDS if strict else CORE_FIELDS
        missing = [k for k in wanted if k not in row and k != "error"]
        if missing:
            problems.append(f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} missing")
    try:
        report = Report.from_dict(_finite_or_nan(row))
    except (msgspec.ValidationError, TypeError, ValueError, RecursionError) as exc:
        return None, [*problems, _where(exc)]
    return report, problems


def _where(exc: BaseException) -> str:
    """A decoding error with the field first: ``n_models: Expected int, got str``."""
    text = str(exc) or type(exc).__name__
    msg, sep, at = text.partition(" - at `")
    if sep and at.startswith("$."):
        return f"{at.rstrip('`')[2:]}: {msg}"
    return text


def _non_finite(row: dict[str, Any]) -> list[tuple[str, float]]:
    """(field path, value) of every float in ``row`` that is infinite or NaN."""
    out: list[tuple[str, float]] = []
    todo: list[tuple[str, Any, int]] = [(str(k), v, 0) for k, v in row.items()]
    while todo:
        where, value, depth = todo.pop()
        if isinstance(value, float) and not math.isfinite(value):
            out.append((where, value))
        elif depth < 16 and isinstance(value, dict):
            todo.extend((f"{where}.{k}", v, depth + 1) for k, v in value.items())
        elif depth < 16 and isinstance(value, list):
            todo.extend((f"{where}[{i}]", v, depth + 1) for i, v in enumerate(value))
    return sorted(out)


def _finite_or_nan(value: Any, depth: int = 0) -> Any:
    """``value`` with every non-finite float replaced by NaN (read as missing)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else math.nan
    if depth < 16 and isinstance(value, dict):
        return {k: _finite_or_nan(v, depth + 1) for k, v in value.items()}
    if depth < 16 and isinstance(value, list):
        return [_finite_or_nan(v, depth + 1) for v in value]
    return value


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON can hold it: a float that is not finite becomes None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


class ResultsFile:
    """The run's ``results.json``, kept by the core (not a reporter): every finished,
    failed or resumed configuration is written at once, atomically, in plan order,
    so an interrupted or crashed run keeps all it had finished and ``--resume``
    works whatever reporters run.

    Format (docs/reports.md): ``{"format", "format_version", "npf_version", "run_id",
    "started_at", "label", "commit", "commit_dirty", "spec", "environment", "plan",
    "reports": [...]}``."""

    def __init__(self, path: Path, *, label: str | None = None, commit: tuple[str, bool] | None = None) -> None:
        self.path = path
        self.run_id = ""
        self.spec: dict[str, Any] = {}
        self.env: dict[str, Any] | None = None
        self.by_index: dict[int, Report] = {}
        self.label = label
        self.commit = commit
        self.started_at = time.time()
        self.plan: list[dict[str, Any]] | None = None

    def start(self, run_id: str, spec: dict[str, Any], plan: list[dict[str, Any]] | None = None) -> None:
        """The run begins: ``plan`` holds the identity of each configuration of its
        sweep (so that ``compare`` can tell a configuration the run never reached)."""
        self.run_id, self.spec, self.plan = run_id, spec, plan
        self.started_at = time.time()
        self.env = environment()

    def extend_environment(self, facts: dict[str, Any]) -> None:
        """Add facts to the ``environment`` (e.g. what the telemetry sources found:
        driver versions, device counts); written with the next record."""
        if self.env is None:
            self.env = environment()
        self.env.update(facts)

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
            "started_at": self.started_at,
            "label": self.label,
            "commit": self.commit[0] if self.commit else None,
            "commit_dirty": self.commit[1] if self.commit else None,
            "spec": self.spec,
            "environment": self.env if self.env is not None else environment(),
            "plan": self.plan,
            "reports": [self.by_index[i].to_dict() for i in sorted(self.by_index)],
        }
        try:
            text = json.dumps(doc, indent=1, allow_nan=False)
        except ValueError:  # an infinite figure (a bug, or a plugin's metric): written as null
            text = json.dumps(json_safe(doc), indent=1, allow_nan=False)
        write_atomic(self.path, text.encode())


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
    #: ``npf run --label``
    label: str | None = None
    #: the git commit of the spec's folder, and whether its work tree had changes
    commit: str | None = None
    commit_dirty: bool | None = None
    #: when the run began (seconds since the epoch; None in older files)
    started_at: float | None = None
    #: the identities of the configurations of the run's sweep (None in older files)
    plan: list[dict[str, Any]] | None = None
    #: a line for each report flagged as damaged (see :func:`read_results`)
    damaged: list[str] = field(default_factory=list)


def read_results(path: str | os.PathLike[str]) -> Results:
    """Read a results.json (or the one in a folder), any format version up to ours.

    A report that cannot be decoded is a :class:`~npf_core.errors.ResultsError`
    naming it and its field; one that decodes but holds a number that is not finite,
    or lacks one of NeuronPerf's fields, is kept and flagged: read as missing there,
    marked not valid with the reason, and listed in :attr:`Results.damaged`."""
    p = resolve_results(path)
    data = _read_document(p, "")
    try:
        version = int(data.get("format_version", 1))
    except (TypeError, ValueError, OverflowError):
        raise ResultsError(f"cannot read results file {str(p)!r}: $.format_version is not a number") from None
    if version > RESULTS_FORMAT_VERSION:
        raise ResultsError(
            f"cannot read results file {str(p)!r}: format version {version} is newer than this npf reads "
            f"({RESULTS_FORMAT_VERSION}); upgrade npf"
        )
    reports: list[Report] = []
    damaged: list[str] = []
    for i, row in enumerate(_rows(data, p)):
        report, problems = decode_row(row, strict=False)
        if report is None:
            raise ResultsError(f"cannot read results file {str(p)!r}: $.reports[{i}]{_row_id(row)}: "
                               f"{'; '.join(problems)}")  # fmt: skip
        if problems:
            note = "damaged in the results file (edited or cut short?): " + "; ".join(problems)
            damaged.append(f"reports[{i}]{_row_id(row)}: {'; '.join(problems)}")
            report = msgspec.structs.replace(report, valid=False, validity_reasons=[*report.validity_reasons, note])
        reports.append(report)
    spec, env = data.get("spec"), data.get("environment")
    return Results(
        path=p,
        reports=reports,
        spec=spec if isinstance(spec, dict) else {},
        environment=env if isinstance(env, dict) else {},
        run_id=str(data.get("run_id") or ""),
        npf_version=str(data.get("npf_version") or ""),
        format_version=version,
        label=_text_or_none(data.get("label")),
        commit=_text_or_none(data.get("commit")),
        commit_dirty=data.get("commit_dirty") if isinstance(data.get("commit_dirty"), bool) else None,
        started_at=float(data["started_at"]) if isinstance(data.get("started_at"), (int, float)) else None,
        plan=[e for e in data["plan"] if isinstance(e, dict)] if isinstance(data.get("plan"), list) else None,
        damaged=damaged,
    )


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


class PlanEntry(msgspec.Struct, kw_only=True):
    """A configuration of the run's sweep, by what it measures (results/identity.py)."""

    config_id: str
    input_signature: str = ""
    batch_size: int
    pipeline_size: int
    n_models: int
    workers_per_model: int
    performance_level: Any = None
    load_mode: str = "closed"
    target_rate: float | None = None
    device_type: str = ""


class ResultsDocument(msgspec.Struct, kw_only=True):
    """``results.json``: one run's results (docs/reports.md#the-results-format)."""

    format: str = RESULTS_FORMAT
    format_version: int = RESULTS_FORMAT_VERSION
    npf_version: str
    run_id: str
    #: when the run began, seconds since the epoch
    started_at: float | None = None
    #: ``npf run --label TEXT``
    label: str | None = None
    #: the git commit of the spec's folder (null outside a repository)
    commit: str | None = None
    #: whether that work tree had uncommitted changes
    commit_dirty: bool | None = None
    spec: dict[str, Any]
    environment: dict[str, Any]
    plan: list[PlanEntry] | None = None
    reports: list[Report]


def results_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of ``results.json`` (``npf schema --results``). A
    figure that could not be measured is written as null, so every number of a
    report may also be null."""
    schema = msgspec.json.schema(ResultsDocument)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "npf results.json"
    for prop in schema["$defs"]["Report"]["properties"].values():
        if prop.get("type") == "number":
            prop["type"] = ["number", "null"]
        if isinstance(prop.get("default"), float) and not math.isfinite(prop["default"]):
            prop["default"] = None  # written as null (JSON has no NaN)
    return schema
