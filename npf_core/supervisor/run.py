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

import os
import uuid
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import msgspec
import structlog

import npf_core.plugin.events as ev
import npf_core.supervisor.limits as limits
import npf_core.wire.transfer as transfer
from npf_core.errors import ResultsError, SpecError, UserError
from npf_core.evaluation.runner import resolve_metrics
from npf_core.log import get_logger
from npf_core.plugin.hookspecs import Device, Reporter, ReporterContext
from npf_core.plugin.manager import Plugins, get_plugins
from npf_core.results.report import Report
from npf_core.results.store import (
    RESULTS_NAME,
    ResultsFile,
    comparable_spec,
    git_commit,
    latest_run,
    load_resumable,
    run_folder,
    set_latest,
    spec_differences,
    spec_folder,
)
from npf_core.results.table import ReportList, report_list
from npf_core.spec.config import RunConfig
from npf_core.spec.overrides import prepare
from npf_core.spec.schema import Capacity, spec_to_dict
from npf_core.supervisor.blocking import run_blocking
from npf_core.supervisor.config_run import GO_MARGIN_S, GROUP_SIGNAL_WAIT_S, ConfigRunner
from npf_core.supervisor.copy_output import CopyOutput
from npf_core.supervisor.copy_pool import CopyPool
from npf_core.supervisor.plan import make_plan
from npf_core.supervisor.reuse import ReuseRules, loads_without_reuse
from npf_core.supervisor.sparing import LoadFailures, framework_first
from npf_core.supervisor.stream import EventStream
from npf_core.supervisor.telemetry import TelemetryHub
from npf_core.supervisor.zygote_keeper import ZygoteKeeper

__all__ = ["GO_MARGIN_S", "GROUP_SIGNAL_WAIT_S", "Supervisor", "abenchmark", "benchmark", "prepare"]

logger = get_logger(__name__)  # stdlib logging under "npf" (docs/embedding.md#logging)


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
        label: str | None = None,
        **overrides: Any,
    ) -> None:
        _refuse_inside_a_copy()
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
        #: ``npf run --label``: recorded in results.json, listed by ``npf history``
        self.label = label
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
        self._runner: ConfigRunner | None = None  # made by setup(), with the device and plugins
        self.telemetry: TelemetryHub | None = None  # made and probed by setup()
        self._copy_output: CopyOutput | None = None  # what copies print (setup() knows the folder)
        self._rules: ReuseRules | None = None  # reuse_copies: which copy fits which configuration
        self._pool: CopyPool | None = None  # reuse_copies: the copies kept between configurations
        self._ran: set[str] = set()  # configurations started in this run (the rest may reuse copies)
        self.instance_type: str | None = None
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
        if self.loaded.launcher.plugin == "local":  # elsewhere, each node checks its own machine
            room = limits.headroom()  # processes, threads and memory: n_models 100000 stops here
            for config in plan:
                limits.check_copies(config, limits.floor_cost(config.start_method), room)
        if self.spec.reuse_copies and not isinstance(self.spec.load, Capacity):
            # (load mode "capacity" probes each configuration's copies again and again, then ends them)
            # copies outlive a configuration: the sweep runs in the order that loads fewest
            framework = plugins.framework(self.spec.model.framework, self.spec.model.options)
            self._rules = ReuseRules(device, framework.copy_depends_on(device))
            plan = self._rules.order(plan)
        self._plugins, self._plan, self.device = plugins, plan, device
        self.name = plan[0].model_name if plan else self.name
        self.output_dir = run_folder(self.results_root, self.name, self.run_id)
        self._load_failures = LoadFailures(plan, self.loaded)
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
        keeps_folder = bool(self.spec.output.results or set(self.spec.output.reporters) - {"console"})
        self._copy_output = CopyOutput(self.output_dir if keeps_folder else None)
        self._pool = CopyPool(self._rules, self.spec.timeouts.grace_s) if self._rules is not None else None
        self._runner = ConfigRunner(self.loaded, device, plugins, zygotes=self._zygotes, payload=self._payload,
                                    metrics=self._metrics, emit=self._emit,
                                    copy_output=self._copy_output, pool=self._pool)  # fmt: skip
        # device telemetry: the sources for this device, probed now (one the spec names
        # that cannot sample here is a user error, before anything starts)
        telemetry = TelemetryHub(self.loaded, plugins, device, self._runner.window_s())
        telemetry.probe(strict=self.loaded.launcher.plugin == "local")
        self.telemetry = self._runner.telemetry = telemetry
        if self._resume:
            self._load_resume()
        if keeps_folder:
            self._check_output_dir()
            self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.spec.output.results:
            commit = git_commit(self.loaded.base_dir)  # the spec's folder (a subprocess: off the event loop)
            self._results = ResultsFile(self.output_dir / RESULTS_NAME, label=self.label, commit=commit)
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
    def kept_calls(self) -> dict[str, tuple[list[Any], list[Any]]]:
        """With the spec's ``keep_calls``: config_id -> (each copy's READY, each copy's
        RESULT), which hold the kept calls' stamps (:class:`~npf_core.wire.protocol.CallStamps`)."""
        return self._runner.kept if self._runner is not None else {}

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

    @plan.setter
    def plan(self, configs: list[RunConfig]) -> None:
        """Narrow the plan (a launcher running part of a sweep on a node)."""
        self.setup()
        self._plan = list(configs)

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
        found = load_resumable(path)
        old_spec, reports = found.spec, found.reports
        differ = spec_differences(comparable_spec(old_spec), comparable_spec(spec_to_dict(self.spec)))
        if differ:
            raise ResultsError(
                f"{path} holds results of a different spec: {differ}; resume needs the same spec and flags "
                "(run again without --resume, or use another --output-dir)"
            )
        for line in found.damaged:  # edited or cut short: not trusted, so run again
            logger.warning("a damaged report in the results file is run again", file=str(path), report=line)
        # by id; results written before ids named parameters (``NAME-iINPUT-...``) by the legacy id
        by_id = {c.config_id: c for c in self._plan}
        by_id.update({_legacy_id(c): c for c in self._plan if _legacy_id(c) not in by_id})
        self._done = {
            by_id[r.config_id].config_id: msgspec.structs.replace(
                r, config_id=by_id[r.config_id].config_id, input_signature=by_id[r.config_id].input_signature)
            for r in reports if r.status == "ok" and r.config_id in by_id
        }  # fmt: skip

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
                return await self._tg.__aexit__(None, None, None)
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
                if self._pool is not None:
                    self._pool.open = True  # copies may outlive a configuration, never this run
                assert self.telemetry is not None
                async with self.telemetry.running():  # the sources' background tasks, for the run
                    await self._run()
        finally:
            with anyio.CancelScope(shield=True):
                if self._pool is not None:
                    await self._pool.close()  # before the zygote: its copies are its children
                await self._zygotes.close(self.spec.timeouts.grace_s)
            if self._payload is not None:
                self._payload.close()
            if self._copy_output is not None:
                self._copy_output.close()
            self._events.end()
        if scope.cancelled_caught:
            self.interrupted = True
        return self.reports

    # -- internals -----------------------------------------------------------

    def _emit(self, event: ev.Event) -> None:
        """To the event stream, the reporters and the lifecycle hooks. A reporter that
        raises is logged and remembered (``reporter_errors``), never fatal to the run."""
        if self._results is not None and not self._record(event):
            event = msgspec.structs.replace(event, recorded=False)
        self._events.put(event)
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
        to_run = [c for c in self.plan if c.config_id not in self._done]
        loads: int | None = None
        if self.loaded.launcher.plugin == "local":  # elsewhere each node loads its own copies
            loads = self._rules.count_loads(to_run) if self._rules is not None else loads_without_reuse(to_run)
        logger.debug("plan", configurations=total, loads=loads, reuse_copies=self._rules is not None)
        self._emit(
            ev.RunStarted(
                run_id=self.run_id, configs=self.plan, output_dir=str(self.output_dir), spec=spec_to_dict(self.spec),
                environment=self.telemetry.environment() if self.telemetry is not None else {},
                loads=loads, reuse=self._rules is not None,
            )
        )  # fmt: skip
        interrupted = True
        from npf_core.results.imds import instance_type

        self.instance_type = await anyio.to_thread.run_sync(instance_type)  # None off EC2, at once
        assert self._runner is not None
        self._runner.instance_type = self.instance_type
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

    def _record(self, event: ev.Event) -> bool:
        """The core's results file, rewritten atomically after every configuration,
        whatever reporters run: what ``--resume`` reads and a crash cannot lose.
        False when a configuration's report could not be written."""
        assert self._results is not None
        try:
            if isinstance(event, ev.RunStarted):
                self._results.start(event.run_id, event.spec, [self._plan_entry(c) for c in event.configs])
                self._results.extend_environment(event.environment)
            elif isinstance(event, (ev.ConfigFinished, ev.ConfigFailed, ev.ConfigSkipped)):
                if self.telemetry is not None:  # a source may learn more as the run goes (hardware info)
                    self._results.extend_environment(self.telemetry.environment())
                self._results.record(event.index, event.report)
                return True
        except OSError as exc:
            first = not any(e.startswith("results file: ") for e in self.reporter_errors)
            (logger.error if first else logger.debug)("cannot write the results file", error=repr(exc))
            if first:
                self.reporter_errors.append(f"results file: {type(exc).__name__}: {exc}")
            return not isinstance(event, (ev.ConfigFinished, ev.ConfigFailed, ev.ConfigSkipped))
        return True

    # -- what a launcher calls (see npf_core.plugin.hookspecs.Launcher) ----------------

    def config_started(self, index: int, config: RunConfig) -> None:
        """A configuration begins (here or on another machine). One that will not be
        tried (it would fail as an earlier one did) does not begin: only its
        ``ConfigFailed`` is announced."""
        if self._load_failures.not_tried(config) is not None:
            return
        self._emit(ev.ConfigStarted(index=index, total=len(self.plan), config=config))

    def _load_fields(self) -> dict[str, Any]:
        """The load a configuration ran under, as its report records it."""
        load = self.spec.load
        return {"load_mode": type(load).__name__.lower(), "target_rate": getattr(load, "rate", None)}

    def _plan_entry(self, config: RunConfig) -> dict[str, Any]:
        """A configuration of the sweep by what it measures (results.json's ``plan``)."""
        return {"config_id": config.config_id, "input_signature": config.input_signature,
                "batch_size": config.batch_size, "pipeline_size": config.pipeline_size,
                "n_models": config.n_models, "workers_per_model": config.workers_per_model,
                "performance_level": config.performance_level, **self._load_fields(),
                "device_type": config.device_type}  # fmt: skip

    def config_done(self, index: int, config: RunConfig, report: Report) -> None:
        """A configuration ended: its report is kept and announced."""
        if report.status != "ok":  # a failure carries the load it was to run under, as a success does
            report = msgspec.structs.replace(report, **self._load_fields())
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
        self._ran.add(config.config_id)
        try:
            assert self._runner is not None
            if self._pool is not None and self._pool.open:
                # kept copies neither this configuration nor any still to run can use are
                # released before it starts (the last ones when the run ends)
                gone = self._ran | set(self._done)
                await self._pool.trim([config, *(c for c in self.plan if c.config_id not in gone)])
            report = await self._runner.run(index, len(self.plan), config)
        finally:
            structlog.contextvars.unbind_contextvars("config")
        report = self._load_failures.advise(report)
        spared = self._load_failures.record(index, config, report)
        if report.error is not None and "console" not in self.spec.output.reporters:
            # no console to show it (an embedding application, the NeuronPerf API): the log says it
            logger.warning("configuration failed", config=config.config_id, error=report.error.message,
                           **({"hint": report.error.hint} if report.error.hint else {}))  # fmt: skip
            if spared:
                logger.warning("configurations that would fail the same way are not tried", not_tried=spared)
        return report

    def _reporter_failed(self, reporter: Reporter, exc: Exception) -> None:
        """Remembered once per reporter (its first failure), logged each time."""
        name = type(reporter).__name__
        first = not any(e.startswith(f"{name}: ") for e in self.reporter_errors)
        (logger.error if first else logger.debug)("reporter failed", reporter=name, error=repr(exc))
        if first:
            self.reporter_errors.append(f"{name}: {type(exc).__name__}: {exc}")


def _legacy_id(c: RunConfig) -> str:
    """A configuration's id as npf named it before ids named parameters (by input position)."""
    level = "" if c.performance_level is None else f"-l{c.performance_level}"
    sweep = f"b{c.batch_size}-p{c.pipeline_size}{level}-n{c.n_models}-w{c.workers_per_model}"
    return f"{c.model_name}-i{c.input_idx}-{sweep}"


def _refuse_inside_a_copy() -> None:
    """A benchmark started by a model copy (its module runs one when imported, and a
    copy imported it) would start copies of its own, and so on: say so instead."""
    config = os.environ.get("NPF_CONFIG_ID")
    if config:
        raise UserError(
            f"a benchmark was started inside a model copy (configuration {config}): the module that "
            "defines the model starts a benchmark when it is imported, and the copy imported it; put "
            "that call under `if __name__ == \"__main__\":` or in a function"
        )


async def abenchmark(spec: Any, *, extra_plugins: tuple[Any, ...] = (), **overrides: Any) -> ReportList:
    """Run a spec inside an existing event loop; returns the reports (a list that a
    notebook shows as a table, with ``.to_pandas()``). Cancelling the caller stops
    the run and reaps every child."""
    return report_list(await Supervisor(spec, extra_plugins=extra_plugins, **overrides).run())


def benchmark(spec: Any, *, extra_plugins: tuple[Any, ...] = (), **overrides: Any) -> ReportList:
    """Run a spec (a path, JSON text, a dict — which may hold Python objects in place
    of import references — or a Spec) and return its reports. Works from a thread
    whose event loop is running (a Jupyter cell): the run then has a thread of its own.

    Keyword overrides replace spec fields (``duration_s=5``, ``n_models=[1]``,
    ``output_dir=...``, ``reporters=[...]``); ``reporters=[]`` prints nothing and
    writes only ``results.json``; add ``results=False`` to write no file at all.
    The list shows as a table in a notebook and converts with ``.to_pandas()``.
    """
    sup = Supervisor(spec, extra_plugins=extra_plugins, **overrides)
    # Set up in the calling thread: it may be inside an import (a module that runs a
    # benchmark when imported), and a helper thread that touched that module would
    # wait for its import lock forever.
    sup.setup()
    return report_list(run_blocking(sup.run))
