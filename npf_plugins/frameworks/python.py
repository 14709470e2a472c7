"""Framework ``python``: any Python callable.

``model.target`` is ``"package.module:attr"`` or ``"path/file.py:attr"`` naming a
class or a zero-argument factory; each benchmarker instantiates it once and calls
the result as ``model(*inputs)``. Inputs are numpy arrays.
"""

from __future__ import annotations

from typing import Any

from npf_core.plugin import ChildContext, Framework, Registry, SpecError, hookimpl, resolve_reference


class PythonFramework(Framework):
    """Plain Python callables: a class or zero-argument factory."""

    start_method = "zygote"

    def __init__(self, options: dict[str, Any]) -> None:
        if options:
            raise SpecError("model.options", f"the python framework takes no options, got {sorted(options)}")
        super().__init__(options)

    def check(self, kind: str, ref: str, spec: Any) -> None:
        if kind != "target":
            raise SpecError(
                "model.path",
                "the python framework loads a class or factory",
                "give model.target as 'package.module:Class' or 'path/file.py:Class'",
            )

    def load(self, kind: str, ref: str, ctx: ChildContext) -> Any:
        factory = resolve_reference(ref, ctx.base_dir, ctx.objects)
        if not callable(factory):
            raise TypeError(f"{ref!r} is a {type(factory).__name__}, not a class or zero-argument factory")
        model = factory()
        if not callable(model):
            raise TypeError(f"{ref!r}() returned a {type(model).__name__}, which cannot be called with inputs")
        return model


@hookimpl
def npf_register_frameworks(registry: Registry[Framework]) -> None:
    registry.add("python", PythonFramework)
