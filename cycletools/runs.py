"""The layout of a training run folder, shared by the trainer, the resolver and the weights store."""

from __future__ import annotations

import os
from pathlib import Path

DIRECTIONS = ("a2b", "b2a")  # a2b: G_A, trainA → trainB; b2a: G_B, trainB → trainA


def run_weights_path(run_dir: str | os.PathLike, direction: str) -> Path:
    """Where a run keeps the generator of ``direction`` (written at the end of each epoch)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    return Path(run_dir) / "weights" / f"{direction}.safetensors"
