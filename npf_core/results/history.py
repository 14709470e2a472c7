"""``npf history PATH``: the runs of one spec in time order, each configuration's
figures in each, and the significant changes between a run and the one before.

PATH is a spec's results folder (``npf-results/NAME``, its runs in folders
``STAMP-RUNID``), an output root holding one spec's folder, a run folder or
results.json (its spec's folder is meant), or a spec file or its folder (its
``npf-results`` is looked into). Runs are ordered by when they began
(``started_at`` in results.json; in older files the stamp of the run folder).

A configuration is followed across runs by what it measured (results/identity.py).
Its change against its previous appearance is judged by the same test as ``npf
compare`` (results/compare.py: the log ratio, Bonferroni over the configurations a
run shares with the runs before it), so a mark in the history is what ``npf compare``
would have flagged.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

import npf_core.results.figures as figures
from npf_core.errors import ResultsError
from npf_core.results.compare import (
    CONFIDENCE,
    DEFAULT_THRESHOLD_PCT,
    MetricChange,
    changes,
    json_safe,
    judge,
)
from npf_core.results.figures import Figure
from npf_core.results.identity import Identity, identity, signature_from_spec
from npf_core.results.report import Report
from npf_core.results.store import LATEST, RESULTS_FILE, Results, read_results

__all__ = ["History", "HistoryRun", "Point", "find_runs", "history"]

Z95 = 1.959964
#: the spec's default ``output.dir``, looked into when PATH is the folder of a spec file
DEFAULT_OUTPUT = "npf-results"


@dataclass
class Point:
    """One configuration in one run."""

    run: int
    series: int
    config_id: str
    status: str
    #: figure name -> value (None: not measured)
    values: dict[str, float | None]
    #: figure name -> the run's own 95% interval of the value
    intervals: dict[str, tuple[float, float] | None]
    #: the changes against the configuration's previous appearance (``against``)
    changes: list[MetricChange] = field(default_factory=list)
    against: int | None = None

    @property
    def significant(self) -> list[MetricChange]:
        return [m for m in self.changes if m.significant_change]


@dataclass
class HistoryRun:
    index: int
    path: str
    run_id: str
    label: str | None
    commit: str | None
    commit_dirty: bool | None
    started_at: float | None
    npf_version: str

    @property
    def started(self) -> str:
        if self.started_at is None:
            return ""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started_at))

    @property
    def commit_short(self) -> str:
        if not self.commit:
            return ""
        return self.commit[:10] + ("+" if self.commit_dirty else "")

    def tick(self) -> str:
        """How a chart's axis names the run: its label, else its commit, else its time."""
        return self.label or self.commit_short or self.started[5:16] or f"run {self.index + 1}"


@dataclass
class History:
    """The result of :func:`history`."""

    path: str
    name: str
    runs: list[HistoryRun]
    #: each followed configuration's name (its latest config id)
    series: list[str]
    points: list[Point]
    threshold_pct: float
    confidence: float
    figures: tuple[Figure, ...] = ()

    def marked_runs(self) -> list[int]:
        """The runs with a significant change against the run before (indexes)."""
        return sorted({p.run for p in self.points if p.significant})

    def to_dict(self) -> dict[str, Any]:
        runs = []
        for r in self.runs:
            pts = [p for p in self.points if p.run == r.index]
            runs.append({
                "index": r.index, "run_id": r.run_id, "label": r.label, "commit": r.commit,
                "commit_dirty": r.commit_dirty, "started_at": r.started_at, "started": r.started or None,
                "npf_version": r.npf_version, "results": r.path,
                "significant_changes": sum(len(p.significant) for p in pts),
                "configs": [self._point_dict(p) for p in pts],
            })  # fmt: skip
        return json_safe({
            "path": self.path, "name": self.name, "threshold_pct": self.threshold_pct,
            "confidence": self.confidence, "series": self.series,
            "units": {f.field: f.unit for f in self.figures}, "runs": runs,
        })  # fmt: skip

    def _point_dict(self, p: Point) -> dict[str, Any]:
        out: dict[str, Any] = {"config_id": p.config_id, "series": self.series[p.series], "status": p.status}
        for f in self.figures:
            out[f.field] = p.values.get(f.name)
        out["against_run"] = p.against
        out["changes"] = [
            {"metric": m.metric, "unit": m.unit, "change_pct": m.change_pct, "ci_pct": m.ci_pct, "verdict": m.verdict}
            for m in p.changes
        ]
        return out

    def render(self, fmt: str = "table") -> str:
        """``table``, ``markdown`` or ``json``, as ``npf history --format`` prints it."""
        if fmt == "json":
            return json.dumps(self.to_dict(), indent=1)
        head = ["run", "started", "label", "commit", "configuration", "status",
                *(f"{f.name} {f.unit}" for f in self.figures), "change against the run before"]  # fmt: skip
        rows = []
        for p in self.points:
            r = self.runs[p.run]
            vals = [_fmt(p.values.get(f.name), f.unit) for f in self.figures]
            rows.append([str(r.index + 1), r.started or "-", r.label or "-", r.commit_short or "-", p.config_id,
                         p.status, *vals, _changes_text(p)])  # fmt: skip
        right = set(range(6, 6 + len(self.figures)))
        if fmt == "markdown":
            lines = [f"**npf history** `{self.path}` ({len(self.runs)} runs)", ""]
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "|".join("---:" if i in right else "---" for i in range(len(head))) + "|")
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        else:
            widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
            lines = ["  ".join((x.rjust(w) if i in right else x.ljust(w))
                               for i, (x, w) in enumerate(zip(row, widths, strict=True))).rstrip()
                     for row in (head, *rows)]  # fmt: skip
        marked = self.marked_runs()
        how = f"(threshold {self.threshold_pct:g}%, {self.confidence:.0%} confidence, as npf compare)"
        if marked:
            text = ", ".join(f"{i + 1} ({self.runs[i].tick()})" for i in marked)
            lines.append(f"\nsignificant changes against the run before in run{'s' * (len(marked) != 1)} {text} {how}")
        else:
            lines.append(f"\nno significant change between consecutive runs {how}")
        return "\n".join(lines)


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    return f"{v:,.1f}" if unit == "inf/s" else f"{v:.3f}"


def _changes_text(p: Point) -> str:
    sig = p.significant
    if not sig:
        return "-" if p.against is None else "no significant change"
    return "; ".join(f"{m.metric} {m.change_pct:+.1f}% {m.verdict}" for m in sig)




# ---------------------------------------------------------------------------
# finding and ordering the runs
# ---------------------------------------------------------------------------


def _run_folders(folder: Path) -> list[Path]:
    """The run folders in a spec's results folder (``latest`` and other links left out)."""
    try:
        children = list(folder.iterdir())
    except OSError:
        return []
    return sorted(d for d in children if d.name != LATEST and not d.is_symlink() and (d / RESULTS_FILE).is_file())


def find_runs(path: str | os.PathLike[str]) -> tuple[Path, list[Path]]:
    """The spec folder PATH means and the results files of its runs (unordered).
    Raises :class:`~npf_core.errors.ResultsError` naming what was looked for."""
    p = Path(path)
    if p.is_file():
        p = p.parent
    if not p.is_dir():
        raise ResultsError(f"no results at {str(p)!r}: not a file or folder")
    if (p / RESULTS_FILE).is_file():  # a run folder: its spec's runs (or this one alone)
        siblings = _run_folders(p.parent)
        if p.resolve() in {s.resolve() for s in siblings}:
            return p.parent, [s / RESULTS_FILE for s in siblings]
        return p, [p / RESULTS_FILE]
    runs = _run_folders(p)
    if runs:
        return p, [r / RESULTS_FILE for r in runs]
    specs = sorted(d for d in p.iterdir() if d.is_dir() and not d.is_symlink() and _run_folders(d))
    if not specs and (p / DEFAULT_OUTPUT).is_dir():  # the folder of a spec file (or the file itself)
        return find_runs(p / DEFAULT_OUTPUT)
    if len(specs) == 1:
        return specs[0], [r / RESULTS_FILE for r in _run_folders(specs[0])]
    if specs:
        names = ", ".join(d.name for d in specs)
        raise ResultsError(f"{str(p)!r} holds the runs of several specs ({names}): name one, e.g. {str(specs[0])!r}")
    raise ResultsError(f"no runs in {str(p)!r} (looked for run folders holding {RESULTS_FILE}, or a spec's folder)")


def _started(res: Results) -> float:
    """When a run began: recorded, else the stamp of its folder, else the file's time."""
    if res.started_at is not None:
        return res.started_at
    try:
        return time.mktime(time.strptime(res.path.parent.name[:15], "%Y%m%d-%H%M%S"))
    except ValueError:
        return res.path.stat().st_mtime


# ---------------------------------------------------------------------------
# following configurations across runs
# ---------------------------------------------------------------------------


def _with_signature(r: Report, spec: dict[str, Any]) -> Report:
    """An older report with the input signature its stored spec tells (if any)."""
    if r.input_signature:
        return r
    sig = signature_from_spec(spec, r.input_idx)
    return msgspec.structs.replace(r, input_signature=sig) if sig else r


def _interval(f: Figure, r: Report) -> tuple[float, float] | None:
    e = f.estimate(r)
    if e is None or e.log_se is None or not (e.value > 0 and math.isfinite(e.value)):
        return None
    return e.value * math.exp(-Z95 * e.log_se), e.value * math.exp(Z95 * e.log_se)


def _value(f: Figure, r: Report) -> float | None:
    v = r.get(f.field)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def history(
    path: str | os.PathLike[str],
    *,
    threshold_pct: float = DEFAULT_THRESHOLD_PCT,
    confidence: float = CONFIDENCE,
) -> History:
    """The runs of the spec PATH means, in time order, with each configuration's
    figures and its significant changes against its previous appearance."""
    folder, files = find_runs(path)
    results = sorted((read_results(f) for f in files), key=lambda r: (_started(r), r.path.parent.name))
    runs: list[HistoryRun] = []
    series_ids: list[Identity] = []
    series_names: list[str] = []
    last: dict[int, tuple[int, Report]] = {}  # series -> (run, its latest report)
    points: list[Point] = []
    figs = figures.FIGURES
    for k, res in enumerate(results):
        runs.append(HistoryRun(k, str(res.path), res.run_id, res.label, res.commit, res.commit_dirty,
                               res.started_at if res.started_at is not None else _started(res),
                               res.npf_version))  # fmt: skip
        taken: set[int] = set()
        pairs: list[tuple[Point, Report, Report]] = []
        for r in res.reports:
            r = _with_signature(r, res.spec)
            ident = identity(r)
            cands = [s for s, i in enumerate(series_ids) if s not in taken and i.matches(ident)]
            exact = [s for s in cands if series_ids[s] == ident]
            pick = (exact or cands)[:1]
            if pick:
                s = pick[0]
                if series_ids[s].inputs is None:
                    series_ids[s] = ident
            else:
                s = len(series_ids)
                series_ids.append(ident)
                series_names.append(r.config_id)
            taken.add(s)
            series_names[s] = r.config_id  # named after its latest appearance
            p = Point(k, s, r.config_id, r.status, {f.name: _value(f, r) for f in figs if r.status == "ok"},
                      {f.name: _interval(f, r) for f in figs if r.status == "ok"})  # fmt: skip
            points.append(p)
            if s in last:
                p.against = last[s][0]
                pairs.append((p, last[s][1], r))
            last[s] = (k, r)
        verdicts, _ = judge([changes(a, b) for _, a, b in pairs], threshold_pct, confidence)
        for (p, _, _), ms in zip(pairs, verdicts, strict=True):
            p.changes = ms
    name = results[-1].spec.get("name") if results and results[-1].spec else None
    if not name:
        name = results[-1].reports[0].model_name if results and results[-1].reports else folder.name
    return History(str(folder), str(name), runs, series_names, points, threshold_pct, confidence, figs)
