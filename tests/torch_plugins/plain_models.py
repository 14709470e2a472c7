"""Models without torch, for the device tests (framework ``python``)."""

from __future__ import annotations

import os
from typing import Any

from torch_helpers import record


class EnvRecorder:
    """Records the NeuronCores its copy was given (``NEURON_RT_VISIBLE_CORES``, and
    the legacy ``NEURONCORE_GROUP_SIZES``) to the test's record file."""

    def __init__(self) -> None:
        record(
            event="load",
            cores=os.environ.get("NEURON_RT_VISIBLE_CORES"),
            group_sizes=os.environ.get("NEURONCORE_GROUP_SIZES"),
        )

    def __call__(self, x: Any) -> Any:
        return x
