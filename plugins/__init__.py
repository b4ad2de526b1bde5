"""The built-in domain plugins of cycletools.

They are registered through the ``cycletools`` entry-point group in pyproject.toml, the
same way a third-party plugin is, and use only the public plugin API. In the repository they live
in ``plugins/`` and the bundled generators in ``weights/``; installed, they are the packages
``cycletools_plugins`` and ``cycletools_plugins.weights``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cycletools.domains import WeightsSource

OFFICIAL_PRETRAINED = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{name}.pth"
OFFICIAL_DATASETS = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/{name}.zip"


def _bundled_dir() -> Path:
    """The bundled weights: the package ``cycletools_plugins.weights`` (``weights/`` in the repository)."""
    spec = importlib.util.find_spec("cycletools_plugins.weights")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else Path(__file__).resolve().parent / "weights"


BUNDLED_DIR = _bundled_dir()


def official_sources(name: str) -> tuple[WeightsSource, ...]:
    """The CycleGAN authors' pretrained generator (official ResNet-9 layout)."""
    return (WeightsSource(OFFICIAL_PRETRAINED.format(name=name)),)


def bundled(name: str) -> Path:
    """Where the project's own weights for a domain live, when it ships them."""
    return BUNDLED_DIR / f"{name}.safetensors"
