"""The metric registry the user sees: NeuronPerf's ``list_metrics``,
``register_metric``, ``register_metric_from_existing``, and name -> metric lookups
across the built-ins, the caller's registrations and the plugins' metrics."""

from __future__ import annotations

from typing import Any

from npf_core.errors import SpecError
from npf_core.plugin.metrics import (
    _BUILTIN,
    BaseEvalMetric,
    Confusion,
    ErrorMean,
    MetricEntry,
    MetricRegistry,
    _kwargs,
    normalize,
)

__all__ = [
    "available_metrics",
    "get_metric",
    "is_runtime",
    "list_metrics",
    "register_metric",
    "register_metric_from_existing",
]


def _builtin_registry() -> MetricRegistry:
    reg = MetricRegistry()
    for name, formula, description in _BUILTIN:
        reg.add(name, Confusion, description, formula=formula)
    reg.add("MeanAbsoluteError", ErrorMean, "sum(|y - x|) / n", power=1)
    reg.add("MeanSquaredError", ErrorMean, "sum((y - x)^2) / n", power=2)
    reg.add("MAE", ErrorMean, "Alias for MeanAbsoluteError", power=1)
    reg.add("MSE", ErrorMean, "Alias for MeanSquaredError", power=2)
    return reg


#: built-ins plus what the caller registered (inherited by forked copies)
_REGISTRY = _builtin_registry()
_RUNTIME: set[str] = set()  # keys registered by register_metric*: they travel to copies as objects


def _plugin_registry(plugins: Any = None) -> MetricRegistry:
    """The metrics plugins registered (``plugins``, or the installed ones, found once)."""
    if plugins is None:
        if _PLUGINS[0] is None:
            from npf_core.plugin.manager import get_plugins

            _PLUGINS[0] = get_plugins()
        plugins = _PLUGINS[0]
    return plugins.metrics


_PLUGINS: list[Any] = [None]


def get_metric(name: str, plugins: Any = None, path: str = "evaluate.metrics") -> MetricEntry:
    """The metric registered as ``name`` (built-in, the caller's, or a plugin's);
    an unknown name is a :class:`~npf_core.errors.SpecError` listing them all."""
    if name in _REGISTRY:
        return _REGISTRY.get(name)
    reg = _plugin_registry(plugins)
    if name in reg:
        return reg.get(name)
    names = _REGISTRY.names() + reg.names()
    raise SpecError(path, f"unknown metric {name!r}", "installed: " + ", ".join(names))


def is_runtime(name: str) -> bool:
    """Registered in this process by :func:`register_metric*` (not built in, not a plugin's)."""
    return normalize(name) in _RUNTIME


def available_metrics(plugins: Any = None) -> dict[str, str]:
    """Every metric name -> its description (built-ins, the caller's, plugins')."""
    out = {e.name: e.description for e in _REGISTRY.entries.values()}
    for e in _plugin_registry(plugins).entries.values():
        out.setdefault(e.name, e.description or f"from {e.origin}")
    return out


def list_metrics() -> None:
    """Print the available metrics, one per line: name and description."""
    metrics = available_metrics()
    width = max(len(n) for n in metrics) + 2
    print(f"{'Name':<{width}}Description")
    for name, description in metrics.items():
        print(f"{name:<{width}}{description}")


def register_metric(name: str, cls: type[BaseEvalMetric], **init_args: Any) -> None:
    """Register a :class:`BaseEvalMetric` subclass under ``name`` (built with
    ``init_args`` in each worker). Copies started by fork inherit it; under other
    start methods it travels with the run's Python objects."""
    from npf_core.errors import PluginError

    if name in _plugin_registry():
        raise PluginError(f"metric {name!r} is already registered (by {_plugin_registry().get(name).origin})")
    _REGISTRY._current_origin = "register_metric"
    _REGISTRY.add(name, cls, (cls.__doc__ or "").strip().split("\n")[0], **init_args)
    _RUNTIME.add(normalize(name))


def register_metric_from_existing(existing: str, new: str, **init_args: Any) -> None:
    """Register ``new`` as metric ``existing`` with other init arguments, e.g.
    ``register_metric_from_existing("topk", "topk_3", k=3)``."""
    base = get_metric(existing, path="existing")
    register_metric(new, base.cls, **{**base.init_args, **init_args})
    entry = _REGISTRY.get(new)
    _REGISTRY.entries[normalize(new)] = MetricEntry(
        entry.name, entry.cls, entry.init_args, f"{base.name} with {_kwargs(init_args)}", entry.origin
    )
