"""``npf_core.compilation.compiler``: compile every variant of a model and write a model index.

A variant is one (input / batch size) x pipeline size x (performance level or
auto-cast setting). Each is compiled by the framework plugin's
:meth:`~npf_core.plugin.hookspecs.Framework.compile` in a fresh interpreter
(``python -m npf_core.compilation.worker``), never in this process: compilers such as
torch-neuronx initialise runtimes that break processes forked afterwards, and a
compiler that crashes or hangs must not take the sweep with it. A variant that
fails (an exception, a crash, a timeout) is recorded in the index with status
``"error"`` and its reason, and the others go on. The index is rewritten after
every variant, so an interrupted compile keeps what it finished.

Two ways in, one engine:

- a run spec with a ``compile`` block (``python -m npf_core compile SPEC``, or
  ``compile(spec)``): the spec's model, ``inputs``, ``batch_sizes`` and
  ``pipeline_sizes`` say what to compile;
- NeuronPerf's shape: ``compile(model, inputs, batch_sizes, pipeline_sizes,
  performance_levels, models_dir="models", model_name=None, filename=None,
  compiler_args=None, compiler_target=None)``.

Both return the path of the model index written.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

import npf_core.compilation.model_index as model_index
import npf_core.wire.transfer as transfer
from npf_core.errors import PluginError, SpecError, UserError
from npf_core.log import get_logger
from npf_core.plugin.hookspecs import Framework
from npf_core.spec.schema import CompileSpec, LoadedSpec, as_list
from npf_core.wire.compile import CompileRequest, CompileResult

__all__ = ["CompileRequest", "CompileResult", "compile", "compile_spec", "plan_requests"]

logger = get_logger(__name__)

#: ``compile.artifact`` left out: its ``.pt`` becomes the framework's ``compile_suffix``
DEFAULT_ARTIFACT = CompileSpec().artifact
#: the placeholders ``compile.artifact`` and ``compile.filename`` may use
PLACEHOLDERS = ("model_name", "input_idx", "batch_size", "pipeline_size", "cast", "performance_level", "auto_cast")


class Variant(msgspec.Struct, kw_only=True):
    """A planned request and the artifact it must end as."""

    request: CompileRequest
    artifact: Path
    cast_mode: str | None = None


# ---------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------


def _model_name(loaded: LoadedSpec) -> str:
    spec = loaded.spec
    m = spec.model
    if spec.name:
        name = spec.name
    elif m.target is not None:
        name = m.target.rpartition(":")[2].rpartition(".")[2]
    else:
        name = Path(m.path or "model").stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "model"


def _fmt(pattern: str, field: str, values: Mapping[str, Any]) -> str:
    try:
        return pattern.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise SpecError(
            field, f"cannot fill in {pattern!r}: {exc!r}", "use placeholders among {" + "}, {".join(PLACEHOLDERS) + "}"
        ) from None


def _compiler_args(value: Any, field: str) -> list[str]:
    """``compiler_args`` as a list: a string is split like a shell line; a dict
    (NeuronPerf's form) becomes ``--key value`` pairs (``True``/``None``: the flag alone)."""
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, Mapping):
        out: list[str] = []
        for k, v in value.items():
            out.append(str(k))
            if isinstance(v, (list, tuple)):
                out.extend(str(x) for x in v)
            elif v is not None and v is not True:
                out.append(str(v))
        return out
    if isinstance(value, (list, tuple)) and all(isinstance(x, str) for x in value):
        return list(value)
    raise SpecError(field, f"expected a string or a list of strings, got {value!r}")


def plan_requests(
    loaded: LoadedSpec, *, models_dir: str | os.PathLike[str] | None = None, suffix: str = ".pt"
) -> tuple[str, list[Variant]]:
    """The model name and the variants a spec compiles (no process is started).

    :param models_dir: overrides ``compile.models_dir`` (relative to the current
        directory rather than the spec's folder).
    :param suffix: the framework's artifact suffix (``Framework.compile_suffix``),
        put in place of ``.pt`` when ``compile.artifact`` is left at its default.
    """
    spec = loaded.spec
    m = spec.model
    c = spec.compile or CompileSpec()
    if m.index is not None:
        raise SpecError("model.index", "compile needs the model itself", "give model.target or model.path")
    if spec.inputs is None:
        raise SpecError("inputs", "compile needs example inputs, one per batch size (a dataset cannot be compiled)")
    n_inputs = len(spec.inputs)
    batch_sizes = as_list(spec.batch_sizes) or [1] * n_inputs
    pipes = as_list(spec.pipeline_sizes) or [1]
    if c.performance_levels is not None and c.auto_cast is not None:
        raise SpecError("compile.auto_cast", "give either performance_levels or auto_cast, not both")
    casts: list[tuple[int | None, str | None]] = [(None, None)]
    if c.performance_levels is not None:
        casts = [(level, None) for level in dict.fromkeys(c.performance_levels)]
    elif c.auto_cast is not None:
        casts = [(None, mode) for mode in dict.fromkeys(c.auto_cast)]
    if not casts:
        raise SpecError("compile", "performance_levels / auto_cast must hold at least one value (or be left out)")
    args = _compiler_args(c.compiler_args, "compile.compiler_args")

    name = _model_name(loaded)
    out_dir = Path(models_dir).expanduser().absolute() if models_dir is not None else loaded.resolve(c.models_dir)
    kind = "target" if m.target is not None else "path"
    ref = m.target if m.target is not None else str(loaded.resolve(m.path or ""))
    variants: list[Variant] = []
    seen: dict[Path, str] = {}
    for idx, (entry, batch) in enumerate(zip(spec.inputs, batch_sizes, strict=True)):
        items = entry if isinstance(entry, list) else [entry]
        example = [msgspec.to_builtins(item) for item in items]
        for p in pipes:
            for level, mode in casts:
                cast = f"_l{level}" if level is not None else f"_{mode}" if mode is not None else ""
                values = {
                    "model_name": name, "input_idx": idx, "batch_size": batch, "pipeline_size": p,
                    "cast": cast, "performance_level": "" if level is None else level, "auto_cast": mode or "",
                }  # fmt: skip
                pattern = c.artifact
                if pattern == DEFAULT_ARTIFACT:
                    pattern = pattern.removesuffix(".pt") + suffix
                rel = _fmt(pattern, "compile.artifact", values)
                if not rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
                    raise SpecError("compile.artifact", f"{rel!r} is not a file name inside models_dir")
                artifact = out_dir / rel
                what = f"input {idx}, batch size {batch}, pipeline size {p}{cast}"
                if artifact in seen:
                    raise SpecError(
                        "compile.artifact",
                        f"{seen[artifact]} and {what} would both be written to {rel!r}",
                        "add {input_idx}, {batch_size}, {pipeline_size} or {cast} to the pattern",
                    )
                seen[artifact] = what
                request = CompileRequest(
                    framework=m.framework,
                    framework_options=dict(m.options),
                    model_kind=kind,
                    model_ref=ref,
                    base_dir=str(loaded.base_dir),
                    inputs=example,
                    input_idx=idx,
                    batch_size=batch,
                    pipeline_size=p,
                    performance_level=level,
                    auto_cast=mode,
                    auto_cast_type=c.auto_cast_type,
                    compiler_args=args,
                    compiler_target=c.compiler_target,
                    output=str(artifact),
                )
                variants.append(Variant(request=request, artifact=artifact, cast_mode=mode))
    return name, variants


# ---------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------


def compile_spec(
    spec: Any,
    *,
    models_dir: str | os.PathLike[str] | None = None,
    filename: str | os.PathLike[str] | None = None,
    timeout_s: float | None = None,
    extra_plugins: Iterable[Any] = (),
    on_variant: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> str:
    """Compile every variant of a run spec (a path, JSON text, dict, Spec or
    LoadedSpec) and write its model index; returns the index's path.

    :param models_dir: overrides ``compile.models_dir``.
    :param filename: the index to write; overrides ``compile.filename``.
    :param timeout_s: seconds one variant may take; overrides ``compile.timeout_s``.
    :param extra_plugins: plugins registered in this process; those that are modules
        are imported and registered in the compile processes too.
    :param on_variant: called after each variant with its position, the count and
        its index entry (progress display).
    """
    from npf_core.plugin.manager import get_plugins
    from npf_core.spec.overrides import prepare

    extra = tuple(extra_plugins)
    loaded = prepare(spec)
    plugins = get_plugins(extra)
    m = loaded.spec.model
    c = loaded.spec.compile or CompileSpec()
    framework = plugins.framework(m.framework, dict(m.options))
    if type(framework).compile is Framework.compile:
        raise PluginError(
            f"spec $.model.framework: framework {m.framework!r} cannot compile models"
            " (it has no compile method; use a framework that compiles, e.g. 'torch')"
        )
    name, variants = plan_requests(loaded, models_dir=models_dir, suffix=type(framework).compile_suffix)
    for v in variants:
        framework.check(v.request.model_kind, v.request.model_ref, loaded.spec)
    if filename is not None:
        index_path = Path(filename).expanduser().absolute()
    else:
        values = {k: "" for k in PLACEHOLDERS} | {"model_name": name}
        index_path = loaded.resolve(_fmt(c.filename, "compile.filename", values))
    limit = timeout_s if timeout_s is not None else c.timeout_s
    plugin_modules = [p.__name__ for p in extra if isinstance(p, types.ModuleType)]

    entries: list[dict[str, Any]] = []
    payload = transfer.pack(loaded.objects, method="fresh") if loaded.objects else None
    try:
        return _compile_variants(variants, index_path, name, limit, plugin_modules, payload, on_variant, entries)
    finally:
        if payload is not None:
            payload.close()


def _compile_variants(
    variants: list[Variant], index_path: Path, name: str, limit: float, plugin_modules: Sequence[str], payload: Any,
    on_variant: Callable[[int, int, dict[str, Any]], None] | None, entries: list[dict[str, Any]],
) -> str:  # fmt: skip
    for i, v in enumerate(variants):
        logger.debug("compiling", variant=f"{i + 1}/{len(variants)}", artifact=str(v.artifact))
        result = _compile_one(v, limit, plugin_modules, payload)
        entry: dict[str, Any] = {
            "filename": model_index.relative_path(v.artifact, index_path.parent),
            "input_idx": v.request.input_idx,
            "batch_size": v.request.batch_size,
            "pipeline_size": v.request.pipeline_size,
            "performance_level": v.request.performance_level,
            "cast_mode": v.cast_mode,
            "compile_s": None if result.compile_s is None else round(result.compile_s, 3),
            "status": result.status,
            "error": result.error,
        }
        if result.info is not None:
            entry["compile_info"] = result.info
        entries.append(entry)
        if result.status == "finished":
            logger.debug("compiled", artifact=str(v.artifact), compile_s=entry["compile_s"])
        else:
            logger.info("compile failed", artifact=str(v.artifact), error=result.error)
        model_index.save({"model_name": name, "model_configs": entries}, index_path)
        if on_variant is not None:
            on_variant(i, len(variants), entry)
    return str(index_path)


def _compile_one(v: Variant, timeout_s: float, plugin_modules: Sequence[str], payload: Any = None) -> CompileResult:
    """One variant in a fresh interpreter; the artifact appears only when it finished."""
    final = v.artifact
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(f".{final.stem}.partial{final.suffix}")
    log_copy = final.with_name(final.name + ".log")
    _remove(partial)
    _remove(log_copy)
    request = msgspec.structs.replace(v.request, output=str(partial))
    with tempfile.TemporaryDirectory(prefix="npf-compile-") as tmp:
        req_file, res_file, log_file = Path(tmp, "request.json"), Path(tmp, "result.json"), Path(tmp, "output.log")
        req_file.write_bytes(msgspec.json.encode(request))
        cmd = [sys.executable, "-m", "npf_core.compilation.worker", str(req_file), str(res_file)]
        cmd += ["--parent", str(os.getpid())]
        for module in plugin_modules:
            cmd += ["--plugin", module]
        fds: tuple[int, ...] = ()
        if payload is not None:  # the model given as a live object travels by cloudpickle (wire.transfer)
            cmd += ["--payload", str(payload.fd)]
            fds = (payload.fd,)
        status = _run(cmd, log_file, timeout_s, fds)
        if res_file.exists() and status is None:
            try:
                result = msgspec.json.decode(res_file.read_bytes(), type=CompileResult)
            except msgspec.DecodeError as exc:
                result = CompileResult(status="error", error=f"the compile process wrote a bad result: {exc}")
        else:
            result = CompileResult(status="error", error=status or "the compile process wrote no result")
        if result.status == "finished" and not partial.exists():
            result = CompileResult(
                status="error", error=f"framework {request.framework!r} reported success but wrote no {str(partial)!r}"
            )
        if result.status == "finished":
            _remove(final)
            os.replace(partial, final)
        else:
            _remove(partial)
            if status is not None:  # no exception to quote: say what the process printed last
                last = _last_line(log_file)
                result.error = f"{result.error}: {last}" if last else result.error
            try:
                shutil.copyfile(log_file, log_copy)
                result.error = f"{result.error} (output: {log_copy})"
            except OSError:
                pass
    return result


def _run(cmd: list[str], log_file: Path, timeout_s: float, pass_fds: tuple[int, ...] = ()) -> str | None:
    """Run the worker in its own process group; None when it exited 0, else why not.
    On a timeout or an interruption the whole group (compiler children too) is killed."""
    from npf_core.child.process import child_pythonpath

    env = {**os.environ, "PYTHONPATH": child_pythonpath()}
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            pass_fds=pass_fds,
        )
        try:
            code = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return f"timed out after {timeout_s:g} s (compile.timeout_s)"
        except BaseException:
            _kill_group(proc)
            raise
    if code == 0:
        return None
    if code < 0:
        try:
            sig = signal.Signals(-code).name
        except ValueError:
            sig = str(-code)
        return f"the compile process was killed by {sig}"
    return f"the compile process exited with code {code}"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _last_line(log_file: Path) -> str:
    try:
        lines = log_file.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


# ---------------------------------------------------------------------------
# The Python API (NeuronPerf's shape, or a spec)
# ---------------------------------------------------------------------------


def compile(  # noqa: A001 - the public name, as NeuronPerf's
    model: Any,
    inputs: Any = None,
    batch_sizes: int | Sequence[int] | None = None,
    pipeline_sizes: int | Sequence[int] | None = None,
    performance_levels: int | Sequence[int] | None = None,
    models_dir: str | os.PathLike[str] | None = None,
    model_name: str | None = None,
    filename: str | os.PathLike[str] | None = None,
    compiler_args: str | Sequence[str] | Mapping[str, Any] | None = None,
    compiler_target: str | None = None,
    *,
    framework: str = "torch",
    framework_options: Mapping[str, Any] | None = None,
    auto_cast: str | Sequence[str] | None = None,
    auto_cast_type: str | None = None,
    timeout_s: float | None = None,
    extra_plugins: Iterable[Any] = (),
) -> str:
    """Compile every variant of a model and write a model index; returns its path.

    With ``inputs`` left out, ``model`` is a run spec (a path, JSON text, dict or
    Spec) whose ``compile`` block says how (see ``docs/model-index-and-compile.md``);
    ``models_dir``, ``filename`` and ``timeout_s`` then override the spec.

    Otherwise the arguments are NeuronPerf's:

    :param model: the model: an instance (e.g. an ``nn.Module``; it reaches the fresh
        compile process by cloudpickle), a class or zero-argument factory, an import
        reference (``"package.module:attr"``, ``"file.py:attr"``) or a saved model file.
    :param inputs: one example per batch size (a list), each a tensor / array, a
        tuple of them (a multi-input example) or a tensor description dict.
    :param batch_sizes: the batch size of each input [1 each].
    :param pipeline_sizes: NeuronCore pipeline sizes to compile for [1].
    :param performance_levels: NeuronPerf levels, 0 (max accuracy) .. 3 (max performance).
    :param models_dir: where artifacts go ["models"].
    :param model_name: the name used in artifact and index file names.
    :param filename: the model index to write [``MODELNAME_index.json``].
    :param compiler_args: extra compiler arguments: a string, a list, or a dict.
    :param compiler_target: the compiler's ``--target`` (e.g. ``inf2``, ``trn1``).
    :param framework: the framework plugin that compiles ["torch"].
    :param auto_cast: auto-cast modes to compile instead of performance levels.
    """
    if inputs is None:
        given = {
            "batch_sizes": batch_sizes, "pipeline_sizes": pipeline_sizes, "performance_levels": performance_levels,
            "model_name": model_name, "compiler_args": compiler_args, "compiler_target": compiler_target,
            "framework_options": framework_options, "auto_cast": auto_cast, "auto_cast_type": auto_cast_type,
        }  # fmt: skip
        extra = [k for k, v in given.items() if v is not None]
        if extra:
            raise UserError(
                f"compile(): {', '.join(extra)} given without inputs; with a spec, set them in the spec"
                " (or pass the example inputs to compile a model directly)"
            )
        return compile_spec(
            model, models_dir=models_dir, filename=filename, timeout_s=timeout_s, extra_plugins=extra_plugins
        )
    with tempfile.TemporaryDirectory(prefix="npf-compile-inputs-") as tmp:
        block: dict[str, Any] = {}
        if performance_levels is not None:
            block["performance_levels"] = as_list(performance_levels)
        if auto_cast is not None:
            block["auto_cast"] = [auto_cast] if isinstance(auto_cast, str) else list(auto_cast)
        if auto_cast_type is not None:
            block["auto_cast_type"] = auto_cast_type
        if compiler_args is not None:
            block["compiler_args"] = _compiler_args(compiler_args, "compiler_args")
        if compiler_target is not None:
            block["compiler_target"] = compiler_target
        if models_dir is not None:
            block["models_dir"] = str(Path(models_dir).expanduser().absolute())
        if model_name is None and not isinstance(model, (str, os.PathLike, type, types.FunctionType)):
            model_name = "Model" if isinstance(model, tuple) else type(model).__name__  # an instance: its class
        data: dict[str, Any] = {
            "model": {"framework": framework, **_model_reference(model), "options": dict(framework_options or {})},
            "inputs": _input_entries(inputs, Path(tmp)),
            "compile": block,
        }
        if model_name is not None:
            data["name"] = model_name
        if batch_sizes is not None:
            data["batch_sizes"] = as_list(batch_sizes)
        if pipeline_sizes is not None:
            data["pipeline_sizes"] = as_list(pipeline_sizes)
        from npf_core.spec.schema import decode_spec

        loaded = decode_spec(data, Path.cwd())
        return compile_spec(loaded, filename=filename, timeout_s=timeout_s, extra_plugins=extra_plugins)


def _model_reference(model: Any) -> dict[str, Any]:
    """``{"target": ...}`` or ``{"path": ...}`` for what ``compile()`` was given."""
    if isinstance(model, (str, os.PathLike)):
        text = os.fspath(model)
        if Path(text).expanduser().exists() or ":" not in text:
            return {"path": text}
        return {"target": text}
    if isinstance(model, (type, types.FunctionType)):
        qualname = model.__qualname__
        module = model.__module__
        being_imported = transfer.being_imported(sys.modules.get(module))
        if "<locals>" not in qualname and not being_imported:
            if module != "__main__":
                return {"target": f"{module}:{qualname}"}
            main_file = getattr(sys.modules.get("__main__"), "__file__", None)
            if main_file:
                return {"target": f"{os.path.abspath(main_file)}:{qualname}"}
        return {"target": model}  # by value: cloudpickle, through the compile worker's payload
    # an instance (NeuronPerf's docs pass one: npf.torch.compile(model, ...)), or
    # MXNet's (sym, args, aux): a zero-argument factory that gives it, by value
    return {"target": Given(model)}


class Given:
    """A zero-argument factory of one live object: a model given to compile as an
    instance reaches the compile process by cloudpickle and is returned as it is."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self) -> Any:
        return self.model


def _input_entries(inputs: Any, tmp: Path) -> list[Any]:
    """NeuronPerf's ``inputs`` as spec input entries; arrays and tensors are saved
    under ``tmp`` and referenced as files."""
    counter = iter(range(1_000_000))

    def item(x: Any) -> dict[str, Any]:
        if isinstance(x, Mapping):
            return dict(x)
        arr = x
        if hasattr(arr, "detach"):  # a torch tensor
            arr = arr.detach().cpu()
        if hasattr(arr, "numpy") and not hasattr(arr, "__array_interface__"):
            try:
                arr = arr.numpy()
            except (TypeError, RuntimeError):  # e.g. bfloat16: keep it a tensor
                import torch

                f = tmp / f"input{next(counter)}.pt"
                torch.save(arr, f)
                return {"file": str(f)}
        import numpy as np

        try:
            a = np.asarray(arr)
        except Exception as exc:  # noqa: BLE001 - anything that is not array-like
            raise UserError(f"compile(): an input of type {type(x).__name__} is not a tensor or array: {exc}") from None
        f = tmp / f"input{next(counter)}.npy"
        np.save(f, a, allow_pickle=False)
        return {"file": str(f)}

    def entry(x: Any) -> Any:
        if isinstance(x, (tuple, list)):
            return [item(t) for t in x]
        return item(x)

    if isinstance(inputs, list):
        return [entry(x) for x in inputs]
    return [entry(inputs)]
