"""Shared fixtures: a synthetic squares-vs-circles domain pair, tiny generators, the shared folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw


def shared_root() -> Path:
    return Path(os.environ.get("CYCLETOOLS_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def draw_shape(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A random-coloured square or circle on a random light background."""
    image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(150, 256, 3)))
    draw = ImageDraw.Draw(image)
    radius = int(rng.integers(size // 6, size // 3))
    cx, cy = (int(v) for v in rng.integers(radius, size - radius, 2))
    colour = tuple(int(v) for v in rng.integers(0, 120, 3))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    (draw.rectangle if kind == "square" else draw.ellipse)(box, fill=colour)
    return image


def make_shapes_dataset(root: Path, count: int = 6, size: int = 40, seed: int = 0, test: bool = True) -> Path:
    """trainA = squares, trainB = circles (and testA/testB), as PNG files."""
    rng = np.random.default_rng(seed)
    splits = ("train", "test") if test else ("train",)
    for split in splits:
        for side, kind in (("A", "square"), ("B", "circle")):
            folder = root / f"{split}{side}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count if split == "train" else 2):
                draw_shape(kind, size, rng).save(folder / f"{kind}_{i:03d}.png")
    return root


@pytest.fixture
def shapes_dataset(tmp_path: Path) -> Path:
    return make_shapes_dataset(tmp_path / "shapes")


@pytest.fixture
def tiny_generator_file(tmp_path: Path) -> Path:
    """A small random ResNet generator saved in the project's safetensors format."""
    import torch

    from cycletools.models import ResnetGenerator, init_weights
    from cycletools.weights import save_generator

    torch.manual_seed(0)
    generator = init_weights(ResnetGenerator(ngf=4, n_blocks=1), gain=0.5)
    return save_generator(generator, tmp_path / "tiny.safetensors")
