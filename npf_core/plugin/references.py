"""Resolving ``package.module:attr`` / ``path/file.py:attr`` references to objects.

Used on the child side (frameworks, datasets, user functions) and by compile. A file
module is executed once per process; worker threads that resolve the same file at
once wait for the first to finish (the lock), so none sees a half-executed module.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["resolve_reference", "share_objects"]

_FILE_IMPORT_LOCK = threading.RLock()
#: API objects of this process for every resolution (a compile worker's, from its payload)
_SHARED: dict[str, Any] = {}


def share_objects(objects: dict[str, Any]) -> None:
    """Make API objects (token -> object) resolvable in this process whatever
    ``objects`` a caller passes (a compile worker: the model given as a live object)."""
    _SHARED.update(objects)


def resolve_reference(ref: str, base_dir: Path, objects: dict[str, Any]) -> Any:
    """An object from ``package.module:attr``, ``path/file.py:attr`` or an API token."""
    if ref in objects:
        return objects[ref]
    if ref in _SHARED:
        return _SHARED[ref]
    module_name, _, qualname = ref.rpartition(":")
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        path = Path(module_name).expanduser()
        path = path if path.is_absolute() else base_dir / path
        unique = f"_npf_user_{abs(hash(str(path.resolve())))}"
        with _FILE_IMPORT_LOCK:
            module = _import_file(unique, path)
    else:
        module = sys.modules.get(module_name)
        if module is None or not _has_path(module, qualname) or not _being_imported(module):
            module = importlib.import_module(module_name)
        # else: still being imported, by a module that runs a benchmark when imported:
        # importing it here, in another thread, would wait for that import forever
    obj: Any = module
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(f"{module_name!r} has no attribute {qualname!r}") from None
    return obj


def _being_imported(module: Any) -> bool:
    return bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


def _has_path(module: Any, qualname: str) -> bool:
    obj = module
    for part in qualname.split("."):
        if not hasattr(obj, part):
            return False
        obj = getattr(obj, part)
    return True


def _import_file(unique: str, path: Path) -> Any:
    module = sys.modules.get(unique)
    if module is not None:
        return module
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[unique]
        raise
    finally:
        sys.path.remove(str(path.parent))
    return module
