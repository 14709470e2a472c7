"""The errors of the onnxruntime framework. Option errors are npf's ``SpecError``
(their message starts with the field's path, ``spec $.model.options....``)."""

from __future__ import annotations

from npf_core.plugin import SpecError

__all__ = ["ForkedAfterImport", "InputMismatch", "ProviderUnavailable"]


class ProviderUnavailable(SpecError):
    """An execution provider the copy asks for is not in the installed onnxruntime, or did not start."""

    def __init__(self, path: str, provider: str, why: str, hint: str) -> None:
        self.provider = provider
        super().__init__(path, f"{provider} {why}", hint)


class InputMismatch(ValueError):
    """An input does not fit the model's inputs: its name, number, element type or shape."""


class ForkedAfterImport(RuntimeError):
    """This copy is a fork of a process that had already imported onnxruntime."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        super().__init__(
            f"this copy was forked from process {pid}, which had already imported onnxruntime: onnxruntime "
            "starts a thread when it is imported, which a fork does not copy, and such a child hangs or aborts "
            "when it exits. Use start_method 'zygote' (the default, which never imports onnxruntime before it "
            "forks) or 'fresh', and keep onnxruntime out of other plugins' module-level imports"
        )
