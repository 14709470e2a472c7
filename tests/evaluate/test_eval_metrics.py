"""The metrics registry and the built-in metrics, in-process (no benchmarker)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

import npf_core as npf
from npf_core.errors import PluginError, SpecError
from npf_core.evaluation import registry as api
from npf_core.plugin import metrics as m
from npf_core.plugin.manager import get_plugins

NEURONPERF_NAMES = [
    "Accuracy", "TruePositiveRate", "Sensitivity", "Recall", "Hit Rate", "TrueNegativeRate", "Specificity",
    "Selectivity", "PositivePredictiveValue", "Precision", "NegativePredictiveValue", "FalseNegativeRate",
    "FalsePositiveRate", "FalseDiscoveryRate", "FalseOmissionRate", "PositiveLikelihoodRatio",
    "NegativeLikelihoodRatio", "PrevalenceThreshold", "ThreatScore", "F1Score", "MeanAbsoluteError",
    "MeanSquaredError",
]  # fmt: skip


def run_metric(name: str, records: list[tuple[object, object]], splits: int = 1) -> object:
    """Feed records to ``splits`` instances round-robin (like workers), then aggregate."""
    entry = api.get_metric(name)
    parts = [entry.create() for _ in range(splits)]
    for i, (out, target) in enumerate(records):
        parts[i % splits].process_record(out, target)
    return entry.cls.aggregate(parts)


def test_list_metrics_prints_neuronperfs_names_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert npf.list_metrics() is None
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Name", "Description"]
    names = [line[:25].strip() for line in lines[1:]]
    assert names[: len(NEURONPERF_NAMES)] == NEURONPERF_NAMES
    assert any(line.startswith("Recall") and "Alias for TruePositiveRate" in line for line in lines)


def test_names_match_without_case_spaces_or_underscores() -> None:
    for name in ("accuracy", "ACCURACY", "hit_rate", "HitRate", "hit-rate", "f1score", "mean_squared_error"):
        assert api.get_metric(name).cls.__name__ in ("Confusion", "ErrorMean")


def test_unknown_metric_is_a_spec_error_listing_the_names() -> None:
    with pytest.raises(SpecError) as info:
        api.get_metric("acurracy")
    assert "acurracy" in str(info.value) and "Accuracy" in str(info.value) and "evaluate.metrics" in str(info.value)


def confusion_records(rng: np.random.Generator, n: int) -> tuple[list[tuple[object, object]], dict[str, int]]:
    records = []
    counts = {"tp": 0, "tn": 0, "fp": 0, "fn": 0}
    for _ in range(n):
        t = rng.integers(0, 2, size=4)
        p = rng.integers(0, 2, size=4)
        records.append((p, t))
        counts["tp"] += int(((p == 1) & (t == 1)).sum())
        counts["tn"] += int(((p == 0) & (t == 0)).sum())
        counts["fp"] += int(((p == 1) & (t == 0)).sum())
        counts["fn"] += int(((p == 0) & (t == 1)).sum())
    return records, counts


def test_confusion_metrics_match_their_formulas() -> None:
    records, c = confusion_records(np.random.default_rng(1), 50)
    tp, tn, fp, fn = c["tp"], c["tn"], c["fp"], c["fn"]
    tpr, tnr, fpr, fnr = tp / (tp + fn), tn / (tn + fp), fp / (fp + tn), fn / (fn + tp)
    expected = {
        "Accuracy": (tp + tn) / (tp + tn + fp + fn), "Recall": tpr, "Specificity": tnr,
        "Precision": tp / (tp + fp), "NegativePredictiveValue": tn / (tn + fn), "FalseNegativeRate": fnr,
        "FalsePositiveRate": fpr, "FalseDiscoveryRate": fp / (fp + tp), "FalseOmissionRate": fn / (fn + tn),
        "PositiveLikelihoodRatio": tpr / fpr, "NegativeLikelihoodRatio": fnr / tnr,
        "PrevalenceThreshold": math.sqrt(fpr) / (math.sqrt(fpr) + math.sqrt(tpr)),
        "ThreatScore": tp / (tp + fn + fp), "F1Score": 2 * tp / (2 * tp + fn + fp),
    }  # fmt: skip
    for name, value in expected.items():
        assert run_metric(name, records) == value, name
        assert run_metric(name, records, splits=4) == value, name


def test_scores_become_predictions_by_argmax_and_probabilities_by_threshold() -> None:
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert run_metric("accuracy", [(scores, np.array([1, 0, 0]))]) == pytest.approx(2 / 3)
    probs = np.array([0.9, 0.2, 0.6])
    assert run_metric("precision", [(probs, np.array([1, 0, 0]))]) == 0.5
    assert math.isnan(run_metric("precision", [(np.array([0]), np.array([0]))]))  # no positive prediction


def test_mae_and_mse_match_numpy_in_any_split() -> None:
    rng = np.random.default_rng(7)
    outs = [rng.normal(size=(3, 5)) * 10.0 ** rng.integers(-3, 4) for _ in range(200)]
    targets = [rng.normal(size=(3, 5)) for _ in range(200)]
    y, x = np.stack(outs), np.stack(targets)
    records = list(zip(outs, targets, strict=True))
    mae, mse = run_metric("MeanAbsoluteError", records), run_metric("MeanSquaredError", records)
    assert mae == pytest.approx(np.mean(np.abs(y - x)), rel=1e-12)
    assert mse == pytest.approx(np.mean((y - x) ** 2), rel=1e-12)
    # exact state: the same float whatever the split or the order of the parts
    for splits in (2, 3, 7):
        assert run_metric("mae", records, splits) == mae
        assert run_metric("mse", records[::-1], splits) == mse


def test_exact_sum_does_not_depend_on_order() -> None:
    values = [random.Random(3).uniform(-1, 1) * 10 ** random.Random(i).randint(-10, 10) for i in range(500)]
    sums = []
    for seed in range(5):
        shuffled = values[:]
        random.Random(seed).shuffle(shuffled)
        parts = [m.ExactSum() for _ in range(seed + 1)]
        for i, v in enumerate(shuffled):
            parts[i % len(parts)].add(v)
        sums.append(m.ExactSum.total(parts))
    assert len(set(sums)) == 1 and sums[0] == math.fsum(values)


def test_register_metric_and_from_existing_as_the_guide_shows() -> None:
    class MyCustomMetric(npf.BaseEvalMetric):
        def __init__(self) -> None:
            super().__init__()
            self.passing = 0
            self.processed = 0

        def process_record(self, outputs, target):  # type: ignore[no-untyped-def]
            self.processed += 1
            if outputs == target:
                self.passing += 1

        @staticmethod
        def aggregate(metrics):  # type: ignore[no-untyped-def]
            passing = sum(x.passing for x in metrics)
            processed = sum(x.processed for x in metrics)
            return passing / processed if processed else 0

    npf.register_metric("MyCustomMetric", MyCustomMetric)
    assert run_metric("MyCustomMetric", [(1, 1), (2, 3), (4, 4), (0, 0)], splits=2) == 0.75
    npf.register_metric_from_existing("Precision", "precision_of_0", positive=0)
    assert api.get_metric("precision_of_0").init_args == {"formula": "ppv", "positive": 0}
    assert run_metric("precision_of_0", [(np.array([0, 0, 1]), np.array([0, 1, 1]))]) == 0.5
    assert api.is_runtime("precision_of_0") and not api.is_runtime("Precision")
    with pytest.raises(PluginError, match="already registered"):
        npf.register_metric("mycustommetric", MyCustomMetric)
    with pytest.raises(PluginError, match="subclass of npf_core.BaseEvalMetric"):
        npf.register_metric("notametric", dict)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="unknown metric"):
        npf.register_metric_from_existing("nosuch", "x")


def test_topk_from_existing_as_the_guide_shows() -> None:
    pytest.importorskip("torch")  # topk comes with the torch plugin
    npf.register_metric_from_existing("topk", "topk_3", k=3)
    assert api.get_metric("topk_3").init_args == {"k": 3}
    scores = np.array([[0.5, 0.4, 0.3, 0.2, 0.1]])
    assert run_metric("topk_3", [(scores, [2])]) == 1.0
    assert run_metric("topk_3", [(scores, [3])]) == 0.0
    assert run_metric("topk", [(scores, [4])]) == 1.0  # k = 5 by default
    assert api.is_runtime("topk_3") and not api.is_runtime("topk")


def test_plugin_metrics_come_through_the_entry_point() -> None:
    plugins = get_plugins()
    assert "demo_within" in plugins.metrics and "demo_within_tight" in plugins.metrics
    entry = api.get_metric("demo_within", plugins)
    assert "npf-demo-plugin" in entry.origin
    assert api.get_metric("demo_within_tight", plugins).init_args == {"tol": 0.01}
    assert "demo_within" in api.available_metrics(plugins)


def test_topk_is_registered_when_torch_is_installed() -> None:
    import importlib.util

    assert ("topk" in get_plugins().metrics) == (importlib.util.find_spec("torch") is not None)


def test_agreement_of_identical_and_noisy_outputs() -> None:
    rng = np.random.default_rng(2)
    refs = [rng.normal(size=(2, 10)) for _ in range(100)]
    same = {k: m.Agreement(k) for k in m.Agreement.KINDS}
    for r in refs:
        for a in same.values():
            a.process_record(r.copy(), r)
    got = {k: m.Agreement.aggregate([a]) for k, a in same.items()}
    assert got["max_abs_error"] == 0 and got["mean_abs_error"] == 0 and got["rms_error"] == 0
    assert got["cosine_similarity"] == 1.0 and got["top1_agreement"] == 1.0
