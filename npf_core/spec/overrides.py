"""Sweep overrides from the command line (``--n-models``, ``--workers``,
``--batch-sizes``, ``--device``): the spec's lists replaced without editing it; and
``--slo-p99-ms`` (``slo_p99_ms=`` in the API): the capacity search at that p99 budget.

Each flag becomes a keyword override of :func:`npf_core.spec.schema.prepare`, so the
result is validated exactly as a spec file would be.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from npf_core.errors import FlagError, SpecError
from npf_core.spec.schema import LoadedSpec, Spec, decode_spec, load_spec

__all__ = ["parse_counts", "prepare", "sweep_overrides"]


def parse_counts(text: str, flag: str, *, allow_max: bool = False) -> list[int | str]:
    """``"1,2,max"`` -> ``[1, 2, "max"]``; a clear error naming the flag otherwise."""
    out: list[int | str] = []
    for part in (p.strip() for p in text.split(",")):
        if allow_max and part == "max":
            out.append("max")
            continue
        try:
            n = int(part)
        except ValueError:
            n = 0
        if n < 1:
            allowed = "positive integers" + (" or 'max'" if allow_max else "")
            raise FlagError(flag, f"{part!r} is not allowed", f"give {allowed}, separated by commas, e.g. 1,2")
        out.append(n)
    return out


def sweep_overrides(
    spec: str | Path,
    *,
    n_models: str | None = None,
    workers: str | None = None,
    batch_sizes: str | None = None,
    device: str | None = None,
) -> dict[str, Any]:
    """The ``prepare`` overrides the flags ask for (empty when none is given).

    ``--batch-sizes`` picks from the spec's batch sizes (with their inputs). A size the
    spec lacks is allowed when the spec has one input given by shapes whose first
    dimension is its batch size: that input is copied with the new leading dimension.
    """
    out: dict[str, Any] = {}
    if n_models is not None:
        out["n_models"] = parse_counts(n_models, "--n-models", allow_max=True)
    if workers is not None:
        out["workers_per_model"] = parse_counts(workers, "--workers")
    if device is not None:
        if not device.strip():
            raise FlagError("--device", "is empty", "name a device plugin, e.g. cpu, gpu or neuron")
        out["device"] = device.strip()
    if batch_sizes is not None:
        wanted = [int(b) for b in parse_counts(batch_sizes, "--batch-sizes")]
        out.update(_batch_overrides(spec, wanted))
    return out


def _batch_overrides(spec_path: str | Path, wanted: list[int]) -> dict[str, Any]:
    from npf_core.spec.schema import as_list

    spec = load_spec(spec_path).spec
    if spec.model.index is not None or spec.inputs is None:
        return {"batch_sizes": wanted}  # an index (or a dataset) is filtered by batch size as it is
    inputs = [msgspec.to_builtins(e) for e in spec.inputs]
    have = [int(b) for b in (as_list(spec.batch_sizes) or [1] * len(inputs))]
    if all(b in have for b in wanted):
        return {"batch_sizes": wanted, "inputs": [inputs[have.index(b)] for b in wanted]}
    entry = inputs[0]
    items = entry if isinstance(entry, list) else [entry]
    reshapable = len(inputs) == 1 and all(
        isinstance(i, dict) and i.get("shape") and i["shape"][0] == have[0] for i in items
    )
    if not reshapable:
        missing = [b for b in wanted if b not in have]
        raise FlagError(
            "--batch-sizes",
            f"batch size {missing[0]} is not in the spec (it has {', '.join(map(str, have))})",
            "pick from those, or add an input for it to the spec",
        )
    new_inputs = []
    for b in wanted:
        copies = [{**i, "shape": [b, *i["shape"][1:]]} for i in items]
        new_inputs.append(copies if isinstance(entry, list) else copies[0])
    return {"batch_sizes": wanted, "inputs": new_inputs}


def prepare(spec: Any, **overrides: Any) -> LoadedSpec:
    """A spec path, JSON text, dict or Spec, with overrides applied, validated."""
    if isinstance(spec, LoadedSpec):
        loaded = spec
    elif isinstance(spec, (str, os.PathLike)) and not str(spec).lstrip().startswith("{"):
        loaded = load_spec(os.fspath(spec))
    elif isinstance(spec, (str, bytes, Mapping, Spec)):
        loaded = decode_spec(spec)
    else:
        raise SpecError("$", f"expected a spec path, JSON text, dict or Spec, got {type(spec).__name__}")
    evaluating: dict[str, Any] = {
        k: overrides.pop(k) for k in ("eval_metrics", "eval_target_col", "eval_reference") if k in overrides
    }
    slo = overrides.pop("slo_p99_ms", None)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if slo is not None:
        overrides["load"] = _capacity_load(loaded, slo)
    if evaluating:
        from npf_core.spec.evaluate import evaluate_override

        block = evaluate_override(loaded, evaluating)
        if block is not None:
            overrides["evaluate"] = block
    if not overrides:
        return loaded
    data = msgspec.to_builtins(loaded.spec)
    output = dict(data.get("output", {}))
    if "output_dir" in overrides:
        output["dir"] = str(overrides.pop("output_dir"))
    if "reporters" in overrides:
        output["reporters"] = list(overrides.pop("reporters"))
    if "results" in overrides:
        output["results"] = bool(overrides.pop("results"))
    data["output"] = output
    la = overrides.get("launcher")
    if isinstance(la, str) and loaded.launcher.plugin == la:
        overrides.pop("launcher")  # the same plugin by name (--launcher ray): keep the spec's options
    data.update(overrides)
    new = decode_spec(_restore(data, loaded.objects), loaded.base_dir)
    new.objects = {**loaded.objects, **new.objects}  # tokens the new data kept (e.g. in evaluate)
    new.source = loaded.source
    return new


def _capacity_load(loaded: LoadedSpec, p99_ms: Any) -> dict[str, Any]:
    """The load block of a capacity search at ``p99_ms``: the spec's own capacity
    options (if it has any) with this budget."""
    if isinstance(p99_ms, bool) or not isinstance(p99_ms, (int, float)) or not p99_ms > 0:
        raise FlagError("--slo-p99-ms", f"{p99_ms!r} is not a latency budget", "give milliseconds > 0, e.g. 10")
    current = msgspec.to_builtins(loaded.spec.load)
    base = current if current.get("mode") == "capacity" else {"mode": "capacity"}
    return {**base, "p99_ms": float(p99_ms)}


def _restore(data: dict[str, Any], objects: dict[str, Any]) -> dict[str, Any]:
    """Put API objects back in place of their tokens before decoding again."""
    if not objects:
        return data
    out = dict(data)
    model = dict(out.get("model", {}))
    for key in ("preprocess", "postprocess", "setup", "env_setup"):
        if isinstance(out.get(key), str) and out[key] in objects:
            out[key] = objects[out[key]]
    if isinstance(model.get("target"), str) and model["target"] in objects:
        model["target"] = objects[model["target"]]
    out["model"] = model
    return out
