"""What crosses between the compile engine and a compile worker (plain data, JSON
on disk): the request a framework's ``compile(request)`` receives and the result
the worker writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

__all__ = ["CompileRequest", "CompileResult"]


class CompileRequest(msgspec.Struct, kw_only=True):
    """One variant to compile: what a framework's ``compile(request)`` receives (in
    a fresh interpreter). Plain data: it travels as JSON."""

    #: the framework plugin's name and the spec's ``model.options``
    framework: str
    framework_options: dict[str, Any] = {}
    #: ``"target"`` (``package.module:attr`` / ``file.py:attr``, a class or factory)
    #: or ``"path"`` (a saved model file)
    model_kind: str
    model_ref: str
    #: the spec's folder: relative references and input files are relative to it
    base_dir: str
    #: this variant's example: the spec's input entry, as a list of tensor
    #: descriptions / files (``InputItem`` dicts); see :meth:`example`
    inputs: list[dict[str, Any]]
    input_idx: int = 0
    batch_size: int = 1
    pipeline_size: int = 1
    #: at most one of these is set: NeuronPerf's level (0 max accuracy .. 3 max
    #: performance) or an explicit auto-cast mode ("none", "matmult", "all")
    performance_level: int | None = None
    auto_cast: str | None = None
    auto_cast_type: str | None = None
    compiler_args: list[str] = []
    compiler_target: str | None = None
    #: where the framework must write the artifact (a file or a folder)
    output: str
    seed: int = 0

    def example(self) -> tuple[Any, ...]:
        """The example inputs as numpy arrays (or tensors, for ``.pt`` files)."""
        from npf_core.wire.tensors import build_example

        return build_example(self.inputs, Path(self.base_dir), seed=self.seed)

    def resolve(self, path: str) -> Path:
        """A path from the spec, relative to the spec's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p


class CompileResult(msgspec.Struct, kw_only=True):
    """What the compile worker reports for one variant."""

    status: str  # "finished" or "error"
    compile_s: float | None = None
    error: str | None = None
    traceback: str = ""
    #: what the framework's ``compile`` returned (JSON-able), e.g. the compiler arguments
    info: Any = None
