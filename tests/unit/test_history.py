"""``npf history``: a spec's runs in time order with their labels and commits, each
configuration followed across runs by what it measured, and its significant changes
against the run before marked by the same test as ``npf compare`` (synthetic runs
with known truth)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from npf_core.errors import ResultsError
from npf_core.results.history import find_runs, history
from npf_core.results.report import Report

from .test_compare import failed, two_batches

T0 = 1_790_000_000.0


def write_run(folder: Path, name: str, reports: list[Report], *, started: float | None, label: str | None = None,
              commit: str | None = None, spec: dict[str, object] | None = None) -> Path:  # fmt: skip
    """A run folder as ``npf run`` leaves it (``STAMP-RUNID/results.json``)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(started or T0))
    run = folder / name / f"{stamp}-{os.urandom(3).hex()}"
    run.mkdir(parents=True)
    doc: dict[str, object] = {"format": "npf-results", "format_version": 2, "npf_version": "0.2.0",
                              "run_id": run.name[-6:], "spec": spec or {"name": name},
                              "environment": {}, "reports": [r.to_dict() for r in reports]}  # fmt: skip
    if started is not None:
        doc.update(started_at=started, label=label, commit=commit, commit_dirty=False)
    (run / "results.json").write_text(json.dumps(doc))
    return run


def test_three_labelled_runs_in_time_order_with_the_slower_one_marked(tmp_path: Path) -> None:
    rng = np.random.default_rng(40)
    out = tmp_path / "npf-results"
    # written out of order: the history orders by when each run began
    write_run(out, "m", two_batches(rng, scale=1.3), started=T0 + 200, label="v3", commit="c" * 40)
    write_run(out, "m", two_batches(rng), started=T0, label="v1", commit="a" * 40)
    write_run(out, "m", two_batches(rng), started=T0 + 100, label="v2", commit="b" * 40)
    h = history(out)
    assert h.name == "m" and Path(h.path) == out / "m"
    data = json.loads(h.render("json"))
    assert [r["label"] for r in data["runs"]] == ["v1", "v2", "v3"]
    assert [r["commit"] for r in data["runs"]] == ["a" * 40, "b" * 40, "c" * 40]
    assert [r["started_at"] for r in data["runs"]] == [T0, T0 + 100, T0 + 200]
    first = data["runs"][0]["configs"]
    assert [c["config_id"] for c in first] == ["m-b1-p1-n1-w1", "m-b2-p1-n1-w1"]
    assert first[0]["status"] == "ok" and first[0]["throughput_avg"] > 0 and first[0]["latency_ms_p99"] > 0
    assert first[0]["against_run"] is None and first[0]["changes"] == []
    # v2 is v1 again: nothing marked; v3 is 30% slower: marked, as compare would
    assert data["runs"][1]["significant_changes"] == 0
    assert data["runs"][2]["significant_changes"] >= 4
    assert h.marked_runs() == [2]
    third = {(c["config_id"], m["metric"]): m for c in data["runs"][2]["configs"] for m in c["changes"]}
    assert third[("m-b2-p1-n1-w1", "throughput")]["verdict"] == "regression"
    assert -26 < third[("m-b2-p1-n1-w1", "throughput")]["change_pct"] < -20
    table = h.render("table")
    assert "v1" in table and "aaaaaaaaaa" in table and "throughput -2" in table
    assert "significant changes against the run before in run 3 (v3)" in table
    md = h.render("markdown")
    assert md.count("\n| ") >= 7 and "| v3 |" in md


def test_configurations_are_followed_by_parameters_through_narrowed_and_older_runs(tmp_path: Path) -> None:
    rng = np.random.default_rng(41)
    out = tmp_path / "out"
    spec = {"name": "m", "inputs": [{"shape": [1, 4]}, {"shape": [2, 4]}], "batch_sizes": [1, 2]}
    old = two_batches(rng)
    for r in old:  # written before ids named parameters: no signature, position ids
        r.input_signature, r.config_id = "", f"m-i{r.input_idx}-b{r.batch_size}-p1-n1-w1"
    write_run(out, "m", old, started=None, spec=spec)  # no started_at: its folder's stamp
    write_run(out, "m", two_batches(rng, batches=(2,)), started=T0 + 60, label="narrowed")
    write_run(out, "m", two_batches(rng), started=T0 + 120, label="full")
    h = history(out / "m")
    assert h.series == ["m-b1-p1-n1-w1", "m-b2-p1-n1-w1"]  # two configurations, not four
    by_run = {(p.run, p.series): p for p in h.points}
    assert by_run[(1, 1)].against == 0 and by_run[(2, 0)].against == 0 and by_run[(2, 1)].against == 1
    assert (1, 0) not in by_run
    assert h.marked_runs() == []


def test_a_failed_configuration_shows_its_status_and_no_figures(tmp_path: Path) -> None:
    rng = np.random.default_rng(42)
    write_run(tmp_path, "m", two_batches(rng), started=T0, label="ok")
    write_run(tmp_path, "m", [failed(r) for r in two_batches(rng)], started=T0 + 1, label="broken")
    data = json.loads(history(tmp_path / "m").render("json"))
    last = data["runs"][1]["configs"][0]
    assert last["status"] == "error" and last["throughput_avg"] is None and last["changes"] == []


def test_where_history_looks(tmp_path: Path) -> None:
    rng = np.random.default_rng(43)
    run = write_run(tmp_path / "one", "m", two_batches(rng), started=T0)
    (run.parent / "latest").symlink_to(run.name)
    assert find_runs(tmp_path / "one")[0] == run.parent  # an output root with one spec
    assert find_runs(run / "results.json")[0] == run.parent  # a run: its spec's runs
    assert len(find_runs(run.parent)[1]) == 1  # 'latest' is not a second run
    beside = write_run(tmp_path / "project" / "npf-results", "m", two_batches(rng), started=T0)
    (tmp_path / "project" / "spec.json").write_text("{}")
    for where in ("project", "project/spec.json"):  # a spec file or its folder: its default output folder
        assert find_runs(tmp_path / where)[0] == beside.parent
    write_run(tmp_path / "two", "a", two_batches(rng), started=T0)
    write_run(tmp_path / "two", "b", two_batches(rng), started=T0)
    with pytest.raises(ResultsError, match="several specs"):
        history(tmp_path / "two")
    with pytest.raises(ResultsError, match="no results"):
        history(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="no runs"):
        history(tmp_path / "empty")


def test_the_html_history_draws_a_trend_per_figure_and_rings_the_significant_changes(tmp_path: Path) -> None:
    import re

    from npf_plugins.reporters.history_html import render_history_html

    rng = np.random.default_rng(44)
    for k, scale in enumerate((1.0, 1.0, 1.3)):
        write_run(tmp_path, "m", two_batches(rng, scale=scale), started=T0 + k, label=f"v{k + 1}")
    h = history(tmp_path / "m")
    page = render_history_html(h)
    for fig in ("throughput", "p50", "p99"):
        svg = page.split(f'id="chart-history-{fig}"')[1].split("</svg>")[0]
        assert svg.count('class="series"') == 2  # a line per configuration
        rings = re.findall(r'<circle class="mark"[^>]*><title>([^<]*)</title>', svg)
        assert len(rings) == 2 and all("regression" in t and "against run 2 (v2)" in t for t in rings), rings
    for label in ("v1", "v2", "v3"):
        assert f">{label}</text>" in page  # the runs named on the x axis
    assert page.count('<tr class="marked">') == 1
    assert not re.search(r'(src|href)="(https?:)?//', page)
