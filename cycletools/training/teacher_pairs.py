"""Whole training images with the teacher's translations of them, computed once and kept in memory.

A CycleGAN generator's output depends on the whole image (InstanceNorm), so a student that is to
translate whole 256² images learns best from whole 256² images. Their number is small (the images
of trainA and their mirror images), so the teacher translates each once, instead of at every step:
the inputs are kept as 8-bit, the teacher's outputs in half precision (1.26 GB for the 2,134
images of horse2zebra's trainA and their mirrors at 256²). Domain B's images are kept too, whole,
where a discriminator learns from real images (0.26 GB more for horse2zebra's 1,334).

With a cache folder, the teacher's translations are also kept on disk (0.84 GB for horse2zebra at 256²),
under a name made from the teacher's weights, the training images' bytes and the size: a later run with
the same teacher, data and size reads them back instead of translating again (minutes on a CPU).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import torch
import torchvision.transforms.functional as TF
from torch import nn
from tqdm.auto import tqdm

from cycletools.data.unpaired import UnpairedImages
from cycletools.errors import CycletoolsError


def _whole(dataset: UnpairedImages, files, size: int) -> torch.Tensor:
    """Every image of ``files`` resized to ``size``², as uint8 (N×3×size×size)."""
    images = []
    for index in range(len(files)):
        image = TF.resize(dataset._load(files, index), [size, size], interpolation=TF.InterpolationMode.BICUBIC)
        images.append(TF.pil_to_tensor(image))
    return torch.stack(images)


def cache_key(teacher: nn.Module, dataset: UnpairedImages, size: int) -> str:
    """A name for the teacher's translations of ``dataset``'s domain A at ``size``²: it changes with any of
    the teacher's weights, any training image's bytes, their order, or the size."""
    digest = hashlib.sha256(f"cycletools teacher pairs v1, {size}px\n".encode())
    for name, tensor in sorted(teacher.state_dict().items()):
        digest.update(f"{name} {tuple(tensor.shape)} {tensor.dtype}\n".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    for path in dataset.files_a:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:32]


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images → float in [-1, 1]."""
    return images.float() / 127.5 - 1


class TeacherPairs:
    """Domain A's images (and mirrors) at ``size``² with ``teacher``'s outputs; domain B's images where
    a discriminator learns them (``real_b``)."""

    def __init__(self, dataset: UnpairedImages, teacher: nn.Module, size: int, device: torch.device,
                 batch_size: int = 8, progress: bool = True, real_b: bool = True, cache: Path | None = None):
        inputs = _whole(dataset, dataset.files_a, size)
        self.inputs = torch.cat([inputs, inputs.flip(3)])
        self.real_b = _whole(dataset, dataset.files_b, size) if real_b else None
        self.cache_file = Path(cache) / f"{cache_key(teacher, dataset, size)}.safetensors" if cache else None
        self.from_cache = False
        self.outputs = self._read_cache(size)
        if self.outputs is not None:
            self.from_cache = True
            return
        outputs = []
        with torch.inference_mode():
            for start in tqdm(range(0, len(self.inputs), batch_size), desc="the teacher translates the training "
                              "images once", unit="batch", disable=not progress):
                batch = to_unit(self.inputs[start:start + batch_size]).to(device)
                outputs.append(teacher(batch).to("cpu", torch.float16))
        self.outputs = torch.cat(outputs)
        self._write_cache()

    def _read_cache(self, size: int) -> torch.Tensor | None:
        """The cached translations, if the cache has them whole; a damaged file is translated again."""
        if self.cache_file is None or not self.cache_file.is_file():
            return None
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            outputs = load_file(self.cache_file)["outputs"]
        except (SafetensorError, KeyError, OSError, ValueError) as exc:
            print(f"cycletools: the teacher's cached translations {self.cache_file} cannot be read ({exc}); "
                  "translating again", file=sys.stderr)
            return None
        if outputs.shape != (len(self.inputs), 3, size, size) or outputs.dtype != torch.float16:
            print(f"cycletools: {self.cache_file} does not hold these translations; translating again",
                  file=sys.stderr)
            return None
        return outputs

    def _write_cache(self) -> None:
        if self.cache_file is None:
            return
        from safetensors.torch import save_file

        from cycletools.utils.atomic import atomic_path

        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.cache_file) as tmp:
                save_file({"outputs": self.outputs.contiguous()}, str(tmp))
        except OSError as exc:  # a full disk costs the next run time, not this run its work
            print(f"cycletools: could not keep the teacher's translations in {self.cache_file.parent} "
                  f"({exc.strerror or exc}); the next run translates them again", file=sys.stderr)

    def __len__(self) -> int:
        return len(self.inputs)

    def batches(self, batch_size: int, seed: int):
        """``{"A", "T", "B"}`` batches without end: every pair once per epoch in a shuffled order (seeded
        by the epoch), each with random real B images (None where they were not loaded)."""
        if batch_size > len(self.inputs):
            raise CycletoolsError(f"--batch-size {batch_size} is more than the {len(self.inputs)} training "
                                  "images (with their mirror images) that --whole-images has")
        epoch = 0
        while True:
            generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
            order = torch.randperm(len(self.inputs), generator=generator)
            for start in range(0, len(order) - batch_size + 1, batch_size):
                chosen = order[start:start + batch_size]
                real = None if self.real_b is None else \
                    to_unit(self.real_b[torch.randint(len(self.real_b), (batch_size,), generator=generator)])
                yield {"A": to_unit(self.inputs[chosen]), "T": self.outputs[chosen].float(), "B": real}
            epoch += 1
