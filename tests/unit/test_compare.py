"""Stored histograms, the results format, and the statistics of ``npf compare``
(synthetic data with known truth)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import msgspec
import numpy as np
import pytest

import npf_core
from npf_core.errors import ResultsError, UserError
from npf_core.results.compare import IMPROVEMENT, NO_CHANGE, REGRESSION, compare, render, welch
from npf_core.results.report import ErrorInfo, Report
from npf_core.results.stats import Histogram, StoredHistogram
from npf_core.results.store import RESULTS_FORMAT_VERSION, Results, read_results, resolve_results

QS = (0, 50, 90, 95, 99, 99.9, 100)


def lognormal_ns(rng: np.random.Generator, n: int, median_ms: float = 2.0, sigma: float = 0.3) -> np.ndarray:
    return np.maximum(1, rng.lognormal(math.log(median_ms * 1e6), sigma, n)).astype(np.int64)


def make_report(
    rng: np.random.Generator, *, rate: float = 1000.0, rate_sd: float = 50.0, windows: int = 10,
    median_ms: float = 2.0, sigma: float = 0.3, n: int = 3000, config_id: str = "m-b1-p1-n1-w1", **fields: object,
) -> Report:  # fmt: skip
    """A report as build_report makes it, from synthetic windows and latencies."""
    h = Histogram()
    h.add(lognormal_ns(rng, n, median_ms, sigma))
    w = rng.normal(rate, rate_sd, windows).tolist()
    kw = dict(model_name="m", n_models=1, workers_per_model=1, pipeline_size=1, batch_size=1)
    kw.update(fields)  # type: ignore[arg-type]
    return Report(
        **kw,  # type: ignore[arg-type]
        config_id=config_id,
        throughput_avg=float(np.mean(w)),
        throughput_windows=w,
        window_s=0.5,
        **{f"latency_ms_p{str(q).replace('.', '')}": h.percentile(q) / 1e6 for q in (50, 90, 95, 99, 99.9)},
        latency_histogram=h.to_stored(),
    )


# -- the stored histogram -------------------------------------------------------


def test_stored_histogram_round_trips_through_json_exactly() -> None:
    rng = np.random.default_rng(1)
    h = Histogram()
    h.add(lognormal_ns(rng, 50_000, sigma=0.8))
    h.add([5, 10**12])  # far outliers: separate runs
    text = msgspec.json.encode(h.to_stored())
    back = Histogram.from_stored(msgspec.json.decode(text, type=StoredHistogram))
    assert np.array_equal(back.counts, h.counts)
    assert (back.n, back.total, back.lo, back.hi) == (h.n, h.total, h.lo, h.hi)
    for q in QS:
        assert back.percentile(q) == h.percentile(q)


def test_stored_histogram_is_sparse_a_few_kb() -> None:
    rng = np.random.default_rng(2)
    h = Histogram()
    h.add(lognormal_ns(rng, 200_000, sigma=0.2))  # a typical spread: p99/p1 about 2.5
    stored = h.to_stored()
    size = len(msgspec.json.encode(stored))
    assert size < 8_000, size
    assert sum(len(c) for _, c in stored.runs) < len(h.counts) / 10


def test_stored_histogram_checks_itself() -> None:
    good = Histogram()
    good.add([1000, 2000])
    s = good.to_stored()
    with pytest.raises(ValueError, match="add up"):
        Histogram.from_stored(msgspec.structs.replace(s, n=3))
    with pytest.raises(ValueError, match="bucket ratio"):
        Histogram.from_stored(msgspec.structs.replace(s, gamma=1.01))


def test_percentiles_from_the_histogram_are_within_0_1_percent_of_the_samples() -> None:
    rng = np.random.default_rng(3)
    x = lognormal_ns(rng, 20_000, sigma=1.0)
    h = Histogram()
    h.add(x)
    for q in QS:
        true = float(np.percentile(x, q))
        assert abs(h.percentile(q) - true) <= 0.001 * true, q


# -- results files ----------------------------------------------------------------


def _write(path: Path, reports: list[Report], version: int | None = RESULTS_FORMAT_VERSION,
           spec: dict[str, object] | None = None, plan: list[dict[str, object]] | None = None) -> Path:  # fmt: skip
    doc: dict[str, object] = {"npf_version": "0.1.0", "spec": spec or {"name": "m"}, "environment": {"python": "3"},
                              "reports": [r.to_dict() for r in reports]}  # fmt: skip
    if plan is not None:
        doc["plan"] = plan
    if version is not None:
        doc["format_version"] = version
    path.write_text(json.dumps(doc))
    return path


def test_format_1_files_without_histograms_still_load_and_compare(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    old = []
    for r in (make_report(rng), make_report(rng, rate=800, median_ms=2.5)):
        d = r.to_dict()
        del d["latency_histogram"]
        d["latency_ms_p50_ci_low"], d["latency_ms_p50_ci_high"] = d["latency_ms_p50"] * 0.99, d["latency_ms_p50"] * 1.01
        old.append(d)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"npf_version": "0.1.0", "reports": [old[0]]}))
    b.write_text(json.dumps({"npf_version": "0.1.0", "reports": [old[1]]}))
    res = read_results(a)
    assert res.format_version == 1 and res.reports[0].latency_histogram is None
    c = compare(a, b)
    m = {x.metric: x for x in c.configs[0].metrics}
    assert m["p50"].method == "quantile_ci_stored" and m["p50"].verdict == REGRESSION
    assert m["throughput"].verdict == REGRESSION
    assert m["p99"].verdict == "not tested"  # no stored interval for it in this file


def test_newer_format_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    p = _write(tmp_path / "r.json", [], version=RESULTS_FORMAT_VERSION + 1)
    with pytest.raises(ResultsError, match="newer than this npf reads"):
        read_results(p)


def test_resolver_takes_a_file_or_a_folder(tmp_path: Path) -> None:
    p = _write(tmp_path / "results.json", [])
    assert resolve_results(p) == p
    assert resolve_results(tmp_path) == p
    with pytest.raises(ResultsError, match="no results"):
        resolve_results(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="no results file"):
        resolve_results(tmp_path / "empty")


# -- statistics ---------------------------------------------------------------------


def test_welch_matches_its_formula() -> None:
    a, b = [10.0, 12.0, 11.0, 13.0], [14.0, 15.0, 13.5, 16.0, 15.5]
    diff, se, df = welch(a, b)
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 5
    assert diff == pytest.approx(np.mean(b) - np.mean(a))
    assert se == pytest.approx(math.sqrt(va + vb))
    assert df == pytest.approx((va + vb) ** 2 / (va**2 / 3 + vb**2 / 4))


def binomial_upper(n: int, p: float, tail: float = 1e-3) -> int:
    """The smallest k with P(X > k) < tail for X ~ Binomial(n, p)."""
    cdf = 0.0
    for k in range(n + 1):
        cdf += math.comb(n, k) * p**k * (1 - p) ** (n - k)
        if 1 - cdf < tail:
            return k
    return n


@pytest.mark.parametrize("configs", [1, 4])
def test_a_noisy_model_does_not_cry_wolf_more_than_the_confidence_allows(configs: int) -> None:
    """200 A/A comparisons of a noisy model (window throughput CV 15%, latency sigma
    0.5), each over ``configs`` configuration pairs (3 tests each): comparisons that
    flag anything as statistically significant stay within what 95% confidence
    allows (binomial bound, one-sided 0.1%)."""
    rng = np.random.default_rng(20261201 + configs)
    trials = 200
    wolves = 0
    per_metric = dict.fromkeys(("throughput", "p50", "p99"), 0)
    for _ in range(trials):
        kw = dict(rate=1000.0, rate_sd=150.0, sigma=0.5, n=3000)
        ids = [f"m-b1-p1-n{i}-w1" for i in range(configs)]
        base = [make_report(rng, config_id=c, n_models=i, **kw) for i, c in enumerate(ids)]  # type: ignore[arg-type]
        new = [make_report(rng, config_id=c, n_models=i, **kw) for i, c in enumerate(ids)]  # type: ignore[arg-type]
        c = compare(base, new, threshold_pct=0.0)
        assert c.tests == 3 * configs
        flagged = [m for cc in c.configs for m in cc.metrics if m.statistically_significant]
        wolves += bool(flagged)
        for m in flagged:
            per_metric[m.metric] += 1
    bound = binomial_upper(trials, 0.05)
    assert wolves <= bound, (wolves, bound, per_metric)


def test_a_real_10_percent_change_is_found_in_the_same_noise() -> None:
    """The same test has power: a 10% slower model is flagged nearly every time."""
    rng = np.random.default_rng(7)
    found = dict.fromkeys(("throughput", "p50", "p99"), 0)
    for _ in range(50):
        base = make_report(rng, rate=1000.0, rate_sd=50.0, sigma=0.3)
        new = make_report(rng, rate=1000.0 / 1.1, rate_sd=50.0 / 1.1, median_ms=2.2, sigma=0.3)
        c = compare([base], [new], threshold_pct=5.0)
        for m in c.configs[0].metrics:
            found[m.metric] += m.verdict == REGRESSION
        assert c.exit_code == 1
    assert found["throughput"] >= 42 and found["p50"] == 50, found  # ~93% expected for throughput


def test_significant_but_below_the_threshold_is_no_significant_change() -> None:
    rng = np.random.default_rng(8)
    base = make_report(rng, rate=1000.0, rate_sd=1.0, median_ms=2.0, sigma=0.05, n=50_000)
    new = make_report(rng, rate=980.0, rate_sd=1.0, median_ms=2.04, sigma=0.05, n=50_000)
    c = compare([base], [new], threshold_pct=5.0)
    for m in c.configs[0].metrics:
        assert m.statistically_significant and not m.beyond_threshold, m
        assert m.verdict == NO_CHANGE
    assert c.exit_code == 0 and c.summary().startswith("no significant change")
    faster = compare([new], [base], threshold_pct=1.0)
    assert {m.verdict for m in faster.configs[0].metrics} == {IMPROVEMENT}
    assert faster.exit_code == 0


def test_configurations_match_by_what_they_measured_whatever_their_ids() -> None:
    rng = np.random.default_rng(9)
    base = [make_report(rng, config_id="a-b1-p1-n1-w1"), make_report(rng, config_id="a-b1-p1-n2-w1", n_models=2),
            make_report(rng, config_id="a-b1-p1-n4-w1", n_models=4)]  # fmt: skip
    new = [make_report(rng, config_id="b-b1-p1-n1-w1"), make_report(rng, config_id="a-b1-p1-n2-w1", n_models=2),
           make_report(rng, config_id="b-b8-p1-n1-w1", batch_size=8)]  # fmt: skip
    c = compare(base, new)
    pairs = {(x.base_config_id, x.config_id, x.matched_by) for x in c.configs}
    assert pairs == {("a-b1-p1-n2-w1", "a-b1-p1-n2-w1", "id"), ("a-b1-p1-n1-w1", "b-b1-p1-n1-w1", "parameters")}
    assert c.only_in_base == ["a-b1-p1-n4-w1"] and c.only_in_new == ["b-b8-p1-n1-w1"]


def test_renderings_and_the_python_entry_point(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    a = _write(tmp_path / "a.json", [make_report(rng)])
    b = _write(tmp_path / "b.json", [make_report(rng, rate=800.0, median_ms=2.5)])
    c = npf_core.compare(a, b, threshold_pct=5)
    assert c.exit_code == 1
    data = json.loads(render(c, "json"))
    assert data["exit_code"] == 1 and data["configs"][0]["verdict"] == REGRESSION
    assert {m["metric"] for m in data["configs"][0]["metrics"]} == {"throughput", "p50", "p99"}
    table = render(c, "table")
    assert "regression" in table and "-20.0%" in table.replace("-19.", "-20.") or "regression" in table
    md = render(c, "markdown")
    assert md.count("\n| ") >= 4 and "significant regression" in md
    with pytest.raises(UserError, match="threshold"):
        compare(a, b, threshold_pct=-1)


@pytest.mark.parametrize("df", [1, 2, 3, 5, 10, 20, 30])
def test_t_quantile_matches_the_table_and_the_normal_limit(df: int) -> None:
    from npf_core.results.stats import normal_quantile, t95, t_quantile

    assert t_quantile(0.975, df) == pytest.approx(t95(df), abs=6e-4)
    assert t_quantile(0.025, df) == pytest.approx(-t95(df), abs=6e-4)
    assert t_quantile(0.5, df) == pytest.approx(0.0, abs=1e-9)
    assert t_quantile(0.975, math.inf) == pytest.approx(1.959964, abs=1e-6)
    assert normal_quantile(0.995) == pytest.approx(2.5758293, abs=1e-6)
    # between integer degrees of freedom it lies between their quantiles
    assert t_quantile(0.975, df + 1) < t_quantile(0.975, df + 0.5) < t_quantile(0.975, df)


# -- the gate fails closed ------------------------------------------------------------
# Each of these passed the gate (exit 0) before compare matched by parameters and
# failed closed.


def failed(report: Report, message: str = "broken model") -> Report:
    """The report of the same configuration, failed in every call."""
    return msgspec.structs.replace(
        report, status="error", error=ErrorInfo(type="RuntimeError", message=message), throughput_avg=math.nan,
        throughput_windows=[], latency_histogram=None, valid=False, validity_reasons=["configuration failed"],
    )  # fmt: skip


def two_batches(rng: np.random.Generator, scale: float = 1.0, batches: tuple[int, ...] = (1, 2)) -> list[Report]:
    """A sweep of two batch sizes (inputs 0 and 1), ``scale`` times slower."""
    return [make_report(rng, rate=1000.0 * b / scale, rate_sd=20.0, median_ms=2.0 * scale, sigma=0.1,
                        config_id=f"m-b{b}-p1-n1-w1", batch_size=b, input_idx=i,
                        input_signature=f"float32[{b}x4]") for i, b in enumerate(batches)]  # fmt: skip


def test_a_new_run_whose_configurations_failed_exits_1_and_names_them() -> None:
    rng = np.random.default_rng(30)
    base = two_batches(rng)
    new = [failed(r) for r in two_batches(rng)]
    c = compare(base, new)
    assert c.exit_code == 1
    assert c.failed_in_new == ["m-b1-p1-n1-w1", "m-b2-p1-n1-w1"]
    assert c.summary().startswith("2 configurations ok in base failed in new: m-b1-p1-n1-w1, m-b2-p1-n1-w1")
    assert "broken model" in render(c, "table")
    assert json.loads(render(c, "json"))["configs"][0]["verdict"] == "failed in new"
    # failed in base too: nothing to hold against the new run there, and nothing else to compare
    both = compare([failed(r) for r in base], new)
    assert both.exit_code == 2 and both.refused.startswith("nothing to compare")


def test_runs_with_nothing_in_common_exit_2_with_one_line() -> None:
    rng = np.random.default_rng(31)
    c = compare(two_batches(rng, batches=(1,)), [msgspec.structs.replace(r, input_idx=0)
                                                  for r in two_batches(rng, batches=(2,))])  # fmt: skip
    assert c.exit_code == 2
    assert c.refused.startswith("nothing to compare: no configuration of NEW was measured in BASE")
    assert "batch 1" in c.refused and "batch 2" in c.refused and "\n" not in c.refused
    assert render(c, "table") == c.refused
    assert compare([], []).exit_code == 2


def test_a_narrowed_rerun_is_compared_on_its_overlap_not_by_input_position() -> None:
    """``npf run spec --batch-sizes 2`` makes batch 2 input 0: it is still the full
    sweep's batch-2 configuration (input 1 there)."""
    rng = np.random.default_rng(32)
    base = two_batches(rng)
    (slower,) = two_batches(rng, scale=1.3, batches=(2,))
    assert slower.input_idx == 0 and base[1].input_idx == 1
    c = compare(base, [slower])
    assert [(x.base_config_id, x.config_id) for x in c.configs] == [("m-b2-p1-n1-w1", "m-b2-p1-n1-w1")]
    assert c.exit_code == 1 and {m for _, m in ((i, m.metric) for i, m in c.regressions)} >= {"throughput", "p50"}
    # batch 1 was not in the narrowed sweep: listed, not missing, and not a failure of the gate
    assert c.only_in_base == ["m-b1-p1-n1-w1"] and c.missing_in_new == []
    (same,) = two_batches(rng, batches=(2,))
    again = compare(base, [same])
    assert again.exit_code == 0 and again.only_in_base == ["m-b1-p1-n1-w1"]


def test_inputs_of_another_shape_are_not_the_same_configuration() -> None:
    rng = np.random.default_rng(33)
    sig = "int64[1x128]"
    base = [make_report(rng, config_id="m-b1-p1-n1-w1", input_signature=sig),
            make_report(rng, config_id="m-b1-p1-n1-w2", input_signature=sig, workers_per_model=2)]  # fmt: skip
    new = [make_report(rng, config_id="m-b1-p1-n1-w1", input_signature="int64[1x512]")]
    c = compare(base, new)
    assert c.exit_code == 2 and "inputs: 'int64[*x128]' vs 'int64[*x512]'" in c.refused
    assert compare(base, new, allow_different=True).configs[0].base_config_id == "m-b1-p1-n1-w1"


def test_a_configuration_new_s_sweep_had_but_never_finished_is_missing_exit_1(tmp_path: Path) -> None:
    """An interrupted or crashed run: its plan (in results.json) had batch 2, its
    reports do not."""
    rng = np.random.default_rng(34)
    base = two_batches(rng)
    plan = [{"config_id": r.config_id, "input_signature": r.input_signature, "batch_size": r.batch_size,
             "pipeline_size": 1, "n_models": 1, "workers_per_model": 1, "device_type": r.device_type}
            for r in base]  # fmt: skip
    a = _write(tmp_path / "a.json", base)
    b = _write(tmp_path / "b.json", two_batches(rng, batches=(1,)), plan=plan)
    c = compare(a, b)
    assert c.exit_code == 1 and c.missing_in_new == ["m-b2-p1-n1-w1"] and c.only_in_base == []
    assert "1 configuration ok in base missing in new: m-b2-p1-n1-w1" in c.summary()
    # an older file has no plan: the same spec means the same sweep
    same_spec = compare(a, _write(tmp_path / "c.json", two_batches(rng, batches=(1,))))
    assert same_spec.missing_in_new == ["m-b2-p1-n1-w1"] and same_spec.exit_code == 1
    narrowed = compare(a, _write(tmp_path / "d.json", two_batches(rng, batches=(1,)), spec={"name": "m", "x": 1}))
    assert narrowed.missing_in_new == [] and narrowed.exit_code == 0


def test_two_different_models_exit_2_naming_the_fields_unless_allowed() -> None:
    rng = np.random.default_rng(35)
    base = [make_report(rng, model_name="Sleepy", model_filename="/a/models.py:Sleepy")]
    new = [make_report(rng, rate=50.0, rate_sd=30.0, windows=4, median_ms=40.0, model_name="Hungry",
                       model_filename="/b/models.py:Hungry")]  # fmt: skip
    c = compare(base, new)
    assert c.exit_code == 2 and c.configs == []
    assert c.differences == ["model_name: 'Sleepy' vs 'Hungry'",
                             "model_filename: 'models.py:Sleepy' vs 'models.py:Hungry'"]  # fmt: skip
    assert "different models or inputs" in c.refused and "--allow-different" in c.refused
    allowed = compare(base, new, allow_different=True)
    assert allowed.exit_code == 1 and allowed.differences == c.differences and allowed.tests >= 2
    # a new version of one model (same reference) or a renamed spec is the same model
    renamed = [msgspec.structs.replace(new[0], model_filename="/b/models.py:Sleepy")]
    assert compare(base, renamed).differences == []
    moved = [msgspec.structs.replace(new[0], model_name="Sleepy")]
    assert compare(base, moved).differences == []
    # a new run that failed fails the gate as failed, whatever else differs
    broken = compare(base, [failed(new[0])])
    assert broken.exit_code == 1 and broken.failed_in_new == [new[0].config_id] and not broken.refused
    assert "figures not compared: BASE and NEW measure different models" in broken.summary()


def test_another_framework_or_device_is_named() -> None:
    rng = np.random.default_rng(36)
    base = Results(Path("a"), [make_report(rng, device_type="cpu")], spec={"model": {"framework": "python"}})
    new = Results(Path("b"), [make_report(rng, device_type="gpu")], spec={"model": {"framework": "torch"}})
    c = compare(base, new)
    assert c.differences == ["model.framework: 'python' vs 'torch'", "device_type: 'cpu' vs 'gpu'"]
    assert c.exit_code == 2


@pytest.mark.parametrize("factor", [20.0, 1000.0])
def test_a_much_slower_model_never_reads_below_minus_100_percent(factor: float) -> None:
    """On the log ratio: a model 20x slower is about -95%, with an interval inside
    (-100%, +inf), even when the base's windows are few and noisy (a normal interval
    on the difference read [-102%, -96%] for such a pair)."""
    rng = np.random.default_rng(37)
    base = make_report(rng, rate=1000.0, rate_sd=300.0, windows=3, median_ms=2.0, sigma=0.8, n=400)
    new = make_report(rng, rate=1000.0 / factor, rate_sd=200.0 / factor, windows=3, median_ms=2.0 * factor,
                      sigma=0.8, n=400)  # fmt: skip
    c = compare([base], [new], allow_different=True)
    tested = [m for m in c.configs[0].metrics if m.ci_pct is not None]
    assert {m.metric for m in tested} >= {"throughput", "p50"}  # p99: too few calls to bound it
    for m in tested:
        assert m.ci_pct is not None and -100 < m.ci_pct[0] <= m.change_pct <= m.ci_pct[1], m
    thr = {m.metric: m for m in c.configs[0].metrics}["throughput"]
    assert thr.change_pct == pytest.approx((new.throughput_avg / base.throughput_avg - 1) * 100)
    assert thr.verdict == REGRESSION and c.exit_code == 1


def test_older_results_with_position_ids_still_load_and_compare(tmp_path: Path) -> None:
    """Files written before configurations were identified by parameters: ids carry
    the input's position (``m-i1-b2-...``) and no input signature; the spec stored
    with them tells the signature, and they meet a narrowed re-run of today."""
    rng = np.random.default_rng(38)
    old = []
    for r in two_batches(rng):
        d = r.to_dict()
        del d["input_signature"]
        d["config_id"] = f"m-i{r.input_idx}-b{r.batch_size}-p1-n1-w1"
        old.append(d)
    spec = {"name": "m", "model": {"target": "models.py:M"},
            "inputs": [{"shape": [1, 4]}, {"shape": [2, 4]}], "batch_sizes": [1, 2]}  # fmt: skip
    a = tmp_path / "old.json"
    a.write_text(json.dumps({"format": "npf-results", "format_version": 2, "npf_version": "0.1.0", "spec": spec,
                             "reports": old}))  # fmt: skip
    res = read_results(a)
    assert res.label is None and res.commit is None and res.plan is None and res.reports[1].input_signature == ""
    (slower,) = two_batches(rng, scale=1.3, batches=(2,))
    c = compare(a, [slower])
    assert [(x.base_config_id, x.config_id, x.matched_by) for x in c.configs] == [
        ("m-i1-b2-p1-n1-w1", "m-b2-p1-n1-w1", "parameters")]
    assert c.exit_code == 1


def test_a_figure_added_in_one_place_is_compared() -> None:
    """A further per-configuration figure with an interval is one entry of
    results/figures.py's FIGURES: the SLO capacity is one, and compare tests it like
    throughput (only between runs at the same p99 budget)."""
    import npf_core.results.figures as figures

    assert "capacity" in [f.name for f in figures.FIGURES]
    rng = np.random.default_rng(39)
    a = make_report(rng, slo_p99_ms=10.0, slo_capacity_inf_s=800.0, slo_capacity_ci_low=780.0,
                    slo_capacity_ci_high=820.0)  # fmt: skip
    b = make_report(rng, slo_p99_ms=10.0, slo_capacity_inf_s=600.0, slo_capacity_ci_low=585.0,
                    slo_capacity_ci_high=615.0)  # fmt: skip
    c = compare([a], [b])
    m = {x.metric: x for x in c.configs[0].metrics}["capacity"]
    assert m.verdict == REGRESSION and m.change_pct == pytest.approx(-25.0) and c.tests == 4
    # measured against another budget: shown, not tested
    b = msgspec.structs.replace(b, slo_p99_ms=20.0)
    other = {x.metric: x for x in compare([a], [b]).configs[0].metrics}["capacity"]
    assert other.verdict == "not tested" and other.change_pct == pytest.approx(-25.0)
    # reports without it (every run today) are compared on the others, as before
    assert [x.metric for x in compare([make_report(rng)], [make_report(rng)]).configs[0].metrics] == [
        "throughput", "p50", "p99"]
