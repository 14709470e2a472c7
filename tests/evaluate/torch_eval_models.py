"""Tiny torch models and datasets with known answers, for the torch evaluate tests."""

from __future__ import annotations

import torch

N = 60
FEATURES = 8
CLASSES = 4
WRONG_EVERY = 6  # the dataset's label disagrees with the model on every 6th example


class TinyNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.fc = torch.nn.Linear(FEATURES, CLASSES)
        with torch.no_grad():
            self.fc.weight.copy_(torch.randn(CLASSES, FEATURES, generator=g))
            self.fc.bias.copy_(torch.randn(CLASSES, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class Bf16Net(TinyNet):
    """TinyNet computed in bfloat16 (as an auto-cast variant would), output in float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x.bfloat16(), self.fc.weight.bfloat16(), self.fc.bias.bfloat16()).float()


def inputs() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(1, FEATURES, generator=g) for _ in range(N)]


def truth() -> tuple[list[torch.Tensor], list[int], list[int]]:
    """(inputs, labels, the model's predictions): labels are the model's prediction,
    shifted by one class on every WRONG_EVERY-th example."""
    net = TinyNet().eval()
    xs = inputs()
    with torch.no_grad():
        preds = [int(net(x).argmax()) for x in xs]
    labels = [(p + 1) % CLASSES if k % WRONG_EVERY == 0 else p for k, p in enumerate(preds)]
    return xs, labels, preds


def dataset() -> list[tuple[torch.Tensor, torch.Tensor]]:
    xs, labels, _ = truth()
    return [(x, torch.tensor([y])) for x, y in zip(xs, labels, strict=True)]


def argmax(output: torch.Tensor) -> torch.Tensor:
    """A postprocess: scores -> the predicted class (one per row)."""
    return output.argmax(dim=-1)
