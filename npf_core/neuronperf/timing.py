"""NeuronPerf's timing helpers, with its names and behaviour: :class:`Timer`,
:func:`timestamp_convert`, :data:`time_unit_ratios`, :data:`supported_time_units`,
and :class:`DummyModel`.

``benchmark(..., return_timers=True)`` gives back real :class:`Timer` objects, built
from each call's stamps that the copies kept (the spec's ``keep_calls``)."""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

__all__ = ["UNITS", "DummyModel", "Timer", "supported_time_units", "time_unit_ratios", "timestamp_convert"]

#: nanoseconds per unit
UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
#: NeuronPerf's table: ``time_unit_ratios[from][to]`` multiplies a time in ``from`` into ``to``
time_unit_ratios: dict[str, dict[str, float]] = {
    a: {b: (1 if a == b else UNITS[a] / UNITS[b]) for b in UNITS} for a in UNITS
}
supported_time_units = time_unit_ratios.keys()


def timestamp_convert(timestamps: Any, input_time_unit: str, output_time_unit: str) -> Any:
    """A time (a number, an array, or a list of numbers) from one unit ("ns", "us",
    "ms", "s") to another."""
    try:
        ratio = time_unit_ratios[input_time_unit][output_time_unit]
    except (KeyError, TypeError):
        raise ValueError(
            f"Can't convert {input_time_unit} to {output_time_unit} (units: {', '.join(UNITS)})"
        ) from None
    if isinstance(timestamps, (list, tuple)):
        timestamps = np.asarray(timestamps, dtype=float)
    return timestamps * ratio


class Timer:
    """A context manager that records one (start, end) pair each time it is entered
    (NeuronPerf's ``Timer``)::

        timer = Timer()
        for x in inputs:
            with timer:
                model(x)
        timer.durations("ms"), timer.total_duration("s"), timer.avg("ms"), len(timer)

    :param timer_fn: the clock (``time.perf_counter``: seconds).
    :param timer_unit: the unit ``timer_fn`` counts in; results without a unit are in it.
    """

    def __init__(self, timer_fn: Callable[[], Any] = time.perf_counter, timer_unit: str = "s") -> None:
        if timer_unit not in UNITS:
            raise ValueError(f"unknown time unit {timer_unit!r} (units: {', '.join(UNITS)})")
        self.timer_fn = timer_fn
        self.timer_unit = timer_unit
        self._start: Any = []
        self._end: Any = []

    @classmethod
    def from_stamps(cls, starts: Any, ends: Any, time_unit: str = "ns") -> Timer:
        """A stopped timer holding the given pairs (arrays of the same length, in
        ``time_unit``), counted in seconds of ``perf_counter`` like a live one."""
        t = cls()
        t._start = array("d", timestamp_convert(np.asarray(starts, dtype=float), time_unit, "s"))
        t._end = array("d", timestamp_convert(np.asarray(ends, dtype=float), time_unit, "s"))
        return t

    # -- recording -------------------------------------------------------------

    def __enter__(self) -> Timer:
        self.start()
        return self

    def __exit__(self, type: Any, value: Any, traceback: Any) -> None:  # noqa: A002 - NeuronPerf's names
        self.stop()

    def start(self) -> None:
        """Start a pair; a start still waiting for its stop is replaced."""
        if len(self._start) > len(self._end):
            del self._start[-1]
        self._start.append(self.timer_fn())

    def stop(self) -> None:
        """End the pair (nothing before the first start)."""
        if len(self._start) == 0:
            return
        self._end.append(self.timer_fn())

    def next(self) -> None:
        """Stop this pair and start the next one."""
        self.stop()
        self.start()

    def reset(self) -> None:
        del self._start[:]
        del self._end[:]

    def insert(self, timestamps: Sequence[Any], time_unit: str) -> None:
        """Insert one (start, end) pair, given in ``time_unit``, in front."""
        if timestamps is None or len(timestamps) != 2 or not time_unit:
            raise ValueError("insert() takes a (start, end) pair and its time unit")
        start, end = (timestamp_convert(t, time_unit, self.timer_unit) for t in timestamps)
        self._start.insert(0, start)
        self._end.insert(0, end)

    # -- the pairs -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._end)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        if index < 0:
            index %= len(self._end)
        return self._start[index], self._end[index]

    def __delitem__(self, index: int) -> None:
        del self._start[index]
        del self._end[index]

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        return zip(self._start, self._end, strict=False)  # a pending start has no end yet

    def __str__(self) -> str:
        return str(self.timestamps())

    def __repr__(self) -> str:
        return f"<Timer: {len(self)} pairs, {self.total_duration()} {self.timer_unit}>"

    def _in(self, values: np.ndarray, time_unit: str | None) -> np.ndarray:
        return values if time_unit is None else timestamp_convert(values, self.timer_unit, time_unit)

    def start_timestamps(self, time_unit: str | None = None) -> np.ndarray:
        return self._in(np.asarray(self._start, dtype=float), time_unit)

    def end_timestamps(self, time_unit: str | None = None) -> np.ndarray:
        return self._in(np.asarray(self._end, dtype=float), time_unit)

    def timestamps(self, time_unit: str | None = None) -> np.ndarray:
        """The (start, end) pairs, shape (n, 2), in ``time_unit`` (the timer's own by default)."""
        ends = self.end_timestamps(time_unit)
        return np.stack((self.start_timestamps(time_unit)[: len(ends)], ends), axis=-1)

    def durations(self, time_unit: str | None = None) -> np.ndarray:
        """Each pair's duration, in ``time_unit`` (the timer's own by default)."""
        ends = np.asarray(self._end, dtype=float)
        return self._in(ends - np.asarray(self._start, dtype=float)[: len(ends)], time_unit)

    def total_duration(self, time_unit: str | None = None) -> Any:
        return np.sum(self.durations(time_unit))

    def avg(self, time_unit: str | None = None) -> Any:
        """The mean duration; 0 when nothing was timed (as NeuronPerf)."""
        return self.durations(time_unit).mean() if len(self) else 0


class DummyModel:
    """NeuronPerf's test model: multiplies its input by 5 and adds 3, in place
    (``x *= 5; x += 3``), and returns it."""

    def __call__(self, x: Any) -> Any:
        x *= 5
        x += 3
        return x
