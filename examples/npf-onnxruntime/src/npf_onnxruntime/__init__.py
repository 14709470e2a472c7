"""npf-onnxruntime: the ``onnxruntime`` framework plugin for npf, published through
the entry-point group ``npf_core.plugins`` (see pyproject.toml).

Importing this package imports neither onnxruntime nor onnx: npf loads it in its
supervisor and its zygote, which must stay free of onnxruntime (README.md).
"""

__version__ = "0.1.0"
