"""Tiny TensorFlow models the tests build, and targets the benchmarkers load.

Imported only by child processes (benchmarkers, compile workers, the model builder):
the test process never imports TensorFlow.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def dense() -> object:
    """A Keras functional model: one input (batch, 8) -> (batch, 4)."""
    import keras

    keras.utils.set_random_seed(0)
    x = keras.Input((8,), name="x")
    h = keras.layers.Dense(16, activation="relu")(x)
    return keras.Model(x, keras.layers.Dense(4)(h))


def two_inputs() -> object:
    """A Keras functional model with a dict input: {"tokens": (b, 8), "mask": (b, 4)}."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = {"tokens": keras.Input((8,), name="tokens"), "mask": keras.Input((4,), name="mask")}
    h = keras.layers.Concatenate()([inputs["tokens"], inputs["mask"]])
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(16, activation="relu")(h)))


class Raising:
    """A TensorFlow callable whose call fails with TensorFlow's own error."""

    def __call__(self, x: object) -> object:
        import tensorflow as tf

        return tf.reshape(x, [7, 7, 7])  # InvalidArgumentError: wrong number of elements


def hanging() -> object:
    """A factory whose load never finishes."""
    time.sleep(3600)
    raise AssertionError("unreachable")


def build(out: str) -> None:
    """Save dense as .keras and .h5 and as an exported SavedModel, two_inputs as .keras
    and as an exported SavedModel (a dict-input signature)."""
    d = Path(out)
    m = dense()
    m.save(d / "dense.keras")
    m.save(d / "dense.h5")
    m.export(str(d / "dense_saved"), verbose=False)
    t = two_inputs()
    t.save(d / "two.keras")
    t.export(str(d / "two_saved"), verbose=False)


if __name__ == "__main__":
    build(sys.argv[1])
