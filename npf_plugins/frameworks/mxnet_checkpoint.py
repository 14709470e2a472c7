"""MXNet checkpoint files and the MXNet import, shared by the mxnet plugin and its
compile module (which the plugin loads lazily)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

__all__ = ["find_checkpoint", "import_mxnet"]

_PARAMS = re.compile(r"^(?P<prefix>.+)-(?P<epoch>\d{4,})\.params$")


def find_checkpoint(path: Path, epoch: int | None) -> tuple[str, int]:
    """``(prefix, epoch)`` of the checkpoint ``path`` names (a folder, a checkpoint
    file, or the prefix given to ``mx.model.save_checkpoint``, as NeuronPerf's mxnet
    compile writes into its model index); ValueError saying why not."""
    if not path.exists() and Path(f"{path}-symbol.json").is_file():
        path = Path(f"{path}-symbol.json")
    if path.is_dir():
        symbols = sorted(path.glob("*-symbol.json"))
        if len(symbols) != 1:
            raise ValueError(
                f"{str(path)!r} holds {len(symbols)} checkpoints (*-symbol.json); give the one to load"
            )
        path = symbols[0]
    m = _PARAMS.match(path.name)
    if m:
        prefix, named = str(path.parent / m["prefix"]), int(m["epoch"])
        if epoch is not None and epoch != named:
            raise ValueError(f"{path.name} is epoch {named}, but model.options.epoch is {epoch}")
        epoch = named
    elif path.name.endswith("-symbol.json"):
        prefix = str(path)[: -len("-symbol.json")]
    else:
        raise ValueError(f"{path.name!r} is not an MXNet checkpoint file (PREFIX-symbol.json or PREFIX-NNNN.params)")
    if not Path(prefix + "-symbol.json").is_file():
        raise ValueError(f"no {Path(prefix).name}-symbol.json beside {path.name}")
    if epoch is None:
        found = [int(m["epoch"]) for p in Path(prefix).parent.iterdir() if (m := _PARAMS.match(p.name))
                 and m["prefix"] == Path(prefix).name]  # fmt: skip
        if not found:
            raise ValueError(f"no {Path(prefix).name}-NNNN.params beside {Path(prefix).name}-symbol.json")
        epoch = max(found)
    if not Path(f"{prefix}-{epoch:04d}.params").is_file():
        raise ValueError(f"no {Path(prefix).name}-{epoch:04d}.params (epoch {epoch})")
    return prefix, epoch


def import_mxnet() -> Any:
    """``import mxnet``, with the DeprecationWarnings its import raises under numpy
    1.20+ (``np.bool``) silenced: a process that turns warnings into errors (a forked
    copy of one, for instance) still loads it."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import mxnet

    return mxnet
