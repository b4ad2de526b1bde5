"""Distil a compact student generator from a trained teacher (the GAN Compression recipe, simplified).

The student (a "sub-mobile" ResNet with depthwise-separable blocks) learns to reproduce the
teacher's translations of domain-A images (L1 to the teacher's output, weight ``lambda_rec``),
while a PatchGAN discriminator, trained on real domain-B images against the student's
outputs, keeps them realistic (LSGAN, weight ``lambda_gan``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from cycletools.data.unpaired import EpochPlan, PlanSampler, UnpairedImages
from cycletools.errors import CycletoolsError
from cycletools.models import NLayerDiscriminator, init_weights
from cycletools.models.complexity import count_macs, count_parameters
from cycletools.models.mobile import MobileResnetGenerator
from cycletools.training.losses import l1_loss, lsgan_loss
from cycletools.utils.atomic import atomic_write_text
from cycletools.utils.devices import resolve_device
from cycletools.weights import save_generator

STUDENTS: dict[str, dict[str, Any]] = {
    # GAN Compression's released horse→zebra configuration (2.5 G MACs at 256², 0.36 M parameters)
    "small": {"stem": 16, "down": [32, 128], "mids": [64] * 3 + [128] * 6, "up": [32, 16]},
    # a quarter of that (0.6 G MACs, 0.07 M parameters), for real-time use on small CPUs
    "tiny": {"stem": 8, "down": [16, 64], "mids": [32] * 9, "up": [16, 8]},
}


@dataclass
class DistillConfig:
    data: str
    name: str
    out: str = "runs"
    student: str = "small"
    steps: int = 20000
    batch_size: int = 1
    size: int = 256
    lr: float = 2e-4
    lambda_rec: float = 10.0
    lambda_gan: float = 1.0
    seed: int = 0
    device: str | None = None
    log_every: int = 50
    student_config: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> "DistillConfig":
        if self.student not in STUDENTS and not self.student_config:
            raise CycletoolsError(f"unknown student size {self.student!r}; choose {' or '.join(STUDENTS)}")
        if self.steps < 1 or self.batch_size < 1 or self.size < 8 or self.size % 4:
            raise CycletoolsError("steps and batch size must be positive, size a multiple of 4 (at least 8)")
        return self


@dataclass
class DistillResult:
    student: Path
    steps: int
    first_rec: float
    last_rec: float
    macs: int
    teacher_macs: int
    parameters: int


class Distiller:
    def __init__(self, teacher: nn.Module, config: DistillConfig, progress: bool = True, teacher_source: str = ""):
        self.config = config.validate()
        self.teacher_source = teacher_source
        self.device = resolve_device(config.device)
        self.progress = progress
        torch.manual_seed(config.seed)
        self.teacher = teacher.to(self.device).eval().requires_grad_(False)
        student_config = config.student_config or STUDENTS[config.student]
        self.student = init_weights(MobileResnetGenerator(**student_config)).to(self.device)
        self.discriminator = init_weights(NLayerDiscriminator()).to(self.device)
        self.opt_G = torch.optim.Adam(self.student.parameters(), lr=config.lr, betas=(0.5, 0.999))
        self.opt_D = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=(0.5, 0.999))
        self.dataset = UnpairedImages(config.data, "train", round(config.size * 286 / 256), config.size)
        self.sampler = PlanSampler(config.batch_size)
        self.loader = DataLoader(self.dataset, batch_size=config.batch_size, sampler=self.sampler)
        self.run_dir = Path(config.out) / config.name

    def step(self, real_A: torch.Tensor, real_B: torch.Tensor) -> tuple[float, torch.Tensor]:
        config = self.config
        with torch.no_grad():
            target = self.teacher(real_A)
        self.discriminator.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        fake = self.student(real_A)
        rec = l1_loss(fake, target)
        loss_G = config.lambda_rec * rec + config.lambda_gan * lsgan_loss(self.discriminator(fake), True)
        loss_G.backward()
        self.opt_G.step()
        self.discriminator.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        loss_D = 0.5 * (lsgan_loss(self.discriminator(real_B), True)
                        + lsgan_loss(self.discriminator(fake.detach()), False))
        loss_D.backward()
        self.opt_D.step()
        return rec.detach(), loss_D.detach()

    def run(self) -> DistillResult:
        config = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / "distill.json", json.dumps(asdict(config), indent=2) + "\n")
        done, epoch, recs = 0, 0, []
        bar = tqdm(total=config.steps, unit="step", desc=f"distilling {config.name}", disable=not self.progress)
        started = time.perf_counter()
        while done < config.steps:
            plan = EpochPlan.make(len(self.dataset.files_a), len(self.dataset.files_b), epoch, config.seed)
            self.sampler.set_plan(plan)
            for batch in self.loader:
                rec, _ = self.step(batch["A"].to(self.device), batch["B"].to(self.device))
                recs.append(rec)
                done += 1
                bar.update(1)
                if done % config.log_every == 0:
                    bar.set_postfix({"rec": f"{float(torch.stack(recs[-config.log_every:]).mean()):.4f}",
                                     "steps/s": f"{done / (time.perf_counter() - started):.1f}"})
                if done >= config.steps:
                    break
            epoch += 1
        bar.close()
        path = save_generator(self.student.cpu(), self.run_dir / "student.safetensors",
                              metadata={"cycletools.distilled_from": self.teacher_source,
                                        "cycletools.steps": str(done)})
        window = max(1, min(len(recs) // 5, 50))
        first = float(torch.stack(recs[:window]).mean())
        last = float(torch.stack(recs[-window:]).mean())
        student_macs = count_macs(self.student.to(self.device), 256)  # at 256², the size figures are quoted at
        teacher_macs = count_macs(self.teacher, 256)
        return DistillResult(path, done, first, last, student_macs, teacher_macs, count_parameters(self.student))
