"""The history of generated images that each discriminator sees (Shrivastava et al., 2017)."""

from __future__ import annotations

import random
from typing import Any

import torch


class ImagePool:
    """Keeps up to ``size`` past fakes; once full, each query returns a stored fake half the time.

    The pool has its own random generator, so its state can be saved and restored exactly.
    """

    def __init__(self, size: int = 50, seed: int = 0):
        self.size = size
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch the size of ``images``, mixing in stored fakes once the pool is full."""
        if self.size == 0:
            return images
        returned = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                returned.append(image)
            elif self.rng.uniform(0, 1) > 0.5:
                slot = self.rng.randint(0, self.size - 1)
                returned.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                returned.append(image)
        return torch.cat(returned, 0)

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {"images": [img.cpu() for img in self.images], "rng": [version, list(internal), gauss]}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        self.images = [img.to(device) for img in state["images"]]
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
