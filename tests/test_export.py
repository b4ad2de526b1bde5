"""Export parity with ONNX Runtime and TorchScript, and the onnxruntime translation backend."""

from __future__ import annotations

import errno

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import refuse_writes_in, run_cli_here

pytest.importorskip("onnxruntime", reason="the export extras are not installed")
from cycletools.export import OnnxGenerator, export_generator, load_exported, parity  # noqa: E402
from cycletools.models import ResnetGenerator, init_weights  # noqa: E402
from cycletools.models.mobile import MobileResnetGenerator  # noqa: E402
from cycletools.pipelines.translator import Translator  # noqa: E402

ODD_AND_EVEN = [(32, 32), (35, 53), (17, 9), (64, 48)]


@pytest.mark.parametrize("architecture", ["resnet", "mobile_resnet"])
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_matches_pytorch_on_several_sizes(tmp_path: Path, architecture: str, fmt: str):
    torch.manual_seed(0)
    generator = init_weights(ResnetGenerator(ngf=8, n_blocks=2) if architecture == "resnet"
                             else MobileResnetGenerator(stem=8, down=(16, 32), mids=(16, 32), up=(16, 8)),
                             gain=0.2).eval()
    path = export_generator(generator, tmp_path / f"g.{'onnx' if fmt == 'onnx' else 'pt'}", fmt, size=32,
                            dynamic=True)
    exported = load_exported(path)
    reference = Translator(generator, device="cpu", precision="fp32")
    through_export = Translator(exported, device="cpu", config=reference.config, precision="fp32")
    worst = parity(reference.translate_tensor, through_export.translate_tensor, ODD_AND_EVEN)
    assert worst < 1e-3, worst
    if fmt == "onnx":
        assert isinstance(exported, OnnxGenerator) and exported.fixed_size is None


def test_fixed_size_export_refuses_other_sizes(tmp_path: Path, tiny_generator_file: Path):
    from cycletools.errors import CycletoolsError
    from cycletools.weights import load_generator

    generator, _ = load_generator(tiny_generator_file)
    exported = load_exported(export_generator(generator, tmp_path / "fixed.onnx", "onnx", size=32))
    assert exported.fixed_size == (32, 32)
    assert exported(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    with pytest.raises(CycletoolsError, match="takes 32×32 inputs only .* export it with --dynamic-size"):
        exported(torch.zeros(1, 3, 64, 64))
    # idle ONNX Runtime threads sleep, leaving the CPU to the video pipeline's decode/encode threads
    options = exported.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_export_cli_and_onnxruntime_backend(tmp_path: Path, tiny_generator_file: Path):
    out = tmp_path / "tiny.onnx"
    result = run_cli_here("export", "--weights", str(tiny_generator_file), "-o", str(out), "--dynamic-size", "--size", "32")
    assert result.returncode == 0, result.stderr
    assert "max difference from PyTorch" in result.stdout and out.is_file()
    image = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)).save(image)
    env_home = tmp_path / "home"
    os.environ["CYCLETOOLS_HOME"] = str(env_home)
    try:
        ort = Translator.from_file(tiny_generator_file, backend="onnxruntime")
        assert isinstance(ort.generator, OnnxGenerator) and ort.device.type == "cpu"
        assert len(list((env_home / "onnx").iterdir())) == 1  # exported once, cached
        with Image.open(image) as picture:
            a = np.asarray(ort(picture), int)
            b = np.asarray(Translator.from_file(tiny_generator_file, device="cpu")(picture), int)
        assert a.shape == (37, 53, 3) and np.abs(a - b).max() <= 1
    finally:
        del os.environ["CYCLETOOLS_HOME"]
    bad = run_cli_here("translate", str(image), "--weights", str(tiny_generator_file), "--backend", "onnxruntime",
                  "--precision", "bf16", "-o", str(tmp_path / "x.png"))
    assert bad.returncode == 1 and "the onnxruntime backend computes in fp32" in bad.stderr


@pytest.mark.slow
def test_int8_export_and_backend_are_calibrated_cached_and_close(tmp_path: Path, tiny_generator_file: Path):
    from cycletools.data.toy import make_shapes_dataset

    data = make_shapes_dataset(tmp_path / "shapes", count=6, size=48, test_count=1)
    out = tmp_path / "tiny.onnx"
    result = run_cli_here("export", "--weights", str(tiny_generator_file), "-o", str(out), "--dynamic-size",
                     "--input-size", "32", "--int8", "--calibrate", str(data / "trainA"))
    assert result.returncode == 0, result.stderr
    assert "int8 (QDQ, per-channel), calibrated on 6 images" in result.stdout
    assert "differs from PyTorch by" in result.stdout and (tmp_path / "tiny.int8.onnx").is_file()
    import onnx

    model = onnx.load(str(tmp_path / "tiny.int8.onnx"))
    assert sum(node.op_type == "QuantizeLinear" for node in model.graph.node) >= 2  # really quantised
    image = data / "testA" / "square_000.png"
    env = {"CYCLETOOLS_HOME": str(tmp_path / "home")}
    args = ["translate", str(image), "--weights", str(tiny_generator_file), "--backend", "onnxruntime",
            "--precision", "int8", "--calibrate", str(data / "trainA")]
    first = run_cli_here(*args, "-o", str(tmp_path / "int8.png"), env=env)
    assert first.returncode == 0, first.stderr
    cached = sorted((tmp_path / "home" / "onnx").glob("*.int8-*.onnx"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    assert run_cli_here(*args, "-o", str(tmp_path / "again.png"), env=env).returncode == 0
    assert cached[0].stat().st_mtime_ns == stamp  # quantised once, then reused
    fp32 = run_cli_here("translate", str(image), "--weights", str(tiny_generator_file), "-o", str(tmp_path / "fp32.png"))
    assert fp32.returncode == 0, fp32.stderr
    with Image.open(tmp_path / "int8.png") as a, Image.open(tmp_path / "fp32.png") as b:
        difference = np.abs(np.asarray(a, int) - np.asarray(b, int))
    assert a.size == (48, 48) and difference.mean() < 12
    missing = run_cli_here("translate", str(image), "--weights", str(tiny_generator_file), "--backend", "onnxruntime",
                      "--precision", "int8", "-o", str(tmp_path / "x.png"), env=env)
    assert missing.returncode == 2 and "needs calibration images" in missing.stderr


def test_int8_misuse_is_refused_before_anything_is_written(tmp_path: Path, tiny_generator_file: Path, capsys,
                                                          monkeypatch):
    from cycletools.cli.main import main

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "inner.int8.onnx").mkdir()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    refuse_writes_in(locked, monkeypatch, errno.EACCES)
    out = tmp_path / "tiny.onnx"
    weights = ["--weights", str(tiny_generator_file)]
    int8 = ["--int8", "--calibrate", str(empty)]
    cases = {
        "missing calibration folder": (["export", *weights, "-o", str(out), "--int8", "--calibrate",
                                        str(tmp_path / "gone")], 1, "gone: folder not found"),
        "calibration file": (["export", *weights, "-o", str(out), "--int8", "--calibrate", str(a_file)], 1,
                             "notes.txt: not a folder"),
        "torchscript int8": (["export", *weights, "--format", "torchscript", *int8], 2,
                             "--int8 writes ONNX: it does not go with --format torchscript"),
        "output is a folder": (["export", *weights, "-o", str(empty)], 2, "is a folder; give a file name"),
        "onnx named .pt": (["export", *weights, "-o", str(tmp_path / "g.pt")], 2,
                           "an ONNX export is named NAME.onnx (or give --format torchscript for .pt)"),
        "torchscript named .onnx": (["export", *weights, "--format", "torchscript", "-o", str(out)], 2,
                                    "a TorchScript export is named NAME.pt"),
        "unwritable folder": (["export", *weights, "-o", str(locked / "g.onnx")], 1,
                              "g.onnx: cannot write here (permission denied)"),
        "int8 target is a folder": (["export", *weights, "-o", str(empty / "inner.onnx"), *int8], 2,
                                    "inner.int8.onnx, where the int8 export goes, is a folder"),
        "empty calibration folder": (["export", *weights, "-o", str(out), "--int8", "--calibrate", str(empty)], 1,
                                     f"--calibrate {empty}: no images there"),
        "calibrate without int8": (["export", *weights, "-o", str(out), "--calibrate", str(empty)], 2,
                                   "--calibrate goes with --int8"),
        "missing output folder": (["export", *weights, "-o", str(tmp_path / "nowhere" / "x.onnx")], 1,
                                  "output folder does not exist"),
        "translate calibrate without int8": (["translate", str(tiny_generator_file), *weights, "--calibrate",
                                              str(empty), "-o", str(tmp_path / "x.png")], 2,
                                             "calibration images go with int8 precision"),
    }
    for label, (argv, code, message) in cases.items():
        assert main(argv) == code, label
        error = capsys.readouterr().err.strip()
        assert message in error and error.count("\n") == 0, (label, error)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".onnx", ".pt", ".png", ".tmp")]


def test_fixed_size_int8_export_checks_one_image_at_a_time(tmp_path: Path, tiny_generator_file: Path, cli_here):
    from cycletools.data.toy import make_shapes_dataset

    data = make_shapes_dataset(tmp_path / "shapes", count=3, size=40, test_count=1)
    (data / "trainA" / "broken.png").write_bytes(b"not a png")
    result = cli_here("export", "--weights", str(tiny_generator_file), "-o", str(tmp_path / "g.onnx"),
                      "--input-size", "32", "--int8", "--calibrate", str(data / "trainA"))
    assert result.returncode == 0, result.stderr
    assert "calibrated on 3 images" in result.stdout and (tmp_path / "g.int8.onnx").is_file()
    assert "1 of 4 images could not be read and were skipped" in result.stderr


@pytest.mark.slow
def test_openvino_backend_matches_pytorch_and_caches_its_export(tmp_path: Path, tiny_generator_file: Path,
                                                                monkeypatch):
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    from cycletools.errors import CycletoolsError
    from cycletools.export import OpenVinoGenerator

    monkeypatch.setenv("CYCLETOOLS_HOME", str(tmp_path / "home"))
    openvino = Translator.from_file(tiny_generator_file, backend="openvino")
    assert isinstance(openvino.generator, OpenVinoGenerator) and openvino.device.type == "cpu"
    eager = Translator.from_file(tiny_generator_file, device="cpu")
    for height, width in ((37, 53), (256, 256), (8, 120)):
        x = torch.rand(2, 3, height, width) * 2 - 1
        assert float((openvino.translate_tensor(x) - eager.translate_tensor(x)).abs().max()) < 1e-3
    exports = list((tmp_path / "home" / "onnx").iterdir())
    Translator.from_file(tiny_generator_file, backend="openvino")
    assert list((tmp_path / "home" / "onnx").iterdir()) == exports and len(exports) == 1  # exported once
    # A batch runs image by image on parallel one-thread streams, each output in its input's place.
    generator = OpenVinoGenerator(exports[0], threads=2)
    x = torch.rand(3, 3, 64, 96) * 2 - 1
    one_by_one = torch.cat([generator(x[i:i + 1]) for i in range(3)])
    assert generator.parallel is None  # single images use the latency-mode request
    together = generator(x)
    assert generator.parallel is not None and together.shape == (3, 3, 64, 96)
    assert float((together - one_by_one).abs().max()) < 1e-4
    assert float((together - eager.translate_tensor(x)).abs().max()) < 1e-3
    with pytest.raises(CycletoolsError, match="the openvino backend runs on the CPU"):
        Translator.from_file(tiny_generator_file, backend="openvino", device="cuda:0")


@pytest.mark.slow
def test_freed_openvino_generators_leave_ctrl_c_working(tmp_path: Path):
    """Two OpenVINO generators made and freed (the web app's domains, a benchmark's rows), then a Ctrl-C: the
    process crashed with SIGSEGV there while each generator kept an OpenVINO Core of its own."""
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    onnx = export_generator(init_weights(MobileResnetGenerator()), tmp_path / "g.onnx", "onnx", size=64, dynamic=True)
    script = f"""
import gc, os, signal, time, torch
from cycletools.export import OpenVinoGenerator
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even when started in the background
def use():
    generators = [OpenVinoGenerator({str(onnx)!r}, threads=2) for _ in range(2)]  # alive together, then freed
    for batch, generator in enumerate(generators, 1):
        generator(torch.rand(batch, 3, 64, 96))
use()
gc.collect()
try:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(10)
except KeyboardInterrupt:
    print("interrupted")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stdout.strip()) == (0, "interrupted"), result.stderr[-2000:]


def test_a_failing_int8_step_keeps_the_fp32_export_and_says_so(tmp_path: Path, tiny_generator_file: Path,
                                                              cli_here, monkeypatch):
    from cycletools import quantize
    from cycletools.data.toy import make_shapes_dataset

    def broken(source, target, calibration):
        Path(target).write_bytes(b"half")  # what a crash mid-way could leave
        raise RuntimeError("quantiser exploded\nsecond line")

    monkeypatch.setattr(quantize, "quantize_onnx", broken)
    data = make_shapes_dataset(tmp_path / "shapes", count=2, size=40, test_count=1)
    result = cli_here("export", "--weights", str(tiny_generator_file), "-o", str(tmp_path / "g.onnx"),
                      "--input-size", "32", "--int8", "--calibrate", str(data / "trainA"))
    assert result.returncode == 1
    assert result.stderr.strip() == (f"cycletools: error: the int8 export failed (RuntimeError: quantiser exploded); "
                                     f"{tmp_path / 'g.onnx'} (fp32) is kept")
    assert (tmp_path / "g.onnx").is_file() and not (tmp_path / "g.int8.onnx").exists()
