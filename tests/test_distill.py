"""Distilling a student from a teacher, and choosing between the full and fast variants."""

from __future__ import annotations

from pathlib import Path

import torch

from conftest import run_cli
from cycletools.data.toy import make_shapes_dataset
from cycletools.models import ResnetGenerator, init_weights
from cycletools.models.complexity import count_macs
from cycletools.models.mobile import MobileResnetGenerator
from cycletools.training.distill import STUDENTS, DistillConfig, Distiller


def test_mac_counts_match_the_published_figures():
    assert round(count_macs(ResnetGenerator(ngf=64, n_blocks=9)) / 1e9, 1) == 56.8
    small = count_macs(MobileResnetGenerator(**STUDENTS["small"]))
    assert 2.4e9 < small < 2.6e9  # the published compressed generator: 2.55 G
    assert count_macs(MobileResnetGenerator(**STUDENTS["tiny"])) < small / 3


def test_student_learns_the_teacher_and_gets_closer(tmp_path: Path):
    data = make_shapes_dataset(tmp_path / "shapes", count=8, size=32)
    torch.manual_seed(0)
    teacher = init_weights(ResnetGenerator(ngf=16, n_blocks=3)).eval()
    config = DistillConfig(data=str(data), name="student", out=str(tmp_path), student="tiny", steps=120,
                           size=32, lr=1e-3, log_every=20)
    distiller = Distiller(teacher, config, progress=False)
    probe = torch.rand(4, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        before = float((distiller.student(probe) - teacher(probe)).abs().mean())
    result = distiller.run()
    with torch.no_grad():
        after = float((distiller.student.cpu()(probe) - teacher(probe)).abs().mean())
    assert result.steps == 120 and result.student.is_file()
    assert result.last_rec < 0.8 * result.first_rec, (result.first_rec, result.last_rec)
    assert after < 0.8 * before, (before, after)
    assert result.teacher_macs / result.macs > 1


def test_fast_variant_is_chosen_on_cpu_and_full_on_request(tmp_path: Path, tiny_generator_file: Path):
    home = tmp_path / "home"
    data = make_shapes_dataset(tmp_path / "shapes", count=4, size=32)
    image = data / "testA" / "square_000.png"

    def cli(*args):
        return run_cli(*args, env={"CYCLETOOLS_HOME": str(home)})

    assert cli("weights", "import", str(tiny_generator_file), "--plugin", "horse2zebra").returncode == 0
    full_only = cli("translate", str(image), "--plugin", "horse2zebra", "-o", str(tmp_path / "a.png"))
    assert full_only.returncode == 0 and "fast variant" not in full_only.stderr
    missing = cli("translate", str(image), "--plugin", "horse2zebra", "--variant", "fast", "-o", str(tmp_path / "m.png"))
    assert missing.returncode == 1 and "has no fast variant here: distil one" in missing.stderr

    distilled = cli("distill", "--plugin", "horse2zebra", "--data", str(data), "--student", "tiny", "--steps", "5",
                    "--size", "32", "--out", str(tmp_path / "runs"))
    assert distilled.returncode == 0, distilled.stderr
    student = tmp_path / "runs" / "horse2zebra-student" / "student.safetensors"
    assert f"cycletools weights import {student} --plugin horse2zebra --variant fast" in distilled.stdout
    assert cli("weights", "import", str(student), "--plugin", "horse2zebra", "--variant", "fast").returncode == 0
    assert (home / "weights" / "horse2zebra.fast.safetensors").is_file()

    auto = cli("translate", str(image), "--plugin", "horse2zebra", "--device", "cpu", "-o", str(tmp_path / "b.png"))
    assert auto.returncode == 0, auto.stderr
    assert auto.stderr.splitlines()[0] == ("using the fast variant of horse2zebra on the CPU "
                                           "(--variant full for the full generator)")
    full = cli("translate", str(image), "--plugin", "horse2zebra", "--variant", "full", "-o", str(tmp_path / "c.png"))
    assert full.returncode == 0 and "fast variant" not in full.stderr
