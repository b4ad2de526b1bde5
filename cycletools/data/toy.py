"""A synthetic squares → circles domain pair, for the quick-start demo and for smoke tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def draw_shape(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    """A dark square or circle of random size and colour on a random light background."""
    image = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(150, 256, 3)))
    draw = ImageDraw.Draw(image)
    radius = int(rng.integers(size // 6, size // 3))
    cx, cy = (int(v) for v in rng.integers(radius, size - radius, 2))
    colour = tuple(int(v) for v in rng.integers(0, 120, 3))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    (draw.rectangle if kind == "square" else draw.ellipse)(box, fill=colour)
    return image


def make_shapes_dataset(root: str | Path, count: int = 6, size: int = 40, seed: int = 0,
                        test_count: int = 2) -> Path:
    """Write trainA (squares), trainB (circles) and, if ``test_count``, testA/testB as PNG files."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, n in (("train", count), ("test", test_count)):
        if n == 0:
            continue
        for side, kind in (("A", "square"), ("B", "circle")):
            folder = root / f"{split}{side}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                draw_shape(kind, size, rng).save(folder / f"{kind}_{i:03d}.png")
    return root
