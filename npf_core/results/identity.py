"""What a configuration measured, as data: the identity that ``compare`` and
``history`` match configurations of different runs by.

A configuration is identified by its parameters, never by a position:

- its **input signature**: the shapes and dtypes of one example (``float32[8x128]``;
  several tensors ``float32[2x3], int64[2]``; a named tensor ``ids=int64[1x8]``; a
  file by its name and, for ``.npy``/``.npz``, the shapes in its header; a dataset by
  its plugin), so that ``npf run --batch-sizes 16`` (which renumbers the inputs)
  still meets the full sweep's batch-16 configuration;
- the sweep's parameters: batch size, pipeline size, model copies, workers per copy,
  the performance level of a model index entry, the load (mode and rate);
- the device type.

Results written before the input signature was recorded still match: their
signature is read from the spec stored with them where the inputs are described by
shape (unknown otherwise, and an unknown signature matches any).
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from npf_core.results.report import Report

__all__ = [
    "PARAMETERS",
    "Identity",
    "id_part",
    "identity",
    "input_signature",
    "model_reference",
    "per_example",
    "signature_from_spec",
]

#: the report fields that, with the input signature, identify a configuration
PARAMETERS = (
    "batch_size", "pipeline_size", "n_models", "workers_per_model", "performance_level",
    "load_mode", "target_rate", "device_type",
)  # fmt: skip
#: the parameters that say what was measured rather than how the sweep ran it:
#: ``--allow-different`` matches without them (and without the input signature)
NOT_SWEEP = ("device_type",)
SWEEP = tuple(f for f in PARAMETERS if f not in NOT_SWEEP)

_SHORT = {
    "float64": "f64", "float32": "f32", "float16": "f16", "bfloat16": "bf16",
    "int64": "i64", "int32": "i32", "int16": "i16", "int8": "i8", "uint8": "u8", "bool": "bool",
}  # fmt: skip
#: a config id carries at most this much of a signature; longer ones are hashed
ID_PART_MAX = 32


def _shape(dims: Iterable[int]) -> str:
    return "x".join(str(int(d)) for d in dims)


def _file_tensors(path: Path, key: str | None) -> list[str] | None:
    """``dtype[shape]`` of each array in a ``.npy`` / ``.npz`` header (nothing is
    loaded); None when the file cannot be read that way."""
    import numpy as np

    try:
        if path.suffix == ".npy":
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
            return [f"{arr.dtype}[{_shape(arr.shape)}]"]
        if path.suffix == ".npz":
            out = []
            with zipfile.ZipFile(path) as z:
                names = [n for n in z.namelist() if n.endswith(".npy")]
                if key is not None:
                    names = [n for n in names if n == f"{key}.npy"]
                for n in names:
                    with z.open(n) as f:
                        version = np.lib.format.read_magic(f)
                        if version == (1, 0):
                            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                        else:
                            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    out.append(f"{n[:-4]}={dtype}[{_shape(shape)}]")
            return out or None
    except (OSError, ValueError, zipfile.BadZipFile):
        return None
    return None


def _item(item: Mapping[str, Any], resolve: Callable[[str], Path] | None) -> str | None:
    name = f"{item['name']}=" if item.get("name") else ""
    if item.get("shape") is not None:
        return f"{name}{item.get('dtype', 'float32')}[{_shape(item['shape'])}]"
    file = item.get("file")
    if file is None:
        return None
    label = Path(str(file)).name + (f"[{item['key']}]" if item.get("key") else "")
    if resolve is None:
        return None  # a file whose header cannot be read: unknown, not a guess
    tensors = _file_tensors(resolve(str(file)), item.get("key"))
    return f"{name}{label}:" + "+".join(tensors) if tensors else f"{name}{label}"


def input_signature(
    entry: Any, *, dataset: str | None = None, resolve: Callable[[str], Path] | None = None
) -> str | None:
    """The signature of one input entry of a spec (builtins: a dict or a list of
    dicts), or of a dataset plugin's examples. ``resolve`` turns a file name into
    its path (files are then read for their header); without it a file's signature
    is unknown (None)."""
    if dataset is not None and entry is None:
        return f"dataset:{dataset}"
    if entry is None:
        return None
    items = entry if isinstance(entry, list) else [entry]
    parts = [_item(i, resolve) if isinstance(i, Mapping) else None for i in items]
    if any(p is None for p in parts):
        return None
    return ", ".join(p for p in parts if p is not None)


def signature_from_spec(spec: Mapping[str, Any], input_idx: int) -> str | None:
    """The input signature of a configuration of an older results file, from the spec
    stored with it: known where its inputs are described by shape."""
    inputs = spec.get("inputs")
    if inputs is None:
        ds = spec.get("dataset")
        return input_signature(None, dataset=ds.get("plugin")) if isinstance(ds, Mapping) else None
    if not isinstance(inputs, list) or not 0 <= input_idx < len(inputs):
        return None
    return input_signature(inputs[input_idx])


_BATCH_DIM = re.compile(r"\[\d+")


def per_example(signature: str) -> str:
    """A signature without each tensor's leading (batch) dimension: what two runs at
    different batch sizes share when they feed the same kind of input."""
    return _BATCH_DIM.sub("[*", signature)


_TENSOR = re.compile(r"^(?:[\w.-]+=)?(\w+)\[([\dx]*)\]$")


def id_part(signature: str) -> str:
    """A short form of a signature for a config id (``f32_8x128+i64_8``), or a hash
    of it when that would be long or is not made of tensors."""
    tensors = [_TENSOR.match(t) for t in signature.split(", ")]
    if all(tensors):
        short = "+".join(f"{_SHORT.get(m[1], m[1])}_{m[2] or 'scalar'}" for m in tensors if m)
        if len(short) <= ID_PART_MAX:
            return short
    return "in" + hashlib.sha1(signature.encode()).hexdigest()[:6]


@dataclass(frozen=True)
class Identity:
    """What a configuration measured. ``inputs`` None: unknown (matches any)."""

    params: tuple[Any, ...]
    inputs: str | None
    device: str

    def matches(self, other: Identity, *, strict: bool = True) -> bool:
        """The same configuration; ``strict`` False (``--allow-different``): the same
        sweep parameters, whatever the inputs and device."""
        if self.params != other.params:
            return False
        if not strict:
            return True
        if self.device != other.device:
            return False
        return self.inputs is None or other.inputs is None or self.inputs == other.inputs

    def describe(self) -> str:
        names = dict(zip(SWEEP, self.params, strict=True))
        text = (f"batch {names['batch_size']}, {names['n_models']} copies x {names['workers_per_model']} workers"
                + (f", pipeline {names['pipeline_size']}" if names["pipeline_size"] != 1 else ""))  # fmt: skip
        return text + (f", inputs {self.inputs}" if self.inputs else "") + f", {self.device}"


def identity(report: Report, spec: Mapping[str, Any] | None = None) -> Identity:
    """A report's identity; the spec stored with it fills in an older file's input
    signature."""
    sig = report.input_signature or (signature_from_spec(spec, report.input_idx) if spec else None)
    params = tuple(getattr(report, f) for f in SWEEP)
    return Identity(params=params, inputs=sig or None, device=report.device_type)


def model_reference(report: Report, spec: Mapping[str, Any] | None = None) -> str:
    """The model a report measured, as written without its folder: ``models.py:Net``
    for a target in a file, ``pkg.mod:Net`` for one in a module, ``model.pt`` for a
    saved model (two checkouts of one repository name the same model alike)."""
    ref = report.model_filename
    if not ref and spec:
        model = spec.get("model") or {}
        ref = str(model.get("target") or model.get("path") or model.get("index") or "")
    file, sep, attr = ref.rpartition(":")
    if sep and ("/" in file or file.endswith(".py")):
        return f"{Path(file).name}:{attr}"
    return Path(ref).name if "/" in ref else ref
