"""Weight initialisation as in the paper: N(0, 0.02) for convolutions, zero biases."""

from __future__ import annotations

from torch import nn


def init_weights(module: nn.Module, gain: float = 0.02) -> nn.Module:
    """Initialise every conv / linear layer of ``module`` in place and return it."""

    def init_layer(layer: nn.Module) -> None:
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(layer.weight, 0.0, gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, gain)
            nn.init.zeros_(layer.bias)

    module.apply(init_layer)
    return module
