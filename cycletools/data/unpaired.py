"""The unpaired A/B training set and a deterministic, resumable per-epoch sampling plan.

Every random choice of an epoch (the order of A, the B drawn for each A, the crop
offsets and flips) comes from ``(seed, epoch)``, so an epoch can be restarted at any
step and produce exactly the same batches, whatever the number of loader workers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Dataset, Sampler

from cycletools.data.images import list_images, open_image, split_alpha
from cycletools.errors import CycletoolsError

SampleKey = tuple[int, int, int]  # (index into A, index into B, augmentation seed)


def find_domain_folders(root: str | Path, split: str = "train") -> tuple[Path, Path]:
    """``root/{split}A`` and ``root/{split}B``, checked to exist."""
    root = Path(root)
    if not root.is_dir():
        raise CycletoolsError(f"dataset folder not found: {root}")
    folders = (root / f"{split}A", root / f"{split}B")
    missing = [f.name for f in folders if not f.is_dir()]
    if missing:
        raise CycletoolsError(f"{root}: missing {' and '.join(missing)} (expected {split}A/ and {split}B/ "
                              "folders of images)")
    return folders


class UnpairedImages(Dataset):
    """Images of domains A and B, loaded ``load_size`` square, randomly cropped and flipped.

    Indexed by :data:`SampleKey`; unreadable images are skipped with a warning naming
    the file (the next readable image of the same domain is used instead).
    """

    def __init__(self, root: str | Path, split: str = "train", load_size: int = 286,
                 crop_size: int = 256, flip: bool = True):
        folder_a, folder_b = find_domain_folders(root, split)
        listing_a, listing_b = list_images(folder_a), list_images(folder_b)
        for folder, listing in ((folder_a, listing_a), (folder_b, listing_b)):
            if not listing.files:
                raise CycletoolsError(f"{folder}: no images found"
                                      + (f" ({listing.skipped} non-image files skipped)" if listing.skipped else ""))
        self.files_a, self.files_b = listing_a.files, listing_b.files
        self.skipped_files = listing_a.skipped + listing_b.skipped
        self.load_size, self.crop_size, self.flip = load_size, crop_size, flip
        self.bad_files: set[Path] = set()

    def __len__(self) -> int:
        return max(len(self.files_a), len(self.files_b))

    def __getitem__(self, key: SampleKey) -> dict[str, torch.Tensor]:
        index_a, index_b, seed = key
        generator = torch.Generator().manual_seed(seed)
        return {"A": self._augmented(self.files_a, index_a, generator),
                "B": self._augmented(self.files_b, index_b, generator)}

    def _augmented(self, files: list[Path], index: int, generator: torch.Generator) -> torch.Tensor:
        image = self._load(files, index)
        image = TF.resize(image, [self.load_size, self.load_size], interpolation=TF.InterpolationMode.BICUBIC)
        span = self.load_size - self.crop_size
        top = int(torch.randint(span + 1, (1,), generator=generator))
        left = int(torch.randint(span + 1, (1,), generator=generator))
        image = TF.crop(image, top, left, self.crop_size, self.crop_size)
        flip = bool(torch.rand(1, generator=generator) < 0.5)
        if self.flip and flip:
            image = TF.hflip(image)
        return TF.normalize(TF.to_tensor(image), [0.5] * 3, [0.5] * 3)

    def _load(self, files: list[Path], index: int) -> Image.Image:
        for offset in range(len(files)):
            path = files[(index + offset) % len(files)]
            if path in self.bad_files:
                continue
            try:
                return split_alpha(open_image(path))[0]
            except CycletoolsError as exc:
                self.bad_files.add(path)
                warnings.warn(f"skipping unreadable training image {exc}", stacklevel=2)
        raise CycletoolsError(f"no readable images left in {files[0].parent}")


@dataclass
class EpochPlan:
    """The sample keys of one epoch for one process (rank) of ``world_size``."""

    keys: list[SampleKey]

    @classmethod
    def make(cls, n_a: int, n_b: int, epoch: int, seed: int, rank: int = 0, world_size: int = 1) -> "EpochPlan":
        """An epoch is ``max(n_a, n_b)`` pairs: A in shuffled order, B drawn at random.

        Across ranks the pairs are split evenly (any remainder is dropped so every
        rank takes the same number of steps).
        """
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        length = max(n_a, n_b)
        order = torch.randperm(length, generator=generator) % n_a
        draws_b = torch.randint(n_b, (length,), generator=generator)
        seeds = torch.randint(2**62, (length,), generator=generator)
        keys = list(zip(order.tolist(), draws_b.tolist(), seeds.tolist()))
        per_rank = length // world_size
        return cls(keys[rank::world_size][:per_rank])

    def steps(self, batch_size: int) -> int:
        return -(-len(self.keys) // batch_size)


class PlanSampler(Sampler[SampleKey]):
    """Yields an epoch plan's keys from a given step on; set a new plan for every epoch."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.keys: list[SampleKey] = []

    def set_plan(self, plan: EpochPlan, start_step: int = 0) -> None:
        self.keys = plan.keys[start_step * self.batch_size:]

    def __iter__(self):
        return iter(list(self.keys))

    def __len__(self) -> int:
        return len(self.keys)
