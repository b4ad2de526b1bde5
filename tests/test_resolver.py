"""One resolver for every way of naming a generator, one pixel path, bounded work, renamed options."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from conftest import run_cli_here, run_cli_measured
from cycletools import get_generator
from cycletools.errors import CycletoolsError, UsageError
from cycletools.models import init_weights
from cycletools.models.mobile import MobileResnetGenerator
from cycletools.pipelines.translator import Translator
from cycletools.registry import get_registry, reset_registry
from cycletools.training.distill import STUDENTS
from cycletools.weights import save_generator


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("CYCLETOOLS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CYCLETOOLS_PLUGINS", "")
    reset_registry()
    yield tmp_path / "home"
    reset_registry()


def test_a_domain_a_file_and_a_run_come_through_the_same_resolver(home: Path, tiny_generator_file: Path,
                                                                   tmp_path: Path):
    from cycletools import store

    spec = get_registry().domain("horse2zebra")
    store.import_weights(spec, tiny_generator_file, registry=get_registry())
    by_domain = get_generator("horse2zebra", device="cpu")
    assert (by_domain.origin, by_domain.variant, by_domain.domain.name) == ("cached", "full", "horse2zebra")
    assert by_domain.source == store.local_file(spec)
    assert by_domain.provenance()["cycletools.domain"] == "horse2zebra"
    by_file = get_generator(weights=tiny_generator_file, device="cpu")
    assert (by_file.origin, by_file.domain, by_file.source) == ("file", None, tiny_generator_file)
    run = tmp_path / "run"
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "b2a.safetensors").write_bytes(tiny_generator_file.read_bytes())
    by_run = get_generator(run=run, direction="b2a")
    assert by_run.origin == "run" and by_run.source == run / "weights" / "b2a.safetensors"
    assert by_domain.config == by_file.config == by_run.config
    with pytest.raises(UsageError, match=r"a domain \(--plugin NAME\), a weights file \(--weights FILE\)"):
        get_generator("horse2zebra", run=run)
    with pytest.raises(CycletoolsError, match="no a2b weights yet"):
        get_generator(run=run)
    translator = Translator.from_loaded(by_domain)
    assert translator.working_size == 256 and translator.loaded is by_domain


def test_translate_plugin_name_walks_through_one_resolver(home: Path, tiny_generator_file: Path, tmp_path: Path,
                                                          monkeypatch):
    """cycletools translate --plugin NAME reaches the loaded generator through get_generator, once."""
    from cycletools import resolver, store
    from cycletools.cli.main import main

    store.import_weights(get_registry().domain("horse2zebra"), tiny_generator_file, registry=get_registry())
    calls = []
    original = resolver.get_generator
    monkeypatch.setattr(resolver, "get_generator", lambda *a, **k: calls.append((a, k)) or original(*a, **k))
    image = tmp_path / "horse.png"
    Image.new("RGB", (20, 12), (90, 60, 30)).save(image)
    assert main(["translate", str(image), "--plugin", "horse2zebra", "-o", str(tmp_path / "zebra.png")]) == 0
    assert len(calls) == 1 and calls[0][0] == ("horse2zebra",)


def test_a_distilled_student_loads_in_a_fresh_interpreter_without_any_registry(tmp_path: Path):
    torch.manual_seed(0)
    path = save_generator(init_weights(MobileResnetGenerator(**STUDENTS["tiny"])), tmp_path / "student.safetensors")
    code = ("import sys; from cycletools import load_generator; import cycletools.registry as r; "
            f"model, config = load_generator({str(path)!r}); "
            "assert r._REGISTRY is None, 'a registry was built'; print(config['arch'])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "mobile_resnet"


def hooked_translator(tiny_generator_file: Path) -> Translator:
    spec = replace(get_registry().domain("horse2zebra"), preprocess=ImageOps.mirror,
                   postprocess=lambda image: ImageOps.invert(image).resize((image.width // 2 + 1, image.height)))
    translator = Translator.from_file(tiny_generator_file, device="cpu")
    translator.domain, translator.working_size = spec, 24
    return translator


def test_domain_hooks_give_the_same_pixels_for_an_image_a_frame_and_a_video(home: Path, tiny_generator_file: Path,
                                                                            tmp_path: Path):
    pytest.importorskip("av")
    from media_fixtures import make_clip

    from cycletools.media.video import FrameReader
    from cycletools.pipelines.video import translate_video

    translator = hooked_translator(tiny_generator_file)
    plain = Translator.from_file(tiny_generator_file, device="cpu")
    plain.working_size = 24
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (30, 44, 3), dtype=np.uint8))
    as_image = np.asarray(translator(image))
    as_frame = translator.translate_frames(np.asarray(image)[None])[0]
    assert as_image.shape == (30, 44, 3) and np.array_equal(as_image, as_frame)
    assert np.abs(as_image.astype(int) - np.asarray(plain(image))).mean() > 50  # the hooks did something
    clip = make_clip(tmp_path / "clip.mkv", width=64, height=48, frames=3, codec="ffv1")
    translate_video(translator, clip, tmp_path / "out.mkv", progress=False, batch_size=2)
    source = [frame.image for frame in FrameReader(clip)]
    written = [frame.image for frame in FrameReader(tmp_path / "out.mkv")]
    expected = translator.translate_frames(np.stack(source)).astype(int)
    without_hooks = plain.translate_frames(np.stack(source)).astype(int)
    assert len(written) == 3
    error = np.abs(np.stack(written) - expected).mean()  # the same pixels, up to H.264's losses
    assert error < 0.2 * np.abs(np.stack(written) - without_hooks).mean(), error


def test_a_hook_that_fails_is_named(home: Path, tiny_generator_file: Path):
    translator = hooked_translator(tiny_generator_file)
    translator.domain = replace(translator.domain, postprocess=lambda image: None)
    with pytest.raises(CycletoolsError, match="the postprocess hook of domain 'horse2zebra' failed"):
        translator(Image.new("RGB", (16, 16)))


@pytest.mark.parametrize("width,height", [(256, 1), (1, 256), (1, 1), (65535, 2), (2, 65535), (4096, 4096)])
def test_the_work_is_bounded_whatever_the_shape(tiny_generator_file: Path, width: int, height: int):
    translator = Translator.from_file(tiny_generator_file, device="cpu")
    translator.working_size = 256
    seen = []
    original = translator.translate_tensor
    translator.translate_tensor = lambda batch: seen.append(tuple(batch.shape[-2:])) or original(batch)
    started = time.perf_counter()
    output = translator(Image.new("RGB", (width, height), (120, 80, 40)))
    assert output.size == (width, height)
    (seen_height, seen_width), = seen
    assert max(seen_height, seen_width) <= 8192 and seen_height * seen_width <= 4096 * 4096
    assert time.perf_counter() - started < 60


@pytest.mark.slow
def test_cli_translates_extreme_shapes_within_a_memory_ceiling(tmp_path: Path, tiny_generator_file: Path):
    shapes = [(256, 1), (1, 256), (1, 1), (65535, 2)]
    (tmp_path / "in").mkdir()
    for width, height in shapes:
        Image.new("RGB", (width, height), (120, 80, 40)).save(tmp_path / "in" / f"{width}x{height}.png")
    result, peak = run_cli_measured("translate", str(tmp_path / "in"), "--weights", str(tiny_generator_file),
                                    "--working-size", "256", "-o", str(tmp_path / "out"), timeout=180)
    assert result.returncode == 0, result.stderr
    assert peak < 1.3e9, f"peak {peak / 1e9:.2f} GB"  # 0.7 GB here; 2.0 GB for 256×1 alone before the bound
    for width, height in shapes:
        with Image.open(tmp_path / "out" / f"{width}x{height}.png") as out:
            assert out.size == (width, height)


@pytest.mark.parametrize("command,old,new", [
    (["translate", "IMG", "--weights", "W", "-o", "OUT"], ["--size", "16"], "--working-size"),
    (["train", "--data", "D", "--name", "n", "--max-steps", "1"], ["--size", "32"], "--crop-size"),
])
def test_old_option_names_still_work_with_a_warning(tmp_path: Path, tiny_generator_file: Path, shapes_dataset: Path,
                                                    command, old, new):
    image = tmp_path / "in.png"
    Image.new("RGB", (20, 10)).save(image)
    replacements = {"IMG": str(image), "W": str(tiny_generator_file), "OUT": str(tmp_path / "out.png"),
                    "D": str(shapes_dataset)}
    args = [replacements.get(arg, arg) for arg in command] + old
    if command[0] == "train":
        args += ["--out", str(tmp_path / "runs"), "--load-size", "36", "--ngf", "4", "--ndf", "4", "--blocks", "1"]
    result = run_cli_here(*args)
    assert result.returncode == 0, result.stderr
    assert "--size is deprecated" in result.stderr and f"use {new}" in result.stderr
    assert "Traceback" not in result.stderr


def test_webcam_domain_switching_keeps_backend_variant_and_precision(home: Path, tiny_generator_file: Path,
                                                                    monkeypatch):
    from cycletools import resolver, store
    from cycletools.cli.webcam import _domain_switcher

    for name in ("horse2zebra", "zebra2horse"):
        store.import_weights(get_registry().domain(name), tiny_generator_file, registry=get_registry())
    calls = []
    original = resolver.get_generator
    monkeypatch.setattr(resolver, "get_generator", lambda *a, **k: calls.append((a, k)) or original(*a, **k))
    args = argparse.Namespace(plugin="horse2zebra", weights=None, run=None, direction="a2b", download=False,
                              device="cpu", precision="fp32", variant="full", backend="torch", calibrate=None)
    switch = _domain_switcher(None, args)
    switched = switch(1)
    assert switched.domain.name == "zebra2horse"
    assert calls[-1][1] == {"device": "cpu", "precision": "fp32", "backend": "torch", "variant": "full",
                            "calibrate": None}


@pytest.mark.slow
@pytest.mark.parametrize("command", ["video", "webcam"])
def test_video_and_webcam_translate_extreme_shapes_within_a_memory_ceiling(tmp_path: Path, tiny_generator_file: Path,
                                                                          command: str):
    pytest.importorskip("av")
    from media_fixtures import make_clip

    from cycletools.media.video import probe

    clip = make_clip(tmp_path / "strip.mp4", width=512, height=2, frames=4)
    out = tmp_path / "out.mp4"
    args = ([command, str(clip), "-o", str(out)] if command == "video" else
            [command, "--camera", str(clip), "--no-window", "--record", str(out)])
    started = time.perf_counter()
    result, peak = run_cli_measured(*args, "--weights", str(tiny_generator_file), "--working-size", "256",
                                    timeout=180)
    assert result.returncode == 0, result.stderr
    assert peak < 1.3e9, f"peak {peak / 1e9:.2f} GB"  # unbounded, 512×2 at working size 256 is 65536×256
    assert time.perf_counter() - started < 120
    info = probe(out)
    assert (info.width, info.height) == (512, 2)


@pytest.mark.parametrize("kwargs, message", [
    ({"domain": 5}, "a domain is named by a string (e.g. 'horse2zebra'), not int 5"),
    ({"weights": 5}, "a weights file is named by a path, not int 5"),
    ({"run": 3.5}, "a training run is named by a path, not float 3.5"),
])
def test_names_of_the_wrong_type_get_a_clear_error(kwargs, message):
    from cycletools.resolver import get_generator

    with pytest.raises(CycletoolsError, match=re.escape(message)):
        get_generator(**kwargs)
