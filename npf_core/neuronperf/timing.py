"""NeuronPerf's timing helpers: :class:`Timer`, :func:`timestamp_convert`,
:class:`DummyModel`, and :class:`StageTimer`, the timers ``return_timers=True``
gives back (npf keeps histograms, not every call's stamps)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["UNITS", "DummyModel", "StageTimer", "Timer", "timestamp_convert"]

#: nanoseconds per unit
UNITS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def _per(unit: str) -> int:
    try:
        return UNITS[unit]
    except KeyError:
        raise ValueError(f"unknown time unit {unit!r}: use one of {', '.join(UNITS)}") from None


def timestamp_convert(value: Any, from_unit: str, to_unit: str) -> Any:
    """A time (a number or an array of them) from one unit ("s", "ms", "us", "ns") to another."""
    factor = _per(from_unit) / _per(to_unit)
    if isinstance(value, (list, tuple)):
        value = np.asarray(value, dtype=float)
    return value * factor


class Timer:
    """A context manager that records one (start, end) pair each time it is entered::

        timer = Timer()
        for x in inputs:
            with timer:
                model(x)
        timer.durations("ms"), timer.total_duration("s"), len(timer)
    """

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def start(self) -> None:
        self._starts.append(time.perf_counter_ns())

    def stop(self) -> None:
        if len(self._ends) >= len(self._starts):
            raise RuntimeError("Timer.stop() without a start()")
        self._ends.append(time.perf_counter_ns())

    def __enter__(self) -> Timer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __len__(self) -> int:
        return len(self._ends)

    def timestamps(self, unit: str = "ns") -> np.ndarray:
        """The (start, end) pairs, shape (n, 2), in ``unit`` (perf_counter time)."""
        n = len(self._ends)
        pairs = np.array([self._starts[:n], self._ends], dtype=np.int64).T.reshape(n, 2)
        return pairs if unit == "ns" else timestamp_convert(pairs.astype(float), "ns", unit)

    def durations(self, unit: str = "s") -> np.ndarray:
        """Each recorded duration, in ``unit``."""
        n = len(self._ends)
        d = np.array(self._ends, dtype=np.int64) - np.array(self._starts[:n], dtype=np.int64)
        return timestamp_convert(d.astype(float), "ns", unit)

    def total_duration(self, unit: str = "s") -> float:
        return float(self.durations(unit).sum())

    def avg(self, unit: str = "s") -> float:
        return self.total_duration(unit) / len(self) if len(self) else float("nan")

    def reset(self) -> None:
        self._starts.clear()
        self._ends.clear()


class StageTimer:
    """One stage's time in one model copy (or one worker) as npf measured it: the
    number of timed calls and their total. npf folds each call into a histogram
    instead of keeping its stamps, so :meth:`durations` and :meth:`timestamps` of
    the per-call stages are not available (the reports hold the percentiles)."""

    def __init__(self, stage: str, count: int, total_ns: float) -> None:
        self.stage = stage
        self.count = int(count)
        self.total_ns = float(total_ns)

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"StageTimer({self.stage!r}, count={self.count}, total_ms={self.total_ns / 1e6:.3f})"

    def total_duration(self, unit: str = "s") -> float:
        return float(timestamp_convert(self.total_ns, "ns", unit))

    def avg(self, unit: str = "s") -> float:
        return self.total_duration(unit) / self.count if self.count else float("nan")

    def durations(self, unit: str = "s") -> np.ndarray:
        if self.count == 1:
            return np.array([self.total_duration(unit)])
        raise NotImplementedError(
            f"npf does not keep each of the {self.count} {self.stage} durations (it folds them into a "
            "histogram, so memory stays flat); use the report's latency_ms_p* percentiles, or len() and "
            "total_duration()"
        )

    def timestamps(self, unit: str = "ns") -> np.ndarray:
        raise NotImplementedError(f"npf does not keep the {self.stage} timestamps; see durations()")


class DummyModel:
    """A model that does nothing (returns its first input): for testing a harness."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        return inputs[0] if inputs else None

    def forward(self, *inputs: Any) -> Any:
        return self(*inputs)

    def eval(self) -> DummyModel:
        return self
