"""Translation keeps every input's size, mode-independent; the CLI reports bad files and goes on."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import refuse_writes_in, run_cli_here
from cycletools.data.images import split_alpha
from cycletools.pipelines.translator import Translator, pad_to_multiple

SIZES = [(1, 1), (3, 5), (7, 2), (37, 23), (64, 64), (130, 67)]


@pytest.fixture
def translator(tiny_generator_file: Path) -> Translator:
    return Translator.from_file(tiny_generator_file, device="cpu")


def random_rgb(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


@pytest.mark.parametrize("width,height", SIZES)
def test_output_has_exact_input_size(translator: Translator, width: int, height: int):
    output = translator(random_rgb(width, height))
    assert output.size == (width, height)
    assert output.mode == "RGB"


def test_pad_uses_reflection_then_crop_restores():
    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).reshape(2, 3, 5, 6)
    padded = pad_to_multiple(x)
    assert padded.shape == (2, 3, 8, 8)
    assert torch.equal(padded[..., :5, :6], x)
    assert torch.equal(padded[..., 5, :6], x[..., 3, :])  # reflection: row 5 mirrors row 3
    assert torch.equal(padded[..., :5, 6], x[..., :, 4])
    assert pad_to_multiple(torch.zeros(1, 3, 8, 12)).shape == (1, 3, 8, 12)
    assert pad_to_multiple(torch.zeros(1, 3, 1, 2)).shape == (1, 3, 8, 8)


def test_official_transform_and_batch_api(translator: Translator):
    image = random_rgb(20, 12, seed=4)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
    y = translator.translate_tensor(torch.cat([x, x.flip(-1)]))
    assert y.shape == (2, 3, 12, 20)
    assert float(y.abs().max()) <= 1.0
    expected = ((y[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(translator(image)), expected)
    assert len(translator([image, image])) == 2


def make_mode_image(mode: str) -> Image.Image:
    rgb = random_rgb(29, 17, seed=1)
    if mode == "RGBA":
        image = rgb.convert("RGBA")
        image.putalpha(Image.fromarray(np.tile(np.arange(29, dtype=np.uint8) * 8, (17, 1)), "L"))
        return image
    if mode == "LA":
        return rgb.convert("LA")
    if mode == "P+transparency":
        image = rgb.convert("P")
        image.info["transparency"] = 0
        return image
    if mode == "I;16":
        return Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    if mode == "F":
        return Image.fromarray(np.asarray(rgb.convert("L"), dtype=np.float32) / 255.0)
    return rgb.convert(mode)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "P+transparency", "RGB", "RGBA", "CMYK", "I", "I;16", "F"])
def test_every_mode_keeps_size_and_alpha(translator: Translator, mode: str):
    image = make_mode_image(mode)
    output = translator(image)
    assert output.size == image.size
    _, alpha = split_alpha(image)
    if alpha is None:
        assert output.mode == "RGB"
    else:
        assert output.mode == "RGBA"
        assert np.array_equal(np.asarray(output.getchannel("A")), np.asarray(alpha))


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 64, dtype=np.uint16).reshape(8, 8)
    rgb, _ = split_alpha(Image.fromarray(ramp))
    values = np.asarray(rgb)[..., 0]
    assert values.min() == 0 and values.max() == 255
    assert len(np.unique(values)) > 50


def test_exif_orientation_is_applied(tmp_path: Path, tiny_generator_file: Path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise for display
    random_rgb(40, 24).save(path, exif=exif)
    out = tmp_path / "out.png"
    result = run_cli_here("translate", str(path), "--weights", str(tiny_generator_file), "-o", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.size == (24, 40)


def test_sixteen_bit_png_file_and_rgba_through_cli(tmp_path: Path, tiny_generator_file: Path):
    src = tmp_path / "src"
    src.mkdir()
    make_mode_image("I;16").save(src / "deep.png")
    make_mode_image("RGBA").save(src / "alpha.png")
    (src / "notes.txt").write_text("not an image")
    result = run_cli_here("translate", str(src), "--weights", str(tiny_generator_file), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "translated 2 of 2 image(s)" in result.stdout and "1 non-image files skipped" in result.stdout
    with Image.open(tmp_path / "out" / "deep.png") as deep, Image.open(tmp_path / "out" / "alpha.png") as alpha:
        assert deep.size == (29, 17) and deep.mode == "RGB"
        assert alpha.mode == "RGBA"
        assert np.array_equal(np.asarray(alpha.getchannel("A")),
                              np.asarray(make_mode_image("RGBA").getchannel("A")))


def test_cli_single_file_folder_and_glob(tmp_path: Path, tiny_generator_file: Path):
    for i, size in enumerate([(33, 21), (16, 16), (5, 9)]):
        random_rgb(*size, seed=i).save(tmp_path / f"img{i}.png")
    weights = str(tiny_generator_file)

    single = run_cli_here("translate", str(tmp_path / "img0.png"), "--weights", weights, "-o", str(tmp_path / "one.jpg"))
    assert single.returncode == 0, single.stderr
    with Image.open(tmp_path / "one.jpg") as image:
        assert (image.format, image.size) == ("JPEG", (33, 21))

    globbed = run_cli_here("translate", str(tmp_path / "img*.png"), "--weights", weights, "-o", str(tmp_path / "g"))
    assert globbed.returncode == 0, globbed.stderr
    assert sorted(p.name for p in (tmp_path / "g").iterdir()) == ["img0.png", "img1.png", "img2.png"]
    with Image.open(tmp_path / "g" / "img2.png") as image:
        assert image.size == (5, 9)

    many_to_file = run_cli_here("translate", str(tmp_path / "img0.png"), str(tmp_path / "img1.png"),
                           "--weights", weights, "-o", str(tmp_path / "x.png"))
    assert many_to_file.returncode == 2  # a usage error, as every -o check of the command line is
    assert "give a folder with several inputs" in many_to_file.stderr


def test_corrupt_file_gets_one_line_and_others_are_done(tmp_path: Path, tiny_generator_file: Path):
    src = tmp_path / "src"
    src.mkdir()
    random_rgb(20, 20).save(src / "good.png")
    random_rgb(20, 20).save(src / "truncated.jpg")
    data = (src / "truncated.jpg").read_bytes()
    (src / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (src / "fake.png").write_bytes(b"this is text pretending to be a png")
    out = tmp_path / "out"
    result = run_cli_here("translate", str(src), "--weights", str(tiny_generator_file), "-o", str(out))
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 2
    assert any("fake.png: not an image file" in line for line in errors)
    assert any("truncated.jpg: unreadable image" in line for line in errors)
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]
    assert "translated 1 of 3 image(s)" in result.stdout and "2 failed" in result.stdout


def test_nothing_translated_exits_non_zero(tmp_path: Path, tiny_generator_file: Path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = run_cli_here("translate", str(bad), "--weights", str(tiny_generator_file), "-o", str(tmp_path / "o.png"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o.png").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.")]


@pytest.mark.parametrize("case", ["not_a_generator", "missing_weights", "unwritable", "missing_input", "no_run"])
def test_user_errors_are_one_line(tmp_path: Path, tiny_generator_file: Path, case: str):
    image = tmp_path / "in.png"
    random_rgb(8, 8).save(image)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    args = {
        "not_a_generator": [str(image), "--weights", str(blocker)],
        "missing_weights": [str(image), "--weights", str(tmp_path / "nope.pth")],
        "unwritable": [str(image), "--weights", str(tiny_generator_file), "-o", str(blocker / "out.png")],
        "missing_input": [str(tmp_path / "nothing.png"), "--weights", str(tiny_generator_file)],
        "no_run": [str(image), "--run", str(tmp_path / "no_such_run")],
    }[case]
    result = run_cli_here("translate", *args, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("cycletools: error: ")


def test_failed_save_leaves_no_file(tmp_path: Path, monkeypatch):
    from cycletools.data import images
    from cycletools.errors import CycletoolsError

    def broken_save(self, fp, format=None, **params):
        Path(fp).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(CycletoolsError, match="disk full"):
        images.save_image(random_rgb(4, 4), tmp_path / "target.png")
    assert list(tmp_path.iterdir()) == []


def test_input_is_never_overwritten(tmp_path: Path, tiny_generator_file: Path):
    image = tmp_path / "same.png"
    random_rgb(12, 12).save(image)
    before = image.read_bytes()
    result = run_cli_here("translate", str(image), "--weights", str(tiny_generator_file), "-o", str(image))
    assert result.returncode == 1
    assert "refusing to overwrite the input" in result.stderr
    assert image.read_bytes() == before


def test_bf16_precision_stays_close_and_fp16_needs_cuda(tiny_generator_file: Path):
    from cycletools.errors import CycletoolsError

    x = torch.rand(1, 3, 24, 40) * 2 - 1
    full = Translator.from_file(tiny_generator_file, device="cpu").translate_tensor(x)
    half = Translator.from_file(tiny_generator_file, device="cpu", precision="bf16").translate_tensor(x)
    assert half.dtype == torch.float32 and half.shape == full.shape
    assert 0 < float((half - full).abs().mean()) < 0.02
    with pytest.raises(CycletoolsError, match="fp16 precision needs a CUDA device"):
        Translator.from_file(tiny_generator_file, device="cpu", precision="fp16")


@pytest.mark.parametrize("suffix", [".gif", ".webp", ".png"])
def test_animations_keep_frame_count_and_timings(tmp_path: Path, tiny_generator_file: Path, suffix: str):
    frames = [random_rgb(30, 22, seed=i) for i in range(5)]
    durations = [40, 80, 120, 40, 200]
    source = tmp_path / f"anim{suffix}"
    frames[0].save(source, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    out = tmp_path / f"out{suffix}"
    result = run_cli_here("translate", str(source), "--weights", str(tiny_generator_file), "-o", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as animation:
        assert animation.n_frames == 5 and animation.size == (30, 22)
        seen = []
        for index in range(animation.n_frames):
            animation.seek(index)
            animation.load()
            seen.append(animation.info["duration"])
        assert seen == durations


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_outputs_get_the_permissions_the_umask_gives(tmp_path: Path, tiny_generator_file: Path, umask: int):
    image, gif = tmp_path / "in.png", tmp_path / "in.gif"
    random_rgb(12, 10).save(image)
    frames = [random_rgb(12, 10, seed=i) for i in range(3)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=50, loop=0)
    kept = tmp_path / "out" / "kept.png"  # an existing target keeps its mode, as when a program rewrites it
    kept.parent.mkdir()
    kept.write_bytes(b"old")
    kept.chmod(0o640)
    random_rgb(12, 10, seed=9).save(tmp_path / "kept.png")
    previous = os.umask(umask)
    try:
        result = run_cli_here("translate", str(image), str(gif), str(tmp_path / "kept.png"), "--weights",
                         str(tiny_generator_file), "-o", str(tmp_path / "out"))
    finally:
        os.umask(previous)
    assert result.returncode == 0, result.stderr
    for name in ("in.png", "in.gif"):
        assert stat.S_IMODE((tmp_path / "out" / name).stat().st_mode) == 0o666 & ~umask, name
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_bytes() != b"old"


@pytest.mark.parametrize("case", ["missing_input", "no_images", "no_output_folder", "one_file_for_many", "same_file",
                                  "bad_size"])
def test_inputs_and_outputs_are_checked_before_the_generator_loads(tmp_path: Path, case: str):
    image, other, empty = tmp_path / "in.png", tmp_path / "other.png", tmp_path / "empty"
    random_rgb(8, 8).save(image)
    random_rgb(8, 8).save(other)
    empty.mkdir()
    args, message = {
        "missing_input": ([str(tmp_path / "nothing.png")], "input not found"),
        "no_images": ([str(empty)], "no images to translate"),
        "no_output_folder": ([str(image), "-o", str(tmp_path / "nowhere" / "out.png")], "output folder does not exist"),
        "one_file_for_many": ([str(image), str(other), "-o", str(tmp_path / "out.png")], "names a file"),
        "same_file": ([str(image), "-o", str(image)], "refusing to overwrite the input image"),
        "bad_size": ([str(image), "--working-size", "3"], "argument --working-size: takes a number of pixels"),
    }[case]
    result = run_cli_here("translate", *args, "--weights", str(tmp_path / "never-loaded.safetensors"), cwd=tmp_path)
    assert result.returncode in (1, 2), result.stderr
    assert message in result.stderr and "never-loaded" not in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("code", ["EROFS", "EACCES"])
def test_unwritable_output_folder_is_refused_before_the_generator_loads(tmp_path: Path, monkeypatch, capsys,
                                                                        code: str):
    import errno

    from cycletools.cli.main import main

    image = tmp_path / "in.png"
    random_rgb(8, 8).save(image)
    locked = tmp_path / "locked"
    locked.mkdir()
    refuse_writes_in(locked, monkeypatch, getattr(errno, code))
    status = main(["translate", str(image), "--weights", str(tmp_path / "never-loaded.safetensors"), "-o",
                   str(locked)])
    reason = "read-only file system" if code == "EROFS" else "permission denied"
    assert status == 1
    assert capsys.readouterr().err == f"cycletools: error: {locked / 'in.png'}: cannot write here ({reason})\n"


def test_a_generator_that_fails_to_load_leaves_no_output_folder(tmp_path: Path):
    image = tmp_path / "in.png"
    random_rgb(8, 8).save(image)
    result = run_cli_here("translate", str(image), "--weights", str(tmp_path / "missing.safetensors"), "-o",
                     str(tmp_path / "new" / "out"), cwd=tmp_path)
    assert result.returncode == 1 and "weights file not found" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_working_size_in_the_python_api(tiny_generator_file: Path):
    from cycletools.errors import CycletoolsError

    assert Translator.from_file(tiny_generator_file, device="cpu", working_size="native").working_size is None
    assert Translator.from_file(tiny_generator_file, device="cpu", working_size=64).working_size == 64
    for bad, message in (("256", "must be a number of pixels, None or 'native'"), ("big", "not 'big'"),
                         (2.5, "not 2.5"), (True, "not True"), (4, "at least")):
        with pytest.raises(CycletoolsError, match=message):
            Translator.from_file(tiny_generator_file, device="cpu", working_size=bad)


def test_direction_without_a_run_is_refused(tmp_path: Path, tiny_generator_file: Path):
    image = tmp_path / "in.png"
    Image.new("RGB", (12, 10)).save(image)
    result = run_cli_here("translate", str(image), "--weights", str(tiny_generator_file), "--direction", "b2a",
                          "-o", str(tmp_path / "out.png"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == ("cycletools translate: error: --direction goes with --run DIR (a training run "
                                     "has two generators; a domain or a weights file has one)")
    assert not (tmp_path / "out.png").exists()
