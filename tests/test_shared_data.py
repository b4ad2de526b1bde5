"""Checks against the real horse2zebra split in ../shared (skipped where it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import needs_shared, shared_root
from cycletools.data.unpaired import EpochPlan, UnpairedImages
from cycletools.pipelines.translator import Translator
from cycletools.training.config import resolve_config
from cycletools.training.trainer import CycleGANTrainer

HORSE2ZEBRA = shared_root() / "datasets" / "horse2zebra"
pytestmark = [
    pytest.mark.shared,
    needs_shared("datasets/horse2zebra/trainB"),
]


def test_official_split_counts_and_epoch_length():
    dataset = UnpairedImages(HORSE2ZEBRA)
    assert (len(dataset.files_a), len(dataset.files_b), dataset.skipped_files) == (1067, 1334, 0)
    assert len(dataset) == 1334
    assert len(EpochPlan.make(1067, 1334, 0, 0).keys) == 1334


def test_greyscale_zebras_load_as_rgb():
    dataset = UnpairedImages(HORSE2ZEBRA)
    grey = [i for i, p in enumerate(dataset.files_b) if Image.open(p).mode == "L"]
    assert len(grey) == 7
    sample = dataset[(0, grey[0], 5)]
    assert sample["B"].shape == (3, 256, 256)
    assert torch.equal(sample["B"][0], sample["B"][1])  # a grey image stays grey in all three channels


def test_two_training_steps_on_real_images(tmp_path: Path):
    config = resolve_config({"data": str(HORSE2ZEBRA), "name": "h2z", "out": str(tmp_path), "size": 64,
                             "load_size": 72, "ngf": 4, "ndf": 4, "blocks": 1, "max_steps": 2, "log_every": 1})
    result = CycleGANTrainer(config, progress=False).train()
    assert result.global_step == 2
    with Image.open(tmp_path / "h2z" / "samples" / "step_0000002.png") as grid:
        assert grid.size == (4 * 66 + 2, 6 * 66 + 2)  # four testA/testB samples per row
    translator = Translator.from_file(result.weights["a2b"], device="cpu")
    with Image.open(HORSE2ZEBRA / "testA" / "n02381460_1000.jpg") as horse:
        assert translator(horse).size == horse.size == (256, 256)
