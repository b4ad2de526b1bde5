"""The affine-ResNet generator: the CycleGAN ResNet with learned InstanceNorm scales and named layers."""

from __future__ import annotations

import torch
from torch import nn


def norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True)


class ConvNorm(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, transposed: bool = False):
        super().__init__()
        if transposed:
            self.conv = nn.ConvTranspose2d(cin, cout, kernel, stride, padding=1, output_padding=1)
        else:
            self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, padding_mode="reflect")
        self.norm = norm(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(x)))


class Block(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.norm1 = norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.norm2 = norm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm2(self.conv2(torch.relu(self.norm1(self.conv1(x)))))


class AffineResnetGenerator(nn.Module):
    """stem (7×7), two stride-2 convs, ``depth`` residual blocks, two transposed convs, head (7×7), tanh."""

    def __init__(self, width: int = 64, depth: int = 9):
        super().__init__()
        self.config = {"arch": "affine_resnet", "width": width, "depth": depth}
        self.stem = ConvNorm(3, width, 7)
        self.down1 = ConvNorm(width, width * 2, 3, stride=2)
        self.down2 = ConvNorm(width * 2, width * 4, 3, stride=2)
        self.blocks = nn.Sequential(*(Block(width * 4) for _ in range(depth)))
        self.up1 = ConvNorm(width * 4, width * 2, 3, stride=2, transposed=True)
        self.up2 = ConvNorm(width * 2, width, 3, stride=2, transposed=True)
        self.head = nn.Conv2d(width, 3, 7, padding=3, padding_mode="reflect")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down2(self.down1(self.stem(x)))
        return torch.tanh(self.head(self.up2(self.up1(self.blocks(x)))))
