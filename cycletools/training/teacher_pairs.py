"""Whole training images with the teacher's translations of them, computed once and kept in memory.

A CycleGAN generator's output depends on the whole image (InstanceNorm), so a student that is to
translate whole 256² images learns best from whole 256² images. Their number is small (the images
of trainA and their mirror images), so the teacher translates each once, instead of at every step:
the inputs are kept as 8-bit, the teacher's outputs in half precision (1.26 GB for the 2,134
images of horse2zebra's trainA and their mirrors at 256²). Domain B's images are kept too, whole,
where a discriminator learns from real images (0.26 GB more for horse2zebra's 1,334).
"""

from __future__ import annotations

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


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images → float in [-1, 1]."""
    return images.float() / 127.5 - 1


class TeacherPairs:
    """Domain A's images (and mirrors) at ``size``² with ``teacher``'s outputs; domain B's images where
    a discriminator learns them (``real_b``)."""

    def __init__(self, dataset: UnpairedImages, teacher: nn.Module, size: int, device: torch.device,
                 batch_size: int = 8, progress: bool = True, real_b: bool = True):
        inputs = _whole(dataset, dataset.files_a, size)
        self.inputs = torch.cat([inputs, inputs.flip(3)])
        self.real_b = _whole(dataset, dataset.files_b, size) if real_b else None
        outputs = []
        with torch.inference_mode():
            for start in tqdm(range(0, len(self.inputs), batch_size), desc="the teacher translates the training "
                              "images once", unit="batch", disable=not progress):
                batch = to_unit(self.inputs[start:start + batch_size]).to(device)
                outputs.append(teacher(batch).to("cpu", torch.float16))
        self.outputs = torch.cat(outputs)

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
