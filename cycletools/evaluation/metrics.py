"""FID and KID from feature sets (torchmetrics), and reconstruction error."""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

KID_SUBSETS = 100
KID_MAX_SUBSET = 1000


class _Precomputed(nn.Module):
    """Lets torchmetrics take features we computed (and cached) ourselves."""

    def __init__(self, dim: int):
        super().__init__()
        self.num_features = dim

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet Inception Distance between two feature sets (torchmetrics' implementation)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_Precomputed(real.shape[1]), reset_real_features=True)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def kid(real: torch.Tensor, fake: torch.Tensor, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (mean, std) over 100 subsets of min(|real|, |fake|, 1000)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    subset = min(len(real), len(fake), KID_MAX_SUBSET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "will save all extracted features in buffer": that is the intent
        metric = KernelInceptionDistance(feature=_Precomputed(real.shape[1]), subsets=KID_SUBSETS,
                                         subset_size=subset)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        mean, std = metric.compute()
    finally:
        torch.random.set_rng_state(state)
    return float(mean), float(std)


def reconstruction_error(original: torch.Tensor, reconstructed: torch.Tensor) -> tuple[float, float]:
    """Mean L1 distance (images in [-1, 1]) and PSNR in dB (on the [0, 1] scale)."""
    l1 = float((original - reconstructed).abs().mean())
    mse = float((((original + 1) / 2 - (reconstructed + 1) / 2) ** 2).mean())
    psnr = float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)
    return l1, psnr
