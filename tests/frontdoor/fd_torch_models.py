"""torch models and a Dataset for the front-door tests (module level, as NeuronPerf asks)."""

from __future__ import annotations

import torch
from fd_models import record


class Model(torch.nn.Module):
    """The guide's simple model: x * 3 + 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * 3
        return x + 1


class ThreeInputs(torch.nn.Module):
    """The guide's multi-input model: forward(x, y, z); records the shapes of its first call."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def forward(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        if not self.seen:
            self.seen = True
            record(event="call", shapes=[list(x.shape), list(y.shape), list(z.shape)], type=type(x).__name__)
        return x + y * z


class Counting(torch.nn.Module):
    """Records the batch size of every call (the Dataset test counts them)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        record(event="batch", n=int(x.shape[0]), first=float(x[0, 0]))
        return x.sum(dim=1)


class Items(torch.utils.data.Dataset):
    """``n`` (image, label) pairs; image i is filled with i."""

    def __init__(self, n: int = 40) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.full((4,), float(i)), i % 3
