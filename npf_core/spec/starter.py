"""``npf init MODEL``: a commented starter spec for a model file.

JSON has no comments, so the spec carries them in its top-level ``_comment`` field
(a list of lines), which the decoder accepts and ignores (docs/spec.md).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from npf_core.errors import UserError

__all__ = ["starter_spec", "write_starter"]

TORCH_SUFFIXES = (".pt", ".pth", ".pt2", ".ts")


def _pick_target(source: str, filename: str) -> tuple[str, str]:
    """(attribute, framework) of the model in a Python file: the first class with a
    ``forward`` (torch) or ``__call__`` (python), else the first class or function."""
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as exc:
        raise UserError(f"init: {filename} is not valid Python: {exc.msg} (line {exc.lineno})") from None
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and not n.name.startswith("_")]
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    for cls in classes:
        methods = {m.name for m in cls.body if isinstance(m, ast.FunctionDef)}
        if "forward" in methods:
            return cls.name, "torch"
    for cls in classes:
        if "__call__" in {m.name for m in cls.body if isinstance(m, ast.FunctionDef)}:
            return cls.name, "python"
    if classes:
        return classes[0].name, "python"
    if funcs:
        return funcs[0].name, "python"
    raise UserError(f"init: {filename} defines no class or function to benchmark")


def starter_spec(model: str | Path, spec_dir: Path | None = None) -> dict[str, Any]:
    """The starter spec (a dict) for ``model``, with paths relative to ``spec_dir``."""
    path = Path(model)
    if not path.exists():
        raise UserError(f"init: no model file at {str(path)!r}")
    spec_dir = spec_dir or path.resolve().parent
    try:
        rel = str(path.resolve().relative_to(spec_dir.resolve()))
    except ValueError:
        rel = str(path.resolve())
    comment = [
        "A starter spec written by 'npf init'. Fields: docs/spec.md; this _comment field is ignored.",
        "inputs: one example per batch size, shape INCLUDING the batch dimension — edit the",
        "  shape and dtype to what the model takes (a list of tensors for a multi-input model).",
        "batch_sizes: matched to inputs by position. n_models: copies ('max' = one per device/core).",
        "workers_per_model: threads per copy. device: cpu, gpu or neuron.",
        'duration_s: seconds per configuration; "auto" runs each until its p99 is supported.',
        "latency_budget_ms: the summary names the best throughput whose p99 is within it.",
        "Run: npf run SPEC (narrow the sweep with --n-models, --workers, --batch-sizes, --device).",
    ]
    if path.suffix == ".py":
        attr, framework = _pick_target(path.read_text(), str(path))
        model_block: dict[str, Any] = {"framework": framework, "target": f"{rel}:{attr}"}
    elif path.suffix in TORCH_SUFFIXES:
        model_block = {"framework": "torch", "path": rel}
    else:
        raise UserError(
            f"init: cannot tell the framework of {path.name!r} (give a .py file with the model class, "
            f"or a PyTorch {'/'.join(TORCH_SUFFIXES)} file)"
        )
    return {
        "_comment": comment,
        "name": path.stem,
        "model": model_block,
        "inputs": [{"shape": [1, 8], "dtype": "float32"}],
        "batch_sizes": [1],
        "n_models": [1, "max"],
        "workers_per_model": [1, 2],
        "device": "cpu",
        "duration_s": "auto",
        "latency_budget_ms": 100,
    }


def write_starter(model: str | Path, output: str | Path | None = None, *, force: bool = False) -> Path:
    """Write the starter spec to ``output`` (default ``spec.json`` beside the model)."""
    out = Path(output) if output else Path(model).resolve().parent / "spec.json"
    if out.exists() and not force:
        raise UserError(f"init: {str(out)!r} exists (give --output FILE, or --force to overwrite it)")
    spec = starter_spec(model, out.resolve().parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n")
    return out
