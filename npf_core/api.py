"""The Python entry points of the package root: ``abenchmark`` for async code, and
``evaluate`` on top of ``benchmark`` (see :mod:`npf_core.evaluation.runner` for the
engine side of evaluate; NeuronPerf's ``npf.torch.evaluate`` is its ``benchmark``
with ``eval_metrics``, :mod:`npf_core.neuronperf.frameworks`)."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from npf_core.results.report import Report

__all__ = ["abenchmark", "evaluate", "import_off_loop"]

RUN_MODULE = "npf_core.supervisor.run"


async def import_off_loop(name: str) -> ModuleType:
    """Import module ``name`` in a worker thread when it is not loaded yet, so the
    first call from an embedding application does not stall its event loop (the
    supervisor, psutil and structlog take over 100 ms to import). anyio's backend
    for the running loop, which anyio imports on its first use, comes along. Works
    under asyncio and trio without importing anything on the loop's thread."""
    try:
        import asyncio

        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: trio (anyio's other backend)
        loop = None
    names = (name, "anyio._backends._asyncio" if loop is not None else "anyio._backends._trio")
    if all(n in sys.modules for n in names):
        return sys.modules[name]

    def load() -> ModuleType:
        for n in names[1:]:
            importlib.import_module(n)
        return importlib.import_module(name)

    if loop is None:
        import trio

        return await trio.to_thread.run_sync(load)
    return await loop.run_in_executor(None, load)


async def abenchmark(spec: Any, *, extra_plugins: tuple[Any, ...] = (), **overrides: Any) -> list[Report]:
    """Run a spec inside an existing event loop (asyncio or trio); returns the
    reports. Cancelling the caller stops the run and reaps every child."""
    run = await import_off_loop(RUN_MODULE)
    return await run.abenchmark(spec, extra_plugins=extra_plugins, **overrides)

_UNSET: Any = object()
#: evaluate runs one copy with this many workers unless told otherwise
EVALUATE_WORKERS = 2


def evaluate(
    spec: Any,
    metrics: Any = None,
    *,
    target_col: Any = _UNSET,
    reference: Any = None,
    duration_s: float = 0.0,
    n_models: Any = 1,
    workers_per_model: Any = EVALUATE_WORKERS,
    **overrides: Any,
) -> list[Any]:
    """Run a spec in evaluate mode and return its reports (``report.metrics`` holds
    the figures). By default the dataset runs once (``duration_s=0``) on one copy
    with two workers; ``metrics`` and ``reference`` add to (or replace) the spec's
    ``evaluate`` block. Other keywords are :func:`npf_core.benchmark` overrides."""
    from npf_core.supervisor.run import benchmark

    extra: dict[str, Any] = {}
    if target_col is not _UNSET:
        extra["eval_target_col"] = target_col
    return benchmark(
        spec,
        eval_metrics=metrics,
        eval_reference=reference,
        duration_s=duration_s,
        n_models=n_models,
        workers_per_model=workers_per_model,
        **extra,
        **overrides,
    )
