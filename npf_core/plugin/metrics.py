"""Accuracy metrics: the registry, NeuronPerf's built-in metrics, and the agreement
metrics that compare a model's outputs with a reference model's.

A metric is a :class:`BaseEvalMetric` subclass. One instance lives in each worker
thread of each model copy and sees that worker's records through
:meth:`~BaseEvalMetric.process_record`; the supervisor gathers every instance of
the configuration and combines them with the class's own
:meth:`~BaseEvalMetric.aggregate`. Built-in metrics keep exact state (integer
counts and exactly-rounded sums), so the result does not depend on how the
examples were split between copies and workers.

Names are matched without regard to case, spaces, ``_`` or ``-``: ``"accuracy"``,
``"Accuracy"`` and ``"hit_rate"`` (for ``"Hit Rate"``) all work. Metrics come from
three places: the built-ins below, :func:`register_metric` /
:func:`register_metric_from_existing` in the caller's process, and plugins through
the ``npf_register_metrics`` hook (e.g. ``topk``, registered by the torch plugin).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from npf_core.spec.evaluate import REFERENCE_KINDS, REFERENCE_METRICS

__all__ = [
    "REFERENCE_METRICS",
    "BaseEvalMetric",
    "ExactSum",
    "MetricEntry",
    "MetricRegistry",
    "TopK",
    "normalize",
    "to_numpy",
]


class BaseEvalMetric(ABC):
    """Abstract base class BaseEvalMetric from which other metrics inherit.

    Its instance attributes are its state: they travel from the worker that filled
    them to the supervisor, which calls :meth:`aggregate` on all of them.
    """

    @abstractmethod
    def process_record(self, output: Any = None, target: Any = None) -> None:
        """Process an individual record (one call's output and its target)."""

    @staticmethod
    def aggregate(metrics: Iterable[BaseEvalMetric]) -> Any:
        """Combine a sequence of metrics into a single result."""
        raise NotImplementedError


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def to_numpy(x: Any) -> np.ndarray:
    """A model output or target as a numpy array (torch tensors, lists, scalars)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor, without importing torch
        x = x.detach().cpu()
        if str(getattr(x, "dtype", "")) in ("torch.bfloat16", "torch.float16"):
            x = x.float()
        return np.asarray(x.numpy())
    if hasattr(x, "numpy") and callable(x.numpy):  # tensorflow / mxnet tensors
        return np.asarray(x.numpy())
    if isinstance(x, (list, tuple)) and x and not np.isscalar(x[0]):
        return np.asarray([to_numpy(v) for v in x])
    return np.asarray(x)


class ExactSum:
    """A float sum kept exactly (Shewchuk's non-overlapping partials, as in
    ``math.fsum``): adding in any order or split gives the same correctly rounded
    total, so metrics agree across any number of copies and workers."""

    def __init__(self) -> None:
        self.partials: list[float] = []

    def add(self, x: float) -> None:
        partials = self.partials
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x]

    @staticmethod
    def total(sums: Iterable[ExactSum]) -> float:
        return math.fsum(p for s in sums for p in s.partials)


def predictions(output: Any, threshold: float = 0.5) -> np.ndarray:
    """Class predictions from an output: the arg-max of scores over the last axis,
    a threshold on probabilities (one per example), or labels as they are."""
    y = to_numpy(output)
    if y.ndim >= 2 and y.shape[-1] > 1:
        return np.argmax(y, axis=-1).ravel()
    y = y.reshape(-1)
    if y.dtype.kind == "f" and y.size and not np.all(np.equal(np.mod(y, 1), 0)):
        return (y >= threshold).astype(np.int64)
    return y


def labels(target: Any) -> np.ndarray:
    return to_numpy(target).reshape(-1)


# --------------------------------------------------------------------------
# Built-in metrics
# --------------------------------------------------------------------------


class Confusion(BaseEvalMetric):
    """Binary confusion counts; ``formula`` (a name below) picks the figure.
    ``positive`` is the label of the positive class; scores are turned into
    predictions by arg-max (several columns) or ``threshold`` (one)."""

    FORMULAS = {
        "accuracy": "(TP + TN) / (TP + TN + FP + FN)",
        "tpr": "TP / (TP + FN)",
        "tnr": "TN / (TN + FP)",
        "ppv": "TP / (TP + FP)",
        "npv": "TN / (TN + FN)",
        "fnr": "FN / (FN + TP)",
        "fpr": "FP / (FP + TN)",
        "fdr": "FP / (FP + TP)",
        "for": "FN / (FN + TN)",
        "plr": "TPR / FPR",
        "nlr": "FNR / TNR",
        "pt": "sqrt(FPR) / (sqrt(FPR) + sqrt(TPR))",
        "ts": "TP / (TP + FN + FP)",
        "f1": "2TP / (2TP + FN + FP)",
    }

    def __init__(self, formula: str = "accuracy", positive: Any = 1, threshold: float = 0.5) -> None:
        if formula not in self.FORMULAS:
            raise ValueError(f"unknown formula {formula!r}; one of {', '.join(self.FORMULAS)}")
        self.formula = formula
        self.positive = positive
        self.threshold = threshold
        self.tp = self.tn = self.fp = self.fn = 0
        self.correct = 0  # exact matches, for multi-class accuracy
        self.n = 0

    def process_record(self, output: Any = None, target: Any = None) -> None:
        pred = predictions(output, self.threshold)
        true = labels(target)
        if pred.size != true.size:
            raise ValueError(f"{pred.size} predictions for {true.size} targets")
        p = pred == self.positive
        t = true == self.positive
        self.tp += int(np.count_nonzero(p & t))
        self.tn += int(np.count_nonzero(~p & ~t))
        self.fp += int(np.count_nonzero(p & ~t))
        self.fn += int(np.count_nonzero(~p & t))
        self.correct += int(np.count_nonzero(pred == true))
        self.n += int(true.size)

    @staticmethod
    def aggregate(metrics: Iterable[BaseEvalMetric]) -> Any:
        ms = list(metrics)
        if not ms:
            return math.nan
        tp, tn, fp, fn, correct, n = (sum(getattr(m, k) for m in ms) for k in ("tp", "tn", "fp", "fn", "correct", "n"))
        return _confusion_value(ms[0].formula, tp, tn, fp, fn, correct, n)  # type: ignore[attr-defined]


def _div(a: float, b: float) -> float:
    return a / b if b else math.nan


def _confusion_value(formula: str, tp: int, tn: int, fp: int, fn: int, correct: int, n: int) -> float:
    tpr, tnr = _div(tp, tp + fn), _div(tn, tn + fp)
    fpr, fnr = _div(fp, fp + tn), _div(fn, fn + tp)
    if formula == "accuracy":  # equals (TP + TN) / all for two classes, and works for many
        return _div(correct, n)
    if formula == "pt":
        d = math.sqrt(fpr) + math.sqrt(tpr) if not (math.isnan(fpr) or math.isnan(tpr)) else math.nan
        return _div(math.sqrt(fpr), d) if not math.isnan(d) else math.nan
    return {
        "tpr": tpr, "tnr": tnr, "fpr": fpr, "fnr": fnr,
        "ppv": _div(tp, tp + fp), "npv": _div(tn, tn + fn),
        "fdr": _div(fp, fp + tp), "for": _div(fn, fn + tn),
        "plr": _div(tpr, fpr), "nlr": _div(fnr, tnr),
        "ts": _div(tp, tp + fn + fp), "f1": _div(2 * tp, 2 * tp + fn + fp),
    }[formula]  # fmt: skip


class ErrorMean(BaseEvalMetric):
    """Mean of |output - target| (``power=1``) or (output - target)^2 (``power=2``)
    over every element."""

    def __init__(self, power: int = 1) -> None:
        self.power = power
        self.sum = ExactSum()
        self.n = 0

    def process_record(self, output: Any = None, target: Any = None) -> None:
        y = to_numpy(output).astype(np.float64)
        x = to_numpy(target).astype(np.float64)
        if y.shape != x.shape and y.size == x.size:
            y = y.reshape(x.shape)
        d = np.abs(y - x)
        if self.power == 2:
            d = d * d
        self.sum.add(math.fsum(d.ravel().tolist()))
        self.n += int(d.size)

    @staticmethod
    def aggregate(metrics: Iterable[BaseEvalMetric]) -> Any:
        ms = list(metrics)
        n = sum(m.n for m in ms)  # type: ignore[attr-defined]
        return _div(ExactSum.total(m.sum for m in ms), n)  # type: ignore[attr-defined]


class TopK(BaseEvalMetric):
    """Fraction of examples whose target label is among the ``k`` highest scores."""

    def __init__(self, k: int = 5) -> None:
        self.k = int(k)
        self.correct = 0
        self.n = 0

    def process_record(self, output: Any = None, target: Any = None) -> None:
        scores = to_numpy(output)
        scores = scores.reshape(-1, scores.shape[-1]) if scores.ndim >= 1 else scores.reshape(1, 1)
        true = labels(target)
        if true.size != scores.shape[0]:
            raise ValueError(f"{scores.shape[0]} score rows for {true.size} targets")
        k = min(self.k, scores.shape[-1])
        top = np.argpartition(-scores, k - 1, axis=-1)[:, :k]
        self.correct += int(np.count_nonzero((top == true[:, None]).any(axis=-1)))
        self.n += int(true.size)

    @staticmethod
    def aggregate(metrics: Iterable[BaseEvalMetric]) -> Any:
        ms = list(metrics)
        return _div(sum(m.correct for m in ms), sum(m.n for m in ms))  # type: ignore[attr-defined]


# --------------------------------------------------------------------------
# Agreement with a reference model (the target is the reference's output)
# --------------------------------------------------------------------------


class Agreement(BaseEvalMetric):
    """How far outputs are from a reference model's on the same inputs. ``kind``:
    ``max_abs_error``, ``mean_abs_error``, ``rms_error``, ``cosine_similarity``
    (mean over calls of the cosine between the flattened outputs) or
    ``top1_agreement`` (fraction of rows whose arg-max agrees; None when the output
    is not a score vector per example)."""

    KINDS = REFERENCE_KINDS

    def __init__(self, kind: str = "max_abs_error") -> None:
        self.kind = kind
        self.max = 0.0
        self.abs = ExactSum()
        self.sq = ExactSum()
        self.cos = ExactSum()
        self.n = 0  # elements
        self.calls = 0
        self.agree = 0
        self.rows = 0  # classifier rows (0: not a classifier)

    def process_record(self, output: Any = None, target: Any = None) -> None:
        y = to_numpy(output).astype(np.float64)
        r = to_numpy(target).astype(np.float64)
        if y.shape != r.shape:
            raise ValueError(f"output shape {y.shape} differs from the reference's {r.shape}")
        d = np.abs(y - r).ravel()
        if d.size:
            self.max = max(self.max, float(d.max()))
        self.abs.add(math.fsum(d.tolist()))
        self.sq.add(math.fsum((d * d).tolist()))
        self.n += int(d.size)
        ny, nr = float(np.linalg.norm(y)), float(np.linalg.norm(r))
        if ny == 0 and nr == 0:
            cos = 1.0
        elif ny == 0 or nr == 0:
            cos = 0.0
        else:
            cos = min(1.0, max(-1.0, math.fsum((y.ravel() * r.ravel()).tolist()) / (ny * nr)))
        self.cos.add(cos)
        self.calls += 1
        if y.ndim >= 2 and y.shape[-1] > 1:
            a = np.argmax(y.reshape(-1, y.shape[-1]), axis=-1)
            b = np.argmax(r.reshape(-1, r.shape[-1]), axis=-1)
            self.agree += int(np.count_nonzero(a == b))
            self.rows += int(a.size)

    @staticmethod
    def aggregate(metrics: Iterable[BaseEvalMetric]) -> Any:
        ms: list[Any] = list(metrics)
        if not ms:
            return math.nan
        kind = ms[0].kind
        n = sum(m.n for m in ms)
        if kind == "max_abs_error":
            return max(m.max for m in ms)
        if kind == "mean_abs_error":
            return _div(ExactSum.total(m.abs for m in ms), n)
        if kind == "rms_error":
            return math.sqrt(_div(ExactSum.total(m.sq for m in ms), n))
        if kind == "cosine_similarity":
            return _div(ExactSum.total(m.cos for m in ms), sum(m.calls for m in ms))
        rows = sum(m.rows for m in ms)
        return _div(sum(m.agree for m in ms), rows) if rows else None


#: report name -> Agreement kind, for ``evaluate.reference``


# --------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricEntry:
    """A registered metric: its class, the arguments it is built with, a description."""

    name: str
    cls: type[BaseEvalMetric]
    init_args: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    origin: str = "built-in"

    def create(self) -> BaseEvalMetric:
        return self.cls(**self.init_args)


def normalize(name: str) -> str:
    """The lookup key of a metric name: case, spaces, ``_`` and ``-`` do not matter."""
    return "".join(c for c in name.lower() if c not in " _-")


class MetricRegistry:
    """Name -> metric. Passed to the ``npf_register_metrics`` hook."""

    def __init__(self) -> None:
        self.entries: dict[str, MetricEntry] = {}
        self._current_origin = "built-in"

    def add(self, name: str, cls: type[BaseEvalMetric], description: str = "", **init_args: Any) -> None:
        """Register ``cls`` under ``name``, built as ``cls(**init_args)`` in each worker."""
        from npf_core.errors import PluginError

        if not isinstance(name, str) or not normalize(name):
            raise PluginError(f"a metric name must be a non-empty string, got {name!r}")
        if not (isinstance(cls, type) and issubclass(cls, BaseEvalMetric)):
            raise PluginError(f"metric {name!r} must be a subclass of npf_core.BaseEvalMetric, got {cls!r}")
        key = normalize(name)
        if key in self.entries:
            raise PluginError(
                f"metric {name!r} is already registered (by {self.entries[key].origin}); pick another name"
            )
        self.entries[key] = MetricEntry(name, cls, dict(init_args), description, self._current_origin)

    def add_from_existing(self, existing: str, new: str, **init_args: Any) -> None:
        """Register ``new`` as ``existing`` built with other ``init_args``."""
        base = self.get(existing)
        self.add(new, base.cls, f"{base.name} with {_kwargs(init_args)}", **{**base.init_args, **init_args})

    def get(self, name: str) -> MetricEntry:
        entry = self.entries.get(normalize(name))
        if entry is None:
            raise KeyError(name)
        return entry

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize(name) in self.entries

    def names(self) -> list[str]:
        return [e.name for e in self.entries.values()]


def _kwargs(kw: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kw.items())


_BUILTIN: list[tuple[str, str, str]] = [
    # name, formula key, description (aliases say so)
    ("Accuracy", "accuracy", "(TP + TN) / (TP + TN + FP + FN)"),
    ("TruePositiveRate", "tpr", "TP / (TP + FN)"),
    ("Sensitivity", "tpr", "Alias for TruePositiveRate"),
    ("Recall", "tpr", "Alias for TruePositiveRate"),
    ("Hit Rate", "tpr", "Alias for TruePositiveRate"),
    ("TrueNegativeRate", "tnr", "TN / (TN + FP)"),
    ("Specificity", "tnr", "Alias for TrueNegativeRate"),
    ("Selectivity", "tnr", "Alias for TrueNegativeRate"),
    ("PositivePredictiveValue", "ppv", "TP / (TP + FP)"),
    ("Precision", "ppv", "Alias for PositivePredictiveValue"),
    ("NegativePredictiveValue", "npv", "TN / (TN + FN)"),
    ("FalseNegativeRate", "fnr", "FN / (FN + TP)"),
    ("FalsePositiveRate", "fpr", "FP / (FP + TN)"),
    ("FalseDiscoveryRate", "fdr", "FP / (FP + TP)"),
    ("FalseOmissionRate", "for", "FN / (FN + TN)"),
    ("PositiveLikelihoodRatio", "plr", "TPR / FPR"),
    ("NegativeLikelihoodRatio", "nlr", "FNR / TNR"),
    ("PrevalenceThreshold", "pt", "sqrt(FPR) / (sqrt(FPR) + sqrt(TPR))"),
    ("ThreatScore", "ts", "TP / (TP + FN + FP)"),
    ("F1Score", "f1", "2TP / (2TP + FN + FP)"),
]
