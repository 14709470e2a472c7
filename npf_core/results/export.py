"""``npf report RESULTS --format json|markdown``: a run's results as data on stdout
(``csv`` is the ``csv`` reporter's, the columns of results.csv)."""

from __future__ import annotations

import json
import math
from typing import Any

from npf_core.results.report import Report
from npf_core.results.store import RESULTS_FORMAT, Results

__all__ = ["results_json", "results_markdown"]

#: left out of ``--format json`` (results.json keeps them): thousands of numbers per report
BULKY = ("latency_histogram",)


def results_json(results: Results) -> str:
    """The run as results.json has it (same keys, the same schema: ``npf schema
    --results``), without the latency histograms, plus ``path``."""
    doc = {
        "format": RESULTS_FORMAT,
        "format_version": results.format_version,
        "npf_version": results.npf_version,
        "run_id": results.run_id,
        "started_at": results.started_at,
        "label": results.label,
        "commit": results.commit,
        "commit_dirty": results.commit_dirty,
        "path": str(results.path),
        "spec": results.spec,
        "environment": results.environment,
        "reports": [{k: v for k, v in r.to_dict().items() if k not in BULKY} for r in results.reports],
    }
    return json.dumps(_finite(doc), indent=1)


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _num(v: Any, digits: int) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "-"
    return f"{v:,.{digits}f}"


def _notes(r: Report) -> str:
    if r.status != "ok":
        return f"{r.error.type}: {r.error.message.splitlines()[0] if r.error.message else ''}" if r.error else "failed"
    return "ok? " + "; ".join(r.validity_reasons) if not r.valid else ""


_HEAD = ("configuration", "status", "batch", "copies", "workers", "pipeline", "throughput inf/s", "95% interval",
         "p50 ms", "p99 ms", "notes")  # fmt: skip


def results_markdown(results: Results) -> str:
    """A pipe table of the run's configurations (GitHub-flavoured markdown), with a
    line naming the run."""
    what = [f"run {results.run_id or '-'}"]
    if results.label:
        what.append(f"label {results.label}")
    if results.commit:
        what.append(f"commit {results.commit[:10]}{'+' if results.commit_dirty else ''}")
    lines = [f"**npf report** `{results.path}` ({', '.join(what)})", ""]
    lines.append("| " + " | ".join(_HEAD) + " |")
    lines.append("|" + "|".join("---:" if 2 <= i <= 9 else "---" for i in range(len(_HEAD))) + "|")
    for r in results.reports:
        ci = "-"
        if r.status == "ok" and math.isfinite(r.throughput_ci95_low) and math.isfinite(r.throughput_ci95_high):
            ci = f"{r.throughput_ci95_low:,.1f} – {r.throughput_ci95_high:,.1f}"
        cells = [r.config_id, r.status if r.status != "ok" or r.valid else "ok?", str(r.batch_size), str(r.n_models),
                 str(r.workers_per_model), str(r.pipeline_size), _num(r.throughput_avg, 1), ci,
                 _num(r.latency_ms_p50, 3), _num(r.latency_ms_p99, 3), _notes(r)]  # fmt: skip
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)
