"""Helpers of the fault tests: specs around the planted models, results files."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from npf_core.results.store import results_file

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models.py"


def load_timeout(fresh: bool) -> float:
    """timeouts.load_s of the fault specs: short, but a fresh interpreter's start-up
    (about 0.3 s, several times that on a loaded 2-core machine) counts in it."""
    return 3.0 if fresh else 1.0


def make_spec(out_dir: Path, **fields: Any) -> dict[str, Any]:
    """A two-configuration sweep (``workers_per_model`` 1 and 2, two copies each) of
    the planted model, with short timeouts. ``fields`` replace or add spec fields."""
    fresh = fields.get("start_method") == "fresh"
    spec: dict[str, Any] = {
        "model": {"framework": "python", "target": f"{MODELS}:Faulty"},
        "setup": f"{MODELS}:setup",
        "inputs": [{"shape": [1, 4]}],
        "n_models": [2],
        "workers_per_model": [1, 2],
        "duration_s": 0.2,
        "timeouts": {"load_s": load_timeout(fresh), "stop_s": 0.5, "grace_s": 0.5},
        "output": {"dir": str(out_dir), "reporters": ["json", "csv"]},
    }
    spec.update(fields)
    return spec


def read_results(out_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The reports of results.json and the rows of results.csv."""
    reports = json.loads(results_file(out_dir).read_text())["reports"]
    with open(results_file(out_dir).with_name("results.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    return reports, rows
