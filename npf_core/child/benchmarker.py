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

Started by fork (:func:`child_main` in a process forked from the supervisor or from
a zygote, :mod:`npf_core.child.zygote`) or as a fresh interpreter:
``python -m npf_core.child.benchmarker --fd N --parent PID [--payload FD]``.
"""

from __future__ import annotations

import faulthandler
import itertools
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from npf_core.child.process import (
    become_subreaper,
    end_descendants,
    quiet_signals,
    set_parent_death_signal,
    start_eof_watchdog,
)
from npf_core.child.worker import FLUSH, HALT, RUN, Worker
from npf_core.errors import StageError
from npf_core.plugin.references import resolve_reference
from npf_core.results.stats import Histogram
from npf_core.wire.protocol import (
    PROTOCOL_VERSION,
    STOP_DONE,
    CallStamps,
    Channel,
    ChildExit,
    Failed,
    Go,
    Hello,
    Job,
    Loaded,
    Progress,
    Ready,
    Reconfigure,
    Release,
    Result,
    Setup,
    Stop,
)

__all__ = ["child_main", "main", "resolve_reference"]


class Benchmarker:
    """One model copy: load, warm up, measure, report; with ``Job.reuse``, the same
    loaded model again for each configuration the supervisor sends (Reconfigure)."""

    def __init__(
        self, job: Job, channel: Channel, objects: dict[str, Any], plugins: Any, objects_ns: int = 0,
        inline: bool = False,
    ) -> None:  # fmt: skip
        self.objects_ns = objects_ns  # time spent unpickling the API objects (part of the load)
        self.channel = channel
        self.objects = objects
        self.plugins = plugins
        self.inline = inline
        self.model: Any = None
        self._reference: Any = None  # evaluate mode: the reference model, loaded once per copy
        self._begin(job)

    def _begin(self, job: Job) -> None:
        """The state of one configuration (a new job): nothing of the last one's
        workers, clock or inputs is kept; the loaded model is."""
        self.job = job
        self.stopping = False
        self.ctl = [0]  # stop time (ns) once known
        self.go_event = threading.Event()
        self.error_event = threading.Event()
        self.window_ns = job.window_ns
        self.go_at_ns = 0
        self.stop_at_ns = 0
        self.n_windows_hint = 16
        self.open_loop = job.load_mode != "closed"
        self.load_mode = job.load_mode
        self.rate_per_copy = job.rate_per_copy
        self.slo_ns = job.slo_ns
        # a repeat job's measurements: the round the workers may run, under this condition
        self._round = 0
        self._armed = 0  # measurements armed so far
        self._rounds = threading.Condition()
        self._closing = False
        self.evaluation: Any = None  # evaluate mode (npf_core.evaluation.runner.Evaluation)
        self._shared: Callable[[], tuple[Any, ...]] | None = None
        self._shared_lock = threading.Lock()
        self.keep_per_worker = job.keep_calls // max(1, job.workers)

    def context_for(self, job: Job, device: Any) -> Any:
        """A plugin context for another model in this copy (evaluate's reference):
        this copy's folder and objects, the given job and device, no device share."""
        from npf_core.plugin.hookspecs import Assignment, ChildContext

        return ChildContext(job=job, base_dir=self.ctx.base_dir, assignment=Assignment({}), device=device,
                            objects=self.ctx.objects)  # fmt: skip

    def on_worker_error(self) -> None:
        self.error_event.set()

    # -- setup ---------------------------------------------------------------

    def prepare(self) -> Ready:
        """Load the model (timed) and set up the first configuration."""
        from npf_core.plugin.hookspecs import Assignment, ChildContext

        job = self.job
        stage = "setup"
        try:
            device = self.plugins.device(job.device.type, job.device.options)
            self.framework = self.plugins.framework(job.framework, job.model_options)
            base_dir = Path(job.base_dir)
            assignment = Assignment(job.assignment.as_dict())
            self.ctx = ChildContext(
                job=job, base_dir=base_dir, assignment=assignment, device=device, objects=self.objects
            )
            device.setup_child(self.ctx.assignment)
            env_setup_ns = 0
            stamps: dict[str, list[int]] = {}
            if job.env_setup:
                stage = "env_setup"
                t0 = time.perf_counter_ns()
                resolve_reference(job.env_setup, base_dir, self.objects)(job.copy_index, job)
                env_setup_ns = time.perf_counter_ns() - t0
                stamps["env_setup"] = [t0, t0 + env_setup_ns]
            stage = "load"
            t0 = time.perf_counter_ns()
            model = self.framework.load(job.model_kind, job.model_ref, self.ctx)
            load_ns = time.perf_counter_ns() - t0 + self.objects_ns
            stamps["load"] = [t0 - self.objects_ns, t0 - self.objects_ns + load_ns]
            self.model = model
            stage = "setup"
            t0 = time.perf_counter_ns()
            if job.setup:
                resolve_reference(job.setup, base_dir, self.objects)(job.copy_index, job, model)
            self.pre = resolve_reference(job.preprocess, base_dir, self.objects) if job.preprocess else None
            self.post = resolve_reference(job.postprocess, base_dir, self.objects) if job.postprocess else None
            self.fn = self.framework.callable(model, self.ctx)
            setup_ns = time.perf_counter_ns() - t0
            if job.setup:
                stamps["setup"] = [t0, t0 + setup_ns]
            self._configure()
        except StageError:
            raise
        except Exception as exc:
            raise StageError(stage, exc) from exc
        return Ready(load_ns=load_ns, setup_ns=setup_ns, env_setup_ns=env_setup_ns, warmup_ns=0,
                     stamps=stamps if job.keep_calls else {})  # fmt: skip

    def reconfigure(self, job: Job) -> Ready:
        """The next configuration on the model already loaded: the framework adapts
        what depends on the job (thread pools), then inputs (and evaluate mode) are
        made anew. Nothing is loaded: ``load_ns`` is 0 and ``reused`` is set."""
        held = (self.job.framework, self.job.model_kind, self.job.model_ref, self.job.pipeline_size,
                self.job.copy_index, self.job.assignment)  # fmt: skip
        wanted = (job.framework, job.model_kind, job.model_ref, job.pipeline_size, job.copy_index, job.assignment)
        if held != wanted:  # the supervisor decides reuse; this guards against a bug there
            raise StageError("setup", ValueError(
                f"Reconfigure for another model or device share ({job.model_ref!r}, copy {job.copy_index}) "
                f"than this copy holds ({self.job.model_ref!r}, copy {self.job.copy_index})"))  # fmt: skip
        self._begin(job)
        if not self.inline and "NPF_CONFIG_ID" in os.environ:
            os.environ["NPF_CONFIG_ID"] = job.config_id  # as a copy started for this configuration finds it
        try:
            self.ctx.job = job
            self.framework.reconfigure(self.model, self.ctx)
        except Exception as exc:
            raise StageError("setup", exc) from exc
        self._configure()
        return Ready(load_ns=0, warmup_ns=0, reused=True)

    def _configure(self) -> None:
        """What one configuration needs beyond the loaded model: evaluate mode's
        state and the inputs."""
        stage = "input"
        try:
            if self.job.evaluate is not None:
                from npf_core.evaluation.runner import Evaluation

                stage = "evaluate"
                self.evaluation = Evaluation(self)
                stage = "input"
            self._prepare_inputs()
        except StageError:
            raise
        except Exception as exc:
            raise StageError(stage, exc) from exc

    def _prepare_inputs(self) -> None:
        job = self.job
        self.timed_input = False
        self.fixed_example: tuple[Any, ...] | None = None
        self._examples: list[tuple[Any, ...]] | None = None
        if self.evaluation is not None:  # examples come from the Evaluation, converted in the loop
            self.timed_input = True
            self.simple = False
            cols = {"infer": (2, 3), "input": (0, 1)}
            if self.pre is not None:
                cols["preprocess"] = (1, 2)
            if self.post is not None:
                cols["postprocess"] = (3, 4)
            self.stage_cols: dict[str, tuple[int, int]] = cols
            return
        if job.inputs is not None:
            from npf_core.wire.tensors import build_example

            example = build_example(job.inputs, Path(job.base_dir), seed=job.seed + job.copy_index)
            self.fixed_example = self.convert(example)
        else:
            ds_spec = job.dataset
            assert ds_spec is not None  # the spec has inputs or a dataset
            self.dataset = self.plugins.dataset(ds_spec.plugin, ds_spec.options)
            self.loop_dataset = ds_spec.loop
            if self.dataset.in_memory:
                self._examples = [self.convert(tuple(e)) for e in self.dataset.examples(self.ctx)]
                if not self._examples:
                    raise ValueError(f"dataset {ds_spec.plugin!r} yielded no examples")
                if len(self._examples) == 1 and self.loop_dataset:
                    self.fixed_example = self._examples[0]
            else:
                self.timed_input = True
        self._shape_loop()

    def _shape_loop(self) -> None:
        """Which loop the workers run and which stages it stamps, for the current load."""
        self.simple = (
            self.fixed_example is not None and self.pre is None and self.post is None and not self.open_loop
        )
        self.stage_cols = {}
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

    def example_iterator(self, warmup: bool = False) -> Callable[[], tuple[Any, ...]]:
        """A per-worker ``next`` for the inputs: no lock is shared between workers,
        except for a ``shared`` dataset, whose measurement pass all workers take from."""
        if self.evaluation is not None:
            return self.evaluation.warmup_iterator()
        if not warmup and self._examples is None and self.fixed_example is None and self.dataset.shared:
            return self._shared_next()
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

    def _shared_next(self) -> Callable[[], tuple[Any, ...]]:
        with self._shared_lock:
            if self._shared is None:
                it = self.example_iterator(warmup=True)
                lock = threading.Lock()

                def take() -> tuple[Any, ...]:
                    with lock:
                        return it()

                self._shared = take
            return self._shared

    def start_arrivals(self) -> None:
        """This copy's request schedule (ns): its share of the spec's total rate,
        constant (copies staggered by phase) or Poisson (independent per copy).
        Each measurement of a repeat job draws its own."""
        job = self.job
        rate = self.rate_per_copy
        period = 1e9 / rate
        start = float(self.go_at_ns)
        self._arrival_lock = threading.Lock()
        if self.load_mode == "constant":
            first = start + period * job.copy_index / job.n_models
            self._arrivals: Iterator[int] = (int(first + k * period) for k in itertools.count())
            return
        # each measurement of a repeat job (a capacity probe) draws its own arrivals
        rng = np.random.default_rng([job.seed, job.copy_index] + ([self._armed] if job.repeat else []))

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
        nxt = self.example_iterator(warmup=True)
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
        """Every configuration this copy is given: the first (after loading), then,
        with ``Job.reuse``, each Reconfigure until Release or a hang-up."""
        ready = self.prepare()
        if self.job.preload:  # loaded ahead of the configuration that needs it: idle until it comes
            self.channel.send(ready)
        else:
            self.channel.send(Loaded())  # warm-up begins: a death from here on is the warm-up's
            self._run_config(ready)
        while self.job.reuse:
            job = self._next_job()
            if job is None:
                return
            self._run_config(self.reconfigure(job))

    def _next_job(self) -> Job | None:
        """Idle between configurations: blocked on the wire (no thread of ours runs)
        until the next job, or None (Release, or the supervisor hung up). A Stop that
        crossed our Result on the wire is stale: dropped."""
        while True:
            try:
                msg = self.channel.recv(None)
            except EOFError:
                return None
            if isinstance(msg, Reconfigure):
                return msg.job
            if isinstance(msg, Release):
                return None

    def _run_config(self, ready: Ready) -> None:
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
        if not go:
            return
        try:
            self._measure(workers)
            while self.job.repeat and self._next_go(workers):
                self._measure(workers)
        finally:
            if self.job.repeat:
                with self._rounds:
                    self._closing = True
                    self._rounds.notify_all()
                for w in workers:
                    w.state[0] = HALT
                    w.thread.join()

    def _next_go(self, workers: list[Worker]) -> bool:
        """A repeat job between measurements: the next Go starts one (True); Stop or
        a closed wire ends the copy (False)."""
        while True:
            try:
                msg = self.channel.recv(None)
            except EOFError:
                return False
            if isinstance(msg, Stop) and msg.reason == STOP_DONE:
                return False
            if isinstance(msg, Go):  # (another Stop: the last measurement's early stop, crossed with its Result)
                break
        self._set_load(msg)
        self.stopping = False
        self.ctl[0] = 0
        self._arm(msg)
        for w in workers:
            w.reset()
        self._sleep_until_go()
        with self._rounds:
            self._round += 1
            for w in workers:
                w.waiting = False  # released now (each clears it again when it wakes)
            self._rounds.notify_all()
        return True

    def next_round(self, worker: Worker) -> bool:
        """Called by a worker whose measurement is over: False ends its thread; a
        repeat job's worker waits for the next measurement (True) or the end."""
        if not self.job.repeat:
            return False
        with self._rounds:
            worker.waiting = True
            self._rounds.notify_all()  # the main thread waits for every worker to be here
            self._rounds.wait_for(lambda: self._round > worker.round or self._closing)
            worker.waiting = False
            worker.round = self._round
            return not self._closing

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
        if self.job.keep_calls:
            ready.stamps["warmup"] = [t0, t0 + ready.warmup_ns]
        self.channel.send(ready)
        while True:
            msg = self.channel.recv(None)
            if isinstance(msg, Go):
                break
            if isinstance(msg, Stop):
                return False
        self._set_load(msg)
        self._arm(msg)
        for w in workers:
            w.windows = np.zeros(max(1, self.n_windows_hint), dtype=np.int64)
        self._sleep_until_go()
        self.go_event.set()
        return True

    def _set_load(self, msg: Go) -> None:
        """The load a Go names for its measurement (a repeat job's probes), if any."""
        if msg.load_mode:
            self.load_mode = msg.load_mode
            self.open_loop = msg.load_mode != "closed"
            self.rate_per_copy = msg.rate_per_copy
            self._shape_loop()

    def _arm(self, msg: Go) -> None:
        """A measurement's clock, and its arrivals in an open loop."""
        self._armed += 1
        self.go_at_ns, self.stop_at_ns = msg.go_at_ns, msg.stop_at_ns
        self.n_windows_hint = int((msg.stop_at_ns - msg.go_at_ns) // self.window_ns) + 2
        if self.open_loop:
            self.start_arrivals()

    def _sleep_until_go(self) -> None:
        delay = self.go_at_ns - time.perf_counter_ns()
        if delay > 0:
            time.sleep(delay / 1e9)

    def _measure(self, workers: list[Worker]) -> None:
        pc = time.perf_counter_ns
        stopped_by = self._control(workers)
        stop_ns = pc()
        self.ctl[0] = stop_ns
        self.stopping = True
        for w in workers:
            w.state[0] = HALT
        self._settle(workers)
        failed = next((w.error for w in workers if w.error is not None), None)
        if failed is not None:
            raise failed
        metric_states: dict[str, list[bytes]] = {}
        if self.evaluation is not None:
            if self.job.evaluate is not None and self.job.evaluate.once and stopped_by == "deadline":
                raise StageError("evaluate", TimeoutError(
                    f"the dataset was not finished within evaluate.timeout_s "
                    f"({sum(w.examples for w in workers)} examples done)"))  # fmt: skip
            import pickle

            for w in workers:
                for key, m in w.metrics.items():
                    try:  # its state: the instance attributes (the supervisor knows the class)
                        state = pickle.dumps(vars(m), protocol=pickle.HIGHEST_PROTOCOL)
                    except Exception as exc:
                        raise StageError(f"metric {key}", exc) from exc
                    metric_states.setdefault(key, []).append(state)
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
                over=sum(w.over for w in workers),
                stopped_by=stopped_by,
                metric_states=metric_states,
                eval_examples=sum(w.examples for w in workers),
                calls=[self._kept(w) for w in workers] if self.job.keep_calls else [],
            )
        )

    def _kept(self, w: Worker) -> CallStamps:
        """A worker's kept calls for the wire, and where each stage is in a row."""
        k = self.kept_columns()
        rows = np.concatenate(w.kept) if w.kept else np.zeros((0, k), dtype=np.int64)
        stages = dict(self.stage_cols)
        stages.setdefault("infer", (0, k - 1))  # the lean loop times only the call
        stages["e2e"] = (0, k - 1)
        return CallStamps(n=int(rows.shape[0]), k=k, stamps=np.ascontiguousarray(rows, dtype=np.int64).tobytes(),
                          stages=stages, completed=w.completed, worker=list(w.loop_ns))  # fmt: skip

    def kept_columns(self) -> int:
        """How many stamps each call has in the loop this copy runs."""
        if self.evaluation is not None:
            return 5
        if self.open_loop:
            return 3
        return 2 if self.simple else 5
    def _settle(self, workers: list[Worker]) -> None:
        """Wait until every worker has finished this measurement: its thread ended, or
        (a repeat job) it waits for the next one."""
        if not self.job.repeat:
            for w in workers:
                w.thread.join()
            return
        with self._rounds:
            while not all(w.waiting or not w.thread.is_alive() for w in workers):
                self._rounds.wait(0.05)

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
            if all(w.waiting or not w.thread.is_alive() for w in workers):
                return "exhausted"
            if now >= self.stop_at_ns:
                return "deadline"
            if now >= next_window:
                completed = sum(w.completed for w in workers)
                over = sum(w.over for w in workers)
                self.channel.send(Progress(window=window, completed=completed, over=over))
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


def serve(
    sock: socket.socket,
    objects: dict[str, Any] | Callable[[], dict[str, Any]],
    plugins: Any | None,
    inline: bool = False,
    payload: int = -1,
) -> int:
    """Speak the protocol on ``sock`` for one configuration (or, with ``Job.reuse``,
    each configuration the supervisor sends until it releases the copy); returns the
    exit code.
    ``inline`` (threads in the supervisor's process, for debugging) leaves the
    process alone: no environment, affinity or watchdog. ``objects`` may be a
    function that returns them (unpickled from the run's payload, see
    :mod:`npf_core.wire.transfer`); ``payload`` is that file's descriptor, whose plugins
    a fresh interpreter registers (``plugins`` None)."""
    channel = Channel(sock)
    if not inline:
        start_eof_watchdog(sock)
    channel.send(Hello(protocol=PROTOCOL_VERSION, pid=os.getpid()))
    try:
        msg = channel.recv(None)
    except EOFError:
        return ChildExit.NO_SETUP
    if not isinstance(msg, Setup):
        return ChildExit.BAD_HANDSHAKE
    job = msg.job
    stage = "setup"
    try:
        cpus = job.assignment.cpus
        if cpus and not inline and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, cpus)
        if plugins is None:
            stage = "plugins"
            from npf_core.plugin.manager import get_plugins
            from npf_core.wire.transfer import load_plugins

            plugins = get_plugins(load_plugins(payload) if payload >= 0 else ())
        objects_ns = 0
        if callable(objects):
            stage = "load"  # the API objects, often the model itself: their unpickling counts as load
            t0 = time.perf_counter_ns()
            objects = objects()
            objects_ns = time.perf_counter_ns() - t0
        Benchmarker(job, channel, objects, plugins, objects_ns, inline=inline).run()
        return ChildExit.OK
    except EOFError:
        return ChildExit.NO_SETUP
    except StageError as exc:
        failure = Failed(stage=exc.stage, type=type(exc.exc).__name__, message=str(exc.exc), traceback=exc.tb)
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the supervisor
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        failure = Failed(stage=stage, type=type(exc).__name__, message=str(exc), traceback=tb)
    try:
        channel.send(failure)
    except OSError:
        pass
    return ChildExit.FAILED


def child_main(
    sock: socket.socket,
    out_fd: int,
    parent_pid: int,
    objects: dict[str, Any] | Callable[[], dict[str, Any]],
    plugins: Any,
) -> None:
    """Entry of a forked benchmarker. Never returns: the process exits here."""
    code: int = ChildExit.FAILED
    try:
        try:
            signal.set_wakeup_fd(-1)
        except (ValueError, OSError):
            pass
        quiet_signals()
        set_parent_death_signal(parent_pid)
        become_subreaper()  # what the model starts stays ours, even in a session of its own
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
        end_descendants()  # nothing the model started outlives the copy
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    """Entry of a fresh-interpreter benchmarker."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m npf_core.child.benchmarker")
    parser.add_argument("--fd", type=int, required=True, help="the inherited wire socket")
    parser.add_argument("--parent", type=int, default=0, help="the supervisor's pid")
    parser.add_argument("--payload", type=int, default=-1, help="the run's serialised objects and plugins")
    args = parser.parse_args(argv)
    quiet_signals()
    set_parent_death_signal(args.parent)
    become_subreaper()
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True, errors="replace")
    faulthandler.enable(file=sys.stderr)
    sock = socket.socket(fileno=args.fd)

    def objects() -> dict[str, Any]:
        from npf_core.wire.transfer import load_objects

        return load_objects(args.payload) if args.payload >= 0 else {}

    try:
        return serve(sock, objects, None, payload=args.payload)
    finally:
        end_descendants()


if __name__ == "__main__":
    raise SystemExit(main())
