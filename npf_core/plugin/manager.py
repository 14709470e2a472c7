"""The plugin manager: discovery through entry points, and name -> plugin lookups.

Built-in plugins are declared in this project's pyproject.toml under the same
entry-point group third parties use, ``npf_core.plugins``, so they prove that
path. Environment variables:

- ``NPF_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry points (register by hand).
- ``NPF_DISABLE_PLUGINS=a,b``: skip the entry points with these names.
- ``NPF_TRACE_PLUGINS=1``: log every hook call (structlog, debug level).

Every hook is called through pluggy (``pm.hook``), so pluggy's own features work:
tracing, ``hookimpl(wrapper=True)`` wrappers, ``tryfirst``/``trylast``. Hooks are
called one plugin at a time, in pluggy's order (the plugin registered last first,
``tryfirst``/``trylast`` respected; entry points are registered sorted by name,
then programmatic plugins), each call wrapped by every wrapper of that hook, so
that a registration can be attributed to its plugin and a failing observer is
isolated from the others.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from typing import Any

import pluggy

import npf_core.plugin.hookspecs as hookspecs
from npf_core.errors import PluginLoadError
from npf_core.log import get_logger
from npf_core.plugin.hookspecs import Dataset, Device, Framework, Launcher, Registry, Reporter, Telemetry
from npf_core.plugin.metrics import MetricRegistry

__all__ = ["ENTRY_POINT_GROUP", "PluginManager", "Plugins", "get_plugin_manager", "get_plugins"]

ENTRY_POINT_GROUP = "npf_core.plugins"
logger = get_logger(__name__)


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus where each entry-point plugin came from."""

    def __init__(self) -> None:
        super().__init__("npf")
        self.origins: dict[str, str] = {}  # plugin name -> "dist version"

    def describe(self, plugin: object) -> str:
        name = self.get_name(plugin) or repr(plugin)
        return f"{name} ({self.origins[name]})" if name in self.origins else name

    def each(self, hook_name: str) -> Iterator[tuple[object, pluggy.HookCaller]]:
        """(plugin, caller) per plugin implementing ``hook_name``, in pluggy's call
        order; each caller runs that plugin's implementation through pluggy, inside
        every wrapper of the hook."""
        hook = getattr(self.hook, hook_name)
        impls = hook.get_hookimpls()
        wrappers = {i.plugin for i in impls if i.wrapper or i.hookwrapper}
        plain = [i.plugin for i in reversed(impls) if not (i.wrapper or i.hookwrapper)]
        for plugin in plain:
            others = [p for p in plain if p is not plugin and p not in wrappers]
            yield plugin, self.subset_hook_caller(hook_name, remove_plugins=others)


def get_plugin_manager(*, autoload: bool = True, extra: Iterable[Any] = ()) -> PluginManager:
    """A new plugin manager: hookspecs, entry points (unless disabled), then ``extra``.
    A plugin that cannot be imported or breaks the hook contract is a
    :class:`PluginLoadError` naming it (a user error: exit code 2)."""
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)
    blocked = {n.strip() for n in os.environ.get("NPF_DISABLE_PLUGINS", "").split(",") if n.strip()}
    for name in blocked:
        pm.set_blocked(name)
    if autoload and not os.environ.get("NPF_DISABLE_PLUGIN_AUTOLOAD"):
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in blocked or pm.has_plugin(ep.name):
                continue
            try:
                pm.register(ep.load(), name=ep.name)
            except Exception as exc:
                raise PluginLoadError(f"{ep.name} = {ep.value}", exc) from exc
            dist = getattr(ep, "dist", None)
            pm.origins[ep.name] = f"{dist.name} {dist.version}" if dist is not None else ep.value
    for plugin in extra:
        try:
            pm.register(plugin)
        except pluggy.PluginValidationError as exc:
            raise PluginLoadError(repr(plugin), exc) from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(str(getattr(exc, "plugin", "a plugin")), exc) from exc
    if os.environ.get("NPF_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda msg: logger.debug("plugin trace", message=msg.rstrip()))
        pm.enable_tracing()
    return pm


class Plugins:
    """A typed facade over a plugin manager: the registries of each kind and the
    lifecycle hooks. Callers use this rather than ``pm.hook`` directly."""

    def __init__(self, pm: PluginManager) -> None:
        self.pm = pm
        self.frameworks: Registry[Framework] = Registry("framework", Framework)
        self.devices: Registry[Device] = Registry("device", Device)
        self.datasets: Registry[Dataset] = Registry("dataset", Dataset)
        self.reporters: Registry[Reporter] = Registry("reporter", Reporter)
        self.launchers: Registry[Launcher] = Registry("launcher", Launcher)
        self.telemetry: Registry[Telemetry] = Registry("telemetry", Telemetry)
        from npf_core.plugin.launch import LocalLauncher

        self.launchers._current_origin = "npf_core (built in)"
        self.launchers.add("local", LocalLauncher)
        for registry, hook_name in (
            (self.frameworks, "npf_register_frameworks"),
            (self.devices, "npf_register_devices"),
            (self.datasets, "npf_register_datasets"),
            (self.reporters, "npf_register_reporters"),
            (self.launchers, "npf_register_launchers"),
            (self.telemetry, "npf_register_telemetry"),
        ):
            self._register(registry, hook_name)
        self.metrics = MetricRegistry()
        self._register(self.metrics, "npf_register_metrics")

    def _register(self, registry: Registry[Any] | MetricRegistry, hook_name: str) -> None:
        for plugin, call in self.pm.each(hook_name):
            registry._current_origin = self.pm.describe(plugin)
            call(registry=registry)
        registry._current_origin = "programmatic"

    def framework(self, name: str, options: dict[str, Any], path: str = "model.framework") -> Framework:
        return self.frameworks.get(name, path)(options)

    def device(self, name: str, options: dict[str, Any], path: str = "device") -> Device:
        return self.devices.get(name, path)(options)

    def dataset(self, name: str, options: dict[str, Any], path: str = "dataset.plugin") -> Dataset:
        return self.datasets.get(name, path)(options)

    def notify(self, hook_name: str, event: Any) -> None:
        """Call a lifecycle hook on every observer; an exception in one observer is
        logged and the others are still called."""
        for plugin, call in self.pm.each(hook_name):
            try:
                call(event=event)
            except Exception as exc:
                logger.warning("lifecycle hook failed", hook=hook_name, plugin=self.pm.describe(plugin),
                               error=repr(exc))  # fmt: skip

    def programmatic(self) -> list[Any]:
        """The plugins registered by hand (``extra``), not through an entry point:
        what a zygote or a fresh interpreter must be sent (see npf_core.wire.transfer)."""
        return [p for name, p in self.pm.list_name_plugin() if p is not None and name not in self.pm.origins]

    def describe(self) -> dict[str, list[tuple[str, str]]]:
        """kind -> [(name, origin)], for ``python -m npf_core plugins``."""
        return {
            r.kind: [(n, r.origin(n)) for n in r.names()]
            for r in (self.frameworks, self.devices, self.datasets, self.reporters, self.launchers, self.telemetry)
        }

    def missing(self) -> dict[tuple[str, str], list[str]]:
        """(kind, name) -> the packages it requires that are not installed (only those lacking some)."""
        out = {}
        for r in (self.frameworks, self.devices, self.datasets, self.reporters, self.launchers, self.telemetry):
            for n in r.names():
                lacking = r.missing(n)
                if lacking:
                    out[(r.kind, n)] = lacking
        return out


def get_plugins(extra: Iterable[Any] = ()) -> Plugins:
    """Discover the installed plugins (plus ``extra`` objects) and build the registries."""
    return Plugins(get_plugin_manager(extra=extra))
