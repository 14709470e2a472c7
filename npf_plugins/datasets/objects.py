"""Dataset ``objects``: inputs given as Python objects through the API (NeuronPerf's
front door, ``npf_core.neuronperf``), by the spec's object tokens.

``{"plugin": "objects", "options": {"examples": ["<object:inputs[0]>", ...]}}`` — one
example per input (matched by the configuration's ``input_idx``), each a tuple of
positional inputs, held in memory and reused (NeuronPerf's in-memory ``inputs``).

``{"plugin": "objects", "options": {"dataset": "<object:dataset>", "loader":
"<object:dataset_loader_fn>"}}`` — a dataset (e.g. a ``torch.utils.data.Dataset``)
that each copy runs through once (``loop`` false), its workers sharing one pass;
each batch the loader gives is one example, passed whole to ``preprocess``.
``loader(dataset, batch_size)`` defaults to a ``torch.utils.data.DataLoader`` for a
torch Dataset, and to the dataset's own items otherwise.

Objects reach the copies as the engine's other API objects do (see
docs/migrating.md): by fork today.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from npf_core.plugin import ChildContext, Dataset, Registry, SpecError, decode_options, hookimpl, resolve_reference


class ObjectsOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    examples: list[str] | None = None
    dataset: str | None = None
    loader: str | None = None


def default_loader(dataset: Any, batch_size: int) -> Iterable[Any]:
    """A torch DataLoader of ``batch_size`` for a torch Dataset; else the items themselves."""
    torch_data = _torch_data(dataset)
    if torch_data is not None:
        return torch_data.DataLoader(dataset, batch_size=batch_size)
    return dataset


def _torch_data(dataset: Any) -> Any:
    for cls in type(dataset).__mro__:
        if cls.__module__.startswith("torch.utils.data"):
            import torch.utils.data

            return torch.utils.data
    return None


class ObjectsExamples(Dataset):
    """One in-memory example per input, from API objects."""

    in_memory = True

    options_type = ObjectsOptions  # its options in `npf schema`

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.opts = decode_options(options, ObjectsOptions, "dataset.options")

    def check(self, spec: Any) -> None:
        o = self.opts
        if (o.examples is None) == (o.dataset is None):
            raise SpecError("dataset.options", "give either 'examples' or 'dataset'")

    def examples(self, ctx: ChildContext) -> Iterable[tuple[Any, ...]]:
        tokens = self.opts.examples or []
        idx = int(getattr(ctx.job, "input_idx", 0))
        example = resolve_reference(tokens[idx], ctx.base_dir, ctx.objects)
        yield example if isinstance(example, tuple) else (example,)


class ObjectsDataset(ObjectsExamples):
    """A dataset run through once per copy, its workers sharing the pass."""

    in_memory = False
    shared = True

    def examples(self, ctx: ChildContext) -> Iterable[tuple[Any, ...]]:
        o = self.opts
        dataset = resolve_reference(o.dataset or "", ctx.base_dir, ctx.objects)
        loader = resolve_reference(o.loader, ctx.base_dir, ctx.objects) if o.loader else default_loader
        for batch in loader(dataset, int(getattr(ctx.job, "batch_size", 1))):
            yield (batch,)


@hookimpl
def npf_register_datasets(registry: Registry[Dataset]) -> None:
    registry.add("objects", ObjectsExamples)
    registry.add("objects-dataset", ObjectsDataset)
