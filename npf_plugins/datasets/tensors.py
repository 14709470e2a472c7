"""Datasets from tensor descriptions and array files.

- The spec's ``inputs`` (built in, not a plugin name): each entry is one example,
  made by :func:`build_example` inside the benchmarker.
- ``synthetic``: ``{"shapes": [[1, 8]], "dtype": "float32", "fill": "random", "count": 16}``
  — ``count`` distinct random examples, cycled.
- ``files``: ``{"files": ["a.npy", "b.npz", "c.pt"]}`` — one example per file; an
  ``.npz`` holding several arrays is one multi-input example (in stored order).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

from npf_core.plugin import (
    DTYPES,
    ChildContext,
    Dataset,
    Registry,
    SpecError,
    decode_options,
    hookimpl,
    load_file,
    make_array,
)


class SyntheticOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    shapes: list[list[Annotated[int, msgspec.Meta(ge=0)]]]
    dtype: Literal[DTYPES] = "float32"  # type: ignore[valid-type]
    fill: Literal["random", "zeros", "ones"] = "random"
    count: Annotated[int, msgspec.Meta(ge=1)] = 1
    seed: int = 0


class Synthetic(Dataset):
    """``count`` generated examples, held in memory and cycled."""

    in_memory = True

    options_type = SyntheticOptions  # its options in `npf schema`

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

    options_type = FilesOptions  # its options in `npf schema`

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
