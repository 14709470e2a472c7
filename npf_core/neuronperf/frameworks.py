"""``npf.torch``, ``npf.cpu``, ``npf.tensorflow``, ``npf.mxnet``: NeuronPerf's
per-framework namespaces, each delegating to the framework plugin of its name (a
namespace works as soon as its plugin is installed)."""

from __future__ import annotations

from typing import Any

from npf_core.neuronperf.api import benchmark_model, is_torch_module_class

__all__ = ["EVALUATE_WORKERS", "FrameworkAPI", "cpu", "mxnet", "namespace", "tensorflow", "torch"]

#: NeuronPerf's evaluate runs one copy with this many workers unless told otherwise
EVALUATE_WORKERS = 2


class FrameworkAPI:
    """``benchmark`` and ``compile`` for one framework plugin."""

    def __init__(self, name: str, framework: str, default_device: str = "neuron") -> None:
        self.__name__ = f"npf_core.{name}"
        self.name = name
        self.framework = framework
        self.default_device = default_device

    def __repr__(self) -> str:
        return f"<npf_core.{self.name}: NeuronPerf's API on framework plugin {self.framework!r}>"

    def framework_for(self, model: Any) -> str:
        return self.framework

    def benchmark(self, model_filename: Any, inputs: Any, *args: Any, dataset_inputs: bool = False,
                  **kwargs: Any) -> list[Any]:  # fmt: skip
        """NeuronPerf's ``benchmark(model_filename, inputs, batch_sizes=None, duration=60, ...)``:
        a compiled model file, a model index (JSON) or (CPU/GPU) a model class;
        ``dataset_inputs``: ``inputs`` is a dataset (a torch ``Dataset`` is one anyway)."""
        kwargs.setdefault("device_type", self.default_device)
        kwargs["dataset_inputs"] = dataset_inputs
        return benchmark_model(self.framework_for(model_filename), model_filename, inputs, *args, **kwargs)

    def compile(self, model: Any, inputs: Any, *args: Any, verbosity: int = 1, **kwargs: Any) -> str:
        """NeuronPerf's ``compile(model, inputs, batch_sizes, pipeline_sizes, performance_levels,
        models_dir, model_name, filename, compiler_args, compiler_target)``; returns the index path."""
        from npf_core.compilation.compiler import compile as compile_model

        return compile_model(model, inputs, *args, framework=self.framework, **kwargs)

    def evaluate(
        self, model: Any, dataset: Any, metrics: Any = None, eval_target_col: int | None = -1, **kwargs: Any
    ) -> list[dict[str, Any]]:
        """NeuronPerf's ``evaluate(model_index_or_path, dataset, metrics=..., eval_target_col=...)``:
        :meth:`benchmark` with ``eval_metrics=metrics`` over ``dataset`` once
        (``duration=0``), one copy with two workers unless told otherwise; every other
        benchmark keyword works. Returns report dicts with each metric under its name
        (docs/evaluate.md)."""
        from npf_core.neuronperf.api import default_device

        kwargs.setdefault("n_models", 1)
        kwargs.setdefault("workers_per_model", EVALUATE_WORKERS)
        kwargs.setdefault("duration", 0.0)
        kwargs.setdefault("device_type", default_device())  # a CPU box evaluates on the CPU
        if "reference" in kwargs:  # npf's name for it
            kwargs["eval_reference"] = kwargs.pop("reference")
        return self.benchmark(model, dataset, eval_metrics=metrics if metrics is not None else [],
                              eval_target_col=eval_target_col, **kwargs)  # fmt: skip


class CpuAPI(FrameworkAPI):
    """``npf.cpu``: a model class instantiated in each copy, on the CPU; torch
    ``nn.Module`` classes and TorchScript files run with the torch plugin, any
    other callable with the python plugin."""

    def framework_for(self, model: Any) -> str:
        if is_torch_module_class(model) or str(model).endswith((".pt", ".pth", ".pt2", ".ts", ".torchscript")):
            return "torch"
        return "python"

    def benchmark(self, model_filename: Any, inputs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        kwargs.setdefault("device_type", "cpu")
        return super().benchmark(model_filename, inputs, *args, **kwargs)

    def compile(self, model: Any, inputs: Any, *args: Any, **kwargs: Any) -> str:
        from npf_core.errors import UserError

        raise UserError("npf.cpu.compile: there is nothing to compile for the CPU; benchmark the model class")


torch = FrameworkAPI("torch", "torch")
cpu = CpuAPI("cpu", "python", "cpu")
tensorflow = FrameworkAPI("tensorflow", "tensorflow")
mxnet = FrameworkAPI("mxnet", "mxnet")


def namespace(name: str) -> FrameworkAPI:
    """The namespace of a framework plugin by name (``npf_core.neuronperf.namespace("onnx")``)."""
    known = {"torch": torch, "cpu": cpu, "tensorflow": tensorflow, "mxnet": mxnet}
    return known.get(name) or FrameworkAPI(name, name)
