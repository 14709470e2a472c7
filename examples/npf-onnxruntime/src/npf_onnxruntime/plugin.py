"""The module the entry point names: npf calls its hooks in every process that builds
the plugin manager (the supervisor, the zygote, each fresh benchmarker)."""

from __future__ import annotations

from npf_core.plugin import Framework, Registry, hookimpl

from npf_onnxruntime.framework import OnnxruntimeFramework


@hookimpl
def npf_register_frameworks(registry: Registry[Framework]) -> None:
    registry.add("onnxruntime", OnnxruntimeFramework)
