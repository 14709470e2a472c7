"""Tiny models and datasets with known answers, for the evaluate tests (python framework)."""

from __future__ import annotations

import numpy as np

import npf_core as npf

N = 200
CLASSES = 3


def labels() -> np.ndarray:
    return (np.arange(N) * 7 + 3) % CLASSES


def wrong(k: int) -> bool:
    """The classifier is wrong on these examples: every 8th, and every 13th."""
    return k % 8 == 0 or k % 13 == 0


def predicted() -> np.ndarray:
    y = labels()
    return np.array([(y[k] + 1) % CLASSES if wrong(k) else y[k] for k in range(N)])


def examples():
    """(x, label): x carries the example's index, so the model can be wrong on purpose."""
    y = labels()
    for k in range(N):
        yield (np.array([k], dtype=np.int64), int(y[k]))


def binary_examples():
    for x, y in examples():
        yield (x, int(y == 1))


class Classifier:
    """Scores (1 x CLASSES): the highest on the predicted class."""

    def __init__(self) -> None:
        self.pred = predicted()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        scores = np.zeros((1, CLASSES))
        scores[0, self.pred[int(x[0])]] = 1.0
        return scores


class BinaryClassifier:
    """A label per call (0 or 1), wrong where ``wrong``."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        k = int(x[0])
        y = int(labels()[k] == 1)
        return np.array([1 - y if wrong(k) else y])


def regression_examples():
    rng = np.random.default_rng(5)
    for _ in range(N):
        x = rng.normal(size=(2, 4))
        yield (x, x.sum(axis=1) + rng.normal(size=2))


class Summer:
    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x.sum(axis=1)


NOISE = 0.05


def vector_examples():
    rng = np.random.default_rng(11)
    for _ in range(N):
        yield (rng.normal(size=(1, 16)),)


class Linear:
    """A fixed linear map: the reference."""

    def __init__(self) -> None:
        self.w = np.random.default_rng(3).normal(size=(16, 10))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return x @ self.w


class NoisyLinear(Linear):
    """The same map with a planted error: +NOISE or -NOISE on every output (seeded by the input)."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        sign = np.where(np.random.default_rng(int(abs(x[0, 0]) * 1e6)).random(10) < 0.5, -1.0, 1.0)
        return x @ self.w + NOISE * sign


class BadMetricClassifier(Classifier):
    pass


class Exploding(npf.BaseEvalMetric):
    """A metric whose process_record raises."""

    def process_record(self, output=None, target=None):
        raise ValueError("this metric always fails")

    @staticmethod
    def aggregate(metrics):
        return 0


class ExplodingAggregate(npf.BaseEvalMetric):
    """A metric whose aggregate raises."""

    def __init__(self):
        self.seen = 0

    def process_record(self, output=None, target=None):
        self.seen += 1

    @staticmethod
    def aggregate(metrics):
        raise RuntimeError(f"cannot combine {sum(m.seen for m in metrics)} records")


class Seen(npf.BaseEvalMetric):
    """How many records the workers saw, summed."""

    def __init__(self):
        self.seen = 0

    def process_record(self, output=None, target=None):
        self.seen += 1

    @staticmethod
    def aggregate(metrics):
        return sum(m.seen for m in metrics)


class Slow(Classifier):
    """The classifier, 20 ms a call."""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import time

        time.sleep(0.02)
        return super().__call__(x)
