"""Device telemetry in the supervisor: the run's telemetry sources, sampled once per
measurement window of every configuration.

:class:`TelemetryHub` picks the sources the spec's ``telemetry`` asks for (``"auto"``:
those whose ``devices`` name the run's device), probes them before anything starts
(a source the spec names that cannot sample is a
:class:`~npf_core.errors.TelemetryUnavailable`; under ``"auto"`` it is left out and
the reports say why), runs their background tasks for the whole run, and for each
configuration collects one row of metrics per window:
:meth:`begin` at GO, :meth:`tick` at each window's end (called by
:class:`~npf_core.supervisor.config_run.ConfigRunner` from its measuring loop), and
:meth:`end` with the copies' results. Nothing here runs in a copy: the timed loop is
untouched. A source that raises is dropped for the rest of the run, logged and
noted; the configuration and the sweep go on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from npf_core.errors import TelemetryUnavailable
from npf_core.log import get_logger
from npf_core.plugin.hookspecs import Device, Telemetry, TelemetryTarget
from npf_core.plugin.manager import Plugins
from npf_core.results.telemetry import DEVICE_METRICS, WINDOW_TIME, TelemetryResult
from npf_core.spec.config import RunConfig
from npf_core.spec.schema import LoadedSpec, TelemetrySourceSpec

__all__ = ["BUILT_IN_ORDER", "TelemetryHub"]

logger = get_logger(__name__)

#: under ``"auto"``, the built-in sources come first (in this order), then the others by name
BUILT_IN_ORDER = ("neuron-monitor", "nvml", "host")
_LABELS = {"device_util_percent": "utilisation", "device_mem_used_mb": "device memory", "power_w": "power"}


class _Sampling:
    """One configuration's rows, while it measures."""

    def __init__(self, mono_go: float) -> None:
        self.mono_go = mono_go
        self.windows: dict[str, list[Any]] = {WINDOW_TIME: []}
        self.sources: dict[str, str] = {}


class TelemetryHub:
    """The run's telemetry sources (see the module docstring)."""

    def __init__(self, loaded: LoadedSpec, plugins: Plugins, device: Device, window_s: float) -> None:
        self.device = device
        self.device_name = loaded.device.type
        self.window_s = window_s
        self.setting = loaded.spec.telemetry
        #: (spec path, name, source, named by the spec) in precedence order
        self._chosen: list[tuple[str, str, Telemetry, bool]] = []
        #: the sources sampling, in precedence order
        self.active: list[tuple[str, Telemetry]] = []
        #: source name -> why it does not sample (probe answer, or its failure)
        self.unavailable: dict[str, str] = {}
        self._probed: list[tuple[str, Telemetry]] = []  # every source that passed its probe (closed at the end)
        self._cfg: _Sampling | None = None
        self._choose(plugins)

    # -- the run ---------------------------------------------------------------

    def _applies(self, cls: type[Telemetry]) -> bool:
        devices = cls.devices
        return devices is None or self.device_name in devices or self.device.type_name in devices

    def _auto(self, plugins: Plugins) -> list[str]:
        names = plugins.telemetry.names()
        ordered = [n for n in BUILT_IN_ORDER if n in names] + [n for n in names if n not in BUILT_IN_ORDER]
        return [n for n in ordered if self._applies(plugins.telemetry.get(n))]

    def _choose(self, plugins: Plugins) -> None:
        """The sources the spec asks for, instantiated (a bad name or option is an
        error here, before anything runs)."""
        setting = self.setting
        if setting == "off":
            return
        items: list[tuple[str, str | TelemetrySourceSpec]] = (
            [("telemetry", "auto")] if setting == "auto" else [(f"telemetry[{i}]", x) for i, x in enumerate(setting)]
        )
        seen: set[str] = set()
        for path, item in items:
            picks: list[tuple[str, str, dict[str, Any], bool]]
            if item == "auto":
                picks = [(path, n, {}, False) for n in self._auto(plugins)]
            elif isinstance(item, str):
                picks = [(path, item, {}, True)]
            else:
                picks = [(f"{path}.plugin", item.plugin, dict(item.options), True)]
            for where, name, options, named in picks:
                cls = plugins.telemetry.get(name, where)
                if name in seen:
                    continue
                seen.add(name)
                self._chosen.append((where, name, cls(options), named))

    def probe(self, strict: bool = True) -> None:
        """Ask each chosen source whether it can sample here (blocking: call it off
        the event loop). Raises :class:`TelemetryUnavailable` for a source the spec
        named that cannot, when ``strict`` (the configurations run on this machine;
        a driver that sends them elsewhere, as the ``ray`` launcher does, only notes
        it: each node's supervisor samples its own devices)."""
        for path, name, source, named in self._chosen:
            try:
                why = source.probe(self.device, self.window_s)
            except Exception as exc:  # a broken source is not a broken run
                why = f"its probe failed: {type(exc).__name__}: {exc}"
            if why:
                if named and strict:
                    raise TelemetryUnavailable(path, name, why)
                logger.debug("telemetry source not available", source=name, why=why)
                self.unavailable[name] = why
            else:
                self.active.append((name, source))
                self._probed.append((name, source))

    def environment(self) -> dict[str, Any]:
        """Facts the sources found (driver versions, device counts) for results.json's
        ``environment``, and which sources sampled."""
        env: dict[str, Any] = {}
        for name, source in self.active:
            try:
                env.update(source.environment())
            except Exception as exc:
                logger.debug("telemetry source environment failed", source=name, error=repr(exc))
        env["telemetry"] = {"sources": [n for n, _ in self.active], "unavailable": dict(self.unavailable)}
        return env

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The sources' background tasks for the whole run; then every source closed.
        An exception from the body propagates as it is, not wrapped in a group."""
        error: BaseException | None = None
        try:
            async with anyio.create_task_group() as tg:
                for name, source in self.active:
                    tg.start_soon(self._serve, name, source)
                try:
                    yield
                except anyio.get_cancelled_exc_class():
                    raise  # the task group passes a cancellation through unwrapped
                except BaseException as exc:  # re-raised below, outside the task group
                    error = exc
                finally:
                    tg.cancel_scope.cancel()
            if error is not None:
                raise error
        finally:
            for name, source in self._probed:
                try:
                    source.close()
                except Exception as exc:
                    logger.warning("telemetry source failed to close", source=name, error=repr(exc))

    async def _serve(self, name: str, source: Telemetry) -> None:
        try:
            await source.run(self.window_s)
        except Exception as exc:
            self._drop(name, exc, "run")

    def _drop(self, name: str, exc: BaseException, where: str) -> None:
        logger.warning("telemetry source failed; it is left out for the rest of the run", source=name, step=where,
                       error=repr(exc))  # fmt: skip
        self.active = [(n, s) for n, s in self.active if n != name]
        self.unavailable[name] = f"failed in {where}: {type(exc).__name__}: {exc}"

    # -- one configuration ------------------------------------------------------

    def begin(self, config: RunConfig, children: list[Any], mono_go: float) -> None:
        """GO: what the sources sample until :meth:`end` (``children`` are the
        supervisor's :class:`~npf_core.supervisor.processes.Child` handles)."""
        copies = []
        for c in children:
            a = c.job.assignment if c.job is not None else None
            copies.append({
                "index": c.copy_index,
                "pid": c.pid,
                "devices": list(a.devices) if a is not None else [],
                "cpus": list(a.cpus) if a is not None and a.cpus is not None else None,
                "env": dict(a.env) if a is not None else {},
            })  # fmt: skip
        target = TelemetryTarget(config_id=config.config_id, device_type=self.device_name, window_s=self.window_s,
                                 copies=copies)  # fmt: skip
        self._cfg = _Sampling(mono_go)
        for name, source in list(self.active):
            try:
                source.begin(target)
            except Exception as exc:
                self._drop(name, exc, "begin")

    @property
    def sampling(self) -> bool:
        """A configuration is measuring (between :meth:`begin` and :meth:`end`)."""
        return self._cfg is not None

    @property
    def windows_sampled(self) -> int:
        return len(self._cfg.windows[WINDOW_TIME]) if self._cfg is not None else 0

    def tick(self, now: float) -> None:
        """A measurement window ended (``now`` on the monotonic clock): one row from
        every source. For each metric the first source (in precedence order) that
        gives it in this configuration owns it."""
        cfg = self._cfg
        if cfg is None:
            return
        row: dict[str, Any] = {}
        for name, source in list(self.active):
            try:
                values = source.sample()
            except Exception as exc:
                self._drop(name, exc, "sample")
                continue
            for metric, value in (values or {}).items():
                owner = cfg.sources.setdefault(metric, name)
                if owner == name and metric != WINDOW_TIME:
                    row[metric] = value
        n = len(cfg.windows[WINDOW_TIME])
        cfg.windows[WINDOW_TIME].append(round(now - cfg.mono_go, 4))
        for metric, value in row.items():
            cfg.windows.setdefault(metric, [None] * n).append(value)
        for series in cfg.windows.values():
            if len(series) == n:
                series.append(None)

    def end(self) -> TelemetryResult | None:
        """The copies' results are in (or the configuration failed): the rows, with a
        note on what is missing and why; None when no configuration was sampling."""
        cfg, self._cfg = self._cfg, None
        if cfg is None:
            return None
        for name, source in list(self.active):
            try:
                source.end()
            except Exception as exc:
                self._drop(name, exc, "end")
        return TelemetryResult(windows=cfg.windows, sources=cfg.sources, note=self._note(cfg))

    def _note(self, cfg: _Sampling) -> str:
        if self.setting == "off":
            return 'telemetry is off (spec "telemetry": "off")'
        missing = [m for m in DEVICE_METRICS if not any(v is not None for v in cfg.windows.get(m, []))]
        if not missing:
            return ""
        parts = [f"{name}: {why}" for name, why in self.unavailable.items()]
        # sources for any device (devices None: the host's CPUs and memory) say nothing of the device
        device_sources = [n for n, s in self.active if type(s).devices is not None]
        if not device_sources and not self.unavailable:
            parts.append(f"no device telemetry source for device {self.device_name!r}")
        sampled = [m for m in missing if m in cfg.sources]
        if sampled:
            parts.append(f"no sample of {', '.join(_LABELS[m] for m in sampled)} arrived during the measurement")
        unsourced = [m for m in missing if m not in cfg.sources]
        if unsourced and device_sources:
            parts.append(f"{', '.join(_LABELS[m] for m in unsourced)}: not reported by {', '.join(device_sources)}")
        labels = ", ".join(_LABELS[m] for m in missing)
        return f"null: {labels} ({'; '.join(parts)})" if parts else f"null: {labels}"
