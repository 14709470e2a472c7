"""Datasets from tensor descriptions and array files.

- The spec's ``inputs`` (built in, not a plugin name): each entry is one example,
  made by :func:`build_example` inside the benchmarker.
- ``synthetic``: ``{"shapes": [[1, 8]], "dtype": "float32", "fill": "random", "count": 16}``
  — ``count`` distinct random examples, cycled.
- ``files``: ``{"files": ["a.npy", "b.npz", "c.pt"]}`` — one example per file; an
  ``.npz`` holding several arrays is one multi-input example (in stored order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

from npf_core.errors import SpecError
from npf_core.hookspecs import ChildContext, Dataset, Registry, hookimpl
from npf_core.spec import DTYPES, decode_options


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


def build_example(items: Sequence[Mapping[str, Any]], base_dir: Path, seed: int = 0) -> tuple[Any, ...]:
    """One example (positional inputs) from the spec's input items."""
    rng = np.random.default_rng(seed)
    out: list[Any] = []
    for item in items:
        if item.get("file") is not None:
            p = Path(item["file"]).expanduser()
            out.extend(load_file(p if p.is_absolute() else base_dir / p, item.get("key")))
        else:
            out.append(make_array(item["shape"], item.get("dtype", "float32"), item.get("fill", "random"), rng))
    return tuple(out)


class SyntheticOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    shapes: list[list[Annotated[int, msgspec.Meta(ge=0)]]]
    dtype: Literal[DTYPES] = "float32"  # type: ignore[valid-type]
    fill: Literal["random", "zeros", "ones"] = "random"
    count: Annotated[int, msgspec.Meta(ge=1)] = 1
    seed: int = 0


class Synthetic(Dataset):
    """``count`` generated examples, held in memory and cycled."""

    in_memory = True

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.opts = decode_options(options, SyntheticOptions, "dataset.options")

    def examples(self, ctx: ChildContext) -> Iterable[tuple[Any, ...]]:
        o = self.opts
        rng = np.random.default_rng(o.seed)
        for _ in range(o.count):
            yield tuple(make_array(s, o.dtype, o.fill, rng) for s in o.shapes)


class FilesOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    files: list[str]


class Files(Dataset):
    """One example per ``.npy`` / ``.npz`` / ``.pt`` file, held in memory."""

    in_memory = True

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.opts = decode_options(options, FilesOptions, "dataset.options")

    def check(self, spec: Any) -> None:
        if not self.opts.files:
            raise SpecError("dataset.options.files", "must list at least one file")

    def examples(self, ctx: ChildContext) -> Iterable[tuple[Any, ...]]:
        for f in self.opts.files:
            yield tuple(load_file(ctx.resolve(f)))


@hookimpl
def npf_register_datasets(registry: Registry[Dataset]) -> None:
    registry.add("synthetic", Synthetic)
    registry.add("files", Files)
