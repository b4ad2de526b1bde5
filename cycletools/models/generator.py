"""The CycleGAN ResNet generator, laid out so that official checkpoints load unchanged.

Module indices inside ``self.model`` follow the reference implementation exactly
(``model.1`` is the 7x7 stem conv, ``model.{10..18}.conv_block.{1,5}`` the residual
convs for 9 blocks, and so on), which is what makes the official ``*.pth`` files'
keys line up with this module's ``state_dict``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def instance_norm(channels: int) -> nn.InstanceNorm2d:
    """InstanceNorm as CycleGAN uses it: no affine parameters, no running statistics."""
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    """Two reflection-padded 3x3 convolutions with a skip connection."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True),
            instance_norm(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True),
            instance_norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d(2ngf), d(4ngf), n_blocks x R(4ngf), u(2ngf), u(ngf), c7s1-3, Tanh.

    Input height and width must be multiples of 4 (and at least 8); the
    translation pipeline pads images to satisfy this.
    """

    n_downsampling = 2

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9):
        super().__init__()
        if n_blocks < 0 or ngf < 1:
            raise ValueError(f"invalid generator size: ngf={ngf}, n_blocks={n_blocks}")
        self.config = {"arch": "resnet", "input_nc": input_nc, "output_nc": output_nc,
                       "ngf": ngf, "n_blocks": n_blocks}
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=True),
            instance_norm(ngf),
            nn.ReLU(True),
        ]
        for i in range(self.n_downsampling):
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=True),
                instance_norm(ngf * mult * 2),
                nn.ReLU(True),
            ]
        mult = 2**self.n_downsampling
        layers += [ResnetBlock(ngf * mult) for _ in range(n_blocks)]
        for i in range(self.n_downsampling):
            mult = 2 ** (self.n_downsampling - i)
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, kernel_size=3, stride=2,
                                   padding=1, output_padding=1, bias=True),
                instance_norm(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    @staticmethod
    def infer_config(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Read input/output channels, ngf and block count off an official-layout state_dict."""
        try:
            stem = state_dict["model.1.weight"]
        except KeyError:
            raise KeyError("no 'model.1.weight' (the 7x7 stem convolution)") from None
        blocks = {int(key.split(".")[1]) for key in state_dict
                  if key.startswith("model.") and ".conv_block." in key}
        # Blocks start at index 10; count up to the last one so a missing block shows as missing keys.
        n_blocks = max(blocks) - 9 if blocks else 0
        if blocks and f"model.{min(blocks)}.conv_block.1.weight" not in state_dict:
            raise KeyError("residual blocks are not plain 3x3 convolutions (conv_block.1/.5)")
        last_conv = f"model.{10 + n_blocks + 6 + 1}.weight"
        if last_conv not in state_dict:
            raise KeyError(f"no '{last_conv}' (the output convolution of a {n_blocks}-block generator)")
        return {"arch": "resnet", "input_nc": int(stem.shape[1]),
                "output_nc": int(state_dict[last_conv].shape[0]),
                "ngf": int(stem.shape[0]), "n_blocks": n_blocks}
