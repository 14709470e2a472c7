"""Evaluate with PyTorch on the CPU: the NeuronPerf evaluate guide's examples, and a
model-index sweep with accuracy against a reference beside throughput and p50."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch.nn")

import npf_core as npf  # noqa: E402
from npf_core import model_index  # noqa: E402

pytestmark = pytest.mark.torch

HERE = Path(__file__).resolve().parent


def _models() -> Any:
    spec = importlib.util.spec_from_file_location("npf_evaluate_torch_models", HERE / "torch_eval_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its classes pickle by reference in forked copies
    spec.loader.exec_module(module)
    return module


tm = _models()


class MyCustomMetric(npf.BaseEvalMetric):
    """The guide's custom metric, verbatim but for the import line."""

    def __init__(self):  # type: ignore[no-untyped-def]
        super().__init__()
        self.passing = 0
        self.processed = 0

    def process_record(self, outputs, target):  # type: ignore[no-untyped-def]
        self.processed += 1
        if outputs == target:
            self.passing += 1

    @staticmethod
    def aggregate(metrics):  # type: ignore[no-untyped-def]
        passing = 0
        processed = 0
        for metric in metrics:
            passing += metric.passing
            processed += metric.processed
        return passing / processed if processed else 0


def test_the_evaluate_guides_examples() -> None:
    xs, labels, preds = tm.truth()
    accuracy = sum(y == p for y, p in zip(labels, preds, strict=True)) / tm.N
    tp = sum(p == 1 and y == 1 for y, p in zip(labels, preds, strict=True))
    fp = sum(p == 1 and y != 1 for y, p in zip(labels, preds, strict=True))

    npf.register_metric_from_existing("topk", "topk_3", k=3)
    npf.register_metric("MyCustomMetric", MyCustomMetric)

    # the guide's first form: benchmark(..., duration=0, eval_metrics=[...]), n_models=1, workers_per_model=2
    reports = npf.torch.benchmark(tm.TinyNet, tm.dataset(), n_models=1, workers_per_model=2, duration=0,
                                  eval_metrics=["accuracy", "precision", "topk_3"], device_type="cpu")  # fmt: skip
    r = reports[0]
    assert r["status"] == "finished", r.get("error")
    assert (r["n_models"], r["workers_per_model"]) == (1, 2)
    assert r["eval_examples"] == tm.N
    assert r["accuracy"] == accuracy
    assert r["precision"] == tp / (tp + fp)
    assert r["topk_3"] >= accuracy

    # the shortcut, with benchmark's keywords: the target in another column (eval_target_col),
    # a postprocess_fn, a single metric name, the custom metric
    swapped = [(y, x) for x, y in tm.dataset()]
    r = npf.torch.evaluate(tm.TinyNet, swapped, metrics=["accuracy", "MyCustomMetric"], eval_target_col=0,
                           postprocess_fn=tm.argmax, device_type="cpu")[0]  # fmt: skip
    assert r["status"] == "finished", r.get("error")
    assert r["metrics"] == {"accuracy": accuracy, "MyCustomMetric": accuracy}
    r = npf.torch.evaluate(tm.TinyNet, tm.dataset(), metrics="accuracy")[0]
    assert r["metrics"] == {"accuracy": accuracy} and r["device_type"] == "cpu"  # no Neuron here: the CPU


def test_an_index_sweep_shows_speed_and_accuracy_drop_side_by_side(tmp_path: Path) -> None:
    import torch

    example = tm.inputs()[0]
    files = {}
    for level, cls in ((0, tm.TinyNet), (1, tm.Bf16Net)):
        f = tmp_path / f"tiny_l{level}.pt"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.trace: still what Neuron compiles to
            torch.jit.save(torch.jit.trace(cls().eval(), example), str(f))
        files[level] = f
    index = model_index.append(
        *(model_index.create(str(f), model_name="tiny", performance_level=lvl) for lvl, f in files.items())
    )
    index_file = model_index.save(index, str(tmp_path / "tiny_index.json"))
    reports = npf.torch.evaluate(index_file, tm.dataset(), metrics=["accuracy"],
                                 eval_reference={"path": str(files[0])}, workers_per_model=1)  # fmt: skip
    by_level = {r["performance_level"]: r for r in reports}
    assert set(by_level) == {0, 1}
    exact, cast = by_level[0], by_level[1]
    for r in reports:
        assert r["status"] == "finished", r.get("error")
        assert r["throughput_avg"] > 0 and r["latency_ms_p50"] > 0 and r["eval_examples"] == tm.N
    # the variant that is the reference: no error at all
    assert exact["ref_max_abs_error"] == 0.0 and exact["ref_mean_abs_error"] == 0.0
    assert exact["ref_cosine_similarity"] == 1.0 and exact["ref_top1_agreement"] == 1.0
    # bfloat16 keeps 8 bits of mantissa: errors of about 1% of the outputs' size, not more
    assert 0 < cast["ref_mean_abs_error"] < 0.1
    assert cast["ref_cosine_similarity"] > 0.999
    assert cast["ref_top1_agreement"] > 0.9


def test_npf_torch_evaluate_is_the_guides_call() -> None:
    """``npf.torch.evaluate(model, dataset, metrics=..., eval_target_col=...)`` as the
    evaluate guide writes it: NeuronPerf's report dicts, each metric under its name."""
    _, labels, preds = tm.truth()
    (report,) = npf.torch.evaluate(tm.TinyNet, tm.dataset(), metrics=["accuracy"], eval_target_col=-1)
    assert report["status"] == "finished" and report["n_models"] == 1
    assert report["accuracy"] == sum(y == p for y, p in zip(labels, preds, strict=True)) / tm.N
