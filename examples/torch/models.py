"""A small PyTorch image classifier for the torch example: a few convolutions on
32x32 RGB images (CIFAR-sized), random weights. The torch framework plugin builds one
copy per benchmarker process, in eval mode under torch.inference_mode()."""

import torch
from torch import nn


class SmallConvNet(nn.Module):
    """(batch, 3, 32, 32) float32 images -> (batch, 10) class scores."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )  # fmt: skip
        self.head = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))
