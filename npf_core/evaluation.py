"""Evaluate mode: accuracy metrics and agreement with a reference model, beside speed.

Spec form (see docs/evaluate.md)::

    "evaluate": {"metrics": ["accuracy", "precision"], "target_col": -1,
                 "reference": {"target": "models.py:Net", "framework": "torch"}}

Supervisor side: the spec's ``evaluate`` block is checked (names, references)
before any process starts; each job carries an :class:`~npf_core.protocol.EvalJob`;
each copy's RESULT brings one metric state per worker thread, which
:func:`apply_evaluation` combines with each metric's own ``aggregate`` into the
report's ``metrics``.

Child side: :class:`Evaluation` splits each example into inputs and target, gives
each worker thread its share of the examples (example ``k`` goes to worker
``k mod (n_models x workers)``, so the dataset is run once in all), builds the
metrics, and loads and calls the reference model.

Python side: :func:`evaluate` (``npf_core.evaluate``) and :func:`evaluate_neuronperf`,
NeuronPerf's ``evaluate(model, dataset, metrics, eval_target_col)`` signature.
"""

from __future__ import annotations

import os
import pickle
import traceback
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from npf_core.errors import NpfError, SpecError
from npf_core.metrics import REFERENCE_METRICS, Agreement, BaseEvalMetric, MetricEntry, get_metric, is_runtime

__all__ = [
    "Evaluation",
    "MetricError",
    "apply_evaluation",
    "eval_job",
    "evaluate",
    "evaluate_neuronperf",
    "evaluate_override",
    "metric_keys",
    "pull_evaluate_objects",
    "resolve_metrics",
    "validate_evaluate",
]

OBJECT_PREFIX = "<object:"
RUNTIME_PREFIX = "<metric:"


class MetricError(NpfError):
    """A metric failed while combining the workers' states."""

    def __init__(self, key: str, exc: BaseException) -> None:
        self.key = key
        self.exc = exc
        self.tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        super().__init__(f"metric {key!r} failed in aggregate: {type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------
# The spec block (supervisor side, before any process starts)
# --------------------------------------------------------------------------


def pull_evaluate_objects(block: dict[str, Any], objects: dict[str, Any]) -> dict[str, Any]:
    """Replace Python objects in an ``evaluate`` block (metric classes, a reference
    model) by tokens, as :func:`npf_core.spec.decode_spec` does for the model."""
    block = dict(block)
    metrics = block.get("metrics")
    if metrics is not None and (isinstance(metrics, (str, type)) or not isinstance(metrics, Iterable)):
        metrics = [metrics]
    if metrics is not None:
        out = []
        for i, m in enumerate(metrics):
            if isinstance(m, str):
                out.append(m)
                continue
            token = f"{OBJECT_PREFIX}evaluate.metrics[{i}]:{getattr(m, '__name__', type(m).__name__)}>"
            objects[token] = m
            out.append(token)
        block["metrics"] = out
    ref = block.get("reference")
    if isinstance(ref, Mapping):
        ref = dict(ref)
        target = ref.get("target")
        if target is not None and not isinstance(target, str):
            token = f"{OBJECT_PREFIX}evaluate.reference.target>"
            objects[token] = target
            ref["target"] = token
        block["reference"] = ref
    return block


def _key(s: str) -> str:
    """The report name of a metric given as a spec string."""
    if s.startswith(OBJECT_PREFIX):
        return s[:-1].rpartition(":")[2]
    if ":" in s:
        return s.rpartition(":")[2].rpartition(".")[2]
    return s


def metric_keys(block: Any) -> list[tuple[str, str]]:
    """(report name, spec string) of every metric of an EvaluateSpec, reference ones last."""
    keys = [(_key(s), s) for s in block.metrics]
    if block.reference is not None:
        keys += [(k, k) for k in REFERENCE_METRICS]
    return keys


def validate_evaluate(loaded: Any) -> None:
    """Cross-field rules of the ``evaluate`` block; raises :class:`SpecError`."""
    from npf_core.spec import check_reference

    spec = loaded.spec
    block = spec.evaluate
    if not block.metrics and block.reference is None:
        raise SpecError("evaluate", "evaluates nothing", "give 'metrics' (names) or a 'reference' model")
    seen: dict[str, int] = {}
    for i, s in enumerate(block.metrics):
        key = _key(s)
        if not key:
            raise SpecError(f"evaluate.metrics[{i}]", "an empty metric name")
        if key in REFERENCE_METRICS:
            raise SpecError(f"evaluate.metrics[{i}]", f"{key!r} is reserved for the reference figures")
        if key in seen:
            raise SpecError(f"evaluate.metrics[{i}]", f"metric {key!r} is listed twice (also at [{seen[key]}])")
        seen[key] = i
        if ":" in s and not s.startswith(OBJECT_PREFIX):
            check_reference(loaded, f"evaluate.metrics[{i}]", s)
    if type(spec.load).__name__ != "Closed":
        raise SpecError("load", "evaluate mode runs the closed loop", "drop 'load' (or 'evaluate')")
    ref = block.reference
    if ref is not None:
        given = [k for k in ("target", "path") if getattr(ref, k) is not None]
        if len(given) != 1:
            raise SpecError("evaluate.reference", f"give exactly one of 'target' or 'path' (got {len(given)})")
        if ref.target is not None and not ref.target.startswith(OBJECT_PREFIX):
            check_reference(loaded, "evaluate.reference.target", ref.target)
        if ref.path is not None and not loaded.resolve(ref.path).exists():
            raise SpecError("evaluate.reference.path", f"file not found: {str(loaded.resolve(ref.path))!r}")


def evaluate_override(loaded: Any, over: dict[str, Any]) -> dict[str, Any] | None:
    """The ``evaluate`` block after ``eval_metrics`` / ``eval_target_col`` /
    ``eval_reference`` overrides (``benchmark(..., eval_metrics=[...])``); None
    when neither the spec nor the overrides ask for evaluation."""
    current = loaded.spec.evaluate
    block: dict[str, Any] = msgspec.to_builtins(current) if current is not None else {}
    if current is not None:
        block = _restore_tokens(block, loaded.objects)
    metrics = over.get("eval_metrics")
    reference = over.get("eval_reference")
    if current is None and metrics is None and reference is None:
        return None
    if metrics is not None:
        block["metrics"] = [metrics] if isinstance(metrics, (str, type)) else list(metrics)
    if reference is not None:
        block["reference"] = reference
    if "eval_target_col" in over:
        block["target_col"] = over["eval_target_col"]
    return block


def _restore_tokens(block: dict[str, Any], objects: dict[str, Any]) -> dict[str, Any]:
    block["metrics"] = [objects.get(m, m) for m in block.get("metrics", [])]
    ref = block.get("reference")
    if isinstance(ref, dict) and ref.get("target") in objects:
        block["reference"] = {**ref, "target": objects[ref["target"]]}
    return block


def _entry(s: str, objects: dict[str, Any], base_dir: Path, plugins: Any, path: str) -> MetricEntry:
    """The metric a spec string names: a runtime registration that travelled with the
    run's objects, an API class, a ``module:Class`` reference, or a registered name."""
    if RUNTIME_PREFIX + s + ">" in objects:
        return objects[RUNTIME_PREFIX + s + ">"]  # type: ignore[no-any-return]
    if s.startswith(OBJECT_PREFIX) or ":" in s:
        if s in objects:
            obj = objects[s]
        else:
            from npf_core.references import resolve_reference

            obj = resolve_reference(s, base_dir, objects)
        if not (isinstance(obj, type) and issubclass(obj, BaseEvalMetric)):
            raise SpecError(path, f"{obj!r} is not a metric", "give a subclass of npf_core.BaseEvalMetric")
        return MetricEntry(_key(s), obj, {}, (obj.__doc__ or "").strip(), "API")
    return get_metric(s, plugins, path)


def resolve_metrics(loaded: Any, plugins: Any, fresh: bool = False) -> dict[str, MetricEntry]:
    """Check every metric before any process starts (unknown names list the installed
    ones); metrics registered in this process travel to the copies as run objects
    (``fresh``: the copies are fresh interpreters, which receive no objects)."""
    block = loaded.spec.evaluate
    out: dict[str, MetricEntry] = {}
    for i, s in enumerate(block.metrics):
        path = f"evaluate.metrics[{i}]"
        if ":" in s and not s.startswith(OBJECT_PREFIX):
            continue  # a reference: checked to exist; imported in the copies and at aggregation
        entry = _entry(s, loaded.objects, loaded.base_dir, plugins, path)
        if not s.startswith(OBJECT_PREFIX) and is_runtime(s):
            if fresh:
                raise SpecError(
                    path,
                    f"metric {s!r} was registered in this process (register_metric), which a fresh "
                    "interpreter cannot see",
                    "name its class by reference ('path/file.py:Class'), ship it in a plugin, or use "
                    "start_method 'fork'",
                )
            loaded.objects[RUNTIME_PREFIX + s + ">"] = entry
        out[_key(s)] = entry
    return out


def eval_job(loaded: Any) -> Any:
    """The :class:`~npf_core.protocol.EvalJob` of a spec (None without ``evaluate``)."""
    from npf_core.protocol import EvalJob

    block = loaded.spec.evaluate
    if block is None:
        return None
    ref = msgspec.to_builtins(block.reference) if block.reference is not None else None
    return EvalJob(
        metrics=list(block.metrics),
        keys=[_key(s) for s in block.metrics],
        target_col=block.target_col if loaded.spec.inputs is None else None,
        reference=ref,
        once=loaded.spec.duration_s == 0,
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
            try:
                self._load_reference(self.ev.reference)
            except Exception as exc:
                raise StageError("reference", exc) from exc
        self._memory: list[tuple[Any, ...]] | None = None
        if job.inputs is not None:
            from npf_core.tensors import build_example

            self._memory = [tuple(build_example(job.inputs, Path(job.base_dir), seed=job.seed))]
        else:
            ds_spec = job.dataset or {}
            self.dataset = bench.plugins.dataset(ds_spec["plugin"], ds_spec.get("options", {}))
            if self.dataset.in_memory:
                self._memory = [tuple(e) for e in self.dataset.examples(ctx)]

    def _load_reference(self, ref: dict[str, Any]) -> None:
        from npf_core.hookspecs import Assignment, ChildContext

        bench = self.bench
        job = bench.job
        name = ref.get("framework") or job.framework
        options = ref.get("options") or {}
        self.ref_framework = bench.plugins.framework(name, options, "evaluate.reference.framework")
        device = bench.plugins.device(ref.get("device") or "cpu", {}, "evaluate.reference.device")
        kind, where = ("target", ref["target"]) if ref.get("target") else ("path", ref["path"])
        rjob = msgspec.structs.replace(job, framework=name, model_options=options, model_kind=kind, model_ref=where)
        self.ref_ctx = ChildContext(
            job=rjob, base_dir=bench.ctx.base_dir, assignment=Assignment({}), device=device, objects=bench.ctx.objects
        )
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


def evaluate(
    spec: Any,
    metrics: Any = None,
    *,
    target_col: Any = _UNSET,
    reference: Any = None,
    duration_s: float = 0.0,
    n_models: Any = 1,
    workers_per_model: Any = 2,
    **overrides: Any,
) -> list[Any]:
    """Run a spec in evaluate mode and return its reports (``report.metrics`` holds
    the figures). By default the dataset runs once (``duration_s=0``) on one copy
    with two workers; ``metrics`` and ``reference`` add to (or replace) the spec's
    ``evaluate`` block. Other keywords are :func:`npf_core.benchmark` overrides."""
    from npf_core.supervisor import benchmark

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


class IterOf:
    """A zero-argument factory over a live iterable (for the ``iterable`` dataset):
    each call iterates it afresh; list rows (a DataLoader's) become tuples."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __call__(self) -> Iterator[Any]:
        for e in self.data:
            yield tuple(e) if isinstance(e, (list, tuple)) else e


def evaluate_neuronperf(
    framework: str,
    model: Any,
    dataset: Any,
    metrics: Any = None,
    eval_target_col: int | None = -1,
    *,
    n_models: Any = 1,
    workers_per_model: Any = 2,
    duration: float = 0.0,
    reference: Any = None,
    model_name: str | None = None,
    **overrides: Any,
) -> list[Any]:
    """NeuronPerf's ``evaluate(model_index_or_path, dataset, metrics=..., eval_target_col=...)``
    for any framework plugin: ``model`` is a model index (``.json``), a saved model
    path, or a Python object (a class or factory); ``dataset`` any iterable of
    ``(*inputs, target)``. Returns npf Reports (``report.metrics``)."""
    if isinstance(model, (str, os.PathLike)):
        key = "index" if str(model).endswith(".json") else "path"
        model_block: dict[str, Any] = {"framework": framework, key: os.fspath(model)}
    else:
        model_block = {"framework": framework, "target": model}
    token = f"{OBJECT_PREFIX}dataset>"
    data: dict[str, Any] = {
        "model": model_block,
        "dataset": {"plugin": "iterable", "options": {"target": token}, "loop": duration > 0},
        "duration_s": duration,
        "evaluate": {"metrics": metrics if metrics is not None else [], "target_col": eval_target_col},
        "output": {"reporters": []},
    }
    if reference is not None:
        data["evaluate"]["reference"] = reference
    if model_name is not None:
        data["name"] = model_name
    from npf_core.spec import decode_spec
    from npf_core.supervisor import benchmark

    loaded = decode_spec(data)
    loaded.objects[token] = IterOf(dataset)
    return benchmark(loaded, n_models=n_models, workers_per_model=workers_per_model, **overrides)
