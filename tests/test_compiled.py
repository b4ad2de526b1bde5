"""The torch.compile backend: same frames as eager PyTorch, no recompiling for a video's last batch,
a clean fallback where compilation fails, and `--backend compile` end to end."""

from __future__ import annotations

import os
import shutil
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli_here
from media_fixtures import frame_times, make_clip

from cycletools.pipelines.translator import Translator

needs_compiler = pytest.mark.skipif(
    not any(shutil.which(name) for name in (os.environ.get("CXX", "g++"), "g++", "c++", "clang++")),
    reason="torch.compile's CPU backend needs a C++ compiler (g++), and none is installed")


def _frames(count: int, height: int = 48, width: int = 64) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


@needs_compiler
def test_compiled_frames_match_eager_and_smaller_batches_reuse_the_compiled_graph(tiny_generator_file: Path):
    from torch._dynamo.utils import counters

    eager = Translator.from_file(tiny_generator_file)
    compiled = Translator.from_file(tiny_generator_file, backend="compile")
    frames = _frames(4)
    first = compiled.translate_frames(frames)
    assert compiled.compiled.active, compiled.compiled.failure
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1
    assert np.abs(first.astype(int) - eager.translate_frames(frames)).max() <= 1
    for count in (3, 1):  # a video's last, shorter batches are filled up, not compiled again
        out = compiled.translate_frames(frames[:count])
        assert out.shape == (count, 48, 64, 3)
        assert np.array_equal(out, first[:count])
    assert counters["stats"]["unique_graphs"] == graphs
    odd = Image.fromarray(_frames(1, 29, 37)[0])  # another size compiles again and keeps the exact size
    result = compiled(odd)
    assert result.size == (37, 29)
    assert np.abs(np.asarray(result, dtype=int) - np.asarray(eager(odd))).max() <= 1


def test_a_failed_compilation_warns_once_and_runs_uncompiled(tiny_generator_file: Path, monkeypatch):
    def broken_compile(module, **kwargs):
        def run(batch):
            raise RuntimeError("Compiler: g++ not found\nmore detail")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    eager = Translator.from_file(tiny_generator_file)
    compiled = Translator.from_file(tiny_generator_file, backend="compile")
    frames = _frames(2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = compiled.translate_frames(frames)
        second = compiled.translate_frames(frames)
    assert [str(w.message) for w in caught] == [
        "torch.compile failed (RuntimeError: Compiler: g++ not found); running the generator uncompiled"]
    assert not compiled.compiled.active
    assert np.array_equal(first, eager.translate_frames(frames)) and np.array_equal(first, second)


@needs_compiler
def test_video_with_the_compile_backend_keeps_every_frame(tmp_path: Path, tiny_generator_file: Path):
    clip = make_clip(tmp_path / "clip.mp4", width=64, height=48, frames=10, fps=Fraction(24))
    out = tmp_path / "out.mp4"
    result = run_cli_here("video", str(clip), "--weights", str(tiny_generator_file), "--backend", "compile",
                     "--batch-size", "4", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == ("compiling the generator with torch.compile: the first frames wait "
                                             "for it (cached for later runs)")
    assert "warning" not in result.stderr and "CUDA_HOME" not in result.stderr
    assert len(frame_times(out)) == 10
