"""NeuronPerf's ``benchmark`` on npf's engine: its arguments become a run spec
(Python objects stay objects, reaching the copies through the spec's object
tokens; tensors and arrays travel as files, so they also reach fresh
interpreters), the :class:`~npf_core.supervisor.run.Supervisor` runs it, and the
reports come back as NeuronPerf's dicts (or ``(config, results)`` tuples)."""

from __future__ import annotations

import inspect
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from npf_core.errors import ArgumentError, SpecError, UserError
from npf_core.log import get_logger
from npf_core.neuronperf.reports import neuronperf_report, timers_result
from npf_core.wire.transfer import being_imported

__all__ = ["BENCHMARK_SECS", "benchmark", "benchmark_model", "set_verbosity"]

logger = get_logger("npf_core.neuronperf")

#: NeuronPerf's default duration of each configuration (seconds)
BENCHMARK_SECS = 60.0
#: ``return_timers=True`` keeps each call's start and end, up to this many calls per copy
KEEP_CALLS = 100_000
DEVICE_TYPES = {"neuron": "neuron", "inf": "neuron", "trn": "neuron", "gpu": "gpu", "cuda": "gpu", "cpu": "cpu"}
_state = {"verbosity": 1, "configured": False}


def default_device() -> str:
    """NeuronPerf's default, ``"neuron"``, where Neuron devices are (``neuron-ls`` is on
    PATH); ``"cpu"`` elsewhere, so a plain callable runs anywhere."""
    import shutil

    return "neuron" if shutil.which("neuron-ls") else "cpu"


def set_verbosity(verbosity: int) -> None:
    """0 = errors and warnings, 1 = info (default), 2 = debug — for npf's log from now on
    (each ``benchmark`` and ``compile`` call sets it again from its ``verbosity``, as
    NeuronPerf's do; ``verbosity=None`` keeps it)."""
    from npf_core.log import configure

    _state["verbosity"] = int(verbosity)
    _state["configured"] = True
    configure(int(verbosity))


# ---------------------------------------------------------------------------
# Objects that reach the copies
# ---------------------------------------------------------------------------


class LoadFn:
    """The model factory of ``benchmark(load_fn, model_filename, ...)``: each copy calls
    ``load_fn(model_filename, device_id=<copy index>)``."""

    def __init__(self, load_fn: Callable[..., Any], model_filename: Any) -> None:
        self.load_fn = load_fn
        self.model_filename = model_filename
        self.__name__ = Path(str(model_filename)).stem if isinstance(model_filename, (str, os.PathLike)) else (
            getattr(model_filename, "__name__", type(model_filename).__name__)
        )

    def __call__(self) -> Any:
        device_id = int(os.environ.get("NPF_COPY_INDEX", "0"))
        return self.load_fn(self.model_filename, device_id=device_id)


def job_config(job: Any) -> dict[str, Any]:
    """NeuronPerf's ``config`` dict for a benchmarker's job."""
    return {
        "model_filename": job.model_ref,
        "framework": job.framework,
        "device_type": job.device.type,
        "input_idx": job.input_idx,
        "batch_size": job.batch_size,
        "n_models": job.n_models,
        "workers_per_model": job.workers,
        "pipeline_size": job.pipeline_size,
        "config_id": job.config_id,
    }


class WithConfig:
    """``env_setup_fn(id, config)`` / ``setup_fn(id, config, model)``: NeuronPerf's
    arguments (a config dict) from npf's (copy index, job, ...)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, copy_index: int, job: Any, *rest: Any) -> Any:
        return self.fn(copy_index, job_config(job), *rest)


# ---------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------


def _is_torch(x: Any, name: str) -> bool:
    return any(c.__module__.startswith("torch") and c.__name__ == name for c in type(x).__mro__)


def is_dataset(x: Any) -> bool:
    """A ``torch.utils.data.Dataset`` (or IterableDataset), found without importing torch."""
    return any(c.__module__.startswith("torch.utils.data") for c in type(x).__mro__)


def _is_array(x: Any) -> bool:
    import numpy as np

    return (isinstance(x, np.ndarray) and x.dtype != object) or _is_torch(x, "Tensor")


def examples_of(inputs: Any) -> list[tuple[Any, ...]]:
    """NeuronPerf's ``inputs``: a list holds several inputs; a tuple is one multi-input example."""
    items = inputs if isinstance(inputs, list) else [inputs]
    return [x if isinstance(x, tuple) else (x,) for x in items]


def _save(x: Any, path: Path) -> dict[str, Any]:
    if _is_torch(x, "Tensor"):
        import torch

        f = path.with_suffix(".pt")
        torch.save(x.detach().cpu(), f)
    else:
        import numpy as np

        f = path.with_suffix(".npy")
        np.save(f, x, allow_pickle=False)
    return {"file": str(f)}


def input_block(
    inputs: Any, tmp: Path, objects: dict[str, Any], *, loader: Any, loop: bool, dataset: bool = False
) -> dict[str, Any]:
    """The spec's ``inputs`` (arrays and tensors, saved as files) or ``dataset``
    (Python objects, by token), and how many inputs there are."""
    if dataset or is_dataset(inputs):
        options = {"dataset": "<object:dataset>"}
        objects["<object:dataset>"] = inputs
        if loader is not None:
            options["loader"] = "<object:dataset_loader_fn>"
            objects["<object:dataset_loader_fn>"] = loader
        return {"dataset": {"plugin": "objects-dataset", "options": options, "loop": loop}, "n_inputs": 1}
    examples = examples_of(inputs)
    if not examples:
        raise ArgumentError("inputs", "must hold at least one input")
    if all(_is_array(x) for ex in examples for x in ex):
        entries = [[_save(x, tmp / f"input{i}_{j}") for j, x in enumerate(ex)] for i, ex in enumerate(examples)]
        return {"inputs": entries, "n_inputs": len(entries)}
    tokens = []
    for i, ex in enumerate(examples):
        token = f"<object:inputs[{i}]>"
        objects[token] = ex
        tokens.append(token)
    return {"dataset": {"plugin": "objects", "options": {"examples": tokens}, "loop": True}, "n_inputs": len(tokens)}


class IterOf:
    """A zero-argument factory over a live iterable (for the ``iterable`` dataset):
    each call iterates it afresh; list rows (a DataLoader's) become tuples."""

    def __init__(self, data: Any) -> None:
        self.data = data

    def __call__(self) -> Iterator[Any]:
        for e in self.data:
            yield tuple(e) if isinstance(e, (list, tuple)) else e


def eval_block(
    dataset: Any, objects: dict[str, Any], metrics: Any, target_col: int | None, reference: Any, duration: float
) -> dict[str, Any]:
    """Evaluate mode's ``dataset`` (rows of ``(*inputs, target)``, by token) and
    ``evaluate`` block."""
    token = "<object:dataset>"
    objects[token] = IterOf(dataset)
    block: dict[str, Any] = {"metrics": metrics if metrics is not None else [], "target_col": target_col}
    if reference is not None:
        block["reference"] = reference
    return {"dataset": {"plugin": "iterable", "options": {"target": token}, "loop": duration > 0},
            "evaluate": block, "n_inputs": 1}  # fmt: skip


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return list(value) if isinstance(value, (list, tuple, range)) else [value]


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------


def is_torch_module_class(obj: Any) -> bool:
    return isinstance(obj, type) and any(
        c.__name__ == "Module" and c.__module__.startswith("torch.nn") for c in obj.__mro__
    )


def reference_of(obj: Any) -> Any:
    """A class or function defined at the top level of a module file, as the file
    reference ``"/path/module.py:Name"`` a fresh interpreter can import; anything else
    (a lambda, a closure, an instance, a class of the running script) as it is."""
    import inspect
    import sys

    if not isinstance(obj, type) and not inspect.isfunction(obj):
        return obj
    qualname = getattr(obj, "__qualname__", "")
    module = sys.modules.get(getattr(obj, "__module__", ""))
    if "<" in qualname or module is None or module.__name__ == "__main__" or being_imported(module):
        return obj  # the script (or the module still being imported) would run again on import
    path = getattr(module, "__file__", None)
    if not path or not path.endswith(".py"):
        return obj
    return f"{os.path.abspath(path)}:{qualname}"


def model_block(framework: str, model: Any, *, performance_levels: Any, cast_modes: Any, tmp: Path) -> dict[str, Any]:
    """``{"framework", "path" | "index" | "target"}`` for what benchmark() was given."""
    if isinstance(model, (str, os.PathLike)):
        text = os.fspath(model)
        p = Path(text).expanduser()
        if p.suffix.lower() == ".json":
            if not p.exists():
                raise ArgumentError("model_filename", f"model index not found: {text!r} (in {os.getcwd()})",
                                    "give the file neuronperf.compile() returned")  # fmt: skip
            return {"framework": framework, "index": _filtered_index(p, performance_levels, cast_modes, tmp)}
        symbols = Path(f"{p}-symbol.json")
        if framework == "mxnet" and not p.exists() and symbols.exists():
            # NeuronPerf: the prefix given to mx.model.save_checkpoint(prefix, 0, ...), epoch 0
            return {"framework": framework, "path": str(symbols.absolute()), "options": {"epoch": 0}}
        if p.exists():
            return {"framework": framework, "path": str(p.absolute())}
        if ":" in text:  # an import reference, "module:attr" or "file.py:attr"
            return {"framework": framework, "target": text}
        raise ArgumentError("model_filename", f"file not found: {text!r} (in {os.getcwd()})",
                            "give the path of a saved model, or a model index from compile()")  # fmt: skip
    if model is None:
        raise ArgumentError("model_filename", "required: a model file, a model index, or (CPU/GPU) a model class")
    return {"framework": framework, "target": model}


def _filtered_index(path: Path, performance_levels: Any, cast_modes: Any, tmp: Path) -> str:
    """The index, filtered by performance level / cast mode when asked (written beside
    nothing of the user's: a temporary copy with absolute model paths)."""
    if performance_levels is None and cast_modes is None:
        return str(path.absolute())
    import npf_core.compilation.model_index as model_index

    index = model_index.rebased(model_index.load(path), path, tmp / path.name)
    if performance_levels is not None:
        index = model_index.filter(index, performance_level=_as_list(performance_levels))
    if cast_modes is not None:
        index = model_index.filter(index, cast_mode=_as_list(cast_modes))
    if not index["model_configs"]:
        raise SpecError("performance_levels", f"no entry of {str(path)!r} matches performance_levels / cast_modes")
    return model_index.save(index, str(tmp / path.name))


# ---------------------------------------------------------------------------
# benchmark
# ---------------------------------------------------------------------------


def benchmark_model(
    framework: str,
    model: Any,
    inputs: Any,
    batch_sizes: int | Sequence[int] | None = None,
    duration: float | None = None,
    n_models: int | Sequence[int] | None = None,
    pipeline_sizes: int | Sequence[int] | None = None,
    performance_levels: Any = None,
    workers_per_model: int | Sequence[int] | None = None,
    env_setup_fn: Callable[..., Any] | None = None,
    setup_fn: Callable[..., Any] | None = None,
    preprocess_fn: Callable[..., Any] | None = None,
    postprocess_fn: Callable[..., Any] | None = None,
    dataset_loader_fn: Callable[..., Any] | None = None,
    multiprocess: bool = True,
    multiinterpreter: bool = False,
    return_timers: bool = False,
    stats_interval: float = 0.5,
    device_type: str = "neuron",
    cost_per_hour: float | None = None,
    model_name: str | None = None,
    model_class_name: str | None = None,
    model_class_file: str | None = None,
    verbosity: int | None = 1,
    *,
    cast_modes: Any = None,
    loop_dataset: bool = False,
    dataset_inputs: bool = False,
    eval_metrics: Any = None,
    eval_target_col: int | None = -1,
    eval_reference: Any = None,
    reuse_copies: bool = False,
    **kwargs: Any,
) -> list[Any]:
    """NeuronPerf's ``benchmark`` for one framework plugin (see docs/migrating.md).

    With ``eval_metrics`` (or ``eval_reference``) it evaluates (NeuronPerf's
    ``evaluate`` is this call): ``inputs`` is then a dataset of ``(*inputs, target)``
    rows, the target in column ``eval_target_col``; ``duration`` defaults to 0, the
    dataset once. Each metric is in the report under its name (docs/evaluate.md).
    ``reuse_copies`` (npf's, default False as NeuronPerf): keep loaded copies between
    configurations instead of loading them for each one (NeuronPerf's ``load`` timers
    then hold the loads where they happened)."""
    evaluating = eval_metrics is not None or eval_reference is not None
    if kwargs:
        raise TypeError(f"benchmark() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
    dev = DEVICE_TYPES.get(str(device_type).lower())
    if dev is None:
        raise ArgumentError("device_type", f"unknown device type {device_type!r}",
                            "use 'neuron', 'gpu' ('cuda') or 'cpu'")  # fmt: skip
    level = _state["verbosity"] if verbosity is None else int(verbosity)
    duration = (0.0 if evaluating else BENCHMARK_SECS) if duration is None else duration
    if not _state["configured"]:
        import structlog as _s

        if not _s.is_configured():
            from npf_core.log import configure

            configure(level)
    with tempfile.TemporaryDirectory(prefix="npf-neuronperf-") as tmpdir:
        tmp = Path(tmpdir)
        objects: dict[str, Any] = {}
        if evaluating:
            block = eval_block(inputs, objects, eval_metrics, eval_target_col, eval_reference, float(duration))
        else:
            block = input_block(inputs, tmp, objects, loader=dataset_loader_fn, loop=loop_dataset,
                                dataset=dataset_inputs)  # fmt: skip
        n_inputs = block.pop("n_inputs")
        data: dict[str, Any] = {
            "model": model_block(framework, model, performance_levels=performance_levels, cast_modes=cast_modes,
                                 tmp=tmp),  # fmt: skip
            **block,
            "duration_s": float(duration),
            "window_s": float(stats_interval),
            "device": {"type": dev, "options": {"oversubscribe": True} if dev == "cpu" else {}},
            # as NeuronPerf: results come back, nothing is printed or written but the log
            "output": {"dir": str(tmp / "results"), "reporters": []},
        }
        is_index = "index" in data["model"]
        bs = _as_list(batch_sizes)
        if not is_index:
            if bs is None:
                bs = [1] * n_inputs
            elif len(bs) == 1 and n_inputs > 1:
                bs = bs * n_inputs
            if len(bs) != n_inputs:
                raise ArgumentError("batch_sizes", f"{len(bs)} batch sizes for {n_inputs} inputs",
                                    "give one batch size per input, matched by position")  # fmt: skip
        for key, value in (("batch_sizes", bs), ("n_models", _as_list(n_models)),
                           ("workers_per_model", _as_list(workers_per_model)),
                           ("pipeline_sizes", _as_list(pipeline_sizes))):  # fmt: skip
            if value is not None:
                data[key] = value
        if model_name is not None:
            data["name"] = model_name
        if cost_per_hour is not None:
            data["cost_per_hour"] = float(cost_per_hour)
        for key, fn in (("preprocess", preprocess_fn), ("postprocess", postprocess_fn)):
            if fn is not None:
                data[key] = fn
        if setup_fn is not None:
            data["setup"] = WithConfig(setup_fn)
        if env_setup_fn is not None:
            data["env_setup"] = WithConfig(env_setup_fn)
        if multiinterpreter or dev == "neuron" or framework == "tensorflow":
            # a fresh interpreter is likely: pass what can be imported as a reference
            for key in ("preprocess", "postprocess"):
                if key in data:
                    data[key] = reference_of(data[key])
            if "target" in data["model"]:
                data["model"]["target"] = reference_of(data["model"]["target"])
        if multiinterpreter:
            data["start_method"] = "fresh"
        elif not multiprocess:
            data["start_method"] = "inline"
        if return_timers:
            data["keep_calls"] = KEEP_CALLS
        data["reuse_copies"] = bool(reuse_copies)  # NeuronPerf loads every configuration's copies
        reports, kept = _run(data, objects, level, display=_display_name(model))
    shown = _display_name(model)
    if return_timers:
        return [
            _fix_name(timers_result(r, kept.get(r.config_id), duration=float(duration),
                                    stats_interval=float(stats_interval), cost_per_hour=cost_per_hour), shown)
            for r in reports
        ]  # fmt: skip
    out = []
    for r in reports:
        d = neuronperf_report(r, float(stats_interval), float(duration))
        if str(d.get("model_filename", "")).startswith("<object:"):
            d["model_filename"] = shown
        for key, value in r.metrics.items():  # evaluate: each metric under its name
            d.setdefault(key, value)
        out.append(d)
    return out


def _display_name(model: Any) -> str:
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model)
    if isinstance(model, LoadFn):
        return str(model.model_filename)
    return str(getattr(model, "__name__", type(model).__name__))


def _fix_name(item: tuple[dict[str, Any], dict[str, Any]], shown: str) -> tuple[dict[str, Any], dict[str, Any]]:
    config, results = item
    for d in (config, results.get("report", {})):
        if str(d.get("model_filename", "")).startswith("<object:"):
            d["model_filename"] = shown
    return config, results


def _run(
    data: dict[str, Any], objects: dict[str, Any], verbosity: int, display: str
) -> tuple[list[Any], dict[str, Any]]:
    """Run the spec; the reports, and the calls the copies kept (``keep_calls``)."""
    from npf_core.spec.schema import decode_spec
    from npf_core.supervisor.blocking import run_blocking
    from npf_core.supervisor.run import Supervisor

    try:
        loaded = decode_spec(data, Path.cwd())
        loaded.objects.update(objects)
        sup = Supervisor(loaded, verbosity=verbosity)
    except SpecError as exc:  # the user wrote no spec: name the argument
        argument = _argument_of(exc.path)
        if type(exc) is not SpecError or argument is None:
            raise
        raise ArgumentError(argument, exc.problem, exc.hint) from None
    total = len(sup.plan) * loaded.spec.max_duration_s
    logger.info(f"Benchmarking {display!r}, ~{total:g} seconds remaining.", configs=len(sup.plan))
    for config in sup.plan:
        logger.debug("Running model config", **{k: getattr(config, k) for k in config.__struct_fields__})
    return run_blocking(sup.run), sup.kept_calls


#: spec fields -> the benchmark() argument that filled them
_ARGUMENTS = {
    "model": "model_filename", "inputs": "inputs", "dataset": "inputs", "batch_sizes": "batch_sizes",
    "n_models": "n_models", "workers_per_model": "workers_per_model", "pipeline_sizes": "pipeline_sizes",
    "duration_s": "duration", "window_s": "stats_interval", "device": "device_type", "name": "model_name",
    "cost_per_hour": "cost_per_hour", "preprocess": "preprocess_fn", "postprocess": "postprocess_fn",
    "setup": "setup_fn", "env_setup": "env_setup_fn", "evaluate": "eval_metrics",
}  # fmt: skip


def _argument_of(path: str) -> str | None:
    head = path.removeprefix("$.").split(".")[0].split("[")[0]
    return _ARGUMENTS.get(head)


def _neuronperf_benchmark(
    load_fn: Callable[[str, int], Any],
    model_filename: str,
    inputs: Any,
    batch_sizes: int | list[int] | None = None,
    duration: float = BENCHMARK_SECS,
    n_models: int | list[int] | None = None,
    pipeline_sizes: int | list[int] | None = None,
    performance_levels: int | list[int] | None = None,
    workers_per_model: int | None = None,
    env_setup_fn: Callable[[int, dict[str, Any]], None] | None = None,
    setup_fn: Callable[[int, dict[str, Any], Any], None] | None = None,
    preprocess_fn: Callable[[Any], Any] | None = None,
    postprocess_fn: Callable[[Any], Any] | None = None,
    dataset_loader_fn: Callable[[Any, int], Any] | None = None,
    multiprocess: bool = True,
    multiinterpreter: bool = False,
    return_timers: bool = False,
    stats_interval: float = 0.5,
    device_type: str = "neuron",
    cost_per_hour: float | None = None,
    model_name: str | None = None,
    model_class_name: str | None = None,
    model_class_file: str | None = None,
    verbosity: int = 1,
) -> list[dict[str, Any]]:
    """NeuronPerf's signature of ``benchmark`` (what ``inspect.signature`` shows)."""
    raise NotImplementedError  # pragma: no cover - a signature only


def benchmark(*args: Any, **kwargs: Any) -> Any:
    """Two forms, told apart by the first argument:

    - NeuronPerf's generic ``benchmark(load_fn, model_filename, inputs, ...)``, where
      ``load_fn(model_filename, device_id=...)`` returns the model each copy calls
      (keyword form ``benchmark(load_fn=..., model_filename=..., inputs=...)`` too);
    - npf's ``benchmark(spec, **overrides)`` (a spec path, JSON text, dict or Spec),
      returning :class:`~npf_core.results.report.Report` objects.
    """
    first = args[0] if args else kwargs.get("load_fn")
    if "load_fn" in kwargs or (callable(first) and not isinstance(first, (str, bytes, os.PathLike, Mapping))):
        return _benchmark_load_fn(*args, **kwargs)
    from npf_core.supervisor.run import benchmark as run_spec

    return run_spec(*args, **kwargs)


benchmark.__signature__ = inspect.signature(_neuronperf_benchmark)  # type: ignore[attr-defined]


def _benchmark_load_fn(
    load_fn: Callable[..., Any], model_filename: Any = None, inputs: Any = None, *args: Any, **kwargs: Any
) -> list[Any]:
    if not callable(load_fn):
        raise UserError(f"benchmark(): load_fn must be callable, got {type(load_fn).__name__}")
    if inputs is None:
        raise ArgumentError("inputs", "required: the example inputs (a list of inputs, or one input)")
    kwargs.setdefault("device_type", default_device())
    if isinstance(model_filename, (str, os.PathLike)) and Path(model_filename).suffix.lower() == ".json":
        return _benchmark_index_with(load_fn, Path(model_filename), inputs, *args, **kwargs)
    return benchmark_model("python", LoadFn(load_fn, model_filename), inputs, *args, **kwargs)


def _benchmark_index_with(load_fn: Callable[..., Any], path: Path, inputs: Any, batch_sizes: Any = None,
                          *args: Any, **kwargs: Any) -> list[Any]:  # fmt: skip
    """``benchmark(load_fn, "index.json", inputs, ...)``: every finished entry of the
    index (filtered by ``batch_sizes``, ``pipeline_sizes``, ``performance_levels`` /
    ``cast_modes``), each loaded by ``load_fn`` and run on its input."""
    import npf_core.compilation.model_index as model_index

    index = model_index.load(path)
    filters: dict[str, Any] = {"status": "finished"}
    if batch_sizes is not None:
        filters["batch_size"] = _as_list(batch_sizes)
    for key, field in (("pipeline_sizes", "pipeline_size"), ("performance_levels", "performance_level"),
                       ("cast_modes", "cast_mode")):  # fmt: skip
        value = kwargs.pop(key, None)
        if value is not None:
            filters[field] = _as_list(value)
    for e in index["model_configs"]:
        if e.get("status", "finished") != "finished":
            logger.warning("skipping a model index entry that did not compile", filename=e.get("filename"))
    entries = model_index.filter(index, **filters)["model_configs"]
    if not entries:
        raise SpecError("model_filename", f"no finished entry of {str(path)!r} matches the filters")
    examples = examples_of(inputs)
    kwargs.setdefault("model_name", index.get("model_name"))
    out: list[Any] = []
    for e in entries:
        idx = e.get("input_idx")
        if idx is None:  # NeuronPerf's rule: the input with the entry's batch size
            idx = 0 if len(examples) == 1 else next(
                (i for i, ex in enumerate(examples) if getattr(ex[0], "shape", (None,))[:1] == (e["batch_size"],)), 0
            )
        if idx >= len(examples):
            raise SpecError("inputs", f"index entry {e['filename']} uses input {idx}; {len(examples)} inputs given")
        example = examples[idx]
        entry_kwargs = {**kwargs, "pipeline_sizes": [e.get("pipeline_size", 1)]}
        f = e["filename"]
        if not os.path.exists(f):  # NeuronPerf hands load_fn the name as stored, relative to the cwd
            f = model_index.resolve_filename(f, path)
        out += benchmark_model("python", LoadFn(load_fn, f), [example], [e["batch_size"]], *args,
                               **entry_kwargs)  # fmt: skip
    return out
