"""The "sub-mobile" ResNet generator of GAN Compression (Li et al., CVPR 2020).

The CycleGAN ResNet layout (same ``model.N`` indices) with narrower stages and residual
blocks built from depthwise-separable convolutions; each block may have its own inner
width. Checkpoints released by that project load through the ``gan-compression``
weights adapter (``plugins/compressed.py``), which reads every width off the tensor shapes.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from cycletools.models.generator import instance_norm


class SeparableConv2d(nn.Module):
    """Depthwise k×k conv, InstanceNorm, pointwise 1×1 conv (as ``self.conv``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, kernel_size, padding=0, groups=in_channels, bias=True),
            instance_norm(in_channels),
            nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class MobileResnetBlock(nn.Module):
    def __init__(self, dim: int, mid: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), SeparableConv2d(dim, mid), instance_norm(mid), nn.ReLU(True),
            nn.Dropout(0.0),
            nn.ReflectionPad2d(1), SeparableConv2d(mid, dim), instance_norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class MobileResnetGenerator(nn.Module):
    """stem (c0) → down (c1) → down (c2) → blocks on c2 with inner widths ``mids`` → up (u0) → up (u1) → RGB."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, stem: int = 16, down: Sequence[int] = (32, 128),
                 mids: Sequence[int] = (64,) * 3 + (128,) * 6, up: Sequence[int] = (32, 16)):
        super().__init__()
        c1, c2 = down
        u0, u1 = up
        self.config = {"arch": "mobile_resnet", "input_nc": input_nc, "output_nc": output_nc, "stem": stem,
                       "down": list(down), "mids": list(mids), "up": list(up)}
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(input_nc, stem, 7), instance_norm(stem), nn.ReLU(True),
            nn.Conv2d(stem, c1, 3, stride=2, padding=1), instance_norm(c1), nn.ReLU(True),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1), instance_norm(c2), nn.ReLU(True),
        ]
        layers += [MobileResnetBlock(c2, mid) for mid in mids]
        layers += [
            nn.ConvTranspose2d(c2, u0, 3, stride=2, padding=1, output_padding=1), instance_norm(u0), nn.ReLU(True),
            nn.ConvTranspose2d(u0, u1, 3, stride=2, padding=1, output_padding=1), instance_norm(u1), nn.ReLU(True),
            nn.ReflectionPad2d(3), nn.Conv2d(u1, output_nc, 7), nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.clamp(-1, 1))

    @staticmethod
    def infer_config(state_dict: dict[str, torch.Tensor]) -> dict[str, Any] | None:
        """Read every width off a GAN Compression state_dict; ``None`` if it is not one."""
        if "model.10.conv_block.1.conv.0.weight" not in state_dict or "model.1.weight" not in state_dict:
            return None
        blocks = sorted({int(k.split(".")[1]) for k in state_dict if ".conv_block." in k})
        if blocks != list(range(10, 10 + len(blocks))):
            return None
        first_up = 10 + len(blocks)
        try:
            return {
                "arch": "mobile_resnet",
                "input_nc": int(state_dict["model.1.weight"].shape[1]),
                "output_nc": int(state_dict[f"model.{first_up + 7}.weight"].shape[0]),
                "stem": int(state_dict["model.1.weight"].shape[0]),
                "down": [int(state_dict["model.4.weight"].shape[0]), int(state_dict["model.7.weight"].shape[0])],
                "mids": [int(state_dict[f"model.{i}.conv_block.1.conv.2.weight"].shape[0]) for i in blocks],
                "up": [int(state_dict[f"model.{first_up}.weight"].shape[1]),
                       int(state_dict[f"model.{first_up + 3}.weight"].shape[1])],
            }
        except KeyError:
            return None
