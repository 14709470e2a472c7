"""The whole plugin contract of npf: every hook, and the plugin kinds.

A plugin is a module (or object) with functions marked ``@npf_core.hookimpl``,
published under the entry-point group ``npf_core.plugins``::

    [project.entry-points."npf_core.plugins"]
    my_plugin = "my_package.npf_plugin"

Hooks come in two sorts.

Registration hooks (``npf_register_*``) are called once, in whichever process
builds the plugin manager (the supervisor, and again in every zygote and every
fresh-interpreter benchmarker; plugins registered by hand are sent there
serialised, see :mod:`npf_core.wire.transfer`). Each receives a :class:`Registry` and
adds classes to it under unique names; the classes below are the base classes to
derive from.

Lifecycle hooks (``npf_run_*``, ``npf_config_*``) are called in the supervisor
process only, synchronously, one observer at a time in pluggy's order (the plugin
registered last first; ``tryfirst``/``trylast`` respected), and only observe: their
return values are ignored and an exception in one is logged, never fatal. Every
hook is called through pluggy, so ``hookimpl(wrapper=True)`` wrappers and
``NPF_TRACE_PLUGINS=1`` tracing apply.
No hook is ``async``; pluggy has no async hook calling.

Implementations may accept fewer arguments than the spec lists (pluggy's rule),
so new arguments can be added later without breaking existing plugins.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

import pluggy

if TYPE_CHECKING:
    import npf_core.plugin.events as ev
    from npf_core.plugin.metrics import MetricRegistry
    from npf_core.results.history import History
    from npf_core.results.report import Report
    from npf_core.results.store import Results
    from npf_core.spec.config import RunConfig
    from npf_core.spec.schema import LoadedSpec, Spec
    from npf_core.wire.compile import CompileRequest, CompileResult
    from npf_core.wire.protocol import Job

__all__ = [
    "Assignment",
    "ChildContext",
    "Dataset",
    "Device",
    "Framework",
    "LaunchHost",
    "Launcher",
    "Registry",
    "Reporter",
    "ReporterContext",
    "Telemetry",
    "TelemetryTarget",
    "hookimpl",
    "hookspec",
]

hookspec = pluggy.HookspecMarker("npf")
hookimpl = pluggy.HookimplMarker("npf")


# --------------------------------------------------------------------------
# Registration hooks
# --------------------------------------------------------------------------


@hookspec
def npf_register_frameworks(registry: Registry[Framework]) -> None:
    """Add framework plugins: ``registry.add("name", FrameworkSubclass)``.

    A framework says how to check a model reference (supervisor, without
    importing the framework), how to load it and call it (benchmarker), how to
    turn input arrays into the framework's tensors, and which start method its
    benchmarkers need.

    :param registry: the framework registry; names must be unique.
    """


@hookspec
def npf_register_devices(registry: Registry[Device]) -> None:
    """Add device plugins: ``registry.add("name", DeviceSubclass)``.

    A device counts what the machine has, decides what ``"max"`` model copies
    means, and gives each copy its share (environment variables, CPU affinity).

    :param registry: the device registry; names must be unique.
    """


@hookspec
def npf_register_datasets(registry: Registry[Dataset]) -> None:
    """Add dataset plugins: ``registry.add("name", DatasetSubclass)``.

    A dataset yields examples (tuples of arrays) inside the benchmarker; the spec
    names it under ``dataset.plugin``.

    :param registry: the dataset registry; names must be unique.
    """


@hookspec
def npf_register_reporters(registry: Registry[Reporter]) -> None:
    """Add reporter plugins: ``registry.add("name", ReporterSubclass)``.

    A reporter receives every run event in the supervisor process (progress,
    finished and failed configurations, the end of the run) and writes or shows
    what it likes; the spec lists the active ones in ``output.reporters``.

    :param registry: the reporter registry; names must be unique.
    """


@hookspec
def npf_register_metrics(registry: MetricRegistry) -> None:
    """Add accuracy metrics: ``registry.add("name", MetricSubclass, "description",
    **init_args)`` or ``registry.add_from_existing("existing", "new", **init_args)``.

    A metric derives from :class:`npf_core.plugin.BaseEvalMetric`: one instance per
    worker thread of each copy sees that worker's records in
    ``process_record(output, target)``; the supervisor combines every instance of a
    configuration with the class's ``aggregate(metrics)``. Called in every process
    that builds the plugin manager (the supervisor, and fresh-interpreter
    benchmarkers, which build their metrics by name from it). Names are matched
    without regard to case, spaces, ``_`` and ``-``, and must be unique.

    :param registry: the metric registry (a :class:`npf_core.plugin.metrics.MetricRegistry`).
    """


@hookspec
def npf_register_launchers(registry: Registry[Launcher]) -> None:
    """Add launcher plugins: ``registry.add("name", LauncherSubclass)``.

    A launcher decides where the planned configurations run: ``local`` (built in,
    the default) runs them here one after the other; ``ray`` sends them to the
    nodes of a Ray cluster. The spec names it under ``launcher.plugin``.

    :param registry: the launcher registry; names must be unique.
    """


@hookspec
def npf_register_telemetry(registry: Registry[Telemetry]) -> None:
    """Add telemetry sources: ``registry.add("name", TelemetrySubclass)``.

    A telemetry source samples a device (utilisation, memory, power, ...) in the
    supervisor process, once per measurement window of every configuration, never
    in a model copy; the spec's ``telemetry`` field chooses the sources (``"auto"``:
    those whose :attr:`Telemetry.devices` name the run's device).

    :param registry: the telemetry registry; names must be unique.
    """


# --------------------------------------------------------------------------
# Lifecycle hooks (supervisor process, observe-only)
# --------------------------------------------------------------------------


@hookspec
def npf_run_started(event: ev.RunStarted) -> None:
    """A run begins: the plan is made and no benchmarker has started yet.

    :param event: the run id, the spec and the planned configurations.
    """


@hookspec
def npf_config_started(event: ev.ConfigStarted) -> None:
    """A configuration begins: its benchmarker processes are about to start.

    :param event: the configuration and its position in the plan.
    """


@hookspec
def npf_config_finished(event: ev.ConfigFinished) -> None:
    """A configuration finished with status ``"ok"``; its report is final.

    :param event: the configuration and its report.
    """


@hookspec
def npf_config_failed(event: ev.ConfigFailed) -> None:
    """A configuration failed; its report has status ``"error"`` and the reason.

    :param event: the configuration, its error report and the error.
    """


@hookspec
def npf_run_finished(event: ev.RunFinished) -> None:
    """A run ended: completed, failed in part, or interrupted.

    :param event: every report of the run and whether it was interrupted.
    """


# --------------------------------------------------------------------------
# The plugin kinds
# --------------------------------------------------------------------------

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> plugin class for one kind. Passed to the ``npf_register_*`` hooks."""

    def __init__(self, kind: str, base: type[T]) -> None:
        self.kind = kind
        self.base = base
        self._classes: dict[str, type[T]] = {}
        self._origins: dict[str, str] = {}
        self._current_origin = "programmatic"

    def add(self, name: str, cls: type[T]) -> None:
        """Register ``cls`` under ``name``; a name may be taken only once."""
        from npf_core.errors import PluginError

        if not name or not isinstance(name, str):
            raise PluginError(f"{self.kind} plugin name must be a non-empty string, got {name!r}")
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise PluginError(f"{self.kind} plugin {name!r} must be a subclass of npf_core.{self.base.__name__}")
        if name in self._classes:
            raise PluginError(
                f"{self.kind} plugin {name!r} is registered twice "
                f"({self._origins[name]} and {self._current_origin})"
            )
        self._classes[name] = cls
        self._origins[name] = self._current_origin

    def get(self, name: str, path: str = "") -> type[T]:
        from npf_core.errors import UnknownPluginError

        try:
            return self._classes[name]
        except KeyError:
            raise UnknownPluginError(self.kind, name, self._classes, path) from None

    def names(self) -> list[str]:
        return sorted(self._classes)

    def origin(self, name: str) -> str:
        return self._origins[name]

    def missing(self, name: str) -> list[str]:
        """The packages a plugin ``requires`` (its class attribute) that are not installed."""
        import importlib.util

        out = []
        for module in getattr(self._classes[name], "requires", ()):
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                out.append(module)
        return out

    def __contains__(self, name: object) -> bool:
        return name in self._classes


class Assignment(dict):
    """What a device gives one model copy. Keys: ``env`` (variables to set in the
    benchmarker), ``cpus`` (CPU affinity, or None), ``devices`` (device ids, for
    reports), ``label`` (short text for reports). Plain data: it crosses the wire."""


class ChildContext:
    """What a plugin sees inside a benchmarker process."""

    def __init__(
        self,
        *,
        job: Job,
        base_dir: Path,
        assignment: Assignment,
        device: Device,
        objects: dict[str, Any],
    ) -> None:
        self.job = job
        self.base_dir = base_dir
        self.assignment = assignment
        self.device = device
        self.objects = objects

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def cpu_share(self) -> int:
        """This copy's share of the usable CPUs: all of them when the device pinned
        the copy to its own CPUs, else the usable CPUs divided by the copies (at
        least 1). For sizing a framework's thread pools."""
        import os

        try:
            usable = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            usable = os.cpu_count() or 1
        if self.assignment.get("cpus"):
            return usable
        return max(1, usable // max(1, int(getattr(self.job, "n_models", 1))))


class Framework:
    """Base class of framework plugins (``python``, ``torch``, ...).

    Methods marked *supervisor* run in the supervisor and must not import the
    framework; those marked *benchmarker* run in the child process.
    """

    #: the Python packages (import names) the plugin cannot work without; ``npf plugins``
    #: marks it as missing them where one is not installed (any plugin kind may say so)
    requires: ClassVar[tuple[str, ...]] = ()
    #: the start method ``start_method: "auto"`` resolves to: ``"zygote"`` (copies are
    #: forked from a clean interpreter that imported :attr:`preimport`), ``"fresh"`` (a
    #: new interpreter per copy: for runtimes that must never be forked) or ``"fork"``
    #: (copies are forked from the calling process)
    start_method: ClassVar[str] = "zygote"
    #: modules a zygote imports before it forks copies (``("torch",)``): the framework
    #: itself, so that no copy pays its import. Importing them must not start threads,
    #: open a device or initialise a runtime that breaks when forked.
    preimport: ClassVar[tuple[str, ...]] = ()
    #: how compiled artifacts end in the default ``compile.artifact`` pattern:
    #: a file suffix (``".pt"``), or ``""`` for a folder (a SavedModel, a checkpoint folder)
    compile_suffix: ClassVar[str] = ".pt"
    #: the type (a msgspec Struct) :meth:`__init__` decodes ``model.options`` into, or
    #: None; ``npf schema`` describes ``model.options`` with it where ``model.framework``
    #: names this plugin
    options_type: ClassVar[type | None] = None

    def __init__(self, options: dict[str, Any]) -> None:
        """*supervisor and benchmarker*: ``options`` is the spec's ``model.options``;
        raise :class:`~npf_core.errors.SpecError` for a bad option."""
        self.options = options

    def start_method_for(self, device: Device) -> str:
        """*supervisor*: the start method ``start_method: "auto"`` resolves to on
        ``device``. The default is the class's :attr:`start_method`; a framework whose
        runtime must never be initialised before a fork (torch-neuronx on ``neuron``)
        returns ``"fresh"`` here."""
        return self.start_method

    def fork_note(self) -> str | None:
        """*supervisor*, for ``start_method: "fork"`` only: why copies forked from this
        (the calling) process may measure wrongly, or None. It becomes a validity
        reason of every report of the run. The default names the :attr:`preimport`
        modules the caller has already imported: a fork inherits their state (a used
        thread pool, an allocator, a device context)."""
        used = [m for m in self.preimport if m in sys.modules]
        if not used:
            return None
        return (
            f"copies were forked from a process that had already imported {', '.join(used)}: they inherit its "
            "state (thread pools, allocators, device contexts), which can distort the figures; use start_method "
            "'zygote' (the default) or 'fresh'"
        )

    def copy_depends_on(self, device: Device) -> frozenset[str]:
        """*supervisor*: the configuration fields (:class:`~npf_core.spec.config.RunConfig`
        names: ``n_models``, ``workers_per_model``, ``batch_size``) that a loaded copy
        depends on beyond its model and its device share, because :meth:`load` fixed
        something from them that cannot change later (a runtime's thread count read
        once at start-up). A copy kept from an earlier configuration is reused only for
        one with the same values (docs/copy-reuse.md). The default: none, for copies
        whose :meth:`reconfigure` adapts them."""
        return frozenset()

    def check(self, kind: str, ref: str, spec: Spec) -> None:
        """*supervisor*: validate a model reference (``kind`` is ``"target"`` or
        ``"path"``) before any process starts; raise ``SpecError``."""

    def load(self, kind: str, ref: str, ctx: ChildContext) -> Any:
        """*benchmarker*: load one model copy and return it (timed as load)."""
        raise NotImplementedError

    def reconfigure(self, model: Any, ctx: ChildContext) -> None:
        """*benchmarker*: ``model``, loaded for an earlier configuration, runs the next
        one (``ctx.job`` is its job: other workers, batch size, copies or load mode);
        adapt what :meth:`load` sized from the job (thread pools sized by
        ``n_models``). Whatever cannot be adapted belongs in :meth:`copy_depends_on`.
        The default does nothing."""

    def convert_inputs(self, example: tuple[Any, ...], ctx: ChildContext) -> tuple[Any, ...]:
        """*benchmarker*: turn one example (numpy arrays, or whatever the dataset
        yields) into the call's positional arguments, on the model's device."""
        return example

    def callable(self, model: Any, ctx: ChildContext) -> Callable[..., Any]:
        """*benchmarker*: the function each worker calls as ``fn(*inputs)``. It must
        return only once the work is done (e.g. synchronise an asynchronous device)."""
        return model

    def worker_context(self, ctx: ChildContext) -> AbstractContextManager[Any]:
        """*benchmarker*: a context each worker thread runs inside (e.g. no-grad)."""
        return nullcontext()

    def compile(self, request: CompileRequest) -> CompileResult:
        """*supervisor or a child*: compile one model variant for ``npf_core.compile``;
        frameworks that cannot compile leave this as is."""
        from npf_core.errors import PluginError

        raise PluginError(f"framework {type(self).__name__} cannot compile models")


class Device:
    """Base class of device plugins (``cpu``, ``gpu``, ``neuron``, ...)."""

    #: whether copies need a device each (more copies than devices is an error);
    #: an instance may set it from its options
    exclusive: bool = True
    #: appended to the "more copies than devices" error: how this device allows more
    exclusive_hint: ClassVar[str] = ""
    #: the value reports give as ``device_type``
    type_name: ClassVar[str] = "device"
    #: the type (a msgspec Struct) ``device.options`` decodes into, or None; ``npf schema`` shows it
    options_type: ClassVar[type | None] = None

    def __init__(self, options: dict[str, Any]) -> None:
        """*supervisor and benchmarker*: ``options`` is the spec's ``device.options``."""
        self.options = options

    def check(self) -> None:
        """*supervisor*: fail with :class:`~npf_core.errors.DeviceUnavailable` if the
        device is absent."""

    def count(self) -> int | None:
        """*supervisor*: how many devices (cores, GPUs) copies can use; None if unknown."""
        return None

    def assign(self, copy_index: int, n_models: int, pipeline_size: int) -> Assignment:
        """*supervisor*: what copy ``copy_index`` of ``n_models`` gets."""
        return Assignment(env={}, cpus=None, devices=[], label="")

    def setup_child(self, assignment: Assignment) -> None:
        """*benchmarker*, before the model loads: apply the assignment beyond env
        vars (which the supervisor already set)."""

    def failure_hint(self, text: str) -> str | None:
        """*supervisor*: what to do about a copy's failure, when its message and output
        (``text``) show a cause this device knows (e.g. the device held by another
        process); None when it does not. Added to the failure's message."""
        return None


class Dataset:
    """Base class of dataset plugins: where a benchmarker's inputs come from."""

    #: True when examples are cheap to hold in memory: the benchmarker then
    #: materialises them once and each worker cycles through them, untimed.
    in_memory: ClassVar[bool] = False
    #: True when a copy's workers share one pass over the examples (each example is
    #: used once per copy, as NeuronPerf ran a torch Dataset); ``examples`` is then
    #: called once per copy for the measurement (and once more for the warm-up).
    shared: ClassVar[bool] = False
    #: the type (a msgspec Struct) ``dataset.options`` decodes into, or None; ``npf schema`` shows it
    options_type: ClassVar[type | None] = None

    def __init__(self, options: dict[str, Any]) -> None:
        """*supervisor and benchmarker*: ``options`` is the spec's ``dataset.options``."""
        self.options = options

    def check(self, spec: Spec) -> None:
        """*supervisor*: validate the options (files exist, ...); raise ``SpecError``."""

    def examples(self, ctx: ChildContext) -> Iterable[tuple[Any, ...]]:
        """*benchmarker*: the examples, each a tuple of positional inputs. Called once
        per worker (each iterates on its own, without a shared lock), and again when
        exhausted if the spec's ``dataset.loop`` is true."""
        raise NotImplementedError


class ReporterContext:
    """What a reporter gets: where to write, the console, and the run's spec."""

    def __init__(
        self, *, output_dir: Path, spec: Spec | dict[str, Any], verbosity: int, console: Any = None
    ) -> None:
        self.output_dir = output_dir
        self.spec = spec
        self.verbosity = verbosity
        self.console = console


class Reporter:
    """Base class of reporter plugins (``console``, ``json``, ``csv``, ...)."""

    def __init__(self, ctx: ReporterContext) -> None:
        self.ctx = ctx

    def on_event(self, event: ev.Event) -> None:
        """*supervisor*: called for every event of the run, in order."""

    def close(self) -> None:
        """*supervisor*: the run is over (also after an interruption)."""

    def export(self, results: Results, path: Path) -> None:
        """Optional: write a finished run (``npf_core.plugin.Results``, as read from a
        results file) to ``path``, for ``npf report RESULTS --<name> PATH``."""
        raise NotImplementedError(f"reporter {type(self).__name__} cannot export a finished run to a file")

    def text(self, reports: list[Report]) -> str:
        """Optional: a finished run's reports as this reporter's text, for ``npf report
        RESULTS --format <name>`` (the ``csv`` reporter's: the CSV of results.csv)."""
        raise NotImplementedError(f"reporter {type(self).__name__} has no text form")

    def export_history(self, history: History, path: Path) -> None:
        """Optional: write a spec's runs over time (``npf_core.plugin.History``) to
        ``path``, for ``npf history PATH --<name> FILE``."""
        raise NotImplementedError(f"reporter {type(self).__name__} cannot export a history to a file")

class LaunchHost(Protocol):
    """What a launcher gets from the run it serves (the driver's
    :class:`~npf_core.Supervisor`): the prepared spec, the plan, and where to report."""

    loaded: LoadedSpec

    @property
    def plan(self) -> list[RunConfig]: ...

    def config_started(self, index: int, config: RunConfig) -> None:
        """A configuration begins (here or on another machine)."""

    def config_done(self, index: int, config: RunConfig, report: Report) -> None:
        """A configuration ended with ``report`` (failures included)."""

    def emit(self, event: ev.Event) -> None:
        """An event received from elsewhere (progress on a remote node)."""

    async def run_config(self, index: int, config: RunConfig) -> Report:
        """Run one configuration in this process's supervisor; its report."""
        ...


class Launcher:
    """Base class of launcher plugins (``local``, ``ray``, ...): where the planned
    configurations run. The driver (the supervisor process) plans the sweep, skips
    what ``--resume`` found finished, then hands the rest to :meth:`run`.

    ``run`` is the running :class:`~npf_core.Supervisor`; a launcher reports through
    it: ``run.config_started(index, config)`` when a configuration begins,
    ``run.emit(event)`` for its progress events, ``run.config_done(index, config,
    report)`` with its report, and may run a configuration here with ``await
    run.run_config(index, config)``."""

    #: the type (a msgspec Struct) ``launcher.options`` decodes into, or None; ``npf schema`` shows it
    options_type: ClassVar[type | None] = None

    def __init__(self, options: dict[str, Any]) -> None:
        """*supervisor*: ``options`` is the spec's ``launcher.options``; raise
        :class:`~npf_core.errors.SpecError` for a bad option."""
        self.options = options

    def check(self, run: LaunchHost) -> None:
        """*supervisor*, before anything runs: fail with a
        :class:`~npf_core.errors.UserError` if the configurations cannot run where
        this launcher would send them (no such cluster, no node with the device)."""

    async def run(self, run: LaunchHost, todo: list[tuple[int, RunConfig]]) -> None:
        """*supervisor*: run every ``(index, config)`` of ``todo`` and report each
        one through ``run``. Cancellation (Ctrl-C, the embedding task cancelled)
        must stop whatever this launcher started before it propagates."""
        raise NotImplementedError


class TelemetryTarget:
    """One configuration as a telemetry source sees it: which copies run, as what
    processes, on which devices. Plain data, built by the supervisor at GO."""

    def __init__(self, *, config_id: str, device_type: str, window_s: float, copies: list[dict[str, Any]]) -> None:
        #: the configuration's id (as in its report)
        self.config_id = config_id
        #: the run's device plugin name (``"neuron"``, ``"gpu"``, ``"cpu"``, ...)
        self.device_type = device_type
        #: the measurement window: :meth:`Telemetry.sample` is called once per window
        self.window_s = window_s
        #: one dict per model copy: ``index``, ``pid`` (None for an inline copy),
        #: ``devices`` (the device plugin's ids: NeuronCore ids, GPU indices or UUIDs,
        #: pinned CPUs), ``cpus`` (the CPU affinity the device set, or None) and ``env``
        #: (what the device put in the copy's environment, e.g. NEURON_RT_VISIBLE_CORES)
        self.copies = copies

    @property
    def devices(self) -> list[str]:
        """Every copy's devices, each once, in copy order."""
        return list(dict.fromkeys(d for c in self.copies for d in c.get("devices") or []))

    @property
    def pids(self) -> list[int]:
        """The copies' process ids (inline copies have none)."""
        return [c["pid"] for c in self.copies if c.get("pid") is not None]


class Telemetry:
    """Base class of telemetry sources (``neuron-monitor``, ``nvml``, ``host``, ...).

    A source runs in the supervisor only. Per run: :meth:`probe` (in a worker thread,
    may block), then :meth:`run` as a background task for the whole run; per
    configuration: :meth:`begin` at GO, :meth:`sample` at the end of every
    measurement window, :meth:`end` when the copies have sent their results; finally
    :meth:`close`. A source that raises is dropped for the rest of the run (logged,
    noted in the reports); the run goes on.

    :meth:`sample` returns metric name -> value for the window that just ended. The
    names npf summarises into report fields (a source gives those it can):

    - ``device_util_percent``: how busy the configuration's devices were, averaged
      over them (%) -> ``device_util_avg_percent``, ``device_util_peak_percent``
    - ``device_mem_used_mb``: device memory the configuration uses, summed over its
      devices (MiB) -> ``device_mem_used_peak_mb``
    - ``power_w``: the power its devices draw, summed (W) -> ``power_avg_w``,
      ``power_peak_w``, ``inf_per_joule``
    - ``sm_clock_mhz``: the devices' clock, averaged (MHz) -> ``device_clock_avg_mhz``
    - ``cpu_util_percent``: utilisation of the CPU cores the copies run on (%)
      -> ``copy_cores_util_avg_percent``
    - ``copy_rss_mb``: a list, each copy's resident memory (MiB) -> ``copy_rss_peak_mb``

    Any other numeric metric is kept per window and averaged into ``telemetry_avg``.
    When two sources give the same metric, the one listed first in the spec's
    ``telemetry`` (under ``"auto"``: the built-in sources, then the others by name)
    wins.
    """

    #: the device types (device plugin names or ``type_name``) this source samples
    #: under ``telemetry: "auto"``; ``None``: every device; ``()``: only when the spec
    #: names the source
    devices: ClassVar[tuple[str, ...] | None] = ()

    def __init__(self, options: dict[str, Any]) -> None:
        """*supervisor*: ``options`` from the spec's ``{"plugin": NAME, "options": {...}}``
        form (``{}`` otherwise); raise :class:`~npf_core.errors.SpecError` for a bad one."""
        self.options = options

    def probe(self, device: Device, window_s: float) -> str | None:
        """*supervisor*, once per run before anything starts, in a worker thread (it
        may block: run a tool, load a library): ``None`` when this source can sample
        here, else why not, in a few words (``"pynvml is not installed"``); that
        becomes the reports' ``telemetry_note``, or an error when the spec named the
        source."""
        return None

    def environment(self) -> dict[str, Any]:
        """*supervisor*, after a successful :meth:`probe` and again as the run goes:
        facts for ``results.json``'s ``environment`` (driver versions, device counts),
        under a key of the source's own (``{"gpu": {...}}``)."""
        return {}

    async def run(self, window_s: float) -> None:
        """*supervisor*: a background task for the whole run (e.g. start a monitor
        process once and read its stream). Cancelled when the run ends; clean up in a
        ``finally`` (shielded if it awaits). The default does nothing."""

    def begin(self, target: TelemetryTarget) -> None:
        """*supervisor*, at GO of each configuration: what to sample until :meth:`end`."""

    def sample(self) -> dict[str, Any]:
        """*supervisor*, at the end of every measurement window: metric name -> value
        for that window (empty when nothing new was seen). Must not block: the event
        loop that watches the copies calls it."""
        return {}

    def end(self) -> None:
        """*supervisor*: the configuration's copies have sent their results."""

    def close(self) -> None:
        """*supervisor*: the run is over (also after an interruption)."""
