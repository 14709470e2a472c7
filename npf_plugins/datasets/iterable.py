"""Dataset ``iterable``: examples from your own code, streamed (fetch time is timed).

``{"plugin": "iterable", "options": {"target": "pkg.mod:make_examples"}}`` — the
target is called with no arguments in each worker and must return an iterable of
examples (each a tuple of inputs, or a single input). With ``"loop": true`` (the
default) it is called again when exhausted; with ``false`` the configuration ends
when every worker has used its iterable up.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from npf_core.plugin import ChildContext, Dataset, Registry, decode_options, hookimpl, resolve_reference


class IterableOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    target: str


class IterableDataset(Dataset):
    """Examples from a user factory, fetched inside the timed loop."""

    in_memory = False

    options_type = IterableOptions  # its options in `npf schema`

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.opts = decode_options(options, IterableOptions, "dataset.options")

    def examples(self, ctx: ChildContext) -> Iterable[tuple[Any, ...]]:
        factory = resolve_reference(self.opts.target, ctx.base_dir, ctx.objects)
        for e in factory():
            yield e if isinstance(e, tuple) else (e,)


@hookimpl
def npf_register_datasets(registry: Registry[Dataset]) -> None:
    registry.add("iterable", IterableDataset)
