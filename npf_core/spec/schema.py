"""The run spec: msgspec Structs for every field of the v1 contract, and validation.

Decoding is strict: unknown fields and values of the wrong type or range are
errors naming the JSON path. Cross-field rules (one model reference, inputs
matched to batch sizes, files that exist) are checked by :func:`validate`, before
any process starts. ``python -m npf_core schema`` prints :func:`json_schema`.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

import msgspec

from npf_core.errors import SpecError
from npf_core.spec.bounds import MAX_SPEC_BYTES, check_data_depth, check_values, deep_text_path, exists, too_deep
from npf_core.spec.tokens import OBJECT_PREFIX

__all__ = [
    "AutoDuration",
    "DTYPES",
    "Capacity",
    "Closed",
    "CompileSpec",
    "Constant",
    "DatasetSpec",
    "DeviceSpec",
    "EvaluateSpec",
    "InputItem",
    "LauncherSpec",
    "LoadedSpec",
    "ModelSpec",
    "Output",
    "Poisson",
    "ReferenceSpec",
    "Spec",
    "Stability",
    "TelemetrySourceSpec",
    "Timeouts",
    "Warmup",
    "decode_options",
    "decode_spec",
    "duration_bounds",
    "json_schema",
    "load_spec",
]

DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
StartMethod = Literal["auto", "zygote", "fork", "fresh", "inline"]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]
NonNegativeFloat = Annotated[float, msgspec.Meta(ge=0)]
Max = Literal["max"]
ModelCount = Union[PositiveInt, Max]


class SpecBase(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True, omit_defaults=True):
    """Strict base of every spec Struct: unknown fields are errors."""


class ModelSpec(SpecBase, frozen=True):
    """What to benchmark: a framework plugin and exactly one model reference."""

    framework: str = "python"
    target: str | None = None
    path: str | None = None
    index: str | None = None
    options: dict[str, Any] = {}


class InputItem(SpecBase, frozen=True):
    """One tensor: a description (`shape`, `dtype`, `fill`) or a file (`file`, `key`);
    with `name`, the model gets the example's tensors as one dict, by name."""

    name: str | None = None
    shape: list[Annotated[int, msgspec.Meta(ge=0)]] | None = None
    dtype: Literal[DTYPES] = "float32"  # type: ignore[valid-type]
    fill: Literal["random", "zeros", "ones"] = "random"
    file: str | None = None
    key: str | None = None


InputEntry = Union[InputItem, list[InputItem]]


class DatasetSpec(SpecBase, frozen=True):
    """Inputs from a dataset plugin instead of `inputs`."""

    plugin: str
    options: dict[str, Any] = {}
    loop: bool = True


class DeviceSpec(SpecBase, frozen=True):
    """A device plugin by name, with its options."""

    type: str = "cpu"
    options: dict[str, Any] = {}


class Closed(SpecBase, frozen=True, tag="closed", tag_field="mode"):
    """Closed loop: each worker sends its next request when the last one returns."""


class Poisson(SpecBase, frozen=True, tag="poisson", tag_field="mode"):
    """Open loop: requests arrive as a Poisson process of `rate` per second (all copies)."""

    rate: PositiveFloat


class Constant(SpecBase, frozen=True, tag="constant", tag_field="mode"):
    """Open loop: requests arrive evenly spaced at `rate` per second (all copies)."""

    rate: PositiveFloat


class Capacity(SpecBase, frozen=True, tag="capacity", tag_field="mode"):
    """Capacity at a latency SLO: per configuration, the highest Poisson arrival rate
    whose p99 stays within `p99_ms` (a closed-loop probe for the bracket, then
    open-loop probes; see docs/capacity.md)."""

    p99_ms: PositiveFloat
    #: the whole search's wall-clock budget (all configurations); None: no limit
    max_s: PositiveFloat | None = None
    #: a probe's shortest and longest measurement
    probe_s: PositiveFloat = 2.0
    probe_max_s: PositiveFloat = 8.0
    #: the search of a configuration ends when (lowest failing - highest passing rate)
    #: / highest passing rate is at most this
    tolerance: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.1
    #: open-loop probes per configuration at most
    max_probes: PositiveInt = 10


Load = Union[Closed, Poisson, Constant, Capacity]


class LauncherSpec(SpecBase, frozen=True):
    """Where the configurations run: a launcher plugin by name (`local`, `ray`), with its options."""

    plugin: str = "local"
    options: dict[str, Any] = {}


class TelemetrySourceSpec(SpecBase, frozen=True):
    """A telemetry source plugin by name, with its options."""

    plugin: str
    options: dict[str, Any] = {}


#: ``"auto"`` (the sources for the run's device), ``"off"``, or a list of sources
#: (names or objects; ``"auto"`` in the list stands for the automatic ones)
TelemetrySetting = Union[Literal["auto", "off"], list[Union[str, TelemetrySourceSpec]]]


class Timeouts(SpecBase, frozen=True):
    """How long the supervisor waits before it gives up on a benchmarker."""

    load_s: PositiveFloat = 600.0
    stop_s: PositiveFloat = 30.0
    grace_s: PositiveFloat = 5.0


class Warmup(SpecBase, frozen=True):
    """Untimed calls before measurement, in each worker thread at once: at least `iterations`, and for `seconds`."""

    iterations: Annotated[int, msgspec.Meta(ge=0)] = 1
    seconds: NonNegativeFloat = 0.0


class Stability(SpecBase, frozen=True):
    """Stop a configuration early once `windows` consecutive windows agree within `tolerance`."""

    windows: Annotated[int, msgspec.Meta(ge=2)] = 3
    tolerance: Annotated[float, msgspec.Meta(gt=0, lt=1)] = 0.05
    min_s: NonNegativeFloat = 1.0


class AutoDuration(SpecBase, frozen=True):
    """Run each configuration until its p99 is supported by `calls` calls (at least
    `min_s`), or for at most `max_s` seconds."""

    min_s: PositiveFloat = 2.0
    max_s: PositiveFloat = 120.0
    calls: PositiveInt = 1000


#: seconds each configuration measures when the spec says nothing (NeuronPerf's default)
DEFAULT_DURATION_S = 60.0


def duration_bounds(duration: Any) -> tuple[float, float, int | None]:
    """``(min_s, max_s, calls)`` of a ``duration_s`` value: a fixed duration is
    ``(d, d, None)``; ``"auto"`` is :class:`AutoDuration`'s defaults."""
    if isinstance(duration, (int, float)):
        return float(duration), float(duration), None
    if duration == "auto":
        auto = AutoDuration()
    elif isinstance(duration, Mapping):  # as found in a results file's spec
        auto = msgspec.convert(dict(duration), type=AutoDuration)
    else:
        auto = duration
    if not isinstance(auto, AutoDuration):
        raise SpecError("duration_s", f"{duration!r} is not a duration", 'give seconds, "auto" or {"min_s", "max_s"}')
    return min(auto.min_s, auto.max_s), auto.max_s, auto.calls


class Output(SpecBase, frozen=True):
    """Where results go and which reporters run."""

    dir: str = "npf-results"
    reporters: list[str] = msgspec.field(default_factory=lambda: ["console", "json", "csv"])
    #: the core's results.json (read by --resume), written whatever reporters run
    results: bool = True


class CompileSpec(SpecBase, frozen=True):
    """How ``python -m npf_core compile`` builds model variants: one per input (batch
    size) x pipeline size x performance level or auto-cast setting (see
    docs/model-index-and-compile.md). ``run`` ignores this block."""

    performance_levels: list[Annotated[int, msgspec.Meta(ge=0, le=3)]] | None = None
    auto_cast: list[Literal["none", "matmult", "all"]] | None = None
    auto_cast_type: Literal["bf16", "fp16", "tf32", "fp8_e4m3"] | None = None
    compiler_args: str | list[str] = []
    compiler_target: str | None = None
    models_dir: str = "models"
    artifact: str = "{model_name}_i{input_idx}_b{batch_size}_p{pipeline_size}{cast}.pt"
    filename: str = "{model_name}_index.json"
    timeout_s: PositiveFloat = 3600.0


class ReferenceSpec(SpecBase, frozen=True):
    """A reference model for agreement figures: exactly one of `target` or `path`,
    loaded in each copy (on `device`, cpu by default) and called on the same inputs."""

    framework: str | None = None
    target: str | None = None
    path: str | None = None
    options: dict[str, Any] = {}
    device: str = "cpu"


class EvaluateSpec(SpecBase, frozen=True):
    """Evaluate mode: accuracy metrics on the model's (postprocessed) outputs, and/or
    agreement with a reference model (see docs/evaluate.md)."""

    metrics: list[str] = []
    target_col: int | None = -1
    reference: ReferenceSpec | None = None
    timeout_s: PositiveFloat = 3600.0


class Spec(SpecBase, frozen=True):
    """A run spec: one model, its inputs and the sweep to run (see docs/spec.md)."""

    model: ModelSpec
    name: str | None = None
    inputs: list[InputEntry] | None = None
    dataset: DatasetSpec | None = None
    batch_sizes: PositiveInt | list[PositiveInt] | None = None
    device: str | DeviceSpec = "cpu"
    n_models: ModelCount | list[ModelCount] | None = None
    workers_per_model: PositiveInt | list[PositiveInt] | None = None
    pipeline_sizes: PositiveInt | list[PositiveInt] | None = None
    # > 0 (or 0 with an evaluate block: checked by validate, which says both), "auto" or bounds
    duration_s: Annotated[float, msgspec.Meta(extra_json_schema={"minimum": 0})] | Literal["auto"] | AutoDuration = (
        DEFAULT_DURATION_S
    )
    load: Load = Closed()
    warmup: Warmup = Warmup()
    window_s: Annotated[float, msgspec.Meta(ge=0.01)] = 0.5
    stability: Stability | None = None
    preprocess: str | None = None
    postprocess: str | None = None
    setup: str | None = None
    env_setup: str | None = None
    start_method: StartMethod = "auto"
    #: keep loaded model copies for the next configurations that can use them (docs/copy-reuse.md);
    #: false: every configuration loads its copies afresh (NeuronPerf's way)
    reuse_copies: bool = True
    timeouts: Timeouts = Timeouts()
    cost_per_hour: NonNegativeFloat | None = None
    output: Output = Output()
    compile: CompileSpec | None = None
    evaluate: EvaluateSpec | None = None
    launcher: str | LauncherSpec = "local"
    latency_budget_ms: PositiveFloat | None = None
    telemetry: TelemetrySetting = "auto"
    keep_calls: Annotated[int, msgspec.Meta(ge=0)] = 0
    comment: str | list[str] | None = msgspec.field(default=None, name="_comment")

    @property
    def dataset_once(self) -> bool:
        """``duration_s`` 0: evaluate mode runs the dataset once, with no timed window
        (``evaluate.timeout_s`` is then the deadline). The one place this rule lives."""
        return self.duration_s == 0

    @property
    def max_duration_s(self) -> float:
        """The longest a configuration measures (``duration_s``, or its ``max_s``)."""
        return duration_bounds(self.duration_s)[1]


class LoadedSpec(msgspec.Struct, kw_only=True):
    """A decoded spec plus where it came from; `objects` holds Python objects given
    through the API in place of import references (see :func:`decode_spec`)."""

    spec: Spec
    base_dir: Path
    objects: dict[str, Any] = {}
    #: the spec file it was read from ("" for a dict, JSON text or a Spec)
    source: str = ""

    def resolve(self, path: str) -> Path:
        """A path from the spec, relative to the spec file's folder."""
        p = Path(path)
        try:
            p = p.expanduser()
        except RuntimeError:  # "~user" of no such user: the path as written
            pass
        return p if p.is_absolute() else self.base_dir / p

    @property
    def device(self) -> DeviceSpec:
        d = self.spec.device
        return DeviceSpec(type=d) if isinstance(d, str) else d

    @property
    def launcher(self) -> LauncherSpec:
        la = self.spec.launcher
        return LauncherSpec(plugin=la) if isinstance(la, str) else la



_OBJECT_FIELDS = (("model", "target"), ("preprocess",), ("postprocess",), ("setup",), ("env_setup",))


def _pull_objects(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Replace Python objects that stand in for import references by tokens."""
    objects: dict[str, Any] = {}
    data = dict(data)
    if isinstance(data.get("model"), Mapping):
        data["model"] = dict(data["model"])
    for path in _OBJECT_FIELDS:
        holder: Any = data
        for key in path[:-1]:
            holder = holder.get(key) if isinstance(holder, dict) else None
        if not isinstance(holder, dict):
            continue
        value = holder.get(path[-1])
        if value is not None and not isinstance(value, str):
            token = f"{OBJECT_PREFIX}{'.'.join(path)}>"
            objects[token] = value
            holder[path[-1]] = token
    if isinstance(data.get("evaluate"), Mapping):
        from npf_core.spec.evaluate import pull_evaluate_objects

        data["evaluate"] = pull_evaluate_objects(dict(data["evaluate"]), objects)
    return data, objects


_AT = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.S)


def _info_at(path: str, root: type) -> Any:
    """The msgspec type info found at a JSON path below ``root`` (None if unknown).
    Unions are searched for the branch that has the next field."""
    info: Any = msgspec.inspect.type_info(root)
    for field, _index in re.findall(r"\.(\w+)|(\[\d+\])", path):
        if field:
            struct = _struct_of(info)
            if struct is None:
                return None
            info = next((f.type for f in struct.fields if f.encode_name == field), None)
        else:
            info = _item_of(info)
        if info is None:
            return None
    return info


def _item_of(info: Any) -> Any:
    if isinstance(info, (msgspec.inspect.ListType, msgspec.inspect.SetType, msgspec.inspect.VarTupleType)):
        return info.item_type
    if isinstance(info, msgspec.inspect.UnionType):
        for t in info.types:
            found = _item_of(t)
            if found is not None:
                return found
    return None


def _struct_of(info: Any) -> Any:
    if isinstance(info, msgspec.inspect.StructType):
        return info
    if isinstance(info, msgspec.inspect.UnionType):
        for t in info.types:
            found = _struct_of(t)
            if found is not None:
                return found
    if isinstance(info, msgspec.inspect.ListType):
        return _struct_of(info.item_type)
    return None


def _literals_of(info: Any) -> list[Any]:
    if isinstance(info, msgspec.inspect.LiteralType):
        return list(info.values)
    if isinstance(info, msgspec.inspect.UnionType):
        return [v for t in info.types for v in _literals_of(t)]
    return []


def _spec_error(exc: msgspec.ValidationError | msgspec.DecodeError, root: type = Spec) -> SpecError:
    m = _AT.match(str(exc))
    assert m is not None
    msg, path = m.group("msg"), m.group("path") or "$"
    hint = None
    unknown = re.search(r"unknown field `([^`]*)`", msg)
    if unknown:
        struct = _struct_of(_info_at(path, root))
        allowed = [f.encode_name for f in struct.fields] if struct is not None else []
        close = difflib.get_close_matches(unknown.group(1), allowed, n=1)
        hint = (f"did you mean {close[0]!r}? " if close else "") + "allowed: " + ", ".join(allowed)
        msg = f"unknown field {unknown.group(1)!r}"
    elif path == "$.duration_s" and (msg.startswith("Invalid enum value") or msg.startswith("Expected `float |")):
        msg = f"{msg.removeprefix('Invalid enum value ')} is not a duration"
        hint = 'give seconds (a number > 0), "auto", or {"min_s": ..., "max_s": ..., "calls": ...}'
    elif msg.startswith("Invalid enum value"):
        values = _literals_of(_info_at(path, root))
        if values:
            hint = "allowed: " + ", ".join(repr(v) for v in values)
    elif msg.startswith("Invalid value") and "." in path:
        parent, _, tag_field = path.rpartition(".")
        union = _info_at(parent, root)
        tags = [
            t.tag
            for t in getattr(union, "types", ())
            if isinstance(t, msgspec.inspect.StructType) and t.tag_field == tag_field
        ]
        if tags:
            hint = "allowed: " + ", ".join(repr(t) for t in tags)
    return SpecError(path, msg, hint)


def decode_spec(data: bytes | str | Mapping[str, Any] | Spec, base_dir: Path | str = ".") -> LoadedSpec:
    """Decode JSON text or a dict (which may hold Python objects in place of import
    references) into a validated :class:`LoadedSpec`."""
    objects: dict[str, Any] = {}
    try:
        if isinstance(data, Spec):
            spec = data
        elif isinstance(data, (bytes, str)):
            if len(data) > MAX_SPEC_BYTES:
                raise SpecError("$", f"the spec is {len(data)} bytes, over {MAX_SPEC_BYTES}",
                                "a spec is settings: put data in files it names")  # fmt: skip
            spec = msgspec.json.decode(data, type=Spec)
        elif isinstance(data, Mapping):
            check_data_depth(data)  # before anything recurses into it
            plain, objects = _pull_objects(dict(data))
            spec = msgspec.convert(plain, type=Spec)
        else:
            raise SpecError("$", f"expected a JSON object, a dict or a Spec, got {type(data).__name__}")
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise _spec_error(exc) from None
    except UnicodeError as exc:  # a lone surrogate (found by check_data_depth in a dict, with its path)
        raise SpecError("$", f"holds text that is not valid Unicode: {exc}") from None
    except RecursionError:  # nested deeper than the decoder's stack allows
        where = deep_text_path(data) if isinstance(data, (bytes, str)) else None
        raise too_deep(where or "$") from None
    check_values(spec)  # NULs, control characters in the name, infinities, nesting
    loaded = LoadedSpec(spec=spec, base_dir=Path(base_dir).resolve(), objects=objects)
    validate(loaded)
    return loaded


def load_spec(path: str | Path) -> LoadedSpec:
    """Read and validate a spec file; relative paths in it are relative to its folder."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError("$", f"the spec file {str(p)!r} is {size} bytes, over {MAX_SPEC_BYTES}",
                            "a spec is settings: put data in files it names")  # fmt: skip
        raw = p.read_bytes()
    except OSError as exc:
        raise SpecError("$", f"cannot read spec file {str(p)!r}: {exc.strerror or exc}") from None
    loaded = decode_spec(raw, p.resolve().parent)
    loaded.source = str(p)
    return loaded


def as_list(value: Any) -> list[Any] | None:
    """A scalar-or-list field as a list (None stays None)."""
    if value is None:
        return None
    return list(value) if isinstance(value, list) else [value]


def validate(loaded: LoadedSpec) -> None:
    """Cross-field rules that the types alone cannot say; raises :class:`SpecError`."""
    spec = loaded.spec
    m = spec.model
    refs = [k for k in ("target", "path", "index") if getattr(m, k) is not None]
    if len(refs) != 1:
        got = " and ".join(refs) if refs else "none"
        raise SpecError("model", f"give exactly one of 'target', 'path' or 'index' (got {got})")
    if not m.framework:
        raise SpecError("model.framework", "must name a framework plugin, e.g. 'python' or 'torch'")
    if m.target is not None and not m.target.startswith(OBJECT_PREFIX):
        check_reference(loaded, "model.target", m.target)
    for key in ("path", "index"):
        value = getattr(m, key)
        if value is not None and not exists(loaded.resolve(value)):
            raise SpecError(f"model.{key}", f"file not found: {str(loaded.resolve(value))!r}")
    for field in ("preprocess", "postprocess", "setup", "env_setup"):
        value = getattr(spec, field)
        if value is not None and not value.startswith(OBJECT_PREFIX):
            check_reference(loaded, field, value)

    d = spec.duration_s
    if isinstance(d, float) and (d < 0 or (spec.dataset_once and spec.evaluate is None) or math.isnan(d)):
        raise SpecError("duration_s", f"must be > 0, got {d:g}", "0 (the dataset once) needs an 'evaluate' block")
    if isinstance(spec.load, Capacity):
        _check_capacity(spec)
    if spec.evaluate is not None:
        from npf_core.spec.evaluate import validate_evaluate

        validate_evaluate(loaded, check_reference)
    if spec.inputs is not None and spec.dataset is not None:
        raise SpecError("dataset", "give either 'inputs' or 'dataset', not both")
    if spec.inputs is None and spec.dataset is None:
        raise SpecError("inputs", "required: one input per batch size (or give 'dataset')")
    if spec.inputs is not None:
        if not spec.inputs:
            raise SpecError("inputs", "must hold at least one input")
        for i, entry in enumerate(spec.inputs):
            items = entry if isinstance(entry, list) else [entry]
            if not items:
                raise SpecError(f"inputs[{i}]", "an input list must hold at least one tensor")
            for j, item in enumerate(items):
                where = f"inputs[{i}]" + (f"[{j}]" if isinstance(entry, list) else "")
                _check_item(loaded, where, item)
            _check_names(f"inputs[{i}]", items)
    batch_sizes = as_list(spec.batch_sizes)
    n_inputs = len(spec.inputs) if spec.inputs is not None else None
    if batch_sizes is not None and not batch_sizes:
        raise SpecError("batch_sizes", "must hold at least one batch size")
    if batch_sizes is not None and n_inputs is not None and m.index is None and len(batch_sizes) != n_inputs:
        raise SpecError(
            "batch_sizes",
            f"{len(batch_sizes)} batch sizes for {n_inputs} inputs",
            "give one input per batch size, matched by position",
        )
    for field in ("n_models", "workers_per_model", "pipeline_sizes"):
        value = as_list(getattr(spec, field))
        if value is not None and not value:
            raise SpecError(field, "must hold at least one value (or leave it out for the default)")
    if not spec.output.reporters and spec.output.reporters is not None:
        pass  # no reporters is allowed: results come back through the API


def _check_capacity(spec: Spec) -> None:
    load = spec.load
    assert isinstance(load, Capacity)
    if load.probe_max_s < load.probe_s:
        raise SpecError("load.probe_max_s", f"{load.probe_max_s:g} is shorter than load.probe_s = {load.probe_s:g}",
                        "give probe_max_s >= probe_s")  # fmt: skip
    if spec.evaluate is not None:
        raise SpecError("load.mode", "'capacity' cannot be combined with an 'evaluate' block",
                        "evaluate accuracy in a run of its own, without the capacity search")  # fmt: skip
    if spec.dataset is not None and not spec.dataset.loop:
        raise SpecError("dataset.loop", "a dataset read once runs out, and the capacity search needs examples "
                        "for every probe", "set loop: true")  # fmt: skip


def _check_item(loaded: LoadedSpec, where: str, item: InputItem) -> None:
    if (item.shape is None) == (item.file is None):
        raise SpecError(where, "give either 'shape' (a tensor description) or 'file'")
    if item.file is not None:
        f = loaded.resolve(item.file)
        if f.suffix not in (".npy", ".npz", ".pt"):
            raise SpecError(f"{where}.file", f"unsupported file type {f.suffix!r}", "use .npy, .npz or .pt")
        if not exists(f):
            raise SpecError(f"{where}.file", f"file not found: {str(f)!r}")


def _check_names(where: str, items: list[InputItem]) -> None:
    """Named inputs: every tensor of an example named, each name once."""
    names = [item.name for item in items]
    if all(n is None for n in names):
        return
    if any(not n for n in names):
        raise SpecError(where, "give every tensor of an input a 'name' (the model gets them as a dict), or none")
    dup = sorted({n for n in names if n is not None and names.count(n) > 1})
    if dup:
        raise SpecError(where, f"input name {dup[0]!r} is given twice")
    for j, item in enumerate(items):
        if item.file is not None and item.file.endswith(".npz") and item.key is None:
            raise SpecError(f"{where}[{j}].key", "a named input from an .npz file needs the array's 'key'")


def check_reference(loaded: LoadedSpec, field: str, ref: str) -> None:
    """Check a ``module:attr`` or ``file.py:attr`` reference without importing it."""
    module, sep, attr = ref.rpartition(":")
    if not sep or not module or not attr:
        raise SpecError(field, f"{ref!r} is not a reference", "write 'package.module:attr' or 'path/file.py:attr'")
    if module.endswith(".py") or "/" in module or "\\" in module:
        f = loaded.resolve(module)
        if not exists(f, file=True):
            raise SpecError(field, f"file not found: {str(f)!r}")
        names = _top_level_names(f)
        if names is not None and attr.split(".")[0] not in names:
            close = difflib.get_close_matches(attr, sorted(names), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "defined: " + ", ".join(sorted(names)[:10])
            raise SpecError(field, f"{module!r} defines no {attr!r}", hint)
        return
    import importlib.util

    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError, TypeError):
        found = None
    except Exception as exc:  # noqa: BLE001 - its parent package failed to import
        raise SpecError(field, f"module {module!r} cannot be found: importing its package raised "
                               f"{type(exc).__name__}: {exc}") from None  # fmt: skip
    if found is None:
        raise SpecError(field, f"module {module!r} cannot be found", "is it installed, or on PYTHONPATH?")


def _top_level_names(path: Path) -> set[str] | None:
    """The names a Python file defines at its top level, read without running it; None
    when that cannot be told (a syntax error, ``import *``, a module ``__getattr__``,
    ``globals()`` writes): the check is then left to load time."""
    import ast

    try:
        source = path.read_text()
        tree = ast.parse(source, str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    if "globals()" in source:
        return None
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return None
                names.add(alias.asname or alias.name.split(".")[0])
        else:
            for sub in ast.walk(node):  # assignments, also under if/try/with at top level
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    names.add(sub.id)
                elif isinstance(sub, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(sub.name)
                elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                    for alias in sub.names:
                        if alias.name == "*":
                            return None
                        names.add(alias.asname or alias.name.split(".")[0])
    return None if "__getattr__" in names else names


#: plugin kind -> (the spec Struct that names such a plugin, its field holding the name)
PLUGIN_OPTION_FIELDS = {
    "framework": ("ModelSpec", "framework"),
    "device": ("DeviceSpec", "type"),
    "dataset": ("DatasetSpec", "plugin"),
    "launcher": ("LauncherSpec", "plugin"),
}


def json_schema(plugin_options: Mapping[str, Mapping[str, type]] | None = None) -> dict[str, Any]:
    """The JSON Schema (2020-12) of the spec format, from the same Structs.

    ``plugin_options`` (kind -> plugin name -> the type its options decode into, as
    plugins declare in ``options_type``) adds, for each plugin, a rule to the Struct
    that names it: where that name is given, ``options`` follows the plugin's schema."""
    named = [
        (kind, name, type_)
        for kind, types in (plugin_options or {}).items()
        for name, type_ in sorted(types.items())
        if kind in PLUGIN_OPTION_FIELDS
    ]
    (schema, *option_schemas), defs = msgspec.json.schema_components(
        [Spec, *(t for _, _, t in named)], ref_template="#/$defs/{name}"
    )
    for (kind, name, _), options in zip(named, option_schemas, strict=True):
        struct, field = PLUGIN_OPTION_FIELDS[kind]
        defs[struct].setdefault("allOf", []).append(
            {
                "if": {"properties": {field: {"const": name}}, "required": [field]},
                "then": {"properties": {"options": options}},
            }
        )
    schema["$defs"] = defs
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "npf run spec"
    return schema


def spec_to_dict(spec: Spec) -> dict[str, Any]:
    """The spec as plain JSON-able data (defaults omitted)."""
    return json.loads(msgspec.json.encode(spec))


T = TypeVar("T")


def decode_options(options: Mapping[str, Any], type_: type[T], path: str) -> T:
    """A plugin's ``options`` block decoded into its own Struct; errors name the
    spec path (e.g. ``device.options.count``)."""
    try:
        return msgspec.convert(dict(options), type=type_)
    except msgspec.ValidationError as exc:
        err = _spec_error(exc, type_)
        sub = err.path.removeprefix("$")
        raise SpecError(f"{path}{sub}", err.problem, err.hint) from None
