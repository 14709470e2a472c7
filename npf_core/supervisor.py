"""The supervisor (anyio): runs the plan, one configuration at a time.

Per configuration it starts ``n_models`` benchmarker processes (forks of a
zygote, forks of the supervisor, fresh interpreters, or threads for debugging), waits for every READY, sends GO with one
common start time, lets the benchmarkers stop at the common deadline (or sends
STOP early: stability, cancellation), collects the RESULTs and merges them into a
report. Any fault — an exception in the child, a death, a hang, garbage on the
wire — becomes a failed configuration with its reason, and the sweep goes on.

Only the supervisor decides time. Every child is reaped on every exit path,
under a shielded cancel scope: terminate, a grace period, kill, wait.

A benchmarker process finds its configuration in its environment, set before
anything of the user's runs: ``NPF_CONFIG_ID`` (the report's ``config_id``) and
``NPF_COPY_INDEX`` (0 .. n_models - 1), besides what the device plugin assigns.
"""

from __future__ import annotations

import math
import os
import signal
import time
import traceback
import uuid
import zlib
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import msgspec
import psutil
import structlog

from npf_core import events as ev
from npf_core import processes, transfer
from npf_core import protocol as pr
from npf_core.errors import ConfigFailure, ProtocolError, ResultsError, SpecError
from npf_core.evaluation import MetricError, apply_evaluation, eval_job, resolve_metrics
from npf_core.hookspecs import Device, Reporter, ReporterContext
from npf_core.log import library_default
from npf_core.plan import RunConfig, make_plan
from npf_core.plugins import Plugins, get_plugins
from npf_core.processes import Child
from npf_core.report import ErrorInfo, Report, build_report, error_report
from npf_core.resources import ps_processes, sample_resources
from npf_core.results import (
    RESULTS_NAME,
    ResultsFile,
    comparable_spec,
    latest_run,
    load_results,
    run_folder,
    set_latest,
    spec_folder,
)
from npf_core.sparing import LoadFailures, framework_first
from npf_core.spec import duration_bounds, prepare, spec_to_dict
from npf_core.stats import windows_stable
from npf_core.stream import EventStream
from npf_core.zygotes import ZygoteFailed, ZygoteKeeper

__all__ = ["Supervisor", "abenchmark", "benchmark", "prepare"]

logger = structlog.get_logger(__name__)
library_default()  # in library use, warnings go to stderr (docs/embedding.md)
GO_MARGIN_S = 0.02
# Signals a terminal or a service manager sends to many processes at once. A
# benchmarker killed by one of these that npf did not send may have been hit by the
# same signal that is about to stop the supervisor: wait this long for that stop.
GROUP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGHUP, signal.SIGINT})
GROUP_SIGNAL_WAIT_S = 1.0


# ---------------------------------------------------------------------------
# The supervisor
# ---------------------------------------------------------------------------


class Supervisor:
    """Runs one spec. For embedding::

        async with Supervisor(spec) as sup:
            async for event in sup.events():
                ...
        reports = sup.reports

    or simply ``reports = await Supervisor(spec).run()``. Cancelling the caller's
    scope stops the run, reaps every child and re-raises the cancellation.
    Bad input raises a :class:`~npf_core.errors.UserError` from the constructor,
    before any process starts.
    """

    def __init__(
        self,
        spec: Any,
        *,
        plugins: Plugins | None = None,
        extra_plugins: tuple[Any, ...] = (),
        resume: bool = False,
        verbosity: int = 1,
        console: Any = None,
        **overrides: Any,
    ) -> None:
        try:
            self.loaded = prepare(spec, **overrides)  # decoding only: a bad spec raises here
        except SpecError:
            # an unknown framework is the first thing to say (plugin discovery: error path only)
            framework_first(spec, plugins or get_plugins(extra_plugins))
            raise
        self.spec = self.loaded.spec
        #: the output root (output.dir); this run's files go to ``output_dir`` below it
        self.results_root = self.loaded.resolve(self.spec.output.dir)
        #: this run's own folder, ROOT/NAME/STAMP-RUNID (docs/results.md), known after setup()
        self.output_dir = self.results_root
        self.name = self.spec.name or "run"
        self.run_id = uuid.uuid4().hex[:12]
        self.verbosity = verbosity
        self.reports: list[Report] = []
        self.interrupted = False
        #: reporters that raised (their output, e.g. a results file, may be incomplete)
        self.reporter_errors: list[str] = []
        self._given_plugins = plugins
        self._extra_plugins = extra_plugins
        self._resume = resume
        self._console = console
        self._plugins: Plugins | None = None
        self._ready = False
        self._plan: list[RunConfig] = []
        self._metrics: dict[str, Any] = {}
        self._done: dict[str, Report] = {}
        self._load_failures = LoadFailures([])  # a model that cannot load is not tried on and on
        self._latest_set = False
        self._indexed: list[tuple[int, Report]] = []  # (plan index, report), to keep plan order
        self.launcher: Any = None
        self._reporters: list[Reporter] = []
        self._results: ResultsFile | None = None
        self.device: Device | None = None
        self._payload: Any = None
        self._zygotes = ZygoteKeeper(self.spec.model.framework, self.spec.model.options, None)
        self._events = EventStream()
        self._tg: Any = None
        self._scope: anyio.CancelScope | None = None
        self._cancel_requested = False

    def setup(self) -> None:
        """Discover the plugins, probe the device (once per run), build the plan, check
        the output folder and resume file, make the reporters. Blocking (entry points,
        file I/O, device probes that may take seconds): :meth:`run` and ``async with``
        call it in a worker thread, so an embedding application's event loop keeps
        running. Raises a :class:`~npf_core.errors.UserError` for anything that cannot
        run, before any process starts. Idempotent."""
        if self._ready:
            return
        plugins = self._given_plugins or get_plugins(self._extra_plugins)
        dev = self.loaded.device
        device = plugins.device(dev.type, dev.options, "device")
        plan = make_plan(self.loaded, plugins, device)
        self._plugins, self._plan, self.device = plugins, plan, device
        self.name = plan[0].model_name if plan else self.name
        self.output_dir = run_folder(self.results_root, self.name, self.run_id)
        self._load_failures = LoadFailures(plan)
        if self.spec.evaluate is not None:
            # metrics registered in this process travel with the run's objects (transfer)
            self._metrics = resolve_metrics(self.loaded, plugins)
        methods = {c.start_method for c in plan}
        if methods & {"zygote", "fresh"}:
            # API objects and hand-registered plugins, serialised once for zygote and fresh
            # copies (an object that cannot travel is a SpecError naming it, here)
            method = "zygote" if "zygote" in methods else "fresh"
            self._payload = transfer.pack(self.loaded.objects, plugins.programmatic(), method)
        self._zygotes = ZygoteKeeper(self.spec.model.framework, self.spec.model.options, self._payload)
        if self._resume:
            self._load_resume()
        if self.spec.output.results or set(self.spec.output.reporters) - {"console"}:
            self._check_output_dir()
            self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.spec.output.results:
            self._results = ResultsFile(self.output_dir / RESULTS_NAME)
        rctx = ReporterContext(
            output_dir=self.output_dir, spec=self.spec, verbosity=self.verbosity, console=self._console
        )
        self._reporters = [plugins.reporters.get(name, "output.reporters")(rctx) for name in self.spec.output.reporters]
        la = self.loaded.launcher
        self.launcher = plugins.launchers.get(la.plugin, "launcher.plugin")(la.options)
        self.launcher.check(self)  # e.g. a cluster without the device: an error before anything runs
        self._ready = True

    async def _asetup(self) -> None:
        if not self._ready:
            # abandoned on cancellation: a probe stuck for a minute must not delay a
            # Ctrl-C; nothing has started yet, so nothing is left behind
            await anyio.to_thread.run_sync(self.setup, abandon_on_cancel=True)

    @property
    def plugins(self) -> Plugins:
        if self._plugins is None:
            self.setup()
        assert self._plugins is not None
        return self._plugins

    @property
    def plan(self) -> list[RunConfig]:
        """The configurations of the sweep (runs :meth:`setup` if not done yet)."""
        if self._plugins is None:
            self.setup()
        return self._plan

    def _check_output_dir(self) -> None:
        """Reporters write files there: a folder that cannot be made or written is
        found now, not after the first configuration has run."""
        d = self.results_root
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsError(
                f"spec $.output.dir: cannot create the output folder {str(d)!r}: {exc.strerror or exc} "
                "(give another output.dir or --output-dir)"
            ) from None
        if not os.access(d, os.W_OK | os.X_OK):
            raise ResultsError(f"spec $.output.dir: the output folder {str(d)!r} is not writable (give another one)")

    def _load_resume(self) -> None:
        latest = latest_run(spec_folder(self.results_root, self.name)) if self.results_root.is_dir() else None
        path = latest / "results.json" if latest else self.results_root / "results.json"  # or the pre-0.2 layout
        if not path.exists():
            return
        old_spec, reports = load_results(path)
        if comparable_spec(old_spec) != comparable_spec(spec_to_dict(self.spec)):
            raise ResultsError(
                f"{path} holds results of a different spec; resume needs the same spec "
                "(or use another --output-dir)"
            )
        wanted = {c.config_id for c in self._plan}
        self._done = {r.config_id: r for r in reports if r.status == "ok" and r.config_id in wanted}

    # -- the embedding interface ---------------------------------------------

    async def __aenter__(self) -> Supervisor:
        await self._asetup()  # a user error raises here, before the block runs
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self.run)
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        try:
            if exc_info[0] is None:
                return await self._tg.__aexit__(None, None, None)  # type: ignore[no-any-return]
            # The body raised (or was cancelled): stop the run, wait until every child is
            # reaped, and let the body's own exception propagate, not wrapped in a group.
            self.cancel()
            await self._tg.__aexit__(None, None, None)
            return None
        finally:
            await self._events.aclose()  # events nobody read are dropped with the block

    def events(self) -> EventStream:
        """Every event of the run, in order, ending after ``RunFinished``: the run's one
        event stream. Breaking out of ``async for`` leaves nothing to clean up (a
        later loop goes on where the last stopped); ``aclose()`` drops what is left."""
        return self._events

    def cancel(self) -> None:
        """Stop the run: the current configuration is stopped, its children are reaped
        and :meth:`run` returns the reports so far, with ``interrupted`` set. (To stop
        and get the cancellation re-raised instead, cancel the caller's scope.)"""
        self._cancel_requested = True
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> list[Report]:
        """Run every configuration of the plan; returns the reports.

        :meth:`cancel` ends it early (it then returns what finished); a cancellation
        of the caller's scope also reaps every child, then propagates."""
        try:
            with anyio.CancelScope() as scope:
                self._scope = scope
                if self._cancel_requested:
                    scope.cancel()
                await self._asetup()
                await self._run()
        finally:
            with anyio.CancelScope(shield=True):
                await self._zygotes.close(self.spec.timeouts.grace_s)
            if self._payload is not None:
                self._payload.close()
            self._events.end()
        if scope.cancelled_caught:
            self.interrupted = True
        return self.reports

    # -- internals -----------------------------------------------------------

    def _emit(self, event: ev.Event) -> None:
        """To the event stream, the reporters and the lifecycle hooks. A reporter that
        raises is logged and remembered (``reporter_errors``), never fatal to the run."""
        self._events.put(event)
        if self._results is not None:
            self._record(event)
        for reporter in self._reporters:
            try:
                reporter.on_event(event)
            except Exception as exc:
                self._reporter_failed(reporter, exc)
        if not self._latest_set and self.output_dir.is_dir() and any(self.output_dir.iterdir()):
            self._latest_set = True  # the spec folder's 'latest' now points at this run
            try:
                set_latest(self.output_dir)
            except OSError as exc:
                logger.warning("cannot update the 'latest' pointer", folder=str(self.output_dir), error=str(exc))
        hook = {
            ev.RunStarted: "npf_run_started",
            ev.ConfigStarted: "npf_config_started",
            ev.ConfigFinished: "npf_config_finished",
            ev.ConfigFailed: "npf_config_failed",
            ev.RunFinished: "npf_run_finished",
        }.get(type(event))
        if hook:
            self.plugins.notify(hook, event)

    async def _run(self) -> None:
        total = len(self.plan)
        self._emit(
            ev.RunStarted(
                run_id=self.run_id, configs=self.plan, output_dir=str(self.output_dir), spec=spec_to_dict(self.spec)
            )
        )
        interrupted = True
        from npf_core.imds import instance_type

        self.instance_type = await anyio.to_thread.run_sync(instance_type)  # None off EC2, at once
        try:
            todo = []
            for index, config in enumerate(self.plan):
                old = self._done.get(config.config_id)
                if old is not None:
                    self._indexed.append((index, old))
                    self.reports.append(old)
                    self._emit(ev.ConfigSkipped(index=index, total=total, config=config, report=old))
                else:
                    todo.append((index, config))
            await self.launcher.run(self, todo)
            interrupted = False
        finally:
            self.interrupted = interrupted
            self.reports[:] = [r for _, r in sorted(self._indexed, key=lambda ir: ir[0])]  # plan order
            failed = sum(r.status != "ok" for r in self.reports)
            self._emit(ev.RunFinished(reports=list(self.reports), interrupted=interrupted, failed=failed))
            for reporter in self._reporters:
                try:
                    reporter.close()
                except Exception as exc:
                    self._reporter_failed(reporter, exc)
            self._events.end()

    def _record(self, event: ev.Event) -> None:
        """The core's results file, rewritten atomically after every configuration,
        whatever reporters run: what ``--resume`` reads and a crash cannot lose."""
        assert self._results is not None
        try:
            if isinstance(event, ev.RunStarted):
                self._results.start(event.run_id, event.spec)
            elif isinstance(event, (ev.ConfigFinished, ev.ConfigFailed, ev.ConfigSkipped)):
                self._results.record(event.index, event.report)
        except OSError as exc:
            first = not any(e.startswith("results file: ") for e in self.reporter_errors)
            (logger.error if first else logger.debug)("cannot write the results file", error=repr(exc))
            if first:
                self.reporter_errors.append(f"results file: {type(exc).__name__}: {exc}")

    # -- what a launcher calls (see npf_core.hookspecs.Launcher) ----------------

    def config_started(self, index: int, config: RunConfig) -> None:
        """A configuration begins (here or on another machine)."""
        self._emit(ev.ConfigStarted(index=index, total=len(self.plan), config=config))

    def config_done(self, index: int, config: RunConfig, report: Report) -> None:
        """A configuration ended: its report is kept and announced."""
        self._indexed.append((index, report))
        self.reports.append(report)
        event = ev.ConfigFinished if report.status == "ok" else ev.ConfigFailed
        self._emit(event(index=index, total=len(self.plan), config=config, report=report))

    def emit(self, event: ev.Event) -> None:
        """An event a launcher received from elsewhere (progress on a remote node)."""
        self._emit(event)

    async def run_config(self, index: int, config: RunConfig) -> Report:
        """Run one configuration here and return its report (failures included)."""
        await anyio.lowlevel.checkpoint()  # a pending cancellation stops us before any process starts
        skipped = self._load_failures.not_tried(config)
        if skipped is not None:  # the model failed to load the same way before: not tried again
            return skipped
        structlog.contextvars.bind_contextvars(config=config.config_id)
        try:
            report = await self._run_config(index, config)
        finally:
            structlog.contextvars.unbind_contextvars("config")
        self._load_failures.record(index, config, report)
        return report

    def _reporter_failed(self, reporter: Reporter, exc: Exception) -> None:
        """Remembered once per reporter (its first failure), logged each time."""
        name = type(reporter).__name__
        first = not any(e.startswith(f"{name}: ") for e in self.reporter_errors)
        (logger.error if first else logger.debug)("reporter failed", reporter=name, error=repr(exc))
        if first:
            self.reporter_errors.append(f"{name}: {type(exc).__name__}: {exc}")

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
            rate_per_worker=rate / (config.n_models * config.workers_per_model) if rate else 0.0,
            warmup_iterations=spec.warmup.iterations,
            warmup_s=spec.warmup.seconds,
            window_ns=int(self._window_s() * 1e9),
            seed=zlib.crc32(config.config_id.encode()),
            evaluate=eval_job(self.loaded),
        )

    def _window_s(self) -> float:
        """The measurement window: the spec's, but at least five per configuration."""
        return max(0.01, min(self.spec.window_s, self._bounds()[0] / 5))

    def _bounds(self) -> tuple[float, float, int | None]:
        """``(min_s, max_s, calls)`` of a configuration: ``duration_s`` (a number, or
        "auto" until the p99 is supported), or for the dataset once (evaluate mode,
        ``duration_s`` 0) ``evaluate.timeout_s`` as the deadline."""
        if self.spec.duration_s == 0:
            timeout = self.spec.evaluate.timeout_s if self.spec.evaluate is not None else 0.0
            return timeout, timeout, None
        return duration_bounds(self.spec.duration_s)

    async def _run_config(self, index: int, config: RunConfig) -> Report:
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
        try:
            async with anyio.create_task_group() as tg:
                try:
                    zygote = None
                    if config.start_method == "zygote":
                        try:
                            zygote = await self._zygotes.get(self.spec.timeouts.load_s)
                        except ZygoteFailed as exc:
                            raise ConfigFailure(exc.info()) from exc
                    for i in range(config.n_models):
                        assignment = dict(device.assign(i, config.n_models, config.pipeline_size))
                        env = {k: str(v) for k, v in assignment.get("env", {}).items()}
                        env.update(NPF_CONFIG_ID=config.config_id, NPF_COPY_INDEX=str(i))
                        try:
                            child = processes.spawn(i, config.start_method, env, self.loaded.objects, self.plugins,
                                                    zygote=zygote, payload=self._payload)  # fmt: skip
                        except ZygoteFailed as exc:
                            raise ConfigFailure(exc.info()) from exc
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
                    results = await self._drive(index, config, children, receive, resources)
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
                    instance_type=getattr(self, "instance_type", None),
                )
                if spec.evaluate is not None:
                    report = apply_evaluation(report, results, self.loaded, self._metrics)
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
        extra = {}
        if readies:
            extra["load_avg_ms"] = sum(r.load_ns for r in readies) / len(readies) / 1e6
        extra["instance_type"] = getattr(self, "instance_type", None)
        return error_report(config, info, start_dts=start_dts, stop_dts=_dts(time.time()), **extra)

    async def _reap(self, children: list[Child]) -> None:
        grace = self.spec.timeouts.grace_s
        async with anyio.create_task_group() as tg:
            for c in children:
                tg.start_soon(c.reap, grace)

    def _fail(self, child: Child, config: RunConfig, stage: str, what: str, **kw: Any) -> ConfigFailure:
        return ConfigFailure(
            ErrorInfo(message=f"{_who(child, config)}: {what}", stage=stage, output_tail=child.output_tail(), **kw),  # type: ignore[arg-type]
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
            return await receive.receive()  # type: ignore[no-any-return]
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
        config: RunConfig,
        children: list[Child],
        receive: Any,
        resources: dict[str, list[float]],
    ) -> list[pr.Result]:
        spec = self.spec
        t = spec.timeouts
        # Hello, Setup, Ready: all within the load timeout.
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

        # GO: one common start time, one common deadline.
        window_s = self._window_s()
        go_at = time.perf_counter_ns() + int(GO_MARGIN_S * 1e9)
        min_s, max_s, enough_calls = self._bounds()  # "auto": until p99 is supported
        stop_at = go_at + int(max_s * 1e9)
        procs = ps_processes(children)
        psutil.cpu_percent(None)
        for c in children:
            await processes.send(c, pr.Go(go_at_ns=go_at, stop_at_ns=stop_at))
        mono_go = time.monotonic() + GO_MARGIN_S
        result_deadline = mono_go + max_s + t.stop_s
        next_sample = mono_go + min(window_s, 0.5)
        progress: dict[int, list[int]] = {}
        rates: list[float] = []
        stopped = False
        pending = {id(c) for c in children}
        while pending:
            item = await self._next(receive, min(result_deadline, next_sample))
            if time.monotonic() >= next_sample:
                sample_resources(procs, resources)
                next_sample += min(window_s, 0.5)
            if item is None:
                if time.monotonic() < result_deadline:
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
                progress.setdefault(msg.window, []).append(msg.completed)
                counts = progress.get(msg.window, [])
                if len(counts) == len(children):
                    prev = sum(progress.get(msg.window - 1, [0] * len(children)))
                    rate = (sum(counts) - prev) * config.batch_size / window_s
                    rates.append(rate)
                    self._emit(
                        ev.Progress(
                            index=index, total=len(self.plan), config=config,
                            elapsed_s=(msg.window + 1) * window_s, duration_s=max_s,
                            completed=sum(counts), throughput=rate,
                        )
                    )  # fmt: skip
                    if (
                        enough_calls and not stopped
                        and (msg.window + 1) * window_s >= min_s and sum(counts) >= enough_calls
                    ):  # fmt: skip
                        stopped = True  # duration_s "auto": the p99 is supported
                        for c in children:
                            await processes.send(c, pr.Stop(reason="enough-calls"))
                    stab = spec.stability
                    if (
                        stab is not None and not stopped
                        and (msg.window + 1) * window_s >= stab.min_s
                        and windows_stable(rates, stab.windows, stab.tolerance)
                    ):  # fmt: skip
                        stopped = True
                        for c in children:
                            await processes.send(c, pr.Stop(reason="stable"))
            elif isinstance(msg, pr.Result):
                child.result = msg
                pending.discard(id(child))
            else:
                raise self._fail(
                    child, config, "call", f"sent {type(msg).__name__} while measuring", type="ProtocolError"
                )
        return [c.result for c in children if c.result is not None]


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


async def abenchmark(spec: Any, *, extra_plugins: tuple[Any, ...] = (), **overrides: Any) -> list[Report]:
    """Run a spec inside an existing event loop; returns the reports. Cancelling the
    caller stops the run and reaps every child."""
    return await Supervisor(spec, extra_plugins=extra_plugins, **overrides).run()


def benchmark(spec: Any, *, extra_plugins: tuple[Any, ...] = (), **overrides: Any) -> list[Report]:
    """Run a spec (a path, JSON text, a dict — which may hold Python objects in place
    of import references — or a Spec) and return its reports.

    Keyword overrides replace spec fields (``duration_s=5``, ``n_models=[1]``,
    ``output_dir=...``, ``reporters=[...]``); ``reporters=[]`` prints nothing and
    writes only ``results.json``; add ``results=False`` to write no file at all.
    """
    return anyio.run(lambda: abenchmark(spec, extra_plugins=extra_plugins, **overrides))
