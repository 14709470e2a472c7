"""The ``evaluate`` block of a spec: Python objects pulled out as tokens, cross-field
checks, and the ``eval_*`` overrides of the Python API. Pure data, used by
:mod:`npf_core.spec.schema` before any process starts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from npf_core.errors import SpecError
from npf_core.spec.bounds import exists
from npf_core.spec.tokens import OBJECT_PREFIX

__all__ = [
    "REFERENCE_KINDS",
    "REFERENCE_METRICS",
    "evaluate_override",
    "metric_keys",
    "pull_evaluate_objects",
    "validate_evaluate",
]

#: How a model's outputs can agree with a reference model's (evaluate.reference)
REFERENCE_KINDS = ("max_abs_error", "mean_abs_error", "rms_error", "cosine_similarity", "top1_agreement")
#: their metric names in a report (``ref_max_abs_error``, ...)
REFERENCE_METRICS = {f"ref_{k}": k for k in REFERENCE_KINDS}


def pull_evaluate_objects(block: dict[str, Any], objects: dict[str, Any]) -> dict[str, Any]:
    """Replace Python objects in an ``evaluate`` block (metric classes, a reference
    model) by tokens, as :func:`npf_core.spec.schema.decode_spec` does for the model."""
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


def validate_evaluate(loaded: Any, check_reference: Callable[[Any, str, str], None]) -> None:
    """Cross-field rules of the ``evaluate`` block; raises :class:`SpecError`.
    ``check_reference``: the spec's reference check (passed in: this module is
    imported by :mod:`npf_core.spec.schema` and imports nothing of it)."""
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
        if ref.path is not None and not exists(loaded.resolve(ref.path)):
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
