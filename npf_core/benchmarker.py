"""The benchmarker: the child-process side, one model copy.

It loads the model through the framework plugin (timed), runs the optional
setup, warms up (timed, not counted), reports READY, then at the supervisor's
common GO time starts ``workers`` threads that call the model until the deadline
or a STOP, and sends one RESULT.

The hot path is one tight loop per worker that writes start and end
``perf_counter_ns`` stamps into preallocated ``array('q')`` buffers; a full
buffer (or a window boundary) is folded with numpy into the worker's histograms
and window counts, so memory does not grow with duration or speed. Stage timers
exist only where a stage exists.

Started either by fork (:func:`child_main` in the forked process) or as a fresh
interpreter: ``python -m npf_core.benchmarker --fd N --parent PID``.
"""

from __future__ import annotations

import ctypes
import faulthandler
import importlib
import importlib.util
import itertools
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from npf_core.protocol import (
    PROTOCOL_VERSION,
    Channel,
    Failed,
    Go,
    Hello,
    Job,
    Progress,
    Ready,
    Result,
    Setup,
    Stop,
)
from npf_core.stats import Histogram

__all__ = ["child_main", "main", "resolve_reference"]

BUFFER = 8192
RUN, FLUSH, HALT = 0, 1, 2
LATE_NS = 1_000_000


class StageError(Exception):
    """An exception raised by user or plugin code, tagged with the stage it hit."""

    def __init__(self, stage: str, exc: BaseException) -> None:
        self.stage = stage
        self.exc = exc
        self.tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        super().__init__(f"{stage}: {type(exc).__name__}: {exc}")


def resolve_reference(ref: str, base_dir: Path, objects: dict[str, Any]) -> Any:
    """An object from ``package.module:attr``, ``path/file.py:attr`` or an API token."""
    if ref in objects:
        return objects[ref]
    module_name, _, qualname = ref.rpartition(":")
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        path = Path(module_name).expanduser()
        path = path if path.is_absolute() else base_dir / path
        unique = f"_npf_user_{abs(hash(str(path.resolve())))}"
        module = sys.modules.get(unique)
        if module is None:
            spec = importlib.util.spec_from_file_location(unique, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot import {str(path)!r}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            sys.path.insert(0, str(path.parent))
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[unique]
                raise
            finally:
                sys.path.remove(str(path.parent))
    else:
        module = importlib.import_module(module_name)
    obj: Any = module
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(f"{module_name!r} has no attribute {qualname!r}") from None
    return obj


class Worker:
    """One worker thread's loop and its bounded-memory accumulators."""

    def __init__(self, bench: Benchmarker, index: int) -> None:
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
        self.error: StageError | None = None
        self.warmup_ns = 0
        self.warmup_calls = 0
        self.warmed = threading.Event()  # its warm-up is over (done or failed)
        self.thread = threading.Thread(target=self._run, name=f"npf-worker-{index}", daemon=True)

    # -- folding -------------------------------------------------------------

    def _fold(self, marks: list[array], n: int) -> None:
        """Fold the first ``n`` rows of the stamp buffers into the accumulators."""
        if n == 0:
            return
        b = self.bench
        cols = [np.frombuffer(m, dtype=np.int64, count=n) for m in marks]
        start, end = cols[0], cols[-1]
        self.latency.add(end - start)
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
                if b.open_loop:
                    self._open_loop()
                elif b.simple:
                    self._closed_simple()
                else:
                    self._closed_staged()
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


class Benchmarker:
    """One model copy: load, warm up, measure, report."""

    def __init__(self, job: Job, channel: Channel, objects: dict[str, Any], plugins: Any) -> None:
        self.job = job
        self.channel = channel
        self.objects = objects
        self.plugins = plugins
        self.stopping = False
        self.ctl = [0]  # stop time (ns) once known
        self.go_event = threading.Event()
        self.error_event = threading.Event()
        self.window_ns = job.window_ns
        self.go_at_ns = 0
        self.stop_at_ns = 0
        self.n_windows_hint = 16
        self.open_loop = job.load_mode != "closed"

    def on_worker_error(self) -> None:
        self.error_event.set()

    # -- setup ---------------------------------------------------------------

    def prepare(self) -> Ready:
        from npf_core.hookspecs import Assignment, ChildContext

        job = self.job
        stage = "setup"
        try:
            device = self.plugins.device(job.device.get("type", "cpu"), job.device.get("options", {}))
            self.framework = self.plugins.framework(job.framework, job.model_options)
            base_dir = Path(job.base_dir)
            self.ctx = ChildContext(
                job=job, base_dir=base_dir, assignment=Assignment(job.assignment), device=device, objects=self.objects
            )
            device.setup_child(self.ctx.assignment)
            stage = "load"
            t0 = time.perf_counter_ns()
            model = self.framework.load(job.model_kind, job.model_ref, self.ctx)
            load_ns = time.perf_counter_ns() - t0
            stage = "setup"
            t0 = time.perf_counter_ns()
            if job.setup:
                resolve_reference(job.setup, base_dir, self.objects)(job.copy_index, job, model)
            self.pre = resolve_reference(job.preprocess, base_dir, self.objects) if job.preprocess else None
            self.post = resolve_reference(job.postprocess, base_dir, self.objects) if job.postprocess else None
            self.fn = self.framework.callable(model, self.ctx)
            setup_ns = time.perf_counter_ns() - t0
            stage = "input"
            self._prepare_inputs()
        except Exception as exc:
            raise StageError(stage, exc) from exc
        return Ready(load_ns=load_ns, setup_ns=setup_ns, warmup_ns=0)

    def _prepare_inputs(self) -> None:
        job = self.job
        self.timed_input = False
        self.fixed_example: tuple[Any, ...] | None = None
        self._examples: list[tuple[Any, ...]] | None = None
        if job.inputs is not None:
            from npf_plugins.datasets.tensors import build_example

            example = build_example(job.inputs, Path(job.base_dir), seed=job.seed + job.copy_index)
            self.fixed_example = self.convert(example)
        else:
            ds_spec = job.dataset or {}
            self.dataset = self.plugins.dataset(ds_spec["plugin"], ds_spec.get("options", {}))
            self.loop_dataset = bool(ds_spec.get("loop", True))
            if self.dataset.in_memory:
                self._examples = [self.convert(tuple(e)) for e in self.dataset.examples(self.ctx)]
                if not self._examples:
                    raise ValueError(f"dataset {ds_spec['plugin']!r} yielded no examples")
                if len(self._examples) == 1 and self.loop_dataset:
                    self.fixed_example = self._examples[0]
            else:
                self.timed_input = True
        self.simple = (
            self.fixed_example is not None and self.pre is None and self.post is None and not self.open_loop
        )
        self.stage_cols: dict[str, tuple[int, int]] = {}
        if self.open_loop:
            self.stage_cols = {"infer": (1, 2)}
        elif not self.simple:
            # the staged loop stamps the example fetch anyway: report it
            self.stage_cols = {"infer": (2, 3), "input": (0, 1)}
            if self.pre is not None:
                self.stage_cols["preprocess"] = (1, 2)
            if self.post is not None:
                self.stage_cols["postprocess"] = (3, 4)

    def convert(self, example: tuple[Any, ...]) -> tuple[Any, ...]:
        out = self.framework.convert_inputs(tuple(example), self.ctx)
        return out if isinstance(out, tuple) else (out,)

    def example_iterator(self) -> Callable[[], tuple[Any, ...]]:
        """A per-worker ``next`` for the inputs: no lock is shared between workers."""
        if self.fixed_example is not None:
            return itertools.repeat(self.fixed_example).__next__
        if self._examples is not None:
            it: Iterator[tuple[Any, ...]] = (
                itertools.cycle(self._examples) if self.loop_dataset else iter(self._examples)
            )
            return it.__next__
        ds, ctx, loop = self.dataset, self.ctx, self.loop_dataset

        def stream() -> Iterator[tuple[Any, ...]]:
            while True:
                empty = True
                for e in ds.examples(ctx):
                    empty = False
                    yield tuple(e)
                if not loop or empty:
                    return

        return stream().__next__

    def start_arrivals(self) -> None:
        """This copy's request schedule (ns): its share of the spec's total rate,
        constant (copies staggered by phase) or Poisson (independent per copy)."""
        job = self.job
        rate = job.rate_per_worker * job.workers  # this copy's share
        period = 1e9 / rate
        start = float(self.go_at_ns)
        self._arrival_lock = threading.Lock()
        if job.load_mode == "constant":
            first = start + period * job.copy_index / job.n_models
            self._arrivals: Iterator[int] = (int(first + k * period) for k in itertools.count())
            return
        rng = np.random.default_rng([job.seed, job.copy_index])

        def poisson() -> Iterator[int]:
            now = start
            while True:
                for gap in rng.exponential(period, 4096).tolist():
                    now += gap
                    yield int(now)

        self._arrivals = poisson()

    def take_arrival(self) -> int:
        with self._arrival_lock:
            return next(self._arrivals)

    def count_unstarted(self, stop_ns: int) -> int:
        """Arrivals due before the stop that no worker took: dropped requests."""
        n = 0
        with self._arrival_lock:
            for due in self._arrivals:
                if due > stop_ns:
                    break
                n += 1
        return n

    def warmup(self, worker: Worker) -> None:
        """One worker's warm-up, in its own thread and under the framework's worker
        context, all workers at once: per-thread first-call costs (thread-local
        state, a GPU library's per-thread handles, caches) are paid here, not in
        the measurement. Untimed by the workers' loops; its wall time is reported."""
        job = self.job
        nxt = self.example_iterator()
        calls = 0
        t0 = time.perf_counter_ns()
        end = t0 + int(job.warmup_s * 1e9)
        try:
            while calls < job.warmup_iterations or time.perf_counter_ns() < end:
                if worker.state[0] == HALT:
                    break
                try:
                    x = nxt()
                except StopIteration:
                    break
                if self.timed_input:
                    x = self.convert(x)
                if self.pre is not None:
                    x = self.pre(*x)
                    x = x if isinstance(x, tuple) else (x,)
                out = self.fn(*x)
                if self.post is not None:
                    self.post(out)
                calls += 1
        except Exception as exc:
            raise StageError("warmup", exc) from exc
        worker.warmup_ns = time.perf_counter_ns() - t0
        worker.warmup_calls = calls

    # -- measurement ---------------------------------------------------------

    def run(self) -> None:
        ready = self.prepare()
        workers = [Worker(self, i) for i in range(self.job.workers)]
        try:
            go = self._warm_up_and_wait(workers, ready)
        finally:
            if not self.go_event.is_set():  # failed or stopped before GO: release them
                for w in workers:
                    w.state[0] = HALT
                self.go_event.set()
                for w in workers:
                    if w.thread.is_alive():
                        w.thread.join()
        if go:
            self._measure(workers)

    def _warm_up_and_wait(self, workers: list[Worker], ready: Ready) -> bool:
        """Start the workers, which warm up at once; READY when all are warm; then
        wait for GO and release them at its time. False: STOP came first."""
        t0 = time.perf_counter_ns()
        for w in workers:
            w.thread.start()
        for w in workers:
            w.warmed.wait()
        failed = next((w.error for w in workers if w.error is not None), None)
        if failed is not None:
            raise failed
        ready.warmup_ns = time.perf_counter_ns() - t0
        ready.warmup_calls = sum(w.warmup_calls for w in workers)
        self.channel.send(ready)
        while True:
            msg = self.channel.recv(None)
            if isinstance(msg, Go):
                break
            if isinstance(msg, Stop):
                return False
        self.go_at_ns, self.stop_at_ns = msg.go_at_ns, msg.stop_at_ns
        self.n_windows_hint = int((msg.stop_at_ns - msg.go_at_ns) // self.window_ns) + 2
        for w in workers:
            w.windows = np.zeros(max(1, self.n_windows_hint), dtype=np.int64)
        if self.open_loop:
            self.start_arrivals()
        delay = self.go_at_ns - time.perf_counter_ns()
        if delay > 0:
            time.sleep(delay / 1e9)
        self.go_event.set()
        return True

    def _measure(self, workers: list[Worker]) -> None:
        pc = time.perf_counter_ns
        stopped_by = self._control(workers)
        stop_ns = pc()
        self.ctl[0] = stop_ns
        self.stopping = True
        for w in workers:
            w.state[0] = HALT
        for w in workers:
            w.thread.join()
        failed = next((w.error for w in workers if w.error is not None), None)
        if failed is not None:
            raise failed
        if self.open_loop:
            unstarted = self.count_unstarted(min(stop_ns, self.stop_at_ns))
            workers[0].scheduled += unstarted
            workers[0].dropped += unstarted
        interval = max(0, stop_ns - self.go_at_ns)
        n_full = interval // self.window_ns
        windows = np.zeros(n_full, dtype=np.int64)
        for w in workers:
            k = min(n_full, w.windows.size)
            windows[:k] += w.windows[:k]
        stage_names = {k for w in workers for k in w.stages}
        self.channel.send(
            Result(
                completed=sum(w.completed for w in workers),
                interval_ns=interval,
                latency=Histogram.merged(w.latency for w in workers).to_wire(),
                stages={
                    k: Histogram.merged(w.stages[k] for w in workers if k in w.stages).to_wire() for k in stage_names
                },
                windows=windows.tolist(),
                scheduled=sum(w.scheduled for w in workers),
                late=sum(w.late for w in workers),
                dropped=sum(w.dropped for w in workers),
                max_lag_ns=max(w.max_lag_ns for w in workers),
                stopped_by=stopped_by,
            )
        )

    def _control(self, workers: list[Worker]) -> str:
        """Until the deadline: ask workers to fold at each window boundary, send
        progress, and watch for STOP, a worker error or every worker finishing."""
        pc = time.perf_counter_ns
        window = 0
        next_window = self.go_at_ns + self.window_ns
        while True:
            now = pc()
            if self.error_event.is_set():
                return "error"
            if all(not w.thread.is_alive() for w in workers):
                return "exhausted"
            if now >= self.stop_at_ns:
                return "deadline"
            if now >= next_window:
                completed = sum(w.completed for w in workers)
                self.channel.send(Progress(window=window, completed=completed))
                for w in workers:
                    if w.state[0] == RUN:
                        w.state[0] = FLUSH
                window += 1
                next_window += self.window_ns
                continue
            wake = min(next_window, self.stop_at_ns, now + 50_000_000)
            msg = self.channel.recv((wake - now) / 1e9)
            if isinstance(msg, Stop):
                return msg.reason or "stop"


def _set_parent_death_signal(parent_pid: int) -> None:
    """Die with the supervisor, even if it is killed with SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if parent_pid and os.getppid() != parent_pid:
        os._exit(70)


def _end_own_group() -> None:
    """Kill what this benchmarker started (its process group), not itself."""
    me = os.getpid()
    if os.getpgrp() != me:
        return
    try:
        from npf_core.processes import group_members

        for pid in group_members(me, but=me):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    except Exception:  # noqa: BLE001 - exiting anyway
        pass


def _start_eof_watchdog(sock: socket.socket) -> None:
    """A hung-up wire means the supervisor is gone: exit, whatever the model is
    doing (the parent-death signal covers SIGKILL on Linux; this covers the rest)."""
    rdhup = getattr(select, "POLLRDHUP", 0)
    if not rdhup:
        return

    def watch() -> None:
        poller = select.poll()
        poller.register(sock.fileno(), rdhup | select.POLLHUP)
        while True:
            for _, ev in poller.poll():
                if ev & (rdhup | select.POLLHUP):
                    _end_own_group()
                    os._exit(75)

    threading.Thread(target=watch, name="npf-eof-watchdog", daemon=True).start()


def serve(sock: socket.socket, objects: dict[str, Any], plugins: Any | None, inline: bool = False) -> int:
    """Speak the protocol on ``sock`` for one configuration; returns the exit code.
    ``inline`` (threads in the supervisor's process, for debugging) leaves the
    process alone: no environment, affinity or watchdog."""
    channel = Channel(sock)
    if not inline:
        _start_eof_watchdog(sock)
    channel.send(Hello(protocol=PROTOCOL_VERSION, pid=os.getpid()))
    try:
        msg = channel.recv(None)
    except EOFError:
        return 3
    if not isinstance(msg, Setup):
        return 4
    job = msg.job
    stage = "setup"
    try:
        cpus = job.assignment.get("cpus")
        if cpus and not inline and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cpus)
        if plugins is None:
            stage = "plugins"
            from npf_core.plugins import get_plugins

            plugins = get_plugins()
        Benchmarker(job, channel, objects, plugins).run()
        return 0
    except EOFError:
        return 3
    except StageError as exc:
        failure = Failed(stage=exc.stage, type=type(exc.exc).__name__, message=str(exc.exc), traceback=exc.tb)
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the supervisor
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        failure = Failed(stage=stage, type=type(exc).__name__, message=str(exc), traceback=tb)
    try:
        channel.send(failure)
    except OSError:
        pass
    return 1


def _quiet_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def child_main(sock: socket.socket, out_fd: int, parent_pid: int, objects: dict[str, Any], plugins: Any) -> None:
    """Entry of a forked benchmarker. Never returns: the process exits here."""
    code = 1
    try:
        try:
            signal.set_wakeup_fd(-1)
        except (ValueError, OSError):
            pass
        _quiet_signals()
        _set_parent_death_signal(parent_pid)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        # no terminal input: from a background process group, reading it would stop us
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        # line-buffered: what the model printed before a crash or a hang is in the report
        sys.stdout = open(1, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, closefd=False, errors="replace")  # noqa: SIM115
        faulthandler.enable(file=sys.stderr)  # a crash leaves its Python stack in the output tail
        code = serve(sock, objects, plugins)
    except BaseException:  # noqa: BLE001
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Entry of a fresh-interpreter benchmarker."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m npf_core.benchmarker")
    parser.add_argument("--fd", type=int, required=True, help="the inherited wire socket")
    parser.add_argument("--parent", type=int, default=0, help="the supervisor's pid")
    args = parser.parse_args(argv)
    _quiet_signals()
    _set_parent_death_signal(args.parent)
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True, errors="replace")
    faulthandler.enable(file=sys.stderr)
    sock = socket.socket(fileno=args.fd)
    return serve(sock, {}, None)


if __name__ == "__main__":
    raise SystemExit(main())
