"""A tiny model for the quickstart: a small matrix multiply, about 1 ms per call."""

import numpy as np


class TinyMLP:
    """Two dense layers on a (batch, 256) input."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.w1 = rng.standard_normal((256, 1024)).astype(np.float32)
        self.w2 = rng.standard_normal((1024, 10)).astype(np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x @ self.w1, 0.0) @ self.w2
