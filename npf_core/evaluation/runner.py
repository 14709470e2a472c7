"""Evaluate mode: accuracy metrics and agreement with a reference model, beside speed.

Spec form (see docs/evaluate.md)::

    "evaluate": {"metrics": ["accuracy", "precision"], "target_col": -1,
                 "reference": {"target": "models.py:Net", "framework": "torch"}}

Supervisor side: the spec's ``evaluate`` block is checked (names, references)
before any process starts; each job carries an :class:`~npf_core.wire.protocol.EvalJob`;
each copy's RESULT brings one metric state per worker thread, which
:func:`apply_evaluation` combines with each metric's own ``aggregate`` into the
report's ``metrics``.

Child side: :class:`Evaluation` splits each example into inputs and target, gives
each worker thread its share of the examples (example ``k`` goes to worker
``k mod (n_models x workers)``, so the dataset is run once in all), builds the
metrics, and loads and calls the reference model.

The spec block's own checks are in :mod:`npf_core.spec.evaluate`; the Python entry
points (``npf_core.evaluate``, NeuronPerf's signature) in :mod:`npf_core.api`.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from npf_core.errors import MetricError, SpecError
from npf_core.evaluation.registry import get_metric, is_runtime
from npf_core.plugin.metrics import REFERENCE_METRICS, Agreement, BaseEvalMetric, MetricEntry
from npf_core.spec.evaluate import _key, metric_keys
from npf_core.spec.tokens import OBJECT_PREFIX

__all__ = [
    "Evaluation",
    "apply_evaluation",
    "eval_job",
    "resolve_metrics",
]

RUNTIME_PREFIX = "<metric:"


# --------------------------------------------------------------------------
# The spec block (supervisor side, before any process starts)
# --------------------------------------------------------------------------


def _entry(s: str, objects: dict[str, Any], base_dir: Path, plugins: Any, path: str) -> MetricEntry:
    """The metric a spec string names: a runtime registration that travelled with the
    run's objects, an API class, a ``module:Class`` reference, or a registered name."""
    if RUNTIME_PREFIX + s + ">" in objects:
        return objects[RUNTIME_PREFIX + s + ">"]
    if s.startswith(OBJECT_PREFIX) or ":" in s:
        if s in objects:
            obj = objects[s]
        else:
            from npf_core.plugin.references import resolve_reference

            obj = resolve_reference(s, base_dir, objects)
        if not (isinstance(obj, type) and issubclass(obj, BaseEvalMetric)):
            raise SpecError(path, f"{obj!r} is not a metric", "give a subclass of npf_core.BaseEvalMetric")
        return MetricEntry(_key(s), obj, {}, (obj.__doc__ or "").strip(), "API")
    return get_metric(s, plugins, path)


def resolve_metrics(loaded: Any, plugins: Any) -> dict[str, MetricEntry]:
    """Check every metric before any process starts (unknown names list the installed
    ones); metrics registered in this process travel to the copies as run objects,
    under every start method (serialised for zygote and fresh copies)."""
    block = loaded.spec.evaluate
    out: dict[str, MetricEntry] = {}
    for i, s in enumerate(block.metrics):
        path = f"evaluate.metrics[{i}]"
        if ":" in s and not s.startswith(OBJECT_PREFIX):
            continue  # a reference: checked to exist; imported in the copies and at aggregation
        entry = _entry(s, loaded.objects, loaded.base_dir, plugins, path)
        if not s.startswith(OBJECT_PREFIX) and is_runtime(s):
            loaded.objects[RUNTIME_PREFIX + s + ">"] = entry
        out[_key(s)] = entry
    return out


def eval_job(loaded: Any) -> Any:
    """The :class:`~npf_core.wire.protocol.EvalJob` of a spec (None without ``evaluate``)."""
    from npf_core.wire.protocol import EvalJob

    block = loaded.spec.evaluate
    if block is None:
        return None
    ref = msgspec.to_builtins(block.reference) if block.reference is not None else None
    return EvalJob(
        metrics=list(block.metrics),
        keys=[_key(s) for s in block.metrics],
        target_col=block.target_col if loaded.spec.inputs is None else None,
        reference=ref,
        once=loaded.spec.dataset_once,
    )


# --------------------------------------------------------------------------
# Aggregation (supervisor side)
# --------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A metric result as JSON-able data (numpy and torch values become Python's)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def _rebuild(cls: Any, state: bytes) -> Any:
    obj = cls.__new__(cls)
    obj.__dict__.update(pickle.loads(state))
    return obj


def apply_evaluation(report: Any, results: Iterable[Any], loaded: Any, entries: dict[str, MetricEntry]) -> Any:
    """The report with ``metrics`` (report name -> aggregated value) and ``eval_examples``."""
    block = loaded.spec.evaluate
    results = list(results)
    values: dict[str, Any] = {}
    for key, s in metric_keys(block):
        states = [st for r in results for st in r.metric_states.get(key, [])]
        try:
            if key in REFERENCE_METRICS and s == key:
                cls: type = Agreement
            else:
                entry = entries.get(key) or _entry(s, loaded.objects, loaded.base_dir, None, "evaluate.metrics")
                cls = entry.cls
            values[key] = _plain(cls.aggregate([_rebuild(cls, st) for st in states]))  # type: ignore[attr-defined]
        except Exception as exc:
            raise MetricError(key, exc) from exc
    examples = sum(r.eval_examples for r in results)
    return msgspec.structs.replace(report, metrics=values, eval_examples=examples)


# --------------------------------------------------------------------------
# The child side
# --------------------------------------------------------------------------


class Evaluation:
    """Evaluate mode inside one benchmarker (one model copy)."""

    def __init__(self, bench: Any) -> None:
        from npf_core.errors import StageError

        self.bench = bench
        job = bench.job
        self.ev = job.evaluate
        ctx = bench.ctx
        self.target_col = self.ev.target_col
        self.once = self.ev.once
        self.n_workers = job.n_models * job.workers
        self.first_worker = job.copy_index * job.workers
        self.entries = [
            (key, _entry(s, ctx.objects, ctx.base_dir, bench.plugins, f"evaluate.metrics[{i}]"))
            for i, (key, s) in enumerate(zip(self.ev.keys, self.ev.metrics, strict=True))
        ]
        self.ref_fn: Any = None
        if self.ev.reference is not None:
            kept = getattr(bench, "_reference", None)  # a reused copy loaded it for an earlier configuration
            try:
                if kept is not None:
                    self.ref_framework, self.ref_ctx, self.ref_fn = kept
                    self.ref_ctx.job = msgspec.structs.replace(job, framework=self.ref_ctx.job.framework,
                        model_options=self.ref_ctx.job.model_options, model_kind=self.ref_ctx.job.model_kind,
                        model_ref=self.ref_ctx.job.model_ref)  # fmt: skip
                else:
                    self._load_reference(self.ev.reference)
                    bench._reference = (self.ref_framework, self.ref_ctx, self.ref_fn)
            except Exception as exc:
                raise StageError("reference", exc) from exc
        self._memory: list[tuple[Any, ...]] | None = None
        if job.inputs is not None:
            from npf_core.wire.tensors import build_example

            self._memory = [tuple(build_example(job.inputs, Path(job.base_dir), seed=job.seed))]
        else:
            ds_spec = job.dataset
            assert ds_spec is not None  # the spec has inputs or a dataset
            self.dataset = bench.plugins.dataset(ds_spec.plugin, ds_spec.options)
            if self.dataset.in_memory:
                self._memory = [tuple(e) for e in self.dataset.examples(ctx)]

    def _load_reference(self, ref: dict[str, Any]) -> None:
        bench = self.bench
        job = bench.job
        name = ref.get("framework") or job.framework
        options = ref.get("options") or {}
        self.ref_framework = bench.plugins.framework(name, options, "evaluate.reference.framework")
        device = bench.plugins.device(ref.get("device") or "cpu", {}, "evaluate.reference.device")
        kind, where = ("target", ref["target"]) if ref.get("target") else ("path", ref["path"])
        rjob = msgspec.structs.replace(job, framework=name, model_options=options, model_kind=kind, model_ref=where)
        self.ref_ctx = bench.context_for(rjob, device)
        model = self.ref_framework.load(kind, where, self.ref_ctx)
        self.ref_fn = self.ref_framework.callable(model, self.ref_ctx)

    def reference_context(self) -> Any:
        from contextlib import nullcontext

        if self.ref_fn is None:
            return nullcontext()
        return self.ref_framework.worker_context(self.ref_ctx)

    def reference_output(self, raw: tuple[Any, ...]) -> Any:
        """The reference model's (postprocessed) output for the same raw inputs."""
        b = self.bench
        x = self.ref_framework.convert_inputs(tuple(raw), self.ref_ctx)
        x = x if isinstance(x, tuple) else (x,)
        if b.pre is not None:
            x = b.pre(*x)
            x = x if isinstance(x, tuple) else (x,)
        out = self.ref_fn(*x)
        return b.post(out) if b.post is not None else out

    def new_metrics(self) -> dict[str, BaseEvalMetric]:
        """One worker's fresh metric instances (user metrics first, then reference ones)."""
        out = {key: entry.create() for key, entry in self.entries}
        if self.ref_fn is not None:
            out.update({key: Agreement(kind) for key, kind in REFERENCE_METRICS.items()})
        return out

    def split(self, example: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any]:
        """(inputs, target) of one example."""
        if self.target_col is None:
            return example, None
        n = len(example)
        if n < 2:
            raise ValueError(
                f"an example has {n} column(s); evaluate needs (*inputs, target) "
                "(or set evaluate.target_col to null when examples have no target)"
            )
        c = self.target_col if self.target_col >= 0 else n + self.target_col
        if not 0 <= c < n:
            raise ValueError(f"evaluate.target_col {self.target_col} is outside an example of {n} columns")
        return example[:c] + example[c + 1 :], example[c]

    def _source(self) -> Iterable[tuple[Any, ...]]:
        if self._memory is not None:
            return self._memory
        return (tuple(e) for e in self.dataset.examples(self.bench.ctx))

    def share(self, worker: int) -> Iterator[tuple[tuple[Any, ...], Any]]:
        """This worker's examples: every ``n_models x workers``-th, from its own
        offset, so that all workers of all copies together run each example once per
        pass (once in all when ``duration_s`` is 0, else again until the deadline)."""
        mine = self.first_worker + worker
        step = self.n_workers
        while True:
            got = False
            for k, e in enumerate(self._source()):
                if k % step == mine:
                    got = True
                    yield self.split(e)
            if self.once or not got:
                return

    def warmup_iterator(self) -> Any:
        """Inputs (no target) for the warm-up calls, from the first examples on."""

        def gen() -> Iterator[tuple[Any, ...]]:
            while True:
                empty = True
                for e in self._source():
                    empty = False
                    yield self.split(e)[0]
                if empty:
                    return

        return gen().__next__


# --------------------------------------------------------------------------
# The Python API
# --------------------------------------------------------------------------

_UNSET: Any = object()


