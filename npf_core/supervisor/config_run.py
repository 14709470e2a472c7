"""One configuration of a run (supervisor side): start the copies (zygote, fork,
fresh or inline), wait for every READY, send GO with one common start time, watch
progress and stop at the deadline (or early: stability, enough calls, a stop),
collect the RESULTs, build the report, and reap every child on every exit path.
A fault in any step becomes a failed configuration with its reason.

:class:`ConfigRunner` is the part of :class:`~npf_core.supervisor.run.Supervisor` that
does this; the supervisor owns the run (setup, the plan, events, results)."""

from __future__ import annotations

import math
import signal
import time
import traceback
import zlib
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import msgspec
import psutil
import structlog

import npf_core.plugin.events as ev
import npf_core.supervisor.processes as processes
import npf_core.wire.protocol as pr
from npf_core.errors import ConfigFailure, MetricError, ProtocolError, ZygoteFailed
from npf_core.evaluation.runner import apply_evaluation, eval_job
from npf_core.plugin.hookspecs import Device
from npf_core.plugin.manager import Plugins
from npf_core.results.report import ErrorInfo, Report, build_report, error_report
from npf_core.results.stats import windows_stable
from npf_core.spec.config import RunConfig
from npf_core.spec.schema import Capacity, LoadedSpec, duration_bounds
from npf_core.supervisor.capacity import CLOSED_CALLS, CapacityOutcome, CapacitySearch, StopRule
from npf_core.supervisor.processes import Child
from npf_core.supervisor.resources import ps_processes, sample_resources
from npf_core.supervisor.zygote_keeper import ZygoteKeeper
from npf_core.wire.transfer import Payload

__all__ = ["GO_MARGIN_S", "GROUP_SIGNAL_WAIT_S", "ConfigRunner"]

logger = structlog.get_logger("npf_core.supervisor.run")
GO_MARGIN_S = 0.02
# Signals a terminal or a service manager sends to many processes at once. A
# benchmarker killed by one of these that npf did not send may have been hit by the
# same signal that is about to stop the supervisor: wait this long for that stop.
GROUP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGHUP, signal.SIGINT})
GROUP_SIGNAL_WAIT_S = 1.0


class ConfigRunner:
    """Runs one configuration at a time for a run. The supervisor owns the run
    (setup, the plan, events, results) and hands this what a configuration needs:
    the prepared spec, the probed device, the plugins, the zygote keeper, the payload
    of objects for fresh and zygote copies, the resolved metrics, and where events go."""

    def __init__(
        self,
        loaded: LoadedSpec,
        device: Device,
        plugins: Plugins,
        *,
        zygotes: ZygoteKeeper,
        payload: Payload | None,
        metrics: dict[str, Any],
        emit: Callable[[ev.Event], None],
    ) -> None:
        self.loaded = loaded
        self.spec = loaded.spec
        self.device = device
        self.plugins = plugins
        self._zygotes = zygotes
        self._payload = payload
        self._metrics = metrics
        self._emit = emit
        #: the EC2 instance type (None elsewhere), recorded in every report
        self.instance_type: str | None = None
        #: load mode "capacity": the search, across the run's configurations
        self._capacity = CapacitySearch(self.spec.load) if isinstance(self.spec.load, Capacity) else None

    def _job(self, config: RunConfig, copy_index: int, assignment: dict[str, Any]) -> pr.Job:
        spec = self.spec
        inputs = None
        if spec.inputs is not None:
            entry = spec.inputs[config.input_idx]
            items = entry if isinstance(entry, list) else [entry]
            inputs = list(items)
        load = spec.load
        mode = type(load).__name__.lower()
        rate = getattr(load, "rate", 0.0)
        capacity = isinstance(load, Capacity)
        if capacity:
            mode = "closed"  # until a Go names a probe's load
        return pr.Job(
            config_id=config.config_id,
            copy_index=copy_index,
            n_models=config.n_models,
            workers=config.workers_per_model,
            batch_size=config.batch_size,
            pipeline_size=config.pipeline_size,
            input_idx=config.input_idx,
            framework=config.framework,
            model_kind=config.model_kind,
            model_ref=config.model_ref,
            model_options=spec.model.options,
            base_dir=str(self.loaded.base_dir),
            inputs=inputs,
            dataset=spec.dataset,
            device=self.loaded.device,
            assignment=pr.AssignmentBlock.of(assignment),
            preprocess=spec.preprocess,
            postprocess=spec.postprocess,
            setup=spec.setup,
            env_setup=spec.env_setup,
            load_mode=mode,
            rate_per_copy=rate / config.n_models if rate else 0.0,
            warmup_iterations=spec.warmup.iterations,
            warmup_s=spec.warmup.seconds,
            window_ns=int(self._window_s() * 1e9),
            seed=zlib.crc32(config.config_id.encode()),
            evaluate=eval_job(self.loaded),
            repeat=capacity,
            slo_ns=int(load.p99_ms * 1e6) if isinstance(load, Capacity) else 0,
        )

    def _window_s(self) -> float:
        """The measurement window: the spec's, but at least five per configuration
        (eight per capacity probe: the batch means its decision needs)."""
        per = 8 if self._capacity is not None else 5
        return max(0.01, min(self.spec.window_s, self._bounds()[0] / per))

    def _bounds(self) -> tuple[float, float, int | None]:
        """``(min_s, max_s, calls)`` of a configuration: ``duration_s`` (a number, or
        "auto" until the p99 is supported), or for the dataset once (evaluate mode,
        ``duration_s`` 0) ``evaluate.timeout_s`` as the deadline."""
        if self.spec.dataset_once:
            timeout = self.spec.evaluate.timeout_s if self.spec.evaluate is not None else 0.0
            return timeout, timeout, None
        load = self.spec.load
        if isinstance(load, Capacity):  # the closed-loop probe's; duration_s is not used
            return load.probe_s, load.probe_max_s, CLOSED_CALLS
        return duration_bounds(self.spec.duration_s)

    async def run(self, index: int, total: int, config: RunConfig) -> Report:
        """Run ``config`` (the ``index``-th of ``total``) and return its report; a
        failure is an error report, never an exception."""
        spec = self.spec
        device = self.device
        assert device is not None
        children: list[Child] = []
        started = time.time()
        timestamps: dict[str, str] = {"start_dts": _dts(started)}
        resources: dict[str, list[float]] = {"cpu": [], "mem": [], "proc_cpu": [], "proc_rss": []}
        send, receive = anyio.create_memory_object_stream[tuple[Child, Any]](math.inf)
        failure: ConfigFailure | None = None
        results: list[pr.Result] = []
        capacity: CapacityOutcome | None = None
        try:
            async with anyio.create_task_group() as tg:
                try:
                    zygote = None
                    if config.start_method == "zygote":
                        try:
                            zygote = await self._zygotes.get(self.spec.timeouts.load_s)
                        except ZygoteFailed as exc:
                            raise ConfigFailure(_zygote_error(exc)) from exc
                    for i in range(config.n_models):
                        assignment = dict(device.assign(i, config.n_models, config.pipeline_size))
                        env = {k: str(v) for k, v in assignment.get("env", {}).items()}
                        env.update(NPF_CONFIG_ID=config.config_id, NPF_COPY_INDEX=str(i))
                        try:
                            child = processes.spawn(i, config.start_method, env, self.loaded.objects, self.plugins,
                                                    zygote=zygote, payload=self._payload)  # fmt: skip
                        except ZygoteFailed as exc:
                            raise ConfigFailure(_zygote_error(exc)) from exc
                        except OSError as exc:
                            raise ConfigFailure(
                                ErrorInfo(type=type(exc).__name__, message=f"cannot start benchmarker {i}: {exc}",
                                          stage="start-up")
                            ) from exc
                        children.append(child)  # tracked at once: reaped whatever happens next
                        child.job = self._job(config, i, assignment)
                        tg.start_soon(processes.read_wire, child, send)
                        if child.out is not None:
                            tg.start_soon(processes.drain_output, child)
                    results, capacity = await self._drive(index, total, config, children, receive, resources)
                except ConfigFailure as exc:
                    failure = exc
                except Exception as exc:  # a bug (npf's or a plugin's): this config fails, the sweep goes on
                    failure = _internal_failure(exc, "supervisor")
                tg.cancel_scope.cancel()
        finally:
            send.close()
            receive.close()
            with anyio.CancelScope(shield=True):
                await self._reap(children)
        if failure is None:
            readies = [c.ready for c in children if c.ready is not None]
            load = spec.load
            try:
                report = build_report(
                    config,
                    results,
                    readies,
                    window_s=self._window_s(),
                    load_mode=type(load).__name__.lower(),
                    target_rate=getattr(load, "rate", None),
                    resources=resources,
                    cost_per_hour=spec.cost_per_hour,
                    start_dts=timestamps["start_dts"],
                    stop_dts=_dts(time.time()),
                    devices=[c.job.assignment.label for c in children],
                    instance_type=self.instance_type,
                )
                if spec.evaluate is not None:
                    report = apply_evaluation(report, results, self.loaded, self._metrics)
                if capacity is not None:
                    report = capacity.apply(report)
                return self._fork_note(config, report)
            except MetricError as exc:
                failure = ConfigFailure(ErrorInfo(type="MetricError", message=str(exc), traceback=exc.tb,
                                                  stage=f"metric {exc.key}"))  # fmt: skip
            except Exception as exc:
                failure = _internal_failure(exc, "report")
        return self._failure_report(config, failure, children, timestamps["start_dts"])

    def _fork_note(self, config: RunConfig, report: Report) -> Report:
        """Copies forked from the caller inherit its state: say so in the report
        when the framework finds the caller has used it (Framework.fork_note)."""
        if config.start_method != "fork":
            return report
        note = self.plugins.framework(self.spec.model.framework, self.spec.model.options).fork_note()
        if not note:
            return report
        logger.warning("start_method 'fork' after the caller used the framework", note=note)
        return msgspec.structs.replace(report, valid=False, validity_reasons=[*report.validity_reasons, note])

    def _failure_report(
        self, config: RunConfig, failure: ConfigFailure, children: list[Child], start_dts: str
    ) -> Report:
        """The error report, completed once the children are reaped: how the child at
        fault ended (exit code or signal) and the last of its output."""
        info = failure.info
        child = failure.child
        if child is not None:
            changes: dict[str, Any] = {"output_tail": child.output_tail()}
            if info.exitcode is None and child.returncode is not None:
                changes["exitcode"] = child.returncode
                if child.ended_by == "SIGKILL":
                    grace = self.spec.timeouts.grace_s
                    changes["message"] = (
                        f"{info.message}; it ignored SIGTERM and was killed with SIGKILL after "
                        f"timeouts.grace_s = {grace:g} s"
                    )
                elif child.ended_by == "SIGTERM":
                    changes["message"] = f"{info.message}; stopped with SIGTERM"
            info = msgspec.structs.replace(info, **changes)
        logger.warning("configuration failed", config=config.config_id, error=info.message)
        readies = [c.ready for c in children if c.ready is not None]
        extra: dict[str, Any] = {}
        if readies:
            extra["load_avg_ms"] = sum(r.load_ns for r in readies) / len(readies) / 1e6
        extra["instance_type"] = self.instance_type
        return error_report(config, info, start_dts=start_dts, stop_dts=_dts(time.time()), **extra)

    async def _reap(self, children: list[Child]) -> None:
        grace = self.spec.timeouts.grace_s
        async with anyio.create_task_group() as tg:
            for c in children:
                tg.start_soon(c.reap, grace)

    def _fail(self, child: Child, config: RunConfig, stage: str, what: str, **kw: Any) -> ConfigFailure:
        return ConfigFailure(
            ErrorInfo(message=f"{_who(child, config)}: {what}", stage=stage, output_tail=child.output_tail(), **kw),
            child,
        )

    async def _died(self, child: Child, config: RunConfig, stage: str) -> ConfigFailure:
        """The wire hung up before a result: wait (bounded) for the exit status and the
        rest of the output, so that the report says how it died and what it said."""
        await child._wait(self.spec.timeouts.grace_s)
        code = child.returncode
        stray = code is not None and -code in GROUP_SIGNALS and not child.ended_by
        if stray:
            # A service manager that signals every process of its cgroup (systemd,
            # kubernetes) reaches the benchmarkers and the supervisor at once, and their
            # death may be seen first. A checkpoint lets the supervisor's own stop cancel
            # this, so that the configuration is dropped as interrupted (and rerun by
            # --resume) rather than recorded as failed.
            logger.debug("benchmarker killed by a signal npf did not send; waiting for a stop", pid=child.pid)
            await anyio.sleep(GROUP_SIGNAL_WAIT_S)
        with anyio.move_on_after(0.5):
            while not child.out_closed and child.out is not None:
                await anyio.sleep(0.005)
        how = child.describe_exit() + (" (not sent by npf)" if stray else "")
        return self._fail(
            child, config, stage, f"benchmarker {how} during {stage}", type="BenchmarkerDied", exitcode=code
        )

    async def _next(self, receive: Any, deadline: float) -> tuple[Child, Any] | None:
        with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
            return await receive.receive()
        return None

    def _check(self, child: Child, msg: Any, config: RunConfig, stage: str) -> None:
        if isinstance(msg, ProtocolError):
            raise self._fail(child, config, stage, f"sent garbage on the wire: {msg}", type="ProtocolError")
        if isinstance(msg, Exception):
            raise _internal_failure(msg, stage, f"{_who(child, config)}: ")
        if isinstance(msg, pr.Failed):
            child.failed = True
            raise self._fail(
                child, config, msg.stage or stage, f"{msg.stage or stage}: {msg.type}: {msg.message}",
                type=msg.type, traceback=msg.traceback,
            )  # fmt: skip

    async def _drive(
        self,
        index: int,
        total: int,
        config: RunConfig,
        children: list[Child],
        receive: Any,
        resources: dict[str, list[float]],
    ) -> tuple[list[pr.Result], CapacityOutcome | None]:
        """The phases of a configuration once its copies are started; with load mode
        "capacity", the search's probes on the loaded copies."""
        await self._await_ready(config, children, receive)
        if self._capacity is not None:
            return await self._search(index, total, config, children, receive, resources, self._capacity)
        clock = await self._go(children)
        await self._measure(index, total, config, children, receive, resources, clock)
        return [c.result for c in children if c.result is not None], None

    async def _search(
        self, index: int, total: int, config: RunConfig, children: list[Child], receive: Any,
        resources: dict[str, list[float]], search: CapacitySearch,
    ) -> tuple[list[pr.Result], CapacityOutcome]:  # fmt: skip
        """The capacity search: probes on the same loaded copies, one Go each (the
        closed loop's resource samples are the report's), then Stop: the copies exit."""

        async def probe(
            mode: str, rate: float, bounds: tuple[float, float, int | None], rule: StopRule | None
        ) -> tuple[list[pr.Result], list[tuple[int, int]]]:
            for c in children:
                c.result = None
            clock = await self._go(children, bounds, mode, rate / config.n_models)
            samples = resources if mode == "closed" else {k: [] for k in resources}
            watch = await self._measure(index, total, config, children, receive, samples, clock, rule)
            return [c.result for c in children if c.result is not None], watch.window_counts()

        results, outcome = await search.search(config, probe, self._window_s())
        for c in children:
            await processes.send(c, pr.Stop(reason=pr.STOP_DONE))
        return results, outcome

    async def _await_ready(self, config: RunConfig, children: list[Child], receive: Any) -> None:
        """Hello, Setup, Ready from every copy: all within ``timeouts.load_s``."""
        t = self.spec.timeouts
        deadline = time.monotonic() + t.load_s
        pending = {id(c) for c in children}
        while pending:
            item = await self._next(receive, deadline)
            if item is None:
                slow = next(c for c in children if id(c) in pending)
                raise self._fail(
                    slow, config, "load", f"not ready after timeouts.load_s = {t.load_s:g} s (load hung?)",
                    type="LoadTimeout",
                )  # fmt: skip
            child, msg = item
            stage = "load" if child.ready is None else "warmup"
            if msg is None:
                raise await self._died(child, config, "load" if child.hello else "start-up")
            self._check(child, msg, config, stage)
            if isinstance(msg, pr.Hello):
                if msg.protocol != pr.PROTOCOL_VERSION:
                    raise self._fail(
                        child, config, "start-up", f"speaks protocol {msg.protocol}, not {pr.PROTOCOL_VERSION}",
                        type="ProtocolError",
                    )  # fmt: skip
                child.hello = True
                await processes.send(child, pr.Setup(job=child.job))
            elif isinstance(msg, pr.Ready):
                child.ready = msg
                pending.discard(id(child))
            else:
                raise self._fail(child, config, "load", f"sent {type(msg).__name__} before Ready", type="ProtocolError")

    async def _go(
        self, children: list[Child], bounds: tuple[float, float, int | None] | None = None, load_mode: str = "",
        rate_per_copy: float = 0.0,
    ) -> _Clock:  # fmt: skip
        """GO: one common start time and one common deadline for every copy (a
        capacity probe's ``bounds`` and load, else the configuration's)."""
        min_s, max_s, enough_calls = bounds or self._bounds()  # "auto": until p99 is supported
        go_at = time.perf_counter_ns() + int(GO_MARGIN_S * 1e9)
        stop_at = go_at + int(max_s * 1e9)
        psutil.cpu_percent(None)
        for c in children:
            await processes.send(c, pr.Go(go_at_ns=go_at, stop_at_ns=stop_at, load_mode=load_mode,
                                          rate_per_copy=rate_per_copy))  # fmt: skip
        mono_go = time.monotonic() + GO_MARGIN_S
        return _Clock(window_s=self._window_s(), min_s=min_s, max_s=max_s, enough_calls=enough_calls,
                      mono_go=mono_go, result_deadline=mono_go + max_s + self.spec.timeouts.stop_s)  # fmt: skip

    async def _measure(
        self,
        index: int,
        total: int,
        config: RunConfig,
        children: list[Child],
        receive: Any,
        resources: dict[str, list[float]],
        clock: _Clock,
        rule: StopRule | None = None,
    ) -> _Progress:
        """Until every copy sent its Result: progress events, resource samples, an early
        stop (enough calls, stable windows, or a capacity probe's ``rule``), and a
        deadline for a call that hangs. Returns the per-window counts."""
        t = self.spec.timeouts
        procs = ps_processes(children)
        period = min(clock.window_s, 0.5)
        next_sample = clock.mono_go + period
        watch = _Progress(len(children))
        pending = {id(c) for c in children}
        while pending:
            item = await self._next(receive, min(clock.result_deadline, next_sample))
            if time.monotonic() >= next_sample:
                sample_resources(procs, resources)
                next_sample += period
            if item is None:
                if time.monotonic() < clock.result_deadline:
                    continue
                slow = next(c for c in children if id(c) in pending)
                raise self._fail(
                    slow, config, "stop",
                    f"no result {t.stop_s:g} s after the deadline (timeouts.stop_s): a call is still running",
                    type="StopTimeout",
                )  # fmt: skip
            child, msg = item
            if msg is None:
                if child.result is not None:
                    continue  # finished and exited: normal
                raise await self._died(child, config, "measurement")
            self._check(child, msg, config, "call")
            if isinstance(msg, pr.Progress):
                rate = watch.add(msg, config.batch_size, clock.window_s)
                if rate is not None:
                    await self._on_window(index, total, config, children, msg.window, watch, rate, clock, rule)
            elif isinstance(msg, pr.Result):
                child.result = msg
                pending.discard(id(child))
            else:
                raise self._fail(
                    child, config, "call", f"sent {type(msg).__name__} while measuring", type="ProtocolError"
                )
        return watch

    async def _on_window(
        self, index: int, total: int, config: RunConfig, children: list[Child], window: int, watch: _Progress,
        rate: float, clock: _Clock, rule: StopRule | None = None,
    ) -> None:  # fmt: skip
        """A measurement window completed by every copy: announce it, and stop early
        once the p99 is supported (duration "auto") or the windows are stable."""
        elapsed = (window + 1) * clock.window_s
        self._emit(
            ev.Progress(index=index, total=total, config=config, elapsed_s=elapsed, duration_s=clock.max_s,
                        completed=watch.completed(window), throughput=rate)
        )  # fmt: skip
        if watch.stopped:
            return
        reason = None
        if clock.enough_calls and elapsed >= clock.min_s and watch.completed(window) >= clock.enough_calls:
            reason = "enough-calls"  # duration_s "auto": the p99 is supported
        if reason is None and rule is not None:
            reason = rule(watch.window_counts(), elapsed)  # a capacity probe: its p99 decided?
        stab = self.spec.stability
        if reason is None and rule is None and stab is not None and elapsed >= stab.min_s and windows_stable(
            watch.rates, stab.windows, stab.tolerance
        ):
            reason = "stable"
        if reason is not None:
            watch.stopped = True
            for c in children:
                await processes.send(c, pr.Stop(reason=reason))


class _Clock(msgspec.Struct, frozen=True, kw_only=True):
    """A configuration's measurement clock, fixed at GO."""

    window_s: float
    min_s: float
    max_s: float
    enough_calls: int | None
    mono_go: float
    result_deadline: float


class _Progress:
    """The copies' per-window completion counts, and the throughput of each window
    that every copy has reported."""

    def __init__(self, n_copies: int) -> None:
        self.n = n_copies
        self.counts: dict[int, list[int]] = {}
        self.overs: dict[int, list[int]] = {}
        self.rates: list[float] = []
        self.stopped = False

    def completed(self, window: int) -> int:
        return sum(self.counts.get(window, []))

    def add(self, msg: pr.Progress, batch_size: int, window_s: float) -> float | None:
        counts = self.counts.setdefault(msg.window, [])
        counts.append(msg.completed)
        self.overs.setdefault(msg.window, []).append(msg.over)
        if len(counts) != self.n:
            return None
        prev = sum(self.counts.get(msg.window - 1, [0] * self.n))
        rate = (sum(counts) - prev) * batch_size / window_s
        self.rates.append(rate)
        return rate

    def window_counts(self) -> list[tuple[int, int]]:
        """(calls, calls over the job's slo_ns) in each window that every copy reported."""
        out: list[tuple[int, int]] = []
        prev_n = prev_x = 0
        for w in sorted(w for w, c in self.counts.items() if len(c) == self.n):
            n, x = sum(self.counts[w]), sum(self.overs[w])
            out.append((n - prev_n, x - prev_x))
            prev_n, prev_x = n, x
        return out


def _who(child: Child, config: RunConfig) -> str:
    return f"copy {child.copy_index} of {config.n_models}" + (f" (pid {child.pid})" if child.pid else "")


def _internal_failure(exc: Exception, stage: str, who: str = "") -> ConfigFailure:
    """A bug (npf's or a plugin's) met while running one configuration."""
    logger.error("internal error; the configuration is recorded as failed (traceback in its report)",
                 stage=stage, error=repr(exc))  # fmt: skip
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return ConfigFailure(
        ErrorInfo(type=type(exc).__name__, message=f"{who}unexpected error (a bug in npf or a plugin): {exc}",
                  traceback=tb, stage=stage)  # fmt: skip
    )


def _dts(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t)) + f".{int(t % 1 * 1000):03d}"


def _zygote_error(exc: ZygoteFailed) -> ErrorInfo:
    """A zygote that could not start or died: the configuration's error, at start-up."""
    return ErrorInfo(type=exc.type, message=exc.message, stage="start-up", traceback=exc.traceback,
                     output_tail=exc.output_tail, exitcode=exc.exitcode)  # fmt: skip
