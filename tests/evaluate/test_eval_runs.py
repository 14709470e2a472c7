"""Evaluate mode end to end: real benchmarker processes, models with known answers
(tests/evaluate/models.py, python framework)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import npf_core as npf
from npf_core.errors import SpecError
from npf_core.supervisor.run import Supervisor

MODELS = Path(__file__).resolve().parent / "models.py"


def _load_models() -> Any:
    import importlib.util

    spec_ = importlib.util.spec_from_file_location("npf_evaluate_test_models", MODELS)
    assert spec_ is not None and spec_.loader is not None
    module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(module)
    return module


models = _load_models()


def ref(attr: str) -> str:
    return f"{MODELS}:{attr}"


DEVICE = {"type": "cpu", "options": {"oversubscribe": True}}


def spec(model: str, examples: str, *, metrics: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    block: dict[str, Any] = {"metrics": metrics or []}
    block.update(extra.pop("evaluate", {}))
    return {
        "model": {"framework": "python", "target": ref(model)},
        "dataset": {"plugin": "iterable", "options": {"target": ref(examples)}, "loop": False},
        "duration_s": 0,
        "n_models": [1],
        "workers_per_model": [1],
        "device": DEVICE,
        "warmup": {"iterations": 0},
        "evaluate": block,
        "output": {"reporters": []},
        **extra,
    }


def ok(report: Any) -> Any:
    assert report.status == "ok", report.error
    return report


def test_accuracy_and_precision_match_the_truth_exactly() -> None:
    y, p = models.labels(), models.predicted()
    reports = npf.benchmark(spec("Classifier", "examples", metrics=["accuracy", "Precision", "recall", "F1Score"]))
    r = ok(reports[0])
    assert r.eval_examples == models.N
    assert r.stopped_by == "exhausted"  # the dataset once, not a deadline
    tp = int(((p == 1) & (y == 1)).sum())
    fp = int(((p == 1) & (y != 1)).sum())
    fn = int(((p != 1) & (y == 1)).sum())
    assert r.metrics["accuracy"] == float(np.mean(p == y))
    assert r.metrics["Precision"] == tp / (tp + fp)
    assert r.metrics["recall"] == tp / (tp + fn)
    assert r.metrics["F1Score"] == 2 * tp / (2 * tp + fn + fp)
    assert r["accuracy"] == r.metrics["accuracy"]  # readable as a report key
    # every call is timed, as in any run
    assert r.total_calls == models.N and r.latency_ms_p50 > 0 and r.throughput_avg > 0


def test_aggregation_is_exact_across_copies_and_workers() -> None:
    s = spec("Summer", "regression_examples", metrics=["MeanAbsoluteError", "MeanSquaredError", "demo_within"])
    s["n_models"] = [1, 2]
    s["workers_per_model"] = [1, 2]
    reports = npf.benchmark(s)
    assert len(reports) == 4
    first = ok(reports[0])
    assert (first.n_models, first.workers_per_model) == (1, 1)
    for r in reports[1:]:
        ok(r)
        assert r.metrics == first.metrics, (r.n_models, r.workers_per_model)
        assert r.eval_examples == models.N
    xs, ts = zip(*models.regression_examples(), strict=True)
    out = np.stack([x.sum(axis=1) for x in xs])
    t = np.stack(ts)
    assert first.metrics["MeanAbsoluteError"] == pytest.approx(np.mean(np.abs(out - t)), rel=1e-12)
    assert first.metrics["MeanSquaredError"] == pytest.approx(np.mean((out - t) ** 2), rel=1e-12)
    assert first.metrics["demo_within"] == pytest.approx(np.mean(np.abs(out - t) <= 0.5))


def test_the_reference_itself_agrees_exactly() -> None:
    s = spec("Linear", "vector_examples", evaluate={"target_col": None, "reference": {"target": ref("Linear")}})
    r = ok(npf.benchmark(s, workers_per_model=[2])[0])
    assert r.metrics["ref_max_abs_error"] == 0.0
    assert r.metrics["ref_mean_abs_error"] == 0.0
    assert r.metrics["ref_cosine_similarity"] == 1.0
    assert r.metrics["ref_top1_agreement"] == 1.0


def test_planted_noise_is_reported_at_its_size() -> None:
    s = spec("NoisyLinear", "vector_examples", evaluate={"target_col": None, "reference": {"target": ref("Linear")}})
    r = ok(npf.benchmark(s)[0])
    noise = models.NOISE
    for key in ("ref_max_abs_error", "ref_mean_abs_error", "ref_rms_error"):
        assert r.metrics[key] == pytest.approx(noise, rel=0.01), key
    assert 0.99 < r.metrics["ref_cosine_similarity"] < 1.0
    assert r.metrics["ref_top1_agreement"] <= 1.0


def test_a_metric_that_raises_in_a_worker_is_an_error_naming_it() -> None:
    r = npf.benchmark(spec("Classifier", "examples", metrics=["accuracy", ref("Exploding")]))[0]
    assert r.status == "error"
    assert "metric Exploding" in r.error.message and "this metric always fails" in r.error.message


def test_a_metric_that_raises_in_aggregate_is_an_error_naming_it() -> None:
    r = npf.benchmark(spec("Classifier", "examples", metrics=[ref("ExplodingAggregate")]))[0]
    assert r.status == "error"
    assert "'ExplodingAggregate'" in r.error.message and "cannot combine 200 records" in r.error.message
    assert r.error.stage == "metric ExplodingAggregate"


def test_metrics_registered_in_the_caller_and_classes_reach_forked_copies() -> None:
    class Halves(npf.BaseEvalMetric):
        def __init__(self, half: int = 100) -> None:
            self.half = half
            self.low = 0

        def process_record(self, output: Any = None, target: Any = None) -> None:
            self.low += 0 if target >= 1 else 1

        @staticmethod
        def aggregate(metrics: Any) -> int:
            return sum(m.low for m in metrics)

    npf.register_metric("Zeros", Halves)
    s = spec("Classifier", "examples", start_method="fork")
    del s["evaluate"]
    s["duration_s"] = 60  # the overrides make it an evaluation of the dataset once
    reports = npf.benchmark(s, eval_metrics=["zeros", models.Seen], duration_s=0, n_models=[2], workers_per_model=[2])
    r = ok(reports[0])
    assert r.metrics == {"zeros": int((models.labels() == 0).sum()), "Seen": models.N}


def test_benchmark_eval_metrics_override_and_a_timed_evaluation() -> None:
    s = spec("Classifier", "examples")
    del s["evaluate"]
    s["duration_s"] = 0.3
    s["dataset"]["loop"] = True
    r = ok(npf.benchmark(s, eval_metrics="accuracy")[0])
    assert r.stopped_by == "deadline" and r.eval_examples > 0
    assert 0.5 < r.metrics["accuracy"] <= 1.0


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"evaluate": None}, "duration_s"),
        ({"evaluate": {"metrics": []}}, "evaluate"),
        ({"evaluate": {"metrics": ["accuracy", "accuracy"]}}, "evaluate.metrics[1]"),
        ({"evaluate": {"metrics": ["ref_max_abs_error"]}}, "evaluate.metrics[0]"),
        ({"evaluate": {"reference": {"target": "x.py:A", "path": "m.pt"}}}, "evaluate.reference"),
        ({"evaluate": {"reference": {"path": "missing.pt"}}}, "evaluate.reference.path"),
        ({"evaluate": {"metrics": ["accuracy"]}, "load": {"mode": "poisson", "rate": 10}}, "load"),
        ({"evaluate": {"metrics": ["nope.py:Metric"]}}, "evaluate.metrics[0]"),
    ],
)
def test_bad_evaluate_blocks_are_spec_errors(change: dict[str, Any], path: str) -> None:
    s = spec("Classifier", "examples")
    s.update(change)
    if s["evaluate"] is None:
        del s["evaluate"]
    with pytest.raises(SpecError) as info:
        npf.benchmark(s)
    assert info.value.path == "$." + path, str(info.value)


def test_an_unknown_metric_is_named_before_any_process_starts() -> None:
    with pytest.raises(SpecError) as info:
        Supervisor(spec("Classifier", "examples", metrics=["accuracy", "acuracy"])).setup()
    assert info.value.path == "$.evaluate.metrics[1]" and "Accuracy" in str(info.value)


def test_results_files_and_the_cli(tmp_path: Path) -> None:
    import subprocess
    import sys

    s = spec("Classifier", "examples", metrics=["accuracy"])
    s["output"] = {"dir": str(tmp_path / "out"), "reporters": ["console", "json", "csv"]}
    (tmp_path / "spec.json").write_text(json.dumps(s))
    done = subprocess.run(
        [sys.executable, "-m", "npf_core", "evaluate", str(tmp_path / "spec.json"), "--metrics", "precision", "-q"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "accuracy" in done.stdout and "precision" in done.stdout
    from npf_core.results.store import resolve_results

    saved = resolve_results(tmp_path / "out")  # the run's own folder, below the output root
    doc = json.loads(saved.read_text())
    metrics = doc["reports"][0]["metrics"]
    assert set(metrics) == {"accuracy", "precision"}
    assert metrics["accuracy"] == float(np.mean(models.labels() == models.predicted()))
    rows = list(csv.reader((saved.parent / "results.csv").read_text().splitlines()))
    assert rows[0][-2:] == ["accuracy", "precision"]
    assert float(rows[1][-2]) == metrics["accuracy"]
    from npf_core.results.report import NEURONPERF_CSV_COLUMNS as NEURONPERF_COLUMNS

    assert rows[0][: len(NEURONPERF_COLUMNS)] == list(NEURONPERF_COLUMNS)  # NeuronPerf's positions kept
    listed = subprocess.run(
        [sys.executable, "-m", "npf_core", "metrics"], capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert listed.returncode == 0 and "PositivePredictiveValue" in listed.stdout and "demo_within" in listed.stdout


def test_fresh_interpreters_find_metrics_by_name_reference_and_plugin() -> None:
    s = spec(
        "Classifier", "examples", metrics=["accuracy", "demo_within_tight", ref("Seen")],
        evaluate={"reference": {"target": ref("Classifier")}}, start_method="fresh",
    )  # fmt: skip
    r = ok(npf.benchmark(s, n_models=[2])[0])
    assert r.start_method == "fresh"
    assert r.metrics["accuracy"] == float(np.mean(models.labels() == models.predicted()))
    assert r.metrics["Seen"] == models.N
    assert r.metrics["ref_max_abs_error"] == 0.0 and r.metrics["ref_top1_agreement"] == 1.0


def test_a_dataset_not_finished_within_the_timeout_is_an_error() -> None:
    s = spec("Slow", "examples", metrics=["accuracy"], evaluate={"timeout_s": 0.3})
    r = npf.benchmark(s)[0]
    assert r.status == "error"
    assert "evaluate.timeout_s" in r.error.message and r.error.stage == "evaluate"


@pytest.mark.parametrize("method", ["fresh", "zygote"])
def test_a_metric_registered_here_reaches_copies_that_are_not_forked_from_the_caller(method: str) -> None:
    """register_metric in this process: the metric travels with the run's objects."""
    npf.register_metric("Counted", models.Seen)
    s = spec("Classifier", "examples", metrics=["counted"], start_method=method, n_models=[2])
    (r,) = npf.benchmark(s)
    assert r.status == "ok", r.error
    assert r.metrics["counted"] == models.N


def test_npf_core_evaluate_runs_the_dataset_once_on_one_copy_with_two_workers() -> None:
    s = spec("Classifier", "examples")
    del s["evaluate"], s["duration_s"], s["n_models"], s["workers_per_model"]
    reports = npf.evaluate(s, metrics=["accuracy"], reference={"target": ref("Classifier")})
    assert len(reports) == 1
    r = ok(reports[0])
    assert (r.n_models, r.workers_per_model, r.eval_examples) == (1, 2, models.N)
    assert r.metrics["accuracy"] == float(np.mean(models.labels() == models.predicted()))
    assert r.metrics["ref_mean_abs_error"] == 0.0
    # the spec's own block is kept, and the target column can move
    s["evaluate"] = {"metrics": ["accuracy"]}
    s["duration_s"] = 5
    r = npf.evaluate(s, target_col=0)[0]
    assert r.status == "error" and "call" in r.error.stage  # the label went to the model, the array to metrics
