"""Model indexes: JSON files that list compiled model variants (NeuronPerf's format).

An index is a plain dict, as in NeuronPerf::

    {"version": "0.1.0", "npf_index_format": 1, "model_name": "resnet",
     "model_configs": [{"filename": "models/resnet_b1_p1.pt", "input_idx": 0,
                        "batch_size": 1, "pipeline_size": 1, "compile_s": 5.3,
                        "status": "finished"}]}

Each entry may also hold ``performance_level`` or ``cast_mode`` (how it was
compiled) and, for a variant that failed to compile, ``error``. Keys this module
does not know are kept as they are. ``npf_index_format`` is ours: a file written
by a newer npf with a format this one cannot read is refused clearly.

Paths, as in NeuronPerf: a ``filename`` is kept exactly as given, in memory and in
the file (:func:`load` and :func:`save` never rewrite it; :func:`copy` stores
``new_dir/name``). Where a relative filename points is decided when the model is
used (:func:`resolve_filename`): beside the index file when the model is there
(npf's compile writes its artifacts so, so that an index and its ``models/``
folder move together), else relative to the current directory (NeuronPerf's
indexes).

Every function that takes an index accepts a loaded index (dict) or the path of
an index file. Malformed input raises :class:`~npf_core.errors.ModelIndexError`
naming the file and the JSON path of the bad field.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Union

import msgspec
import structlog

from npf_core.errors import ModelIndexError

__all__ = [
    "INDEX_FORMAT",
    "MODEL_INDEX_SUFFIX",
    "append",
    "copy",
    "create",
    "delete",
    "filter",
    "filter_configs",
    "generate_id",
    "generate_name",
    "load",
    "move",
    "rebased",
    "relative_path",
    "resolve_filename",
    "save",
]

#: the format version written as ``npf_index_format``; bumped on incompatible changes
INDEX_FORMAT = 1
#: what an index file's name ends with (added by :func:`save` when missing)
MODEL_INDEX_SUFFIX = ".json"
#: NeuronPerf's default performance level of :func:`create`
DEFAULT_PERFORMANCE_LEVEL = 3
_ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"

IndexLike = Union[str, "os.PathLike[str]", Mapping[str, Any]]
logger = structlog.get_logger(__name__)


class ModelConfig(msgspec.Struct, kw_only=True):
    """One compiled variant. Unknown keys are allowed (and kept by the dict API)."""

    filename: Annotated[str, msgspec.Meta(min_length=1)]
    #: None: not in the file (NeuronPerf wrote none at times); benchmark then matches the
    #: entry to the input whose batch size it has
    input_idx: Annotated[int, msgspec.Meta(ge=0)] | None = None
    batch_size: Annotated[int, msgspec.Meta(ge=1)] = 1
    pipeline_size: Annotated[int, msgspec.Meta(ge=1)] = 1
    performance_level: int | str | None = None
    cast_mode: str | None = None
    compile_s: Annotated[float, msgspec.Meta(ge=0)] | None = None
    status: str = "finished"
    error: str | None = None


class IndexFile(msgspec.Struct, kw_only=True):
    """A whole index. ``version`` is the writer's package version (any JSON value is
    tolerated: NeuronPerf wrote its own version strings)."""

    model_configs: list[ModelConfig]
    version: Any = None
    model_name: str | None = None
    npf_index_format: Annotated[int, msgspec.Meta(ge=1)] = INDEX_FORMAT


#: the keys every entry dict has, in the order they are written
_ENTRY_KEYS = ("filename", "input_idx", "batch_size", "pipeline_size", "compile_s", "status")
#: the keys an entry dict has only when they are set
_OPTIONAL_KEYS = ("performance_level", "cast_mode", "error")
#: plural spellings ``filter`` accepts (NeuronPerf's benchmark arguments)
_PLURALS = {
    "filenames": "filename",
    "input_idxs": "input_idx",
    "input_indices": "input_idx",
    "batch_sizes": "batch_size",
    "pipeline_sizes": "pipeline_size",
    "performance_levels": "performance_level",
    "cast_modes": "cast_mode",
    "statuses": "status",
}


def _version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("npf")
    except PackageNotFoundError:  # a source tree that is not installed
        return "0.0.0+source"


def _validate(data: Any, where: str) -> dict[str, Any]:
    """A normalised copy of an index (dict form), or ModelIndexError naming the field."""
    if not isinstance(data, Mapping):
        raise ModelIndexError(where, f"expected a JSON object, got {type(data).__name__}")
    try:
        parsed = msgspec.convert(dict(data), type=IndexFile)
    except msgspec.ValidationError as exc:
        msg, _, path = str(exc).partition(" - at `")
        raise ModelIndexError(f"{where} {path.rstrip('`') or '$'}".strip(), msg) from None
    if parsed.npf_index_format > INDEX_FORMAT:
        raise ModelIndexError(
            where,
            f"format {parsed.npf_index_format} is newer than this npf reads ({INDEX_FORMAT})",
            "upgrade npf",
        )
    raw_configs = data.get("model_configs") or []
    configs = [_entry(cfg, raw) for cfg, raw in zip(parsed.model_configs, raw_configs, strict=True)]
    out: dict[str, Any] = {
        "version": parsed.version if parsed.version is not None else _version(),
        "npf_index_format": INDEX_FORMAT,
        "model_name": parsed.model_name,
        "model_configs": configs,
    }
    out.update({k: v for k, v in data.items() if k not in out})
    return out


def _entry(cfg: ModelConfig, raw: Mapping[str, Any]) -> dict[str, Any]:
    """An entry dict: the known keys in order, then the unknown ones as they were."""
    out: dict[str, Any] = {k: getattr(cfg, k) for k in _ENTRY_KEYS if k != "input_idx" or cfg.input_idx is not None}
    for k in _OPTIONAL_KEYS:
        if getattr(cfg, k) is not None:
            out[k] = getattr(cfg, k)
    known = set(_ENTRY_KEYS) | set(_OPTIONAL_KEYS)
    out.update({k: v for k, v in raw.items() if k not in known})
    return out


def _as_index(index: IndexLike, what: str = "index") -> dict[str, Any]:
    if isinstance(index, (str, os.PathLike)):
        return load(index)
    if isinstance(index, Mapping):
        return _validate(index, what)
    raise ModelIndexError("", f"expected an index (dict) or the path of an index file, got {type(index).__name__}")


def create(
    filename: str | os.PathLike[str],
    model_name: str | None = None,
    batch_size: int = 1,
    pipeline_size: int = 1,
    performance_level: int | str | None = DEFAULT_PERFORMANCE_LEVEL,
    compile_s: float | None = None,
    status: str = "finished",
    *,
    input_idx: int = 0,
    cast_mode: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """A new index holding one compiled model (NeuronPerf's ``create``).

    :param filename: the compiled model, kept as given.
    :param model_name: a name for reports; by default ``filename``, as NeuronPerf.
    :param batch_size: the batch size it was compiled for.
    :param pipeline_size: the NeuronCores one copy spans.
    :param performance_level: the performance level it was compiled with (NeuronPerf's
        default 3; None: not recorded).
    :param compile_s: seconds spent compiling.
    :param status: ``"finished"`` (benchmarked) or ``"error"`` (skipped).
    :param input_idx: which of the inputs this model runs on.
    :param cast_mode: the auto-cast setting it was compiled with, if any.
    :param error: why compiling failed, for ``status="error"``.

    The docs' positional order ``create(filename, input_idx, batch_size, pipeline_size,
    cast_mode, compile_s)`` works too: an int second argument is the input index and a
    string fifth one the cast mode.
    """
    if isinstance(model_name, int) and not isinstance(model_name, bool):
        input_idx, model_name = model_name, None  # the docs' create(filename, input_idx, ...)
        if isinstance(performance_level, str) and cast_mode is None:
            cast_mode, performance_level = performance_level, None
    entry = {
        "filename": os.fspath(filename),
        "input_idx": input_idx,
        "batch_size": batch_size,
        "pipeline_size": pipeline_size,
        "performance_level": performance_level,
        "cast_mode": cast_mode,
        "compile_s": compile_s,
        "status": status,
        "error": error,
    }
    name = os.fspath(filename) if model_name is None else model_name
    return _validate({"model_name": name, "model_configs": [entry]}, "create()")


def generate_id(length: int = 8) -> str:
    """A random string of ``length`` lower-case letters and digits."""
    return "".join(secrets.choice(_ID_CHARS) for _ in range(length))


def generate_name(model_name: str) -> str:
    """A new index file name for ``model_name``: ``MODELNAME_xxxxxxxx.json``."""
    return f"{model_name}_{generate_id()}{MODEL_INDEX_SUFFIX}"


def load(filename: str | os.PathLike[str]) -> dict[str, Any]:
    """Read an index file, model filenames as stored (see :func:`resolve_filename`)."""
    path = Path(filename).expanduser()
    where = repr(str(path))
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ModelIndexError(where, f"cannot read it: {exc.strerror or exc}") from None
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise ModelIndexError(where, f"not valid JSON: {exc}") from None
    return _validate(data, where)


def resolve_filename(filename: str | os.PathLike[str], index_file: str | os.PathLike[str] | None = None) -> str:
    """The absolute path of an entry's model file. An absolute filename stays; a
    relative one is beside the index file when the model is there (npf writes its
    indexes so), else relative to the current directory (NeuronPerf's)."""
    f = Path(filename).expanduser()
    if f.is_absolute():
        return str(f)
    if index_file is not None:
        beside = Path(os.path.abspath(Path(index_file).expanduser())).parent / f
        if beside.exists() or not f.exists():
            return str(beside)
    return os.path.abspath(f)


def relative_path(filename: str | os.PathLike[str], base: str | os.PathLike[str]) -> str:
    """``filename`` as an index in folder ``base`` should hold it: relative to ``base``
    when inside it (the index and its models then move together), else absolute."""
    p = Path(os.path.abspath(Path(filename).expanduser()))
    try:
        return p.relative_to(os.path.abspath(base)).as_posix()
    except ValueError:
        return str(p)


def rebased(index: IndexLike, index_file: str | os.PathLike[str], new_file: str | os.PathLike[str]) -> dict[str, Any]:
    """``index`` (read from ``index_file``) with its model filenames made to point at
    the same files from an index written at ``new_file``."""
    data = _as_index(index)
    base = Path(os.path.abspath(Path(new_file).expanduser())).parent
    configs = [{**e, "filename": relative_path(resolve_filename(e["filename"], index_file), base)}
               for e in data["model_configs"]]  # fmt: skip
    return {**data, "model_configs": configs}


def save(model_index: IndexLike, filename: str | os.PathLike[str] | None = None, root_dir: str | None = None) -> str:
    """Write an index (atomically, model filenames as they are) and return its file
    name as given, with ``.json`` added when it lacks it.

    :param filename: where to write; by default ``MODELNAME_xxxxxxxx.json`` (a random
        suffix) in the current directory.
    :param root_dir: the folder a relative ``filename`` is relative to.
    """
    data = _as_index(model_index)
    if filename is None:
        filename = generate_name(str(data.get("model_name") or "model"))
    name = os.fspath(filename)
    if not name.lower().endswith(MODEL_INDEX_SUFFIX):
        name += MODEL_INDEX_SUFFIX
    if root_dir is not None and not Path(name).expanduser().is_absolute():
        name = os.path.join(root_dir, name)
    path = Path(name).expanduser().absolute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise ModelIndexError(repr(str(path)), f"cannot write it: {exc.strerror or exc}") from None
    return name


def _config_key(e: Mapping[str, Any]) -> tuple[Any, ...]:
    return (
        os.path.abspath(Path(e["filename"]).expanduser()),
        e.get("input_idx", 0),
        e.get("batch_size", 1),
        e.get("pipeline_size", 1),
        json.dumps(e.get("performance_level")),
        e.get("cast_mode"),
    )


def append(*model_indexes: IndexLike) -> dict[str, Any]:
    """A new index with the entries of all ``indexes`` in order, duplicates removed
    (same model file, input, batch size, pipeline size and compile setting: the first
    one is kept). The model name is the first index's (NeuronPerf), the first one
    set when it has none."""
    if not model_indexes:
        raise ModelIndexError("", "append() needs at least one index")
    loaded = [_as_index(i, f"append() argument {n}") for n, i in enumerate(model_indexes)]
    seen: set[tuple[Any, ...]] = set()
    configs = []
    for index in loaded:
        for e in index["model_configs"]:
            key = _config_key(e)
            if key not in seen:
                seen.add(key)
                configs.append(dict(e))
    first = loaded[0]
    names = [i["model_name"] for i in loaded if i.get("model_name")]
    if len(set(names)) > 1:
        logger.warning("appending model indexes with different model names; the first is kept", names=names)
    name = first.get("model_name") or next(iter(names), None)
    return {**first, "model_name": name, "model_configs": configs}


def filter_configs(configs: Iterable[Mapping[str, Any]], filter_name: str, filter_values: Any) -> list[Any]:
    """The entries whose ``filter_name`` is one of ``filter_values`` (one value or a
    list); None filters nothing (NeuronPerf's rule)."""
    configs = list(configs)
    if filter_values is None:
        return configs
    values = list(filter_values) if isinstance(filter_values, (list, tuple, set, frozenset)) else [filter_values]
    return [e for e in configs if filter_name in e and _matches(e, filter_name, values)]


def filter(index: IndexLike, **kwargs: Any) -> dict[str, Any]:
    """A new index with the entries that match every criterion.

    Each keyword names an entry field (``batch_size``, ``pipeline_size``,
    ``status``, ...; NeuronPerf's plurals such as ``batch_sizes`` work too) and
    gives one value or a list of accepted values; None filters nothing::

        filter(index, batch_sizes=[1, 4], status="finished")
    """
    data = _as_index(index)
    known = set(_ENTRY_KEYS) | set(_OPTIONAL_KEYS)
    for e in data["model_configs"]:
        known.update(e)
    wanted: dict[str, list[Any]] = {}
    for key, value in kwargs.items():
        field = _PLURALS.get(key, key)
        if field not in known:
            allowed = sorted(known | set(_PLURALS))
            raise ModelIndexError("", f"cannot filter on {key!r}", "filter on one of: " + ", ".join(allowed))
        if value is None:
            continue  # NeuronPerf: no filter
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        wanted.setdefault(field, values)
        wanted[field] = [v for v in wanted[field] if v in values]
    configs = [dict(e) for e in data["model_configs"] if all(_matches(e, f, vs) for f, vs in wanted.items())]
    return {**data, "model_configs": configs}


def _matches(entry: Mapping[str, Any], field: str, values: list[Any]) -> bool:
    got = entry.get(field)
    if field == "filename":
        mine = os.path.abspath(str(got))
        return any(got == v or mine == os.path.abspath(os.fspath(v)) for v in values)
    return got in values


def copy(old_index: IndexLike, new_index: str | os.PathLike[str], new_dir: str | os.PathLike[str]) -> str:
    """Copy an index's model files into ``new_dir`` and write a new index at
    ``new_index`` whose entries are ``new_dir/<file name>`` (relative when ``new_dir``
    is); returns the new index's file name as :func:`save` does. Entries whose file
    does not exist (failed compiles) are copied as entries only."""
    return _copy(old_index, new_index, new_dir)[0]


def _copy(
    old_index: IndexLike, new_index: str | os.PathLike[str], new_dir: str | os.PathLike[str]
) -> tuple[str, list[tuple[Path, Path]]]:
    data = _as_index(old_index)
    index_file = old_index if isinstance(old_index, (str, os.PathLike)) else None
    dest_dir = os.fspath(new_dir)
    plan: list[tuple[Path, Path]] = []
    taken: set[str] = set()
    configs = []
    for i, e in enumerate(data["model_configs"]):
        src = Path(resolve_filename(e["filename"], index_file))
        dst = _unique(os.path.join(dest_dir, src.name), taken)
        taken.add(dst)
        if src.exists():
            plan.append((src, Path(dst).expanduser().absolute()))
        elif e.get("status", "finished") == "finished":
            raise ModelIndexError(
                f"$.model_configs[{i}]", f"model file not found: {str(src)!r}", "nothing was copied"
            )
        configs.append({**e, "filename": dst})
    try:
        Path(dest_dir).expanduser().mkdir(parents=True, exist_ok=True)
        for src, target in plan:
            if target.exists() and os.path.samefile(src, target):
                continue
            if src.is_dir():
                shutil.copytree(src, target, dirs_exist_ok=True)
            else:
                shutil.copy2(src, target)
    except OSError as exc:
        raise ModelIndexError(repr(dest_dir), f"cannot copy the model files: {exc}") from None
    return save({**data, "model_configs": configs}, new_index), plan


def _unique(path: str, taken: Iterable[str]) -> str:
    taken = set(taken)
    n = 1
    candidate = path
    stem, ext = os.path.splitext(path)
    while candidate in taken:
        candidate = f"{stem}_{n}{ext}"
        n += 1
    return candidate


def move(old_index: IndexLike, new_index: str | os.PathLike[str], new_dir: str | os.PathLike[str]) -> str:
    """:func:`copy`, then remove the old model files and the old index file (when
    ``old_index`` is a path); returns the new index's file name."""
    new_name, plan = _copy(old_index, new_index, new_dir)
    for src, dst in plan:
        if not os.path.samefile(src, dst):
            _remove(src)
    if isinstance(old_index, (str, os.PathLike)):
        old = Path(old_index).expanduser()
        if old.exists() and not os.path.samefile(old, new_name):
            old.unlink()
    return new_name


def delete(filename: str | os.PathLike[str]) -> None:
    """Delete an index file and every model file it references (those that exist).
    An index file that does not exist is a warning, as in NeuronPerf."""
    path = Path(filename).expanduser()
    if not path.exists():
        logger.warning("asked to delete a model index that does not exist", filename=os.fspath(filename))
        return
    data = load(path)
    for e in data["model_configs"]:
        _remove(Path(resolve_filename(e["filename"], path)))
    path.unlink()


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError as exc:
        raise ModelIndexError("", f"cannot delete {str(path)!r}: {exc.strerror or exc}") from None
