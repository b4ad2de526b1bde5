"""The CUDA paths, checked on a GPU: fast-recipe training, fp16 and CUDA-graph translation, videos,
and checkpoints that move between CUDA and the CPU. Skipped without CUDA (``pytest -m cuda``;
``benchmarks/gpu_suite.py`` runs them on a lent GPU and reports the result)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import cycle_error
from cycletools.data.toy import draw_shape, make_shapes_dataset
from cycletools.models import ResnetGenerator, init_weights
from cycletools.pipelines.translator import Translator
from cycletools.training.config import resolve_config
from cycletools.training.trainer import CycleGANTrainer

pytestmark = pytest.mark.cuda

TOY = {"size": 32, "load_size": 32, "ngf": 8, "ndf": 8, "blocks": 2, "log_every": 5, "save_every": 0}


def fast_config(data: Path, out: Path, **overrides):
    return resolve_config({"data": str(data), "name": "run", "out": str(out), "recipe": "fast", "device": "cuda",
                           "batch_size": 4, **TOY, **overrides}, cuda_available=True)


@pytest.mark.learning
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_fast_recipe_steps_lower_the_cycle_loss(tmp_path: Path, compiled: bool):
    data = make_shapes_dataset(tmp_path / "shapes", count=8, size=32)
    trainer = CycleGANTrainer(fast_config(data, tmp_path, lr=1e-3, max_steps=60, compile=compiled), progress=False)
    assert trainer.device.type == "cuda" and trainer.config.amp == "bf16"
    assert trainer.opt_G.param_groups[0]["fused"] is True
    assert trainer.G_A.model[1].weight.is_contiguous(memory_format=torch.channels_last)
    before = cycle_error(trainer, data / "trainA")
    result = trainer.train()
    after = cycle_error(trainer, data / "trainA")
    assert result.global_step == 60
    assert after < 0.6 * before, (before, after)


def toy_frames(count: int, size: int = 256) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([np.asarray(draw_shape("square" if i % 2 else "circle", size, rng)) for i in range(count)])


def test_fp16_and_cuda_graph_translation_match_fp32_eager():
    torch.manual_seed(0)
    generator = init_weights(ResnetGenerator(ngf=64, n_blocks=3))  # the paper's layers; fewer blocks compile sooner
    frames = toy_frames(4)
    reference = Translator(copy.deepcopy(generator), device="cuda", precision="fp32").translate_frames(frames)
    for precision, compiled in (("fp16", False), ("fp32", True), ("fp16", True)):
        translator = Translator(copy.deepcopy(generator), device="cuda", precision=precision, compile=compiled)
        output = translator.translate_frames(frames)
        difference = np.abs(output.astype(int) - reference)
        # Stated tolerance: on average within half a grey level, 99% of values within 3.
        assert difference.mean() <= 0.5 and np.percentile(difference, 99) <= 3, \
            (precision, compiled, difference.mean(), np.percentile(difference, 99), difference.max())
        if compiled:
            assert translator.compiled.active, translator.compiled.failure
            # CUDA graphs reuse their output memory: an earlier result must not change under a later call.
            x = torch.rand(2, 3, 64, 64, device="cuda") * 2 - 1
            first = translator.translate_tensor(x)
            kept = first.clone()
            translator.translate_tensor(-x)
            assert torch.equal(first, kept)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_frames_in_batches_keep_every_frame(compiled: bool):
    torch.manual_seed(0)
    translator = Translator(init_weights(ResnetGenerator(ngf=16, n_blocks=3)), device="cuda", compile=compiled)
    frames = toy_frames(10, 96)
    outputs = [translator.translate_frames(frames[i:i + 4]) for i in range(0, 10, 4)]  # 4, 4 and 2 frames
    assert [len(batch) for batch in outputs] == [4, 4, 2]
    joined = np.concatenate(outputs)
    assert joined.shape == frames.shape and joined.dtype == np.uint8
    single = np.concatenate([translator.translate_frames(frames[i:i + 1]) for i in range(10)])
    assert np.abs(joined.astype(int) - single).max() <= 2  # a frame's result does not depend on its batch


def test_translate_video_on_cuda_keeps_every_frame(tmp_path: Path, tiny_generator_file: Path):
    pytest.importorskip("av", reason="PyAV (the media extra) is not installed")
    from media_fixtures import make_clip

    from cycletools.media.video import probe
    from cycletools.pipelines.video import translate_video

    clip = make_clip(tmp_path / "clip.mp4", width=96, height=64, frames=23)
    translator = Translator.from_file(tiny_generator_file, device="cuda")
    result = translate_video(translator, clip, tmp_path / "out.mp4", batch_size=8, progress=False)
    assert result.frames == 23 and not result.partial
    info = probe(tmp_path / "out.mp4")
    assert (info.width, info.height) == (96, 64)


def test_checkpoint_moves_between_cuda_and_the_cpu(tmp_path: Path):
    data = make_shapes_dataset(tmp_path / "shapes", count=6, size=32, test_count=0)
    CycleGANTrainer(fast_config(data, tmp_path, max_steps=3), progress=False).train()
    on_cpu = CycleGANTrainer.resume(tmp_path / "run", {"device": "cpu", "max_steps": 5}, progress=False)
    assert on_cpu.device.type == "cpu"
    assert on_cpu.train().global_step == 5
    assert all(torch.isfinite(p).all() for p in on_cpu.G_A.parameters())
    back = CycleGANTrainer.resume(tmp_path / "run", {"device": "cuda", "max_steps": 7}, progress=False)
    assert back.device.type == "cuda" and next(back.G_A.parameters()).is_cuda
    assert back.train().global_step == 7
    assert all(torch.isfinite(p).all() for p in back.G_A.parameters())
