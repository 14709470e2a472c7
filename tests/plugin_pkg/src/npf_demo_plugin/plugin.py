"""The plugin module named by the entry point: one hook implementation per kind."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from npf_core.plugin import (
    BaseEvalMetric,
    ChildContext,
    ExactSum,
    Framework,
    MetricRegistry,
    Registry,
    Reporter,
    ReporterContext,
    SpecError,
    decode_options,
    hookimpl,
    resolve_reference,
    to_numpy,
)
from npf_core.plugin import events as ev


class DemoOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``model.options`` of the demo framework."""

    marks: str | None = None


class DemoFramework(Framework):
    """Benchmarks a plain function named by ``model.target`` (no instantiation)."""

    start_method = "fork"
    options_type = DemoOptions  # npf schema shows it under "framework": "demo"

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.opts = decode_options(options, DemoOptions, "model.options")

    def check(self, kind: str, ref: str, spec: Any) -> None:
        if kind != "target":
            raise SpecError("model.path", "the demo framework benchmarks a function", "give model.target instead")

    def load(self, kind: str, ref: str, ctx: ChildContext) -> Any:
        fn = resolve_reference(ref, ctx.base_dir, ctx.objects)
        if not callable(fn):
            raise TypeError(f"{ref!r} is not a function")
        if self.opts.marks:
            folder = ctx.resolve(self.opts.marks)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"loaded-{os.getpid()}").write_text(f"demo {ref} copy {ctx.job.copy_index}\n")
        return fn

    def callable(self, model: Any, ctx: ChildContext) -> Callable[..., Any]:
        return model  # type: ignore[no-any-return]


class DemoReporter(Reporter):
    """Writes ``demo-report.txt``: one line per configuration, then ``closed``."""

    def __init__(self, ctx: ReporterContext) -> None:
        super().__init__(ctx)
        self.lines: list[str] = []

    def on_event(self, event: ev.Event) -> None:
        if isinstance(event, ev.RunStarted):
            self.lines.append(f"run {event.run_id} configs={len(event.configs)}")
        elif isinstance(event, (ev.ConfigFinished, ev.ConfigFailed)):
            r = event.report
            self.lines.append(
                f"config {r.config_id} framework={event.config.framework} status={r.status} total_infs={r.total_infs}"
            )

    def close(self) -> None:
        path = Path(self.ctx.output_dir) / "demo-report.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join([*self.lines, "closed"]) + "\n")


@hookimpl
def npf_register_frameworks(registry: Registry[Framework]) -> None:
    registry.add("demo", DemoFramework)


@hookimpl
def npf_register_reporters(registry: Registry[Reporter]) -> None:
    registry.add("demo-report", DemoReporter)


class WithinTolerance(BaseEvalMetric):
    """Fraction of output elements within ``tol`` of the target."""

    def __init__(self, tol: float = 0.5) -> None:
        self.tol = tol
        self.close = 0
        self.n = 0
        self.error = ExactSum()  # summed |output - target|, exact in any split

    def process_record(self, output: Any = None, target: Any = None) -> None:
        d = abs(to_numpy(output).astype(float) - to_numpy(target).astype(float)).ravel()
        self.close += int((d <= self.tol).sum())
        self.n += int(d.size)
        for v in d.tolist():
            self.error.add(v)

    @staticmethod
    def aggregate(metrics: Any) -> float:
        ms = list(metrics)
        n = sum(m.n for m in ms)
        return sum(m.close for m in ms) / n if n else float("nan")


@hookimpl
def npf_register_metrics(registry: MetricRegistry) -> None:
    registry.add("demo_within", WithinTolerance, "fraction of outputs within tol (0.5) of the target", tol=0.5)
    registry.add_from_existing("demo_within", "demo_within_tight", tol=0.01)
