"""Spec (+ model index) -> the ordered list of configurations to run (the sweep).

NeuronPerf's rules, which users rely on:

- one input per batch size, matched by position;
- data parallel (pipeline size 1): ``n_models`` in {1, max} x ``workers_per_model``
  in {1, 2}; pipeline size p > 1: workers = p - 1;
- ``max`` = device count // pipeline size; when the count is unknown the ``max``
  configurations are skipped;
- duplicate configurations are removed (e.g. when max is 1);
- with a model index, every finished entry runs through that sweep, and
  ``batch_sizes`` / ``pipeline_sizes`` only filter the index.

A configuration's id names what it measured, never a position (results/identity.py):
``NAME-bBATCH-pPIPELINE[-lLEVEL]-nCOPIES-wWORKERS``, with the short input signature
after the name where two inputs share a batch size (``bert-i64_1x128-b1-p1-n1-w1``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from npf_core.errors import DeviceUnavailable, SpecError
from npf_core.log import get_logger
from npf_core.results.identity import id_part, input_signature
from npf_core.spec.config import RunConfig
from npf_core.spec.schema import OBJECT_PREFIX, LoadedSpec, as_list

if TYPE_CHECKING:
    from npf_core.plugin.hookspecs import Device
    from npf_core.plugin.manager import Plugins

__all__ = ["Variant", "make_plan"]

logger = get_logger(__name__)


class Variant(msgspec.Struct, kw_only=True, frozen=True):
    """One model variant to sweep: a spec's model, or one model-index entry."""

    kind: str
    ref: str
    input_idx: int
    batch_size: int
    pipeline_size: int | None = None
    performance_level: Any = None


def _model_name(loaded: LoadedSpec) -> str:
    spec = loaded.spec
    if spec.name:
        return spec.name
    m = spec.model
    if m.target is not None:
        if m.target.startswith(OBJECT_PREFIX):
            obj = loaded.objects[m.target]
            return str(getattr(obj, "__name__", type(obj).__name__))
        return m.target.rpartition(":")[2]
    return Path(m.path or m.index or "model").stem


def _variants(loaded: LoadedSpec) -> tuple[list[Variant], str | None]:
    spec = loaded.spec
    m = spec.model
    n_inputs = len(spec.inputs) if spec.inputs is not None else 1
    batch_sizes = as_list(spec.batch_sizes)
    if m.index is not None:
        import npf_core.compilation.model_index as model_index

        index = model_index.load(loaded.resolve(m.index))
        for e in index["model_configs"]:
            if e.get("status", "finished") != "finished":
                logger.warning(
                    "skipping a model index entry that did not compile",
                    filename=e.get("filename"), status=e.get("status"), error=e.get("error"),
                )  # fmt: skip
        entries = model_index.filter(index, status="finished")["model_configs"]
        if batch_sizes is not None:
            entries = [e for e in entries if e.get("batch_size", 1) in batch_sizes]
        wanted_p = as_list(spec.pipeline_sizes)
        if wanted_p is not None:
            entries = [e for e in entries if e.get("pipeline_size", 1) in wanted_p]
        index_file = loaded.resolve(m.index)
        out = []
        for i, e in enumerate(entries):
            idx = e.get("input_idx")
            idx = _input_for_batch(loaded, int(e.get("batch_size", 1)), i, e) if idx is None else int(idx)
            if spec.inputs is None:
                idx = 0  # a dataset feeds every entry (evaluate over an index)
            if idx >= n_inputs:
                raise SpecError(
                    "inputs",
                    f"model index entry {i} ({e.get('filename')}) uses input_idx {idx}, "
                    f"but the spec has {n_inputs} inputs",
                    "list every input of the index in the spec, in order",
                )
            ref = model_index.resolve_filename(e["filename"], index_file)
            out.append(
                Variant(
                    kind="path",
                    ref=ref,
                    input_idx=idx,
                    batch_size=int(e.get("batch_size", 1)),
                    pipeline_size=int(e.get("pipeline_size", 1)),
                    performance_level=e.get("performance_level", e.get("cast_mode")),
                )
            )
        if not out:
            raise SpecError("model.index", "no finished entry of the model index matches batch_sizes / pipeline_sizes")
        return out, index.get("model_name")
    if batch_sizes is None:
        batch_sizes = [1] * n_inputs
    kind = "target" if m.target is not None else "path"
    ref = m.target if m.target is not None else str(loaded.resolve(m.path or ""))
    return [Variant(kind=kind, ref=ref, input_idx=i, batch_size=b) for i, b in enumerate(batch_sizes)], None


def _input_batch(loaded: LoadedSpec, i: int) -> int | None:
    """The batch size (leading dimension) of the spec's input ``i``, when it can be
    told without loading a model: a shape description or an ``.npy`` file's header."""
    inputs = loaded.spec.inputs or []
    if i >= len(inputs):
        return None
    entry = inputs[i]
    first = entry[0] if isinstance(entry, list) else entry
    if first.shape is not None:
        return first.shape[0] if first.shape else None
    if first.file is not None and first.file.endswith(".npy"):
        import numpy as np

        try:
            shape = np.load(loaded.resolve(first.file), mmap_mode="r", allow_pickle=False).shape
        except (OSError, ValueError):
            return None
        return int(shape[0]) if shape else None
    if first.file is not None and first.file.endswith(".pt"):
        import zipfile

        return None if not zipfile.is_zipfile(loaded.resolve(first.file)) else _pt_batch(loaded.resolve(first.file))
    return None


def _pt_batch(path: Path) -> int | None:
    try:
        import torch
    except ImportError:
        return None
    obj = torch.load(path, map_location="cpu", weights_only=True)
    first = obj[0] if isinstance(obj, (list, tuple)) and obj else obj
    shape = getattr(first, "shape", None)
    return int(shape[0]) if shape else None


def _input_for_batch(loaded: LoadedSpec, batch_size: int, i: int, entry: dict[str, Any]) -> int:
    """NeuronPerf's rule for an index entry without ``input_idx``: the input whose
    batch size it has (the only input, when there is one)."""
    n = len(loaded.spec.inputs) if loaded.spec.inputs is not None else 1
    if n == 1:
        return 0
    for k in range(n):
        if _input_batch(loaded, k) == batch_size:
            return k
    raise SpecError(
        "inputs",
        f"model index entry {i} ({entry.get('filename')}) has no input_idx, and no input has its batch size "
        f"{batch_size}",
        "give one input per batch size of the index, or set input_idx in the index",
    )


def _signature(loaded: LoadedSpec, input_idx: int) -> str:
    """The input signature of the spec's input ``input_idx`` ("" when unknown)."""
    spec = loaded.spec
    if spec.inputs is None:
        return input_signature(None, dataset=spec.dataset.plugin if spec.dataset else None) or ""
    if not 0 <= input_idx < len(spec.inputs):
        return ""
    entry = msgspec.to_builtins(spec.inputs[input_idx])
    return input_signature(entry, resolve=loaded.resolve) or ""


def _name_ids(configs: list[RunConfig], name: str) -> list[RunConfig]:
    """Readable, unique ids: the sweep's parameters; the short input signature where
    two configurations share those (two inputs of one batch size); then the model
    file (index entries that share everything else); then a counter."""

    def rest(c: RunConfig) -> str:
        level = "" if c.performance_level is None else f"-l{c.performance_level}"
        return f"b{c.batch_size}-p{c.pipeline_size}{level}-n{c.n_models}-w{c.workers_per_model}"

    ids = [f"{name}-{rest(c)}" for c in configs]
    extras: list[Any] = [
        lambda c: id_part(c.input_signature) if c.input_signature else f"in{c.input_idx}",
        lambda c: Path(c.model_filename).stem,
    ]
    for extra in extras:
        counts: dict[str, int] = {}
        for i in ids:
            counts[i] = counts.get(i, 0) + 1
        if all(n == 1 for n in counts.values()):
            break
        ids = [f"{i.removesuffix(rest(c))}{extra(c)}-{rest(c)}" if counts[i] > 1 else i
               for i, c in zip(ids, configs, strict=True)]  # fmt: skip
    seen: dict[str, int] = {}
    out = []
    for i, c in zip(ids, configs, strict=True):
        seen[i] = seen.get(i, 0) + 1
        out.append(msgspec.structs.replace(c, config_id=i if seen[i] == 1 else f"{i}-{seen[i]}"))
    return out


def make_plan(loaded: LoadedSpec, plugins: Plugins, device: Device | None = None) -> list[RunConfig]:
    """The ordered, de-duplicated configurations of a spec. Raises a ``UserError``
    (before any process starts) for anything that cannot run. ``device``: the run's
    one device instance (made from the spec when not given); it is checked and
    counted here, which may block (probes): call from a worker thread in async code."""
    spec = loaded.spec
    m = spec.model
    framework = plugins.framework(m.framework, m.options)
    dev_spec = loaded.device
    if device is None:
        device = plugins.device(dev_spec.type, dev_spec.options, "device")
    device.check()
    if spec.dataset is not None:
        plugins.dataset(spec.dataset.plugin, spec.dataset.options).check(spec)
    for name in spec.output.reporters:
        plugins.reporters.get(name, "output.reporters")

    start = spec.start_method if spec.start_method != "auto" else framework.start_method_for(device)
    # Python objects reach every start method: inherited by a fork, serialised for
    # a zygote or a fresh interpreter (npf_core.wire.transfer; checked by the supervisor)

    variants, index_name = _variants(loaded)
    name = spec.name or index_name or _model_name(loaded)
    for v in variants:
        framework.check(v.kind, v.ref, spec)
    signatures = {i: _signature(loaded, i) for i in sorted({v.input_idx for v in variants})}

    count = device.count()
    configs: list[RunConfig] = []
    seen: set[tuple[Any, ...]] = set()
    for v in variants:
        pipes = [v.pipeline_size] if v.pipeline_size is not None else as_list(spec.pipeline_sizes) or [1]
        for p in pipes:
            max_models = None if count is None else count // p
            if max_models == 0:
                raise DeviceUnavailable(
                    f"spec $.pipeline_sizes: pipeline size {p} needs {p} {device.type_name} devices, "
                    f"but only {count} are available"
                )
            n_list = as_list(spec.n_models) or [1, "max"]
            workers = as_list(spec.workers_per_model) or ([1, 2] if p == 1 else [p - 1])
            for n in n_list:
                if n == "max":
                    if max_models is None:
                        logger.warning("device count unknown: skipping n_models 'max'", device=dev_spec.type)
                        continue
                    n = max_models
                elif device.exclusive and max_models is not None and n > max_models:
                    raise DeviceUnavailable(
                        f"spec $.n_models: {n} model copies of pipeline size {p} need {n * p} "
                        f"{device.type_name} devices, but {count} are available "
                        f"(ask for fewer copies{', ' + device.exclusive_hint if device.exclusive_hint else ''})"
                    )
                for w in workers:
                    key = (v.kind, v.ref, v.input_idx, v.batch_size, p, n, w, v.performance_level)
                    if key in seen:
                        continue
                    seen.add(key)
                    configs.append(
                        RunConfig(
                            config_id="",  # named below, once the whole sweep is known
                            model_name=name,
                            framework=m.framework,
                            model_kind=v.kind,
                            model_ref=v.ref,
                            model_filename=Path(v.ref).name if v.kind == "path" else v.ref,
                            input_idx=v.input_idx,
                            batch_size=v.batch_size,
                            n_models=int(n),
                            workers_per_model=int(w),
                            pipeline_size=p,
                            start_method=start,
                            device_type=device.type_name,
                            performance_level=v.performance_level,
                            input_signature=signatures[v.input_idx],
                        )
                    )
    if not configs:
        raise SpecError("n_models", "the sweep is empty (the device count is unknown, so 'max' was skipped)")
    return _name_ids(configs, name)
