"""Small models for the integration tests, referenced as ``path/to/models.py:Name``."""

from __future__ import annotations

import os
import time
from typing import Any


class Sleepy:
    """About 2 ms per call, whatever the input."""

    def __init__(self) -> None:
        self.pid = os.getpid()

    def __call__(self, *inputs: Any) -> int:
        time.sleep(0.002)
        return len(inputs)


class Shapes:
    """Fails unless called with exactly the inputs the spec describes: (2, 3) float32 and (2,) int64."""

    def __call__(self, x: Any, y: Any) -> None:
        assert x.shape == (2, 3) and str(x.dtype) == "float32", (x.shape, x.dtype)
        assert y.shape == (2,) and str(y.dtype) == "int64", (y.shape, y.dtype)
        time.sleep(0.001)


def make_fast() -> Any:
    """A zero-argument factory."""
    return lambda *inputs: None
