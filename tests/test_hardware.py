"""Choosing by what the hardware does: bf16 only where the CPU has it, Apple's GPU, CPU threads."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from cycletools.errors import CycletoolsError
from cycletools.pipelines.translator import Translator
from cycletools.training.config import resolve_config
from cycletools.utils import devices


@pytest.fixture
def no_native_bf16(monkeypatch):
    monkeypatch.setattr(devices, "cpu_bf16_is_native", lambda: False)


def test_fast_recipe_falls_back_to_fp32_on_a_cpu_without_bf16(no_native_bf16):
    with pytest.warns(UserWarning, match=r"fast recipe trains in fp32 here: this CPU has no native bf16"):
        config = resolve_config({"data": "d", "name": "n", "recipe": "fast"}, cuda_available=False)
    assert (config.amp, config.batch_size, config.channels_last) == ("none", 8, True)
    with pytest.warns(UserWarning, match=r"--amp bf16: .*emulated.*--amp none trains faster here"):
        insisted = resolve_config({"data": "d", "name": "n", "recipe": "fast", "amp": "bf16"})
    assert insisted.amp == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_config({"data": "d", "name": "n", "recipe": "fast"}, cuda_available=True).amp == "bf16"
        assert resolve_config({"data": "d", "name": "n", "recipe": "fast", "device": "cuda:1"}).amp == "bf16"


def test_fast_recipe_keeps_bf16_where_the_cpu_has_it(monkeypatch):
    monkeypatch.setattr(devices, "cpu_bf16_is_native", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_config({"data": "d", "name": "n", "recipe": "fast", "device": "cpu"}).amp == "bf16"


def test_asking_for_bf16_on_such_a_cpu_warns_that_it_is_slower(no_native_bf16, tiny_generator_file: Path):
    with pytest.warns(UserWarning, match="bf16 is emulated and runs slower than fp32; fp32 is faster here"):
        translator = Translator.from_file(tiny_generator_file, device="cpu", precision="bf16")
    assert translator.precision == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Translator.from_file(tiny_generator_file, device="cpu").precision == "fp32"  # auto: never bf16 on a CPU


def test_forcing_avx2_kernels_counts_as_no_bf16():
    code = "from cycletools.utils.devices import cpu_bf16_is_native; print(cpu_bf16_is_native())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={"ATEN_CPU_CAPABILITY": "avx2", "PATH": "/usr/bin:/bin"})
    assert done.stdout.strip() == "False", done.stderr


def test_apple_gpus_are_picked_and_take_fp16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert devices.resolve_device(None) == torch.device("mps")
    assert devices.resolve_precision("fp16", torch.device("mps")) == "fp16"
    assert devices.resolve_precision("auto", torch.device("mps")) == "fp32"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert devices.resolve_device(None) == torch.device("cpu")
    with pytest.raises(CycletoolsError, match="no Apple GPU that PyTorch can use"):
        devices.resolve_device("mps")
    with pytest.raises(CycletoolsError, match="fp16 precision needs a CUDA device"):
        devices.resolve_precision("fp16", torch.device("cpu"))


class NoMpsKernel(torch.nn.Module):
    """Stands in for a generator with an operation that has no MPS kernel: it fails until moved to the CPU."""

    def __init__(self):
        super().__init__()
        self.on_gpu = True
        self.config = {"arch": "test", "input_nc": 3}

    def to(self, *args, **kwargs):
        self.on_gpu = torch.device(args[0] if args else kwargs["device"]).type != "cpu"
        return self

    def forward(self, x):
        if self.on_gpu:
            raise NotImplementedError("The operator 'aten::reflection_pad3d' is not currently implemented "
                                      "for the MPS device")
        return torch.tanh(x)


def test_an_operation_apple_gpus_lack_falls_back_to_the_cpu_with_one_warning(monkeypatch):
    generator = NoMpsKernel()
    translator = Translator(generator, device="cpu")
    generator.on_gpu = True  # as if on a Mac's GPU (this machine has none: tensors stay on the CPU)
    monkeypatch.setattr(Translator, "on_apple_gpu", property(lambda self: generator.on_gpu))
    with pytest.warns(UserWarning, match="cannot run on Apple's GPU .*reflection_pad3d.*running it on the CPU"):
        output = translator.translate_tensor(torch.zeros(1, 3, 8, 8))
    assert output.shape == (1, 3, 8, 8) and translator.device.type == "cpu" and not generator.on_gpu
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        translator.translate_tensor(torch.zeros(1, 3, 8, 8))  # once only


def test_threads_default_to_the_physical_cores_and_follow_the_option(tmp_path: Path, tiny_generator_file: Path,
                                                                    capsys):
    from cycletools.cli.main import main

    before = torch.get_num_threads()
    try:
        assert devices.set_threads(None) == devices.physical_cores() == torch.get_num_threads()
        image = tmp_path / "in.png"
        Image.new("RGB", (12, 10)).save(image)
        assert main(["translate", str(image), "--weights", str(tiny_generator_file), "--threads", "1", "-o",
                     str(tmp_path / "out.png")]) == 0
        assert torch.get_num_threads() == 1
        capsys.readouterr()
        with pytest.raises(SystemExit) as stopped:  # a usage error: argparse's exit status 2, one line
            main(["translate", str(image), "--weights", str(tiny_generator_file), "--threads", "0", "-o",
                  str(tmp_path / "out.png")])
        assert stopped.value.code == 2
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and "--threads" in error and "at least 1" in error
        too_many = str((os.cpu_count() or 1) + 1)
        assert main(["translate", str(image), "--weights", str(tiny_generator_file), "--threads", too_many, "-o",
                     str(tmp_path / "out.png")]) == 2
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and f"{too_many} is more than this computer's" in error
    finally:
        torch.set_num_threads(before)
