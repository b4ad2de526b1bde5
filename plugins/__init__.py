"""The built-in domain plugins of cycletools.

They are registered through the ``cycletools`` entry-point group in pyproject.toml, the
same way a third-party plugin is, and use only the public plugin API.
"""

from __future__ import annotations

from pathlib import Path

from cycletools.domains import WeightsSource

OFFICIAL_PRETRAINED = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{name}.pth"
OFFICIAL_DATASETS = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "weights"


def official_sources(name: str) -> tuple[WeightsSource, ...]:
    """The CycleGAN authors' pretrained generator (official ResNet-9 layout)."""
    return (WeightsSource(OFFICIAL_PRETRAINED.format(name=name)),)


def bundled(name: str) -> Path:
    """Where the project's own weights for a domain live, when it ships them."""
    return BUNDLED_DIR / f"{name}.safetensors"
