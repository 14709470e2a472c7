"""The supervisor (anyio): runs the plan, one configuration at a time.

Per configuration it starts ``n_models`` benchmarker processes (fork, fresh
interpreter, or threads for debugging), waits for every READY, sends GO with one
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
import msgspec
import psutil
import structlog

from npf_core import events as ev
from npf_core import processes
from npf_core import protocol as pr
from npf_core.errors import PluginError, ProtocolError, ResultsError
from npf_core.hookspecs import Reporter, ReporterContext
from npf_core.plan import RunConfig, make_plan
from npf_core.plugins import ENTRY_POINT_GROUP, Plugins, get_plugins
from npf_core.processes import Child
from npf_core.report import ErrorInfo, Report, build_report, error_report
from npf_core.resources import ps_processes, sample_resources
from npf_core.results import comparable_spec, load_results
from npf_core.spec import prepare, spec_to_dict
from npf_core.stats import windows_stable
from npf_core.stream import EventStream

__all__ = ["Supervisor", "abenchmark", "benchmark", "prepare"]

logger = structlog.get_logger(__name__)
GO_MARGIN_S = 0.02
# Signals a terminal or a service manager sends to many processes at once. A
# benchmarker killed by one of these that npf did not send may have been hit by the
# same signal that is about to stop the supervisor: wait this long for that stop.
GROUP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGHUP, signal.SIGINT})
GROUP_SIGNAL_WAIT_S = 1.0


class ConfigFailure(Exception):
    """A configuration failed; carries the error to record (and the child at fault)."""

    def __init__(self, info: ErrorInfo, child: Child | None = None) -> None:
        self.info = info
        self.child = child
        super().__init__(info.message)


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
        self.loaded = prepare(spec, **overrides)
        self.spec = self.loaded.spec
        self.plugins = plugins or get_plugins(extra_plugins)
        self.plan: list[RunConfig] = make_plan(self.loaded, self.plugins)
        if any(c.start_method == "fresh" for c in self.plan):
            self._check_fresh_plugins()
        self.output_dir = self.loaded.resolve(self.spec.output.dir)
        self.run_id = uuid.uuid4().hex[:12]
        self.verbosity = verbosity
        self.reports: list[Report] = []
        self.interrupted = False
        #: reporters that raised (their output, e.g. a results file, may be incomplete)
        self.reporter_errors: list[str] = []
        self._done: dict[str, Report] = {}
        self._indexed: list[tuple[int, Report]] = []  # (plan index, report), to keep plan order
        if resume:
            self._load_resume()
        if set(self.spec.output.reporters) - {"console"}:
            self._check_output_dir()
        la = self.loaded.launcher
        self.launcher = self.plugins.launchers.get(la.plugin, "launcher.plugin")(la.options)
        self.launcher.check(self)  # e.g. a cluster without the device: an error before anything runs
        self._reporters: list[Reporter] = []
        rctx = ReporterContext(output_dir=self.output_dir, spec=self.spec, verbosity=verbosity, console=console)
        for name in self.spec.output.reporters:
            self._reporters.append(self.plugins.reporters.get(name, "output.reporters")(rctx))
        self._events = EventStream()
        self._tg: Any = None
        self._scope: anyio.CancelScope | None = None
        self._cancel_requested = False

    def _check_output_dir(self) -> None:
        """Reporters write files there: a folder that cannot be made or written is
        found now, not after the first configuration has run."""
        d = self.output_dir
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ResultsError(
                f"spec $.output.dir: cannot create the output folder {str(d)!r}: {exc.strerror or exc} "
                "(give another output.dir or --output-dir)"
            ) from None
        if not os.access(d, os.W_OK | os.X_OK):
            raise ResultsError(f"spec $.output.dir: the output folder {str(d)!r} is not writable (give another one)")

    def _check_fresh_plugins(self) -> None:
        """A fresh interpreter finds plugins through entry points only, so a plugin
        registered programmatically cannot travel there: say so before any process
        starts, rather than failing every configuration."""
        child_view = get_plugins()
        needed = [
            ("framework", "model.framework", self.spec.model.framework, child_view.frameworks),
            ("device", "device", self.loaded.device.type, child_view.devices),
        ]
        if self.spec.dataset is not None:
            needed.append(("dataset", "dataset.plugin", self.spec.dataset.plugin, child_view.datasets))
        for kind, path, name, registry in needed:
            if name not in registry:
                raise PluginError(
                    f"spec $.{path}: {kind} plugin {name!r} is not installed through an entry point, so a "
                    f"fresh interpreter (start_method 'fresh') cannot find it; install it as a package with "
                    f"an entry point in group {ENTRY_POINT_GROUP!r}, or use start_method 'fork'"
                )

    def _load_resume(self) -> None:
        path = self.output_dir / "results.json"
        if not path.exists():
            return
        old_spec, reports = load_results(path)
        if comparable_spec(old_spec) != comparable_spec(spec_to_dict(self.spec)):
            raise ResultsError(
                f"{path} holds results of a different spec; resume needs the same spec "
                "(or use another --output-dir)"
            )
        wanted = {c.config_id for c in self.plan}
        self._done = {r.config_id: r for r in reports if r.status == "ok" and r.config_id in wanted}

    # -- the embedding interface ---------------------------------------------

    async def __aenter__(self) -> Supervisor:
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
                await self._run()
        finally:
            self._events.end()
        if scope.cancelled_caught:
            self.interrupted = True
        return self.reports

    # -- internals -----------------------------------------------------------

    def _emit(self, event: ev.Event) -> None:
        """To the event stream, the reporters and the lifecycle hooks. A reporter that
        raises is logged and remembered (``reporter_errors``), never fatal to the run."""
        self._events.put(event)
        for reporter in self._reporters:
            try:
                reporter.on_event(event)
            except Exception as exc:
                self._reporter_failed(reporter, exc)
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
        structlog.contextvars.bind_contextvars(config=config.config_id)
        try:
            return await self._run_config(index, config)
        finally:
            structlog.contextvars.unbind_contextvars("config")

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
            inputs = [msgspec.to_builtins(i) for i in items]
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
            dataset=msgspec.to_builtins(spec.dataset) if spec.dataset is not None else None,
            device=msgspec.to_builtins(self.loaded.device),
            assignment=assignment,
            preprocess=spec.preprocess,
            postprocess=spec.postprocess,
            setup=spec.setup,
            load_mode=mode,
            rate_per_worker=rate / (config.n_models * config.workers_per_model) if rate else 0.0,
            warmup_iterations=spec.warmup.iterations,
            warmup_s=spec.warmup.seconds,
            window_ns=int(self._window_s() * 1e9),
            seed=zlib.crc32(config.config_id.encode()),
        )

    def _window_s(self) -> float:
        """The measurement window: the spec's, but at least five per configuration."""
        return max(0.01, min(self.spec.window_s, self.spec.duration_s / 5))

    async def _run_config(self, index: int, config: RunConfig) -> Report:
        spec = self.spec
        device = self.plugins.device(self.loaded.device.type, self.loaded.device.options)
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
                    for i in range(config.n_models):
                        assignment = dict(device.assign(i, config.n_models, config.pipeline_size))
                        env = {k: str(v) for k, v in assignment.get("env", {}).items()}
                        env.update(NPF_CONFIG_ID=config.config_id, NPF_COPY_INDEX=str(i))
                        try:
                            child = processes.spawn(i, config.start_method, env, self.loaded.objects, self.plugins)
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
                return build_report(
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
                    devices=[str(c.job.assignment.get("label", "")) for c in children],
                )
            except Exception as exc:
                failure = _internal_failure(exc, "report")
        return self._failure_report(config, failure, children, timestamps["start_dts"])

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
        stop_at = go_at + int(spec.duration_s * 1e9)
        procs = ps_processes(children)
        psutil.cpu_percent(None)
        for c in children:
            await processes.send(c, pr.Go(go_at_ns=go_at, stop_at_ns=stop_at))
        mono_go = time.monotonic() + GO_MARGIN_S
        result_deadline = mono_go + spec.duration_s + t.stop_s
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
                            elapsed_s=(msg.window + 1) * window_s, duration_s=spec.duration_s,
                            completed=sum(counts), throughput=rate,
                        )
                    )  # fmt: skip
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
    ``output_dir=...``, ``reporters=[...]``); ``reporters=[]`` writes and prints nothing.
    """
    return anyio.run(lambda: abenchmark(spec, extra_plugins=extra_plugins, **overrides))
