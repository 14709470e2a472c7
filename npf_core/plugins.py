"""The plugin manager: discovery through entry points, and name -> plugin lookups.

Built-in plugins are declared in this project's pyproject.toml under the same
entry-point group third parties use, ``npf_core.plugins``, so they prove that
path. Environment variables:

- ``NPF_DISABLE_PLUGIN_AUTOLOAD=1``: load no entry points (register by hand).
- ``NPF_DISABLE_PLUGINS=a,b``: skip the entry points with these names.
- ``NPF_TRACE_PLUGINS=1``: log every hook call.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

import pluggy
import structlog

from npf_core import hookspecs
from npf_core.errors import PluginLoadError
from npf_core.hookspecs import Dataset, Device, Framework, Launcher, Registry, Reporter

__all__ = ["ENTRY_POINT_GROUP", "Plugins", "get_plugin_manager", "get_plugins"]

ENTRY_POINT_GROUP = "npf_core.plugins"
logger = structlog.get_logger(__name__)


def get_plugin_manager(*, autoload: bool = True, extra: Iterable[Any] = ()) -> pluggy.PluginManager:
    """A new plugin manager: hookspecs, entry points (unless disabled), then ``extra``."""
    pm = pluggy.PluginManager("npf")
    pm.add_hookspecs(hookspecs)
    blocked = {n.strip() for n in os.environ.get("NPF_DISABLE_PLUGINS", "").split(",") if n.strip()}
    for name in blocked:
        pm.set_blocked(name)
    if autoload and not os.environ.get("NPF_DISABLE_PLUGIN_AUTOLOAD"):
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in blocked or pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
                pm.register(plugin, name=ep.name)
            except Exception as exc:
                raise PluginLoadError(f"{ep.name} = {ep.value}", exc) from exc
            dist = getattr(ep, "dist", None)
            origin = f"{dist.name} {dist.version}" if dist is not None else ep.value
            pm._npf_origins = {**getattr(pm, "_npf_origins", {}), ep.name: origin}  # type: ignore[attr-defined]
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    if os.environ.get("NPF_TRACE_PLUGINS"):
        pm.trace.root.setwriter(lambda msg: logger.debug("plugin trace", message=msg.rstrip()))
        pm.enable_tracing()
    return pm


class Plugins:
    """A typed facade over a plugin manager: the four registries and the lifecycle
    hooks. Callers use this rather than ``pm.hook`` directly."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.frameworks: Registry[Framework] = Registry("framework", Framework)
        self.devices: Registry[Device] = Registry("device", Device)
        self.datasets: Registry[Dataset] = Registry("dataset", Dataset)
        self.reporters: Registry[Reporter] = Registry("reporter", Reporter)
        self.launchers: Registry[Launcher] = Registry("launcher", Launcher)
        from npf_core.launch import LocalLauncher

        self.launchers._current_origin = "npf_core (built in)"
        self.launchers.add("local", LocalLauncher)
        origins: dict[str, str] = getattr(pm, "_npf_origins", {})
        for registry, hook in (
            (self.frameworks, pm.hook.npf_register_frameworks),
            (self.devices, pm.hook.npf_register_devices),
            (self.datasets, pm.hook.npf_register_datasets),
            (self.reporters, pm.hook.npf_register_reporters),
            (self.launchers, pm.hook.npf_register_launchers),
        ):
            for impl in reversed(hook.get_hookimpls()):
                name = pm.get_name(impl.plugin) or impl.plugin_name
                registry._current_origin = f"{name} ({origins[name]})" if name in origins else str(name)
                impl.function(**_args(impl, registry=registry))
            registry._current_origin = "programmatic"

    def framework(self, name: str, options: dict[str, Any], path: str = "model.framework") -> Framework:
        return self.frameworks.get(name, path)(options)

    def device(self, name: str, options: dict[str, Any], path: str = "device") -> Device:
        return self.devices.get(name, path)(options)

    def dataset(self, name: str, options: dict[str, Any], path: str = "dataset.plugin") -> Dataset:
        return self.datasets.get(name, path)(options)

    def notify(self, hook_name: str, event: Any) -> None:
        """Call a lifecycle hook; an exception in an observer is logged, not raised."""
        hook = getattr(self.pm.hook, hook_name)
        for impl in reversed(hook.get_hookimpls()):
            try:
                impl.function(**_args(impl, event=event))
            except Exception as exc:
                logger.warning("lifecycle hook failed", hook=hook_name, plugin=impl.plugin_name, error=repr(exc))

    def describe(self) -> dict[str, list[tuple[str, str]]]:
        """kind -> [(name, origin)], for ``python -m npf_core plugins``."""
        return {
            r.kind: [(n, r.origin(n)) for n in r.names()]
            for r in (self.frameworks, self.devices, self.datasets, self.reporters, self.launchers)
        }


def _args(impl: Any, **available: Any) -> dict[str, Any]:
    """Only the arguments an implementation asks for (pluggy's opt-in rule)."""
    return {k: v for k, v in available.items() if k in impl.argnames}


def get_plugins(extra: Iterable[Any] = ()) -> Plugins:
    """Discover the installed plugins (plus ``extra`` objects) and build the registries."""
    return Plugins(get_plugin_manager(extra=extra))
