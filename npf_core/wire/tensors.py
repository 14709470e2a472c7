"""Example inputs from the spec's tensor descriptions and array files (child side,
and compile): the spec's ``inputs`` are built here, so the engine needs no dataset
plugin for them. Plugins reach these through :mod:`npf_core.plugin`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

__all__ = ["build_example", "load_file", "make_array"]


def make_array(shape: Sequence[int], dtype: str, fill: str, rng: np.random.Generator) -> np.ndarray:
    """One array from a tensor description."""
    if fill == "zeros":
        return np.zeros(shape, dtype=dtype)
    if fill == "ones":
        return np.ones(shape, dtype=dtype)
    kind = np.dtype(dtype).kind
    if kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    info = np.iinfo(dtype)
    return rng.integers(max(info.min, -128), min(info.max, 127) + 1, size=shape).astype(dtype)


def load_file(path: Path, key: str | None = None) -> list[Any]:
    """The arrays in one file: ``.npy`` (one), ``.npz`` (``key``, or all in order),
    ``.pt`` (a tensor or a tuple/list of tensors; needs torch)."""
    if path.suffix == ".npy":
        return [np.load(path, allow_pickle=False)]
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            if key is not None:
                return [z[key]]
            return [z[k] for k in z.files]
    if path.suffix == ".pt":
        import torch

        obj = torch.load(path, map_location="cpu", weights_only=True)
        return list(obj) if isinstance(obj, (list, tuple)) else [obj]
    raise ValueError(f"unsupported input file {str(path)!r}: use .npy, .npz or .pt")


def build_example(items: Sequence[Any], base_dir: Path, seed: int = 0) -> tuple[Any, ...]:
    """One example from the spec's input items (``InputItem`` structs, or their dict
    form): positional inputs, or, when the items have a ``name``, one dict of named
    arrays (``({"input_0": a, ...},)``)."""
    rng = np.random.default_rng(seed)
    out: list[Any] = []
    named: dict[str, Any] = {}
    for entry in items:
        item: Mapping[str, Any] = entry if isinstance(entry, Mapping) else msgspec.structs.asdict(entry)
        if item.get("file") is not None:
            p = Path(item["file"]).expanduser()
            arrays = load_file(p if p.is_absolute() else base_dir / p, item.get("key"))
        else:
            arrays = [make_array(item["shape"], item.get("dtype", "float32"), item.get("fill", "random"), rng)]
        name = item.get("name")
        if name is None:
            out.extend(arrays)
        elif len(arrays) != 1:
            raise ValueError(f"input {name!r}: {item.get('file')!r} holds {len(arrays)} arrays; name one with 'key'")
        else:
            named[name] = arrays[0]
    if named and out:
        raise ValueError("give every input of an example a 'name', or none")
    return (named,) if named else tuple(out)
