"""One worker thread of a benchmarker: the timed loops (closed simple, closed
staged, open loop) and their bounded-memory accumulators. Runs in the child."""

from __future__ import annotations

import threading
import time
from array import array
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from npf_core.errors import StageError
from npf_core.results.stats import Histogram

__all__ = ["BUFFER", "FLUSH", "HALT", "LATE_NS", "RUN", "Worker"]

BUFFER = 8192
RUN, FLUSH, HALT = 0, 1, 2
LATE_NS = 1_000_000


class Copy(Protocol):
    """What a worker reads from the copy it runs in (the benchmarker): the model's
    callables, the examples and the run's clock. A protocol, so the worker and the
    benchmarker that owns it do not import each other."""

    fn: Callable[..., Any]
    pre: Callable[..., Any] | None
    post: Callable[..., Any] | None
    framework: Any
    ctx: Any
    evaluation: Any
    fixed_example: Any  # tuple[Any, ...] once set (the simple loops), else None
    simple: bool
    timed_input: bool
    open_loop: bool
    stage_cols: dict[str, tuple[int, int]]
    keep_per_worker: int
    stopping: bool
    ctl: list[int]
    go_event: threading.Event
    go_at_ns: int
    stop_at_ns: int
    window_ns: int
    n_windows_hint: int
    slo_ns: int

    def convert(self, example: tuple[Any, ...]) -> tuple[Any, ...]: ...
    def example_iterator(self, warmup: bool = False) -> Callable[[], tuple[Any, ...]]: ...
    def take_arrival(self) -> int: ...
    def on_worker_error(self) -> None: ...
    def warmup(self, worker: Worker) -> None: ...
    def next_round(self, worker: Worker) -> bool: ...


class Worker:
    """One worker thread's loop and its bounded-memory accumulators."""

    def __init__(self, bench: Copy, index: int) -> None:
        self.bench = bench
        self.index = index
        self.state = [RUN]
        self.latency = Histogram()
        self.stages: dict[str, Histogram] = {}
        self.windows = np.zeros(max(1, bench.n_windows_hint), dtype=np.int64)
        self.completed = 0
        self.scheduled = 0
        self.late = 0
        self.dropped = 0
        self.max_lag_ns = 0
        self.over = 0  # calls slower than the job's slo_ns
        self.round = 0  # the measurement this worker runs (a repeat job runs several)
        self.waiting = False  # a repeat job's worker between measurements
        self.error: StageError | None = None
        self.warmup_ns = 0
        self.warmup_calls = 0
        self.metrics: dict[str, Any] = {}  # evaluate mode: this worker's metric instances
        self.examples = 0  # evaluate mode: examples whose metrics were recorded
        self.warmed = threading.Event()  # its warm-up is over (done or failed)
        #: each call's stamps, kept while ``keep_left`` allows (Job.keep_calls): (n, k) int64 blocks
        self.kept: list[np.ndarray] = []
        self.keep_left = bench.keep_per_worker
        self.loop_ns = [0, 0]  # the measured loop's start and end (perf_counter_ns)
        self.thread = threading.Thread(target=self._run, name=f"npf-worker-{index}", daemon=True)

    def reset(self) -> None:
        """Empty the accumulators for the next measurement (a repeat job's next
        probe); called by the copy's main thread while this worker waits between them."""
        self.latency = Histogram()
        self.stages = {}
        self.windows = np.zeros(max(1, self.bench.n_windows_hint), dtype=np.int64)
        self.completed = self.scheduled = self.late = self.dropped = self.max_lag_ns = self.over = 0
        self.state[0] = RUN

    # -- folding -------------------------------------------------------------

    def _fold(self, marks: list[array], n: int) -> None:
        """Fold the first ``n`` rows of the stamp buffers into the accumulators."""
        if n == 0:
            return
        b = self.bench
        cols = [np.frombuffer(m, dtype=np.int64, count=n) for m in marks]
        if self.keep_left > 0:
            rows = np.stack(cols, axis=1)
            if self.bench.ctl[0]:  # calls that end after the stop are not counted: not kept either
                rows = rows[rows[:, -1] <= self.bench.ctl[0]]
            rows = rows[: self.keep_left]
            self.kept.append(rows)
            self.keep_left -= len(rows)
        start, end = cols[0], cols[-1]
        self.latency.add(end - start)
        if b.slo_ns:
            self.over += int(np.count_nonzero(end - start > b.slo_ns))
        for name, (i, j) in b.stage_cols.items():
            self.stages.setdefault(name, Histogram()).add(cols[j] - cols[i])
        if b.open_loop:
            lag = cols[1] - start
            self.late += int(np.count_nonzero(lag > LATE_NS))
            self.max_lag_ns = max(self.max_lag_ns, int(lag.max()))
        stop_ns = b.ctl[0]
        if stop_ns:
            end = end[end <= stop_ns]
        w = (end - b.go_at_ns) // b.window_ns
        w = w[w >= 0]
        if w.size:
            top = int(w.max()) + 1
            if top > self.windows.size:
                self.windows = np.concatenate([self.windows, np.zeros(top - self.windows.size, np.int64)])
            self.windows[:top] += np.bincount(w, minlength=top)
        self.completed += int(end.size)

    # -- the loops -----------------------------------------------------------

    def _run(self) -> None:
        b = self.bench
        try:
            with b.framework.worker_context(b.ctx):
                b.warmup(self)
                self.warmed.set()  # (on an error, the finally below sets it)
                b.go_event.wait()
                if self.state[0] == HALT:  # stopped before GO
                    return
                while True:
                    self.loop_ns[0] = time.perf_counter_ns()
                    try:
                        if b.evaluation is not None:
                            self._evaluate()
                        elif b.open_loop:
                            self._open_loop()
                        elif b.simple:
                            self._closed_simple()
                        else:
                            self._closed_staged()
                    finally:
                        self.loop_ns[1] = time.perf_counter_ns()
                    if not b.next_round(self):  # a repeat job: the same thread measures again
                        return
        except StageError as exc:
            self.error = exc
            b.on_worker_error()
        except BaseException as exc:  # noqa: BLE001 - a worker must report, never vanish
            self.error = StageError("call", exc)
            b.on_worker_error()
        finally:
            self.warmed.set()

    def _closed_simple(self) -> None:
        """No stages beyond the call, one fixed example: the leanest loop."""
        b = self.bench
        fn, x = b.fn, b.fixed_example
        pc = time.perf_counter_ns
        st = self.state
        rng = range(BUFFER)
        t0s, t1s = array("q", bytes(8 * BUFFER)), array("q", bytes(8 * BUFFER))
        marks = [t0s, t1s]
        try:
            while True:
                n = BUFFER
                for i in rng:
                    if st[0]:
                        n = i
                        break
                    t0 = pc()
                    fn(*x)
                    t1 = pc()
                    t0s[i] = t0
                    t1s[i] = t1
                self._fold(marks, n)
                if self._should_stop():
                    return
        except Exception as exc:
            raise StageError("call", exc) from exc

    def _closed_staged(self) -> None:
        """Input fetch, preprocess, call and postprocess, each stage timed."""
        b = self.bench
        fn, pre, post = b.fn, b.pre, b.post
        nxt = b.example_iterator()
        timed_input = b.timed_input
        pc = time.perf_counter_ns
        st = self.state
        rng = range(BUFFER)
        bufs = [array("q", bytes(8 * BUFFER)) for _ in range(5)]
        ta, tb, tc, td, te = bufs
        stage = "input"
        while True:
            n = BUFFER
            try:
                for i in rng:
                    if st[0]:
                        n = i
                        break
                    t = pc()
                    ta[i] = t
                    stage = "input"
                    x = nxt()
                    if timed_input:
                        x = b.convert(x)
                    t = pc()
                    tb[i] = t
                    if pre is not None:
                        stage = "preprocess"
                        x = pre(*x)
                        if not isinstance(x, tuple):
                            x = (x,)
                    t = pc()
                    tc[i] = t
                    stage = "call"
                    out = fn(*x)
                    t = pc()
                    td[i] = t
                    if post is not None:
                        stage = "postprocess"
                        post(out)
                    te[i] = pc()
            except StopIteration:
                self._fold(bufs, i)
                return
            except Exception as exc:
                raise StageError(stage, exc) from exc
            self._fold(bufs, n)
            if self._should_stop():
                return

    def _evaluate(self) -> None:
        """Evaluate mode: the staged loop over this worker's share of the examples
        (each split into inputs and target); after each call, untimed, the metrics
        see the postprocessed output, and the reference model the same inputs."""
        b = self.bench
        ev = b.evaluation
        fn, pre, post, convert = b.fn, b.pre, b.post, b.convert
        nxt = ev.share(self.index).__next__
        self.metrics = ev.new_metrics()
        ref = ev.ref_fn is not None
        own = [(k, m) for k, m in self.metrics.items() if k in dict(ev.entries)]
        agree = [(k, m) for k, m in self.metrics.items() if k not in dict(ev.entries)]
        pc = time.perf_counter_ns
        st = self.state
        rng = range(BUFFER)
        bufs = [array("q", bytes(8 * BUFFER)) for _ in range(5)]
        ta, tb, tc, td, te = bufs
        stage = "input"
        with ev.reference_context():
            while True:
                n = BUFFER
                try:
                    for i in rng:
                        if st[0]:
                            n = i
                            break
                        ta[i] = pc()
                        stage = "input"
                        raw, target = nxt()
                        x = convert(raw)
                        tb[i] = pc()
                        if pre is not None:
                            stage = "preprocess"
                            x = pre(*x)
                            if not isinstance(x, tuple):
                                x = (x,)
                        tc[i] = pc()
                        stage = "call"
                        out = fn(*x)
                        td[i] = pc()
                        if post is not None:
                            stage = "postprocess"
                            out = post(out)
                        te[i] = pc()
                        for key, m in own:
                            stage = f"metric {key}"
                            m.process_record(out, target)
                        if ref:
                            stage = "reference"
                            expected = ev.reference_output(raw)
                            for key, m in agree:
                                stage = f"metric {key}"
                                m.process_record(out, expected)
                        self.examples += 1
                except StopIteration:
                    self._fold(bufs, i)
                    return
                except Exception as exc:
                    raise StageError(stage, exc) from exc
                self._fold(bufs, n)
                if self._should_stop():
                    return

    def _open_loop(self) -> None:
        """Requests arrive on a schedule that does not depend on completions; the
        copy's workers serve one shared queue (the next free worker takes the next
        arrival), and latency runs from the scheduled time, so queueing is never
        hidden (no coordinated omission)."""
        b = self.bench
        fn = b.fn
        x = b.fixed_example
        nxt = None if x is not None else b.example_iterator()
        take = b.take_arrival
        pc = time.perf_counter_ns
        sleep = time.sleep
        st = self.state
        rng = range(BUFFER)
        bufs = [array("q", bytes(8 * BUFFER)) for _ in range(3)]
        ts, tr, te = bufs
        stop_at = b.stop_at_ns
        while True:
            n = BUFFER
            try:
                for i in rng:
                    if st[0]:
                        n = i
                        break
                    due = take()
                    if due >= stop_at:
                        n = i
                        st[0] = HALT
                        break
                    self.scheduled += 1
                    wait = due - pc()
                    while wait > 0:
                        if st[0] == HALT or b.stopping:
                            break
                        sleep(min(wait, 20_000_000) / 1e9)
                        wait = due - pc()
                    if wait > 0:  # stopped while waiting: it never started
                        if due > (b.ctl[0] or stop_at):
                            self.scheduled -= 1
                        else:
                            self.dropped += 1
                        n = i
                        st[0] = HALT
                        break
                    ts[i] = due
                    tr[i] = pc()
                    fn(*(x if nxt is None else nxt()))
                    te[i] = pc()
            except StopIteration:
                self._fold(bufs, i)
                return
            except Exception as exc:
                raise StageError("call", exc) from exc
            self._fold(bufs, n)
            if self._should_stop():
                return

    def _should_stop(self) -> bool:
        if self.state[0] == HALT or self.bench.stopping:
            return True
        self.state[0] = RUN
        return self.bench.stopping
