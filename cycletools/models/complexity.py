"""Counting a generator's multiply-accumulates (MACs) and parameters."""

from __future__ import annotations

import torch
from torch import nn


def count_macs(module: nn.Module, size: int = 256) -> int:
    """Multiply-accumulates of one forward pass on a 1×3×size×size input (convolutions only).

    Transposed convolutions count output elements × input channels × kernel area, the
    convention GAN Compression uses (56.8 G for the ResNet-9, ngf=64 generator at 256²).
    """
    total = 0

    def conv_hook(layer: nn.Module, inputs, output) -> None:
        nonlocal total
        per_output = layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
        total += output.numel() * per_output

    hooks = [m.register_forward_hook(conv_hook) for m in module.modules()
             if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.inference_mode():
            module(torch.zeros(1, 3, size, size, device=next(module.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
