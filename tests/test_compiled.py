"""The torch.compile backend: same frames as eager PyTorch, no recompiling for a video's last batch,
a clean fallback where compilation fails, and `--backend compile` end to end."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
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


def test_each_cpu_capability_gets_its_own_inductor_cache_and_a_chosen_folder_is_kept(tmp_path: Path, monkeypatch):
    from cycletools.pipelines.compiled import keep_inductor_cache_per_capability

    monkeypatch.setenv("TMPDIR", str(tmp_path))  # Inductor's default folder lies in the temp folder
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    folders = {}
    for capability in (None, "avx2", "AVX2", "default", "avx512"):
        environ = {} if capability is None else {"ATEN_CPU_CAPABILITY": capability}
        folders[capability] = keep_inductor_cache_per_capability(environ)
        assert environ["TORCHINDUCTOR_CACHE_DIR"] == folders[capability]
        assert Path(folders[capability]).parent.parent == tmp_path
    assert Path(folders[None]).name == "cycletools-aten-native"
    assert folders["avx2"] == folders["AVX2"]
    assert len({folders[c] for c in (None, "avx2", "default", "avx512")}) == 4
    chosen = {"TORCHINDUCTOR_CACHE_DIR": "/my/cache", "ATEN_CPU_CAPABILITY": "avx2"}
    assert keep_inductor_cache_per_capability(chosen) is None
    assert chosen["TORCHINDUCTOR_CACHE_DIR"] == "/my/cache"


@needs_compiler
def test_a_graph_compiled_under_avx2_kernels_does_not_reach_a_run_with_the_native_ones(
        tmp_path: Path, tiny_generator_file: Path):
    """Inductor's cache key leaves ATEN_CPU_CAPABILITY out: on an AVX-512 CPU a graph cached by an
    ``avx2`` run aborted the next plain run (SIGABRT inside a convolution). Each gets its own cache."""
    image = tmp_path / "in.png"
    Image.fromarray(_frames(1, 40, 56)[0]).save(image)
    env = {key: value for key, value in os.environ.items()
           if key not in ("TORCHINDUCTOR_CACHE_DIR", "ATEN_CPU_CAPABILITY")}
    env["TMPDIR"] = str(tmp_path)
    outputs = []
    for capability in ("avx2", None):
        out = tmp_path / f"out-{capability}.png"
        run_env = dict(env, **({"ATEN_CPU_CAPABILITY": capability} if capability else {}))
        result = subprocess.run([sys.executable, "-m", "cycletools", "translate", str(image), "--weights",
                                 str(tiny_generator_file), "--backend", "compile", "-o", str(out)],
                                capture_output=True, text=True, env=run_env, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        outputs.append(np.asarray(Image.open(out), dtype=int))
    assert outputs[0].shape == (40, 56, 3)
    assert np.abs(outputs[0] - outputs[1]).max() <= 1
    caches = tmp_path / f"torchinductor_{getpass.getuser()}"
    assert sorted(p.name for p in caches.glob("cycletools-*")) == ["cycletools-aten-avx2", "cycletools-aten-native"]
