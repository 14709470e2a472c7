"""NeuronPerf's ``neuronperf.benchmarking`` names (``npf.benchmarking``): its
constants, :func:`benchmark`, :func:`compile`, :func:`set_verbosity`,
:func:`get_instance_type`, and :class:`Benchmarker`: one model copy in a thread of
this process that runs until :meth:`Benchmarker.stop`.

A :class:`Benchmarker` is npf's own copy (:mod:`npf_core.child.benchmarker`, what an
``inline`` start runs), driven over its wire from the thread: load, set-up, warm-up,
then the workers call the model until the stop; every call's stamps are kept (up to
:data:`~npf_core.neuronperf.api.KEEP_CALLS`), so its timers are NeuronPerf's."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from npf_core.neuronperf.api import BENCHMARK_SECS, KEEP_CALLS, benchmark, set_verbosity
from npf_core.neuronperf.compiling import compile
from npf_core.neuronperf.reports import TIMER_STAGES, kept_timers
from npf_core.neuronperf.timing import Timer

__all__ = [
    "BENCHMARK_SECS",
    "ERROR",
    "SUPPORTED_DEVICE_TYPES",
    "Benchmarker",
    "benchmark",
    "compile",
    "get_instance_type",
    "run_benchmarker",
    "set_verbosity",
]

ERROR = "error"
SUPPORTED_DEVICE_TYPES = ["neuron", "cpu", "cuda", "gpu"]
_FAR_S = 365 * 24 * 3600.0  # a Benchmarker runs until stop(): its deadline is never reached
_REPLY_S = 600.0  # how long a step of the copy (load, warm-up, the result) may take


def get_instance_type() -> str | None:
    """This machine's EC2 instance type, or None off EC2 (IMDSv2)."""
    from npf_core.results.imds import instance_type

    return instance_type()


class Benchmarker(threading.Thread):
    """One model copy, in a thread of this process, until :meth:`stop`.

    ``load_fn(model_filename, device_id=device_id)`` returns the model; ``inputs`` is
    the one input each call gets (a tuple is several positional inputs);
    ``workers_per_model`` threads call the model. After :meth:`stop`, ``status`` is
    ``"finished"`` (or ``"error"``, with ``error`` set), ``n_infs`` holds each worker's
    calls, and the ``*_timer(s)`` attributes NeuronPerf's timers."""

    def __init__(
        self,
        id: int,  # noqa: A002 - NeuronPerf's name
        device_id: int,
        load_fn: Callable[..., Any],
        model_filename: str,
        inputs: Any,
        workers_per_model: int,
        env_setup_fn: Callable[..., Any] | None = None,
        setup_fn: Callable[..., Any] | None = None,
        preprocess_fn: Callable[..., Any] | None = None,
        postprocess_fn: Callable[..., Any] | None = None,
        dataset_loader_fn: Callable[..., Any] | None = None,
        model_class_name: str | None = None,
        model_class_file: str | None = None,
    ) -> None:
        super().__init__(name=f"npf-benchmarker-{id}", daemon=True)
        self.id = id
        self.device_id = device_id
        self.load_fn = load_fn
        self.model_filename = model_filename
        self.inputs = inputs
        self.workers_per_model = int(workers_per_model)
        self.env_setup_fn = env_setup_fn
        self.setup_fn = setup_fn
        self.preprocess_fn = preprocess_fn
        self.postprocess_fn = postprocess_fn
        self.dataset_loader_fn = dataset_loader_fn
        self.model_class_name = model_class_name
        self.model_class_file = model_class_file
        self.model: Any = None
        self.process_id = os.getpid()
        self.status = "ready"
        self.error: str | None = None
        self.benchmarking = False
        self.n_infs = [0] * self.workers_per_model
        self.benchmark_timer = Timer()
        empty = {stage: [Timer() for _ in range(1 if stage in TIMER_STAGES[:5] else self.workers_per_model)]
                 for stage in TIMER_STAGES}  # fmt: skip
        self._set_timers(empty)
        self._stop_requested = threading.Event()
        self._ran = False

    def _set_timers(self, timers: dict[str, list[Timer]]) -> None:
        first = {stage: (timers[stage] or [Timer()])[0] for stage in TIMER_STAGES[:5]}
        self.env_setup_timer, self.setup_timer, self.load_timer = first["env_setup"], first["setup"], first["load"]
        self.input_timer, self.warmup_timer = first["input"], first["warmup"]
        self.preprocess_timers = timers["preprocess"]
        self.infer_timers = timers["infer"]
        self.postprocess_timers = timers["postprocess"]
        self.e2e_timers = timers["e2e"]
        self.worker_timers = timers["worker"]

    # -- the thread ------------------------------------------------------------

    def run(self) -> None:
        if self._ran:
            raise RuntimeError("a Benchmarker runs once")
        self._ran = True
        self.status = "running"
        self.benchmarking = True
        self.benchmark_timer.start()
        try:
            self._drive()
            self.status = "finished"
        except Exception as exc:  # noqa: BLE001 - kept on the object, as NeuronPerf does
            self.status = ERROR
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.benchmark_timer.stop()
            self.benchmarking = False

    def stop(self) -> None:
        """Stop the workers, wait for the copy's result."""
        self._stop_requested.set()
        if self.is_alive():
            self.join()

    def _drive(self) -> None:
        import npf_core.wire.protocol as pr
        from npf_core.child.benchmarker import serve
        from npf_core.plugin.manager import get_plugins
        from npf_core.spec.schema import DatasetSpec, DeviceSpec

        objects = self._objects()
        job = pr.Job(
            config_id=f"benchmarker-{self.id}", copy_index=self.id, n_models=1, workers=self.workers_per_model,
            batch_size=1, pipeline_size=1, framework="python", model_kind="target", model_ref="<object:model>",
            device=DeviceSpec(type="cpu"), load_mode="closed", warmup_iterations=1, warmup_s=0.0,
            window_ns=1_000_000_000, keep_calls=KEEP_CALLS * self.workers_per_model,
            dataset=DatasetSpec(plugin="objects", options={"examples": ["<object:inputs>"]}, loop=True),
            preprocess="<object:preprocess>" if self.preprocess_fn else None,
            postprocess="<object:postprocess>" if self.postprocess_fn else None,
            setup="<object:setup>" if self.setup_fn else None,
            env_setup="<object:env_setup>" if self.env_setup_fn else None,
        )  # fmt: skip
        ours, theirs = socket.socketpair()
        copy = threading.Thread(target=serve, args=(theirs, objects, get_plugins()), kwargs={"inline": True},
                                name=f"npf-benchmarker-{self.id}-copy", daemon=True)  # fmt: skip
        copy.start()
        channel = pr.Channel(ours)
        try:
            self._expect(channel, pr.Hello)
            channel.send(pr.Setup(job=job))
            ready = self._expect(channel, pr.Ready)
            now = time.perf_counter_ns()
            channel.send(pr.Go(go_at_ns=now, stop_at_ns=now + int(_FAR_S * 1e9)))
            while not self._stop_requested.wait(0.05):
                pass
            channel.send(pr.Stop(reason="stop"))
            result = self._expect(channel, pr.Result)
        finally:
            ours.close()
            copy.join(_REPLY_S)
            theirs.close()
        self.n_infs = [c.completed for c in result.calls] or [result.completed]
        self._set_timers(kept_timers([ready], [result]))

    def _expect(self, channel: Any, kind: type) -> Any:
        import npf_core.wire.protocol as pr

        deadline = time.monotonic() + _REPLY_S
        while True:
            msg = channel.recv(max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise TimeoutError(f"the copy sent no {kind.__name__} within {_REPLY_S:g} s")
            if isinstance(msg, pr.Failed):
                raise RuntimeError(f"{msg.stage}: {msg.type}: {msg.message}")
            if isinstance(msg, kind):
                return msg

    def _objects(self) -> dict[str, Any]:
        bench = self

        def load() -> Any:
            bench.model = bench.load_fn(bench.model_filename, device_id=bench.device_id)
            return bench.model

        config = {"model_filename": self.model_filename, "device_id": self.device_id,
                  "workers_per_model": self.workers_per_model}  # fmt: skip
        objects: dict[str, Any] = {
            "<object:model>": load,
            "<object:inputs>": self.inputs if isinstance(self.inputs, tuple) else (self.inputs,),
        }
        if self.preprocess_fn:
            objects["<object:preprocess>"] = self.preprocess_fn
        if self.postprocess_fn:
            objects["<object:postprocess>"] = self.postprocess_fn
        if self.setup_fn:
            setup_fn = self.setup_fn
            objects["<object:setup>"] = lambda i, job, model: setup_fn(self.id, config, model)
        if self.env_setup_fn:
            env_setup_fn = self.env_setup_fn
            objects["<object:env_setup>"] = lambda i, job: env_setup_fn(self.id, config)
        return objects

    # -- what it measured ------------------------------------------------------

    def results(self) -> dict[str, Any]:
        """NeuronPerf's per-benchmarker results (RuntimeError while it runs)."""
        if self.benchmarking:
            raise RuntimeError("the benchmarker is still running; stop() it first")
        return {
            "id": self.id,
            "device_id": self.device_id,
            "workers_per_model": self.workers_per_model,
            "n_infs": list(self.n_infs),
            "status": self.status,
            "process_id": self.process_id,
            "total_s": float(self.benchmark_timer.total_duration("s")),
            "timers": {
                "env_setup": [self.env_setup_timer], "setup": [self.setup_timer], "load": [self.load_timer],
                "input": [self.input_timer], "warmup": [self.warmup_timer], "preprocess": self.preprocess_timers,
                "infer": self.infer_timers, "postprocess": self.postprocess_timers, "e2e": self.e2e_timers,
                "worker": self.worker_timers,
            },
        }  # fmt: skip


def run_benchmarker(benchmarker: Benchmarker, duration: float, pipe: Any = None) -> dict[str, Any]:
    """Run ``benchmarker`` for ``duration`` seconds (its load and warm-up included, as
    NeuronPerf) and return its results (also sent on ``pipe`` when given)."""
    benchmarker.start()
    deadline = time.monotonic() + float(duration)
    while benchmarker.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    benchmarker.stop()
    results = benchmarker.results()
    if pipe is not None:
        pipe.send(results)
    return results
