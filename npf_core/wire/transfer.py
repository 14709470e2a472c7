"""How live Python objects reach benchmarkers that are not forks of the caller.

Through the Python API a spec may hold Python objects in place of import
references (a class, a closure, a lambda, an ``nn.Module``, arrays, a dataset:
whatever :attr:`npf_core.spec.schema.LoadedSpec.objects` holds), and plugins may be
registered programmatically (``extra_plugins=``). A ``fork`` child inherits them;
a ``zygote`` child and a ``fresh`` interpreter get them this way:

1. **Once per run, in the supervisor, before any process starts**, everything is
   serialised with cloudpickle (which pickles functions, lambdas, closures and
   classes defined in ``__main__`` or a notebook by value, and what is importable
   by reference). Something that cannot be serialised is an
   :class:`~npf_core.errors.ObjectTransferError` naming the spec field (or the
   plugin) and what to do instead, before any process starts.
2. The pickles go into one anonymous in-memory file (``memfd_create``; a temporary
   file elsewhere). Buffers of numpy arrays and CPU torch tensors are written
   there **out of band** (pickle protocol 5), straight from the caller's memory:
   that write is the one copy.
3. The file is sealed (``F_SEAL_WRITE``, ``F_SEAL_GROW``, ``F_SEAL_SHRINK``,
   ``F_SEAL_SEAL``): no process can change it any more, the supervisor included.
4. Each benchmarker inherits the file's descriptor, maps it copy-on-write and
   unpickles: arrays and tensors are built *on* the mapped pages, not copied again,
   and copies share those pages until one writes to them.

Plugins unpickle where the plugin manager is built (the zygote, a fresh
interpreter); objects unpickle in each benchmarker, after the fork, so that the
zygote never runs the caller's code.
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from npf_core.errors import ObjectTransferError

__all__ = ["CHILD_HOOKS", "Payload", "being_imported", "load_objects", "load_plugins", "pack"]

_MAGIC = b"NPFOBJ1\n"
#: the hooks whose plugins a benchmarker needs (the others run in the supervisor only)
CHILD_HOOKS = ("npf_register_frameworks", "npf_register_devices", "npf_register_datasets")
_ALIGN = 64


class _Index(msgspec.Struct):
    """Where each pickle and its out-of-band buffers lie in the file."""

    sections: dict[str, tuple[int, int, list[tuple[int, int]]]]


class Payload:
    """The serialised objects and plugins of one run: an open file descriptor,
    sealed read-only (see :func:`_seal`), that benchmarker processes inherit."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:  # pragma: no cover - a safety net; the supervisor closes it
        try:
            self.close()
        except OSError:
            pass


def _pickler(buffers: list[pickle.PickleBuffer]) -> Any:
    import cloudpickle

    class Pickler(cloudpickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            torch = sys.modules.get("torch")  # never imported here: a tensor means it already is
            if torch is not None and type(obj) is torch.Tensor and _plain_cpu_tensor(obj, torch):
                flat = obj.detach().contiguous().reshape(-1).view(torch.uint8).numpy()
                return _rebuild_tensor, (flat, str(obj.dtype).removeprefix("torch."), tuple(obj.shape),
                                         bool(obj.requires_grad))  # fmt: skip
            return super().reducer_override(obj)

    def make(file: Any) -> Any:
        return Pickler(file, protocol=5, buffer_callback=buffers.append)

    return make


def _plain_cpu_tensor(t: Any, torch: Any) -> bool:
    return bool(t.device.type == "cpu" and t.layout == torch.strided and not t.is_quantized and not t.is_nested)


def _rebuild_tensor(flat: Any, dtype: str, shape: tuple[int, ...], requires_grad: bool) -> Any:
    """A CPU tensor on the bytes of ``flat`` (a uint8 array on the mapped payload)."""
    import torch

    t = torch.from_numpy(flat).view(getattr(torch, dtype)).reshape(shape)
    return t.requires_grad_(True) if requires_grad else t


def _dumps(obj: Any) -> tuple[bytes, list[pickle.PickleBuffer]]:
    buffers: list[pickle.PickleBuffer] = []
    f = io.BytesIO()
    _pickler(buffers)(f).dump(obj)
    return f.getvalue(), buffers


def _culprit(kind: str, name: str, exc: BaseException, method: str) -> ObjectTransferError:
    return ObjectTransferError(kind, name, f"{type(exc).__name__}: {exc}", method)


def _unimportable_modules() -> list[Any]:
    """Modules of this process that another interpreter could not import by name:
    loaded from a file under a made-up name (``spec_from_file_location``, a
    notebook's helper file, npf's own ``path/file.py:attr`` references). cloudpickle
    would pickle their classes and functions by reference, and the copy's import
    would fail; they are pickled by value instead."""
    from importlib.machinery import PathFinder

    found: dict[str, bool] = {}
    out = []
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None) if module is not None else None
        stem = os.path.splitext(os.path.basename(file))[0] if file else ""
        if not file or name == "__main__" or stem in ("__init__", name.rpartition(".")[2]):
            continue  # a package, or named after its file: importable wherever its folder is on the path
        top = name.partition(".")[0]
        if top in sys.builtin_module_names:
            continue
        if top not in found:
            try:
                found[top] = PathFinder.find_spec(top) is not None
            except (ImportError, ValueError):
                found[top] = False
        if not found[top]:
            out.append(module)
    return out


def being_imported(module: Any) -> bool:
    """Whether ``module``'s own import has not finished yet: a module that runs a
    benchmark when imported (its classes defined, then the call). Importing it by
    name would wait for the caller's import lock from another thread, and would run
    the benchmark again in a copy; its objects travel by value instead."""
    spec = getattr(module, "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def _modules_being_imported() -> list[Any]:
    return [m for name, m in list(sys.modules.items()) if name != "__main__" and m is not None and being_imported(m)]


def pack(objects: Mapping[str, Any], plugins: Sequence[Any] = (), method: str = "zygote") -> Payload | None:
    """Serialise ``objects`` (token -> object) and ``plugins`` into one payload;
    None when there is nothing to send. Raises :class:`ObjectTransferError` naming
    the first object (or plugin) that cannot be serialised."""
    if not objects and not plugins:
        return None
    import cloudpickle

    registered = cloudpickle.list_registry_pickle_by_value()
    by_value = [m for m in _unimportable_modules() + _modules_being_imported() if m.__name__ not in registered]
    by_value = list({id(m): m for m in by_value}.values())
    for module in by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        return _pack(objects, plugins, method)
    finally:
        for module in by_value:
            cloudpickle.unregister_pickle_by_value(module)


def _pack(objects: Mapping[str, Any], plugins: Sequence[Any], method: str) -> Payload:
    sections: dict[str, tuple[bytes, list[pickle.PickleBuffer]]] = {}
    kept = []
    for plugin in plugins:
        try:
            _dumps(plugin)
        except Exception as exc:
            if any(hasattr(plugin, hook) for hook in CHILD_HOOKS):
                raise _culprit("plugin", repr(plugin), exc, method) from exc
            continue  # a reporter or an observer: it only ever runs in the supervisor
        kept.append(plugin)
    sections["plugins"] = _dumps(kept)
    try:
        sections["objects"] = _dumps(dict(objects))
    except Exception as exc:  # find which one, to name it
        for name, item in objects.items():
            try:
                _dumps(item)
            except Exception as item_exc:
                raise _culprit("object", name, item_exc, method) from item_exc
        raise _culprit("object", "objects", exc, method) from exc
    return _write(sections)


def _write(sections: dict[str, tuple[bytes, list[pickle.PickleBuffer]]]) -> Payload:
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("npf-objects", os.MFD_CLOEXEC | getattr(os, "MFD_ALLOW_SEALING", 0))
    else:  # pragma: no cover - not Linux
        with tempfile.TemporaryFile() as f:
            fd = os.dup(f.fileno())
    index: dict[str, tuple[int, int, list[tuple[int, int]]]] = {}
    pos = _ALIGN  # the header (magic + index offset) fits in the first block
    chunks: list[tuple[int, Any]] = []
    for key, (data, buffers) in sections.items():
        start = pos
        chunks.append((pos, data))
        pos += len(data)
        spans = []
        for b in buffers:
            raw = b.raw()
            pos = -(-pos // _ALIGN) * _ALIGN
            chunks.append((pos, raw))
            spans.append((pos, raw.nbytes))
            pos += raw.nbytes
        index[key] = (start, len(data), spans)
    encoded = msgspec.msgpack.encode(_Index(sections=index))
    header = _MAGIC + pos.to_bytes(8, "little") + len(encoded).to_bytes(8, "little")
    chunks.append((0, header))
    chunks.append((pos, encoded))
    size = pos + len(encoded)
    os.ftruncate(fd, size)
    for offset, data in chunks:
        view = memoryview(data).cast("B")
        while view:
            n = os.pwrite(fd, view, offset)
            view, offset = view[n:], offset + n
    _seal(fd)
    os.set_inheritable(fd, False)
    return Payload(fd, size)


def _seal(fd: int) -> None:
    """Make the payload immutable: no write, no resize, no unsealing, by any process
    that holds it (Linux memfd seals). Copies inherit the descriptor and map it
    privately (copy-on-write), so one copy cannot change what later copies read."""
    import fcntl

    seals = ("F_SEAL_SEAL", "F_SEAL_SHRINK", "F_SEAL_GROW", "F_SEAL_WRITE")
    if not hasattr(fcntl, "F_ADD_SEALS"):  # pragma: no cover - not Linux: a private temporary file
        return
    try:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, sum(getattr(fcntl, name) for name in seals))
    except OSError:  # pragma: no cover - a temporary file (no memfd): not sealable
        pass


_maps: dict[int, mmap.mmap] = {}


def _section(fd: int, key: str) -> Any:
    mm = _maps.get(fd)
    if mm is None:
        mm = _maps[fd] = mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    if mm[: len(_MAGIC)] != _MAGIC:
        raise ValueError("not an npf object payload")
    at = int.from_bytes(mm[len(_MAGIC) : len(_MAGIC) + 8], "little")
    n = int.from_bytes(mm[len(_MAGIC) + 8 : len(_MAGIC) + 16], "little")
    index = msgspec.msgpack.decode(mm[at : at + n], type=_Index)
    start, length, spans = index.sections[key]
    view = memoryview(mm)
    # copy-on-write pages: arrays built on them are writable, and private to this process
    return pickle.loads(view[start : start + length], buffers=[view[a : a + b] for a, b in spans])


def load_objects(fd: int) -> dict[str, Any]:
    """*benchmarker*: the API objects (token -> object) of the payload on ``fd``."""
    return dict(_section(fd, "objects"))


def load_plugins(fd: int) -> list[Any]:
    """*zygote or fresh benchmarker*: the programmatically registered plugins."""
    return list(_section(fd, "plugins"))
