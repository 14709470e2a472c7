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
import anyio.to_thread
import msgspec
import psutil

import npf_core.plugin.events as ev
import npf_core.supervisor.limits as limits
import npf_core.supervisor.lineage as lineage
import npf_core.supervisor.processes as processes
import npf_core.wire.protocol as pr
from npf_core.errors import ConfigFailure, MachineLimit, MetricError, ProtocolError, ZygoteFailed
from npf_core.evaluation.runner import apply_evaluation, eval_job
from npf_core.log import get_logger
from npf_core.plugin.hookspecs import Device
from npf_core.plugin.manager import Plugins
from npf_core.results.report import ErrorInfo, Report, build_report, error_report
from npf_core.results.stats import windows_stable
from npf_core.results.telemetry import TelemetryResult, apply_telemetry
from npf_core.spec.config import RunConfig
from npf_core.spec.schema import Capacity, LoadedSpec, duration_bounds
from npf_core.supervisor.capacity import CLOSED_CALLS, CapacityOutcome, CapacitySearch, StopRule
from npf_core.supervisor.copy_output import CopyOutput
from npf_core.supervisor.copy_pool import CopyPool
from npf_core.supervisor.processes import Child
from npf_core.supervisor.resources import ps_processes, sample_resources
from npf_core.supervisor.telemetry import TelemetryHub
from npf_core.supervisor.zygote_keeper import ZygoteKeeper
from npf_core.wire.transfer import Payload

__all__ = ["GO_MARGIN_S", "GROUP_SIGNAL_WAIT_S", "ConfigRunner"]

logger = get_logger("npf_core.supervisor.run")
GO_MARGIN_S = 0.02
# Signals a terminal or a service manager sends to many processes at once. A
# benchmarker killed by one of these that npf did not send may have been hit by the
# same signal that is about to stop the supervisor: wait this long for that stop.
GROUP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGHUP, signal.SIGINT})
GROUP_SIGNAL_WAIT_S = 1.0
#: the pause after each copy start in which the event loop handles what came meanwhile (a signal)
SPAWN_YIELD_S = 0.001
#: how often the processes copies started are noted while they measure (npf_core.supervisor.lineage)
LINEAGE_PERIOD_S = 5.0


class ConfigRunner:
    """Runs one configuration at a time for a run. The supervisor owns the run
    (setup, the plan, events, results) and hands this what a configuration needs:
    the prepared spec, the probed device, the plugins, the zygote keeper, the payload
    of objects for fresh and zygote copies, the resolved metrics, where events go, and
    the run's telemetry sources (sampled once per window while a configuration measures)."""

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
        telemetry: TelemetryHub | None = None,
        copy_output: CopyOutput | None = None,
        pool: CopyPool | None = None,
    ) -> None:
        self.loaded = loaded
        self.spec = loaded.spec
        self.device = device
        self.plugins = plugins
        self._zygotes = zygotes
        self._payload = payload
        self._metrics = metrics
        self._emit = emit
        self.telemetry = telemetry
        #: what copies print: shown and kept in the run folder
        self.copy_output = copy_output
        #: copies kept between configurations (None: reuse_copies false, each is reaped with its configuration)
        self._pool = pool
        #: the EC2 instance type (None elsewhere), recorded in every report
        self.instance_type: str | None = None
        #: per configuration being measured (by plan index): calls each copy reported so far
        self._calls: dict[int, dict[int, int]] = {}
        #: with ``keep_calls``: config_id -> (each copy's Ready, each copy's Result), the
        #: kept calls' stamps in them (NeuronPerf's return_timers reads these)
        self.kept: dict[str, tuple[list[pr.Ready], list[pr.Result]]] = {}
        #: what one copy of this run takes, measured on the first copy that got ready
        self.cost: limits.CopyCost | None = None
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
            keep_calls=spec.keep_calls,
            reuse=self._pool is not None and self._pool.open,
            repeat=capacity,
            slo_ns=int(load.p99_ms * 1e6) if isinstance(load, Capacity) else 0,
        )

    def window_s(self) -> float:
        """The measurement window of every configuration of the run."""
        return self._window_s()

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
        kept: dict[int, Child] = {}  # idle copies this configuration reuses, until it holds them
        pool = self._pool if self._pool is not None and self._pool.open else None
        started = time.time()
        timestamps: dict[str, str] = {"start_dts": _dts(started)}
        resources: dict[str, list[float]] = {"cpu": [], "mem": [], "proc_cpu": [], "proc_rss": []}
        send, receive = anyio.create_memory_object_stream[tuple[Child, Any]](math.inf)
        # copies of a later configuration that load beside this one's (pool.ahead), on a wire of their own
        ahead: list[Child] = []
        asend, areceive = anyio.create_memory_object_stream[tuple[Child, Any]](math.inf)
        failure: ConfigFailure | None = None
        refused: MachineLimit | None = None
        results: list[pr.Result] = []
        sampled: TelemetryResult | None = None
        reaped = completed = False
        load_deadline = time.monotonic() + spec.timeouts.load_s
        capacity: CapacityOutcome | None = None
        try:
            async with anyio.create_task_group() as tg:
                try:
                    await self._check_room(config, children)  # with what the run's first copy took
                    zygote = None
                    assignments: list[dict[str, Any]] = []
                    if pool is not None:  # what each copy is given decides which kept copy fits it
                        assignments = [dict(device.assign(i, config.n_models, config.pipeline_size))
                                       for i in range(config.n_models)]  # fmt: skip
                        keys = pool.keys(config, assignments)
                        kept = await pool.take(keys)
                    for i in range(config.n_models):
                        if i == limits.UNMEASURED_COPIES and self.cost is None and config.start_method != "inline":
                            # nothing measured yet: the first copy, loaded and warm, tells
                            # what each of the others will take, before they start
                            await self._await_ready(config, children[:1], receive)
                            await self._check_room(config, children)
                        if pool is not None:
                            assignment = assignments[i]
                        else:
                            assignment = dict(device.assign(i, config.n_models, config.pipeline_size))
                        child = kept.pop(i, None)  # a copy that holds this model and share already
                        if child is None:
                            if config.start_method == "zygote" and zygote is None:
                                try:
                                    zygote = await self._zygotes.get(self.spec.timeouts.load_s)
                                except ZygoteFailed as exc:
                                    raise ConfigFailure(_zygote_error(exc)) from exc
                            child = self._start(config, i, assignment, zygote)
                        children.append(child)  # tracked at once: reaped whatever happens next
                        child.job = self._job(config, i, assignment)
                        if self.copy_output is not None:
                            child.on_output = _relay(self.copy_output, config.config_id, i)
                        tg.start_soon(processes.read_wire, child, send)
                        if child.out is not None:
                            tg.start_soon(processes.drain_output, child)
                        # a stop (Ctrl-C, SIGTERM, a caller's cancellation) is seen between
                        # any two starts: a start blocks the loop, and a signal takes a few
                        # rounds of it (wake-up fd, handler, receiver, cancel) that a bare
                        # checkpoint would not leave it
                        await anyio.sleep(SPAWN_YIELD_S)
                    if pool is not None:
                        for later, key in pool.ahead(keys):
                            if self.cost is None and later.n_models > limits.UNMEASURED_COPIES:
                                break  # what a copy takes is not known yet: that configuration starts its own
                            try:
                                await self._check_room(later, children)
                            except MachineLimit:
                                break  # refused when its turn comes, before it starts anything
                            if later.start_method == "zygote" and zygote is None:
                                try:
                                    zygote = await self._zygotes.get(self.spec.timeouts.load_s)
                                except ZygoteFailed:
                                    break  # the configuration that needs the copy reports it
                            await self._load_ahead(later, key, zygote, ahead, tg, asend)
                    results, capacity = await self._drive(index, total, config, children, receive, resources,
                                                          ahead=(ahead, areceive, load_deadline))  # fmt: skip
                except ConfigFailure as exc:
                    failure = exc
                except MachineLimit as exc:  # too many copies for this machine: the run stops (exit 2)
                    refused = exc
                except Exception as exc:  # a bug (npf's or a plugin's): this config fails, the sweep goes on
                    failure = _internal_failure(exc, "supervisor")
                tg.cancel_scope.cancel()
            completed = True
        finally:
            if self.telemetry is not None:
                sampled = self.telemetry.end()
            for stream in (send, receive, asend, areceive):
                stream.close()
            children.extend(kept.values())
            if failure is not None or refused is not None or pool is None or not completed:
                # failed, refused or interrupted (or no pool): every copy is reaped now, those loaded ahead too
                with anyio.CancelScope(shield=True):
                    await self._reap(children + ahead)
                reaped = True
            if self.copy_output is not None:
                for c in children:
                    self.copy_output.end(config.config_id, c.copy_index)
        calls = sum(self._calls.pop(index, {}).values())
        if refused is not None:
            raise refused
        if failure is None:
            readies = [_load_of(c) for c in children if c.ready is not None]
            if spec.keep_calls:
                self.kept[config.config_id] = (readies, list(results))
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
                report = apply_telemetry(report, sampled)
                if capacity is not None:
                    report = capacity.apply(report)
                if pool is not None and not reaped:
                    for c in children:  # a load done ahead is reported once, by this configuration
                        c.ahead_key, c.ahead_ready = None, None
                    pool.keep(children + ahead)  # for the next configurations (the supervisor trims the pool)
                return self._fork_note(config, report)
            except MetricError as exc:
                failure = ConfigFailure(ErrorInfo(type="MetricError", message=str(exc), traceback=exc.tb,
                                                  stage=f"metric {exc.key}"))  # fmt: skip
            except Exception as exc:
                failure = _internal_failure(exc, "report")
        if not reaped:  # the report failed: a configuration that failed keeps no copy
            with anyio.CancelScope(shield=True):
                await self._reap(children + ahead)
        return self._failure_report(config, failure, children, timestamps["start_dts"], calls)

    async def _load_ahead(
        self, later: RunConfig, key: Any, zygote: Any, ahead: list[Child], tg: Any, sink: Any
    ) -> None:
        """Start copy ``key.copy_index`` of a later configuration now, so that its load
        overlaps this configuration's loads (it only loads: Job.preload). One that
        cannot start is left to the configuration that needs it."""
        j = key.copy_index
        assignment = dict(self.device.assign(j, later.n_models, later.pipeline_size))
        try:
            child = self._start(later, j, assignment, zygote)
        except ConfigFailure as exc:
            logger.debug("a copy to load ahead did not start; it loads when needed", error=exc.info.message)
            return
        ahead.append(child)
        child.job = msgspec.structs.replace(self._job(later, j, assignment), preload=True)
        child.ahead_key = key
        tg.start_soon(processes.read_wire, child, sink)
        if child.out is not None:
            tg.start_soon(processes.drain_output, child)
        await processes.send(child, pr.Setup(job=child.job))  # read once it has said Hello

    async def _await_ahead(self, ahead: list[Child], receive: Any, deadline: float) -> None:
        """Copies loading ahead are loaded (idle) before GO, so that none loads while
        this configuration measures. One that fails, dies or is still loading at
        ``timeouts.load_s`` is reaped and forgotten: the configuration that needs it
        loads it again, and reports what goes wrong."""
        pending = {id(c) for c in ahead}
        while pending:
            item = await self._next(receive, deadline)
            if item is None:
                break
            child, msg = item
            if isinstance(msg, pr.Hello) and msg.protocol == pr.PROTOCOL_VERSION:
                child.hello = True
                continue
            if isinstance(msg, pr.Ready):
                child.ahead_ready = msg
            pending.discard(id(child))
        gone = [c for c in ahead if c.ahead_ready is None]
        if gone:
            logger.info("copies loading ahead for a later configuration were not ready; they load when needed",
                        copies=[c.copy_index for c in gone])  # fmt: skip
            ahead[:] = [c for c in ahead if c.ahead_ready is not None]
            with anyio.CancelScope(shield=True):
                await self._reap(gone)

    def _start(self, config: RunConfig, i: int, assignment: dict[str, Any], zygote: Any) -> Child:
        """Start copy ``i`` (it loads the model once it has its job)."""
        env = {k: str(v) for k, v in assignment.get("env", {}).items()}
        env.update(NPF_CONFIG_ID=config.config_id, NPF_COPY_INDEX=str(i))
        try:
            return processes.spawn(i, config.start_method, env, self.loaded.objects, self.plugins,
                                   zygote=zygote, payload=self._payload)  # fmt: skip
        except ZygoteFailed as exc:
            raise ConfigFailure(_zygote_error(exc)) from exc
        except OSError as exc:
            raise ConfigFailure(
                ErrorInfo(type=type(exc).__name__, message=f"cannot start benchmarker {i}: {exc}", stage="start-up")
            ) from exc

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
        self, config: RunConfig, failure: ConfigFailure, children: list[Child], start_dts: str, calls: int = 0
    ) -> Report:
        """The error report, completed once the children are reaped: how the child at
        fault ended (exit code or signal), the last of its output, and the calls the
        copies had completed (as their last progress said) before it failed."""
        info = failure.info
        child = failure.child
        if child is not None:
            changes: dict[str, Any] = {"output_tail": child.output_tail()}
            if info.exitcode is None and child.returncode is not None:
                changes["exitcode"] = child.returncode
                grace = self.spec.timeouts.grace_s
                if child.was_stopped:  # SIGTERM meant nothing to it until npf resumed it
                    how = "SIGKILL" if child.ended_by == "SIGKILL" else "SIGTERM"
                    changes["message"] = (
                        f"{info.message}; it was stopped, and npf resumed it (SIGCONT) to end it with {how}"
                    )
                elif child.ended_by == "SIGKILL":
                    changes["message"] = (
                        f"{info.message}; it ignored SIGTERM and was killed with SIGKILL after "
                        f"timeouts.grace_s = {grace:g} s"
                    )
                elif child.ended_by == "SIGTERM":
                    changes["message"] = f"{info.message}; stopped with SIGTERM"
            info = msgspec.structs.replace(info, **changes)
        hint = self.device.failure_hint(f"{info.message}\n{info.output_tail}")
        if hint and hint not in info.message:
            info = msgspec.structs.replace(info, message=f"{info.message} ({hint})")
        logger.debug("configuration failed", config=config.config_id, error=info.message)  # the console tells it
        loads = [r for r in (_load_of(c) for c in children if c.ready is not None) if not r.reused]
        extra: dict[str, Any] = {"reused_copies": sum(c.reused and c.ahead_ready is None for c in children)}
        if loads:
            extra["load_avg_ms"] = sum(r.load_ns for r in loads) / len(loads) / 1e6
        extra["instance_type"] = self.instance_type
        results = [c.result for c in children if c.result is not None]
        calls = max(calls, sum(r.completed for r in results))
        if calls:
            extra.update(total_calls=calls, total_infs=calls * config.batch_size)
        return error_report(config, info, start_dts=start_dts, stop_dts=_dts(time.time()), **extra)

    async def _check_room(self, config: RunConfig, children: list[Child]) -> None:
        """Refuse (MachineLimit) the copies of ``config`` not started yet when the
        machine cannot take them, at what the run's first copy took (or at least a
        copy's floor). Copies already started beside the first may still be loading:
        what they hold now is counted as free, and they as copies still to come.
        The process table and cgroup files are read in a worker thread."""
        if not children and (self.cost is None or config.n_models == 1):
            return  # the run's setup checked the floor; one copy is always tried
        cost = limits.floor_cost(config.start_method)
        if self.cost is not None:
            cost = cost.at_least(self.cost)
        pids = [c.pid for c in children[1:] if c.pid is not None]
        room = await anyio.to_thread.run_sync(_room_beside, pids, config.workers_per_model)
        limits.check_copies(config, cost, room, started=min(1, len(children)))

    async def _measure_copy(self, child: Child, config: RunConfig) -> None:
        """What a copy takes, once loaded and warm: kept (the largest seen) for the
        checks of this run's next configurations. Read in a worker thread."""
        if child.pid is None or child.copy_index != 0:
            return
        cost = await anyio.to_thread.run_sync(limits.copy_cost, child.pid, config.workers_per_model)
        if cost is not None:
            self.cost = cost if self.cost is None else self.cost.at_least(cost)

    async def _reap(self, children: list[Child]) -> None:
        """Call under a shielded scope: every copy ended and reaped, then whatever
        they started that is still running (see :mod:`npf_core.supervisor.lineage`)."""
        grace = self.spec.timeouts.grace_s
        for c in children:  # the ones to be ended are frozen (at once) while what they started is noted
            c.freeze()
        await anyio.to_thread.run_sync(lineage.note, children)
        async with anyio.create_task_group() as tg:
            for c in children:
                tg.start_soon(c.reap, grace)
        await lineage.end_left(children, grace)

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
        ahead: tuple[list[Child], Any, float] | None = None,
    ) -> tuple[list[pr.Result], CapacityOutcome | None]:
        """The phases of a configuration once its copies are started (and the copies
        of a later one it loads ahead, ready before GO); with load mode "capacity",
        the search's probes on the loaded copies."""
        await self._await_ready(config, children, receive)
        if self._capacity is not None:
            return await self._search(index, total, config, children, receive, resources, self._capacity)
        if ahead is not None and ahead[0]:
            await self._await_ahead(*ahead)
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
        """Hello, Setup, Ready from every copy: all within ``timeouts.load_s``. A
        copy kept from an earlier configuration has its model: it gets Reconfigure
        (its next job) and answers Ready once warmed up again."""
        t = self.spec.timeouts
        deadline = time.monotonic() + t.load_s
        pending = {id(c) for c in children if c.ready is None}  # the first copy may be ready already
        for c in children:
            if c.reused and id(c) in pending and not c.reconfigured:
                c.reconfigured = True
                await processes.send(c, pr.Reconfigure(job=c.job))
        while pending:
            item = await self._next(receive, deadline)
            if item is None:
                slow = _slowest([c for c in children if id(c) in pending])
                stage = "warmup" if slow.loaded else "load"
                hung = "is stopped (SIGSTOP or SIGTSTP)" if slow.stopped() else f"{stage} hung?"
                raise self._fail(
                    slow, config, stage, f"not ready after timeouts.load_s = {t.load_s:g} s ({hung})",
                    type="LoadTimeout",
                )  # fmt: skip
            child, msg = item
            stage = "warmup" if child.loaded or child.reused else "load"
            if msg is None:
                raise await self._died(child, config, stage if child.hello else "start-up")
            self._check(child, msg, config, stage)
            if isinstance(msg, pr.Hello):
                if msg.protocol != pr.PROTOCOL_VERSION:
                    raise self._fail(
                        child, config, "start-up", f"speaks protocol {msg.protocol}, not {pr.PROTOCOL_VERSION}",
                        type="ProtocolError",
                    )  # fmt: skip
                child.hello = True
                await processes.send(child, pr.Setup(job=child.job))
            elif isinstance(msg, pr.Loaded):
                child.loaded = True
            elif isinstance(msg, pr.Ready):
                child.ready = msg
                pending.discard(id(child))
                await self._measure_copy(child, config)
                if not pending:
                    load_s = max(c.ready.load_ns for c in children if c.ready is not None) / 1e9
                    logger.info("copies ready", config=config.config_id, copies=len(children),
                                start_method=config.start_method, load_s=round(load_s, 3))  # fmt: skip
            else:
                raise self._fail(child, config, "load", f"sent {type(msg).__name__} before Ready", type="ProtocolError")

        await anyio.to_thread.run_sync(lineage.note, children)  # what they started while loading

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
        hub = self.telemetry
        if hub is not None:
            hub.begin(config, children, clock.mono_go)
        # device telemetry: once per measurement window, at the copies' window ends, up
        # to the deadline (or an early stop): not while waiting for late results
        next_tick = clock.mono_go + clock.window_s if hub is not None else math.inf
        last_tick = clock.mono_go + clock.max_s + clock.window_s / 2
        watch = _Progress(len(children))
        calls = self._calls[index] = {}  # what a failure report counts, should a copy fail
        pending = {id(c) for c in children}
        next_note = clock.mono_go + LINEAGE_PERIOD_S
        while pending:
            item = await self._next(receive, min(clock.result_deadline, next_sample, next_tick))
            now = time.monotonic()
            if now >= next_sample:
                sample_resources(procs, resources)
                next_sample += period
            if watch.stopped:
                last_tick = min(last_tick, now + clock.window_s / 2)
            if now >= next_tick:
                assert hub is not None
                if now <= last_tick:
                    hub.tick(now)
                # a late loop skips the windows it missed rather than sampling them at once
                next_tick += clock.window_s * max(1, math.floor((now - next_tick) / clock.window_s) + 1)
                if next_tick > last_tick:
                    next_tick = math.inf
            if time.monotonic() >= next_note:  # what the copies start while measuring
                await anyio.to_thread.run_sync(lineage.note, children)
                next_note = time.monotonic() + LINEAGE_PERIOD_S
            if item is None:
                if time.monotonic() < clock.result_deadline:
                    continue
                slow = _slowest([c for c in children if id(c) in pending])
                why = "it is stopped (SIGSTOP or SIGTSTP)" if slow.stopped() else "a call is still running"
                raise self._fail(
                    slow, config, "stop", f"no result {t.stop_s:g} s after the deadline (timeouts.stop_s): {why}",
                    type="StopTimeout",
                )  # fmt: skip
            child, msg = item
            if msg is None:
                if child.result is not None:
                    continue  # finished and exited: normal
                raise await self._died(child, config, "measurement")
            self._check(child, msg, config, "call")
            if isinstance(msg, pr.Progress):
                calls[id(child)] = msg.completed
                rate = watch.add(msg, config.batch_size, clock.window_s)
                if rate is not None:
                    await self._on_window(index, total, config, children, msg.window, watch, rate, clock, rule)
            elif isinstance(msg, pr.Result):
                child.result = msg
                pending.discard(id(child))
                if not pending and hub is not None and hub.windows_sampled == 0:
                    hub.tick(time.monotonic())  # a measurement shorter than a window: one sample still
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


def _slowest(pending: list[Child]) -> Child:
    """The copy to blame for a timeout: a stopped one first (it is why), else the first."""
    return next((c for c in pending if c.stopped()), pending[0])


def _room_beside(pids: list[int], workers: int) -> limits.Headroom:
    """The machine's headroom, with what the copies ``pids`` hold now counted as free."""
    room = limits.headroom()
    tasks, memory = room.tasks, room.memory
    for pid in pids:
        now = limits.copy_cost(pid, workers)
        if now is not None:
            tasks = None if tasks is None else tasks + now.tasks(workers)
            memory = None if memory is None else memory + now.memory
    return limits.Headroom(tasks=tasks, tasks_by=room.tasks_by, memory=memory, memory_by=room.memory_by)
def _load_of(child: Child) -> pr.Ready:
    """A copy's Ready as its configuration reports it: a copy loaded ahead for this
    configuration counts as loaded by it, with that load's figures."""
    assert child.ready is not None
    first = child.ahead_ready
    if first is None:
        return child.ready
    return msgspec.structs.replace(child.ready, load_ns=first.load_ns, setup_ns=first.setup_ns,
                                   env_setup_ns=first.env_setup_ns, reused=False)  # fmt: skip


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


def _relay(out: CopyOutput, config_id: str, copy_index: int) -> Callable[[bytes], None]:
    def feed(chunk: bytes) -> None:
        out.feed(config_id, copy_index, chunk)

    return feed
