"""The CycleGAN objectives: least-squares GAN loss and L1 cycle/identity losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def lsgan_loss(prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
    """Mean squared distance of the PatchGAN output from 1 (real) or 0 (fake)."""
    target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
    return F.mse_loss(prediction.float(), target.float())


def l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(output.float(), target.float())


def linear_decay(epochs: int, epochs_decay: int):
    """The official schedule: factor 1 for ``epochs``, then linear decay over ``epochs_decay``.

    Epoch ``e`` (0-based) has factor ``1 - max(0, e + 1 - epochs) / (epochs_decay + 1)``.
    """

    def factor(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - epochs) / float(epochs_decay + 1)

    return factor
