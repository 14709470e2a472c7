"""Models the torch tests load by reference ("<this file>:Name") in benchmarker processes.

Probes append one JSON line per event to the file named by ``NPF_TEST_RECORD``
(``torch_helpers.record``), so the test process can see what happened inside each child.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import torch
from torch_helpers import record


class Net(torch.nn.Module):
    """A small MLP: (batch, 8) -> (batch, 4)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1 = torch.nn.Linear(8, 16)
        self.l2 = torch.nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.relu(self.l1(x)))


class Probe(Net):
    """``Net`` that records, at load, the copy's thread count, cores and training
    flag, and at its first call in each configuration (a copy kept for the next one
    runs several) the grad mode, the thread count and the type and device of its
    input."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = ""
        record(
            event="load",
            threads=torch.get_num_threads(),
            cores=os.environ.get("NEURON_RT_VISIBLE_CORES"),
            torch_neuronx="torch_neuronx" in sys.modules,
        )

    def forward(self, x: Any) -> Any:
        config = os.environ.get("NPF_CONFIG_ID", "?")
        if self.seen != config:
            self.seen = config
            record(
                event="call",
                config=config,
                threads=torch.get_num_threads(),
                training=self.training,
                inference_mode=torch.is_inference_mode_enabled(),
                grad_enabled=torch.is_grad_enabled(),
                input_type=type(x).__name__,
                input_device=str(getattr(x, "device", None)),
                input_dtype=str(getattr(x, "dtype", None)),
            )
        return super().forward(x)


def make_net() -> Net:
    """A zero-argument factory (the other kind of target)."""
    return Net()
