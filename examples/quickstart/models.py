"""A tiny model for the quickstart: about half a millisecond of numpy per call.

It uses element-wise numpy only (no BLAS), so its speed does not depend on how many
threads the machine's BLAS library starts, and the sweep's figures are easy to read.
"""

import numpy as np


class TinyModel:
    """A (batch, 256) input -> (batch, 64) output through one wide tanh layer."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.w = rng.standard_normal((256, 64)).astype(np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x[:, :, None] * self.w[None]).sum(axis=1)
