"""Distil a compact student generator from a trained teacher (the GAN Compression recipe, simplified).

The student (a "sub-mobile" ResNet with depthwise-separable blocks) learns to reproduce the
teacher's translations of domain-A images (L1 to the teacher's output, weight ``lambda_rec``),
while a PatchGAN discriminator, trained on real domain-B images against the student's
outputs, keeps them realistic (LSGAN, weight ``lambda_gan``; 0 leaves the discriminator out).
A student narrower than a sub-mobile teacher starts from the teacher's most active channels
(``inherit``), and then also learns each block's output from the teacher's kept channels
(mean squared error, weight ``lambda_feat``), as GAN Compression distils intermediate features.
``lambda_perceptual`` adds the distance between the student's and the teacher's translations as an
ImageNet network's features see them (``perceptual``): sharper textures than L1 alone asks for.

Most steps can run on small crops (cheap, which matters on a CPU) and the last
``finish_steps`` on larger ones, at the same image scale (``load_size``). The learning rate
is constant, then falls linearly to zero over the last ``decay_steps``. The student is saved
every ``save_every`` steps and when the run stops (Ctrl-C stops after the current step).
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from cycletools.data.unpaired import EpochPlan, PlanSampler, UnpairedImages
from cycletools.errors import CycletoolsError, first_line
from cycletools.models import NLayerDiscriminator, init_weights
from cycletools.models.complexity import count_macs, count_parameters
from cycletools.models.inherit import can_inherit, inherit_student
from cycletools.models.mobile import MobileResnetBlock, MobileResnetGenerator
from cycletools.training.budget import TimeBudget
from cycletools.training.losses import l1_loss, lsgan_loss
from cycletools.training.perceptual import PerceptualDistance
from cycletools.training.teacher_pairs import TeacherPairs, to_unit
from cycletools.utils.atomic import atomic_write_text
from cycletools.utils.devices import resolve_device
from cycletools.utils.interrupts import StopRequest
from cycletools.weights import save_generator

STUDENTS: dict[str, dict[str, Any]] = {
    # GAN Compression's released horse→zebra configuration (2.5 G MACs at 256², 0.36 M parameters)
    "small": {"stem": 16, "down": [32, 128], "mids": [64] * 3 + [128] * 6, "up": [32, 16]},
    # its inner widths with the residual stream cut to 96 (2.07 G MACs, 0.27 M parameters): inherits closest
    "wide": {"stem": 16, "down": [32, 96], "mids": [64] * 3 + [128] * 6, "up": [32, 16]},
    # its inner widths, the stream cut to 112 and the up path to 24/12 (2.00 G MACs, 0.30 M parameters):
    # inherits closer still (L1 0.059 to the teacher on testA against wide's 0.063), the cost moved off the 256² layers
    "lean": {"stem": 16, "down": [32, 112], "mids": [64] * 3 + [128] * 6, "up": [24, 12]},
    # two thirds of "small" (1.6 G MACs, 0.17 M parameters): real time on a 2-core CPU
    "medium": {"stem": 16, "down": [32, 96], "mids": [48] * 9, "up": [32, 16]},
    # a quarter of "small" (0.6 G MACs, 0.07 M parameters), for the smallest CPUs
    "tiny": {"stem": 8, "down": [16, 64], "mids": [32] * 9, "up": [16, 8]},
}
LOG_COLUMNS = ("step", "crop", "lr", "rec", "loss_D", "steps_per_s")
CALIBRATION_IMAGES = 24  # real images the inheritance's least-squares fits are made on
RAW_STUDENT_FILE = "student-raw.safetensors"  # the weights themselves, beside their moving average (--ema)
DISCRIMINATOR_FILE = "discriminator.safetensors"  # saved beside the student, to continue a run with
DISCRIMINATOR_KEY = "cycletools.discriminator"  # header entry: what the discriminator judges, and its width
GAN_TARGETS = ("real", "teacher")  # what the discriminator takes as real: domain B's images, or the teacher's outputs


@dataclass
class DistillConfig:
    data: str
    name: str
    out: str = "runs"
    student: str = "small"
    steps: int = 20000
    batch_size: int = 1
    size: int = 256
    finish_size: int | None = None
    finish_steps: int = 0
    load_size: int | None = None
    decay_steps: int | None = None
    lr: float = 2e-4
    lambda_rec: float = 10.0
    lambda_gan: float = 1.0
    lambda_feat: float = 1.0
    lambda_perceptual: float = 0.0
    ndf: int = 64
    seed: int = 0
    device: str | None = None
    log_every: int = 50
    save_every: int = 1000
    init: str | None = None
    init_discriminator: str | None = None
    inherit: bool = True
    time_budget: float | None = None
    workers: int | None = None
    whole_images: bool = False
    gan_target: str = "real"
    snapshot_every: float | None = None
    ema: float | None = None  # decay of the moving average of the student's weights that is saved (None: the weights)
    student_config: dict[str, Any] = field(default_factory=dict)
    teacher_cache: str | None = None  # folder that keeps the teacher's translations between runs (--whole-images)

    def validate(self) -> "DistillConfig":
        if self.student not in STUDENTS and not self.student_config:
            raise CycletoolsError(f"unknown student size {self.student!r}; choose {', '.join(STUDENTS)}")
        if self.steps < 1 or self.batch_size < 1 or self.ndf < 1 or self.save_every < 1:
            raise CycletoolsError("steps, batch size, discriminator width and --save-every must be positive")
        if min(self.lambda_rec, self.lambda_gan, self.lambda_feat, self.lambda_perceptual) < 0:
            raise CycletoolsError("loss weights cannot be negative")
        for size in (self.size, self.finish_size or self.size):
            if size < 32 or size % 4:  # the discriminator's patches need 32 pixels
                raise CycletoolsError(f"crop size {size} must be a multiple of 4, at least 32")
        if not 0 <= self.finish_steps <= self.steps:
            raise CycletoolsError(f"--finish-steps must be between 0 and --steps ({self.steps})")
        if self.load_size is not None and self.load_size < max(self.size, self.finish_size or 0):
            raise CycletoolsError(f"--load-size {self.load_size} is smaller than the crop size")
        if self.decay_steps is not None and not 0 <= self.decay_steps <= self.steps:
            raise CycletoolsError(f"--decay-steps must be between 0 and --steps ({self.steps})")
        if self.time_budget is not None and self.decay_steps is not None:
            raise CycletoolsError("--decay-steps counts steps; --time-budget plans its own decay (over the second half "
                                  "of the budget)")
        if self.time_budget is not None and self.finish_steps:
            raise CycletoolsError("--finish-size/--finish-steps count steps; they do not go with --time-budget")
        if self.workers and self.finish_steps:
            raise CycletoolsError("--finish-size changes the crop during the run; it needs --workers 0")
        if self.gan_target not in GAN_TARGETS:
            raise CycletoolsError(f"--gan-target must be one of {', '.join(GAN_TARGETS)}, not {self.gan_target!r}")
        if self.whole_images and (self.finish_steps or self.load_size or self.workers):
            raise CycletoolsError("--whole-images trains on whole images at --crop-size, translated by the teacher "
                                  "once: it does not go with --finish-size, --load-size or --workers")
        if self.init_discriminator and not self.lambda_gan:
            raise CycletoolsError("--init-discriminator continues the GAN loss's discriminator; --lambda-gan 0 has none")
        if self.snapshot_every is not None and self.snapshot_every <= 0:
            raise CycletoolsError("--snapshot-every must be a positive duration")
        if self.ema is not None and not 0 < self.ema < 1:
            raise CycletoolsError(f"--ema takes a decay between 0 and 1, not {self.ema}")
        return self

    @property
    def image_size(self) -> int:
        """Training images are resized to this square before cropping (286 for 256 crops, as in the paper)."""
        return self.load_size or round(max(self.size, self.finish_size or 0) * 286 / 256)

    def crop_at(self, step: int) -> int:
        """Crop size of (0-based) ``step``."""
        return self.finish_size if self.finish_size and step >= self.steps - self.finish_steps else self.size

    def lr_at(self, step: int) -> float:
        decay = self.steps // 2 if self.decay_steps is None else self.decay_steps
        start = self.steps - decay
        return self.lr if step < start else self.lr * (self.steps - step) / (decay + 1)


def student_widths(size: str, stream: int | None = None, inner: list[int] | None = None,
                   up: list[int] | None = None) -> dict[str, Any]:
    """A named student's widths, with its residual stream (the second down stage and every block's width), its
    blocks' inner widths and its two upsampling layers' widths replaced where given."""
    if size not in STUDENTS:
        raise CycletoolsError(f"unknown student size {size!r}; choose {', '.join(STUDENTS)}")
    widths = {key: list(value) if isinstance(value, list) else value for key, value in STUDENTS[size].items()}
    if stream is not None:
        widths["down"][1] = stream
    if inner is not None:
        widths["mids"] = list(inner)
    if up is not None:
        widths["up"] = list(up)
    return widths


def widths_text(widths: dict[str, Any]) -> str:
    """``stem 16, down 32/96, inner 64×3 + 128×6, up 32/16``."""
    runs: list[list[int]] = []
    for width in widths["mids"]:
        if runs and runs[-1][0] == width:
            runs[-1][1] += 1
        else:
            runs.append([width, 1])
    inner = " + ".join(f"{width}×{count}" if count > 1 else f"{width}" for width, count in runs)
    return (f"stem {widths['stem']}, down {widths['down'][0]}/{widths['down'][1]}, inner {inner}, "
            f"up {widths['up'][0]}/{widths['up'][1]}")


def refuse_wider_student(teacher: nn.Module, student: dict[str, Any]) -> None:
    """A student of a sub-mobile teacher must be no wider than it anywhere: it is meant to be smaller and faster.
    (A ResNet teacher's blocks are full convolutions: any sub-mobile student costs a fraction of it.)"""
    if not isinstance(teacher, MobileResnetGenerator):
        return
    big = teacher.config
    wider = [f"{name} {mine} > {theirs}" for name, mine, theirs in (
        ("stem", student["stem"], big["stem"]), ("down", student["down"][0], big["down"][0]),
        ("stream", student["down"][1], big["down"][1]), ("up", student["up"][0], big["up"][0]),
        ("up", student["up"][1], big["up"][1])) if mine > theirs]
    widest = max(big["mids"])
    wider += [f"inner width of block {index + 1} {mine} > {widest}" for index, mine in enumerate(student["mids"])
              if mine > widest]
    if wider:
        raise CycletoolsError(f"the student is wider than its teacher ({'; '.join(wider)}): a student is meant to be "
                              "smaller; choose a smaller --student, --stream, --inner-widths or --up-widths")


@dataclass
class DistillResult:
    student: Path
    steps: int
    first_rec: float
    last_rec: float
    macs: int
    teacher_macs: int
    parameters: int
    seconds: float
    completed: bool


class Distiller:
    def __init__(self, teacher: nn.Module, config: DistillConfig, progress: bool = True, teacher_source: str = ""):
        self.config = config.validate()
        self.teacher_source = teacher_source
        self.device = resolve_device(config.device)
        self.progress = progress
        torch.manual_seed(config.seed)
        self.teacher = teacher.to(self.device).eval().requires_grad_(False)
        student_config = config.student_config or STUDENTS[config.student]
        self.dataset = UnpairedImages(config.data, "train", config.image_size, config.size)
        refuse_wider_student(teacher, student_config)
        self.student_config = student_config
        self.pairs = TeacherPairs(self.dataset, self.teacher, config.size, self.device, progress=progress,
                                  real_b=bool(config.lambda_gan) and config.gan_target == "real",
                                  cache=Path(config.teacher_cache) if config.teacher_cache else None) \
            if config.whole_images else None
        self.inherited = False
        self.kept_channels: torch.Tensor | None = None
        if config.init:
            self.student = MobileResnetGenerator(**student_config)
            self._start_from(config.init)
        elif config.inherit and can_inherit(teacher, student_config):
            count = min(CALIBRATION_IMAGES, len(self.dataset.files_a))
            calibration = to_unit(self.pairs.inputs[:count]) if self.pairs is not None else \
                torch.stack([self.dataset[(i, 0, config.seed + i)]["A"] for i in range(count)])
            self.student, self.kept_channels = inherit_student(self.teacher, student_config,
                                                               calibration.to(self.device))
            self.inherited = True
        else:
            self.student = init_weights(MobileResnetGenerator(**student_config))
        self.student.to(self.device)
        # the moving average starts at the first step's weights, a step from the start (inherited or --init)
        self.averaged = AveragedModel(self.student, multi_avg_fn=get_ema_multi_avg_fn(config.ema)) \
            if config.ema else None
        self.perceptual = PerceptualDistance().to(self.device) if config.lambda_perceptual else None
        self._features: dict[str, list[torch.Tensor]] = {"teacher": [], "student": []}
        self._hooks = []  # removed when the run ends: the teacher belongs to the caller
        if self.kept_channels is not None and config.lambda_feat:
            self.kept_channels = self.kept_channels.to(self.device)
            for name, network in (("teacher", self.teacher), ("student", self.student)):
                for block in network.model:
                    if isinstance(block, MobileResnetBlock):
                        self._hooks.append(block.register_forward_hook(
                            lambda module, inputs, output, name=name: self._features[name].append(output)))
        # Against the teacher, the discriminator judges (input, translation) pairs, as pix2pix does: the
        # student's translation of this image against the teacher's.
        self.paired = config.gan_target == "teacher"
        self.discriminator = init_weights(NLayerDiscriminator(input_nc=self.discriminator_shape["input_nc"],
                                                              ndf=config.ndf)).to(self.device)
        if config.init_discriminator:
            self._discriminator_from(config.init_discriminator)
        self.opt_G = torch.optim.Adam(self.student.parameters(), lr=config.lr, betas=(0.5, 0.999))
        self.opt_D = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr, betas=(0.5, 0.999))
        self.sampler = PlanSampler(config.batch_size)
        workers = config.workers
        if workers is None:  # on a GPU, decoding JPEGs in the main process would set the pace
            workers = min(8, max(1, (os.cpu_count() or 2) - 1)) if self.device.type == "cuda" and \
                not config.finish_steps else 0
        self.loader = DataLoader(self.dataset, batch_size=config.batch_size, sampler=self.sampler,
                                 num_workers=workers, persistent_workers=workers > 0,
                                 pin_memory=self.device.type == "cuda")
        self.run_dir = Path(config.out) / config.name

    @property
    def discriminator_shape(self) -> dict[str, Any]:
        """What the discriminator judges and its width, kept in its file's header."""
        return {"input_nc": 6 if self.paired else 3, "ndf": self.config.ndf, "gan_target": self.config.gan_target}

    def save_discriminator(self, path: Path | None = None) -> Path:
        """The discriminator beside the student (``--init-discriminator`` continues with it), atomically."""
        from safetensors.torch import save_file

        from cycletools.utils.atomic import atomic_path

        path = path or self.run_dir / DISCRIMINATOR_FILE
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.discriminator.state_dict().items()}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp),
                      metadata={DISCRIMINATOR_KEY: json.dumps(self.discriminator_shape, sort_keys=True)})
        return path

    def _discriminator_from(self, path: str) -> None:
        """Continue with an earlier run's discriminator (fp32 or fp16), which must judge what this one does."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        from cycletools.utils.safetensors_header import read_header_metadata

        try:
            shape = json.loads(read_header_metadata(path).get(DISCRIMINATOR_KEY, "null"))
            tensors = load_file(path)
        except (OSError, ValueError, SafetensorError) as exc:
            raise CycletoolsError(f"{path}: not a readable discriminator ({first_line(exc)})") from None
        if not isinstance(shape, dict):
            raise CycletoolsError(f"{path}: not a discriminator saved by cycletools distill")
        wanted = self.discriminator_shape
        if {k: shape.get(k) for k in wanted} != wanted:
            raise CycletoolsError(f"{path}: a discriminator for --gan-target {shape.get('gan_target')} --ndf "
                                  f"{shape.get('ndf')}; this run has --gan-target {self.config.gan_target} --ndf "
                                  f"{self.config.ndf}")
        try:
            self.discriminator.load_state_dict(tensors)
        except RuntimeError as exc:
            raise CycletoolsError(f"{path}: its tensors do not fit the discriminator ({first_line(exc)})") from None

    def describe(self) -> str:
        """The student's size and widths, its parameters and MACs at 256² beside the teacher's: printed before
        training, so that a run's cost is known before it is paid."""
        macs, teacher_macs = count_macs(self.student, 256), count_macs(self.teacher, 256)
        named = STUDENTS.get(self.config.student) == self.student_config
        size = self.config.student if named else f"{self.config.student}, changed"
        return (f"student {size} ({widths_text(self.student_config)}): {count_parameters(self.student):,} parameters, "
                f"{macs / 1e9:.2f} G MACs at 256²; teacher {count_parameters(self.teacher):,} parameters, "
                f"{teacher_macs / 1e9:.2f} G MACs")

    def _start_from(self, path: str) -> None:
        """Continue from an earlier student of the same size (e.g. one trained on smaller crops)."""
        from cycletools.registry import get_registry
        from cycletools.weights import load_generator

        earlier, earlier_config = load_generator(path, get_registry())
        if {k: v for k, v in earlier_config.items() if k != "arch"} != \
                {k: v for k, v in self.student.config.items() if k != "arch"}:
            theirs = widths_text(earlier_config) if earlier_config.get("arch") == "mobile_resnet" else \
                f"a {earlier_config.get('arch', 'different')} generator"
            raise CycletoolsError(f"{path}: not a student of these widths ({theirs}, not "
                                  f"{widths_text(self.student.config)})")
        self.student.load_state_dict(earlier.state_dict())

    def step(self, real_A: torch.Tensor, real_B: torch.Tensor | None,
             target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step on a batch of domain-A images (``target``: the teacher's outputs, when known already)
        and domain-B images; the L1 to the teacher and the discriminator's loss."""
        config = self.config
        self._features = {"teacher": [], "student": []}
        if target is None or self._hooks:  # the block features need the teacher's forward pass
            with torch.no_grad():
                target = self.teacher(real_A)
        self.opt_G.zero_grad(set_to_none=True)
        fake = self.student(real_A)
        rec = l1_loss(fake, target)
        loss_G = config.lambda_rec * rec
        if self._features["student"]:  # the blocks' outputs against the teacher's kept channels
            pairs = zip(self._features["student"], self._features["teacher"])
            features = torch.stack([F.mse_loss(mine, theirs[:, self.kept_channels]) for mine, theirs in pairs])
            loss_G = loss_G + config.lambda_feat * features.mean()
        if self.perceptual is not None:  # the teacher's textures as an ImageNet network sees them
            loss_G = loss_G + config.lambda_perceptual * self.perceptual(fake, target)
        if not config.lambda_gan:  # distillation alone: no discriminator to run
            loss_G.backward()
            self.opt_G.step()
            self._average()
            return rec.detach(), torch.zeros((), device=rec.device)
        paired = self.paired

        def judged(images: torch.Tensor) -> torch.Tensor:
            return self.discriminator(torch.cat([real_A, images], 1) if paired else images)

        self.discriminator.requires_grad_(False)
        loss_G = loss_G + config.lambda_gan * lsgan_loss(judged(fake), True)
        loss_G.backward()
        self.opt_G.step()
        self._average()
        self.discriminator.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        loss_D = 0.5 * (lsgan_loss(judged(target if paired else real_B), True)
                        + lsgan_loss(judged(fake.detach()), False))
        loss_D.backward()
        self.opt_D.step()
        return rec.detach(), loss_D.detach()

    def _average(self) -> None:
        if self.averaged is not None:
            self.averaged.update_parameters(self.student)

    @property
    def saved_student(self) -> nn.Module:
        """What a run saves as its student: the moving average of the weights with --ema, else the weights."""
        return self.averaged.module if self.averaged is not None else self.student

    def save_student(self, steps: int, path: Path | None = None, extra: dict[str, str] | None = None,
                     raw: bool = False) -> Path:
        """The student (``raw``: its weights even with --ema), with its teacher, steps and time in the header."""
        averaged = self.averaged is not None and not raw
        metadata = {"cycletools.distilled_from": self.teacher_source, "cycletools.steps": str(steps),
                    **({"cycletools.ema": f"{self.config.ema:g}"} if averaged else {}), **(extra or {})}
        return save_generator(self.saved_student if averaged else self.student,
                              path or self.run_dir / "student.safetensors", metadata=metadata)

    def _save_run(self, steps: int, extra: dict[str, str]) -> Path:
        """RUN/student.safetensors (and RUN/student-raw.safetensors with --ema), and the discriminator beside
        them where the GAN loss has one."""
        path = self.save_student(steps, extra=extra)
        if self.averaged is not None:
            self.save_student(steps, self.run_dir / RAW_STUDENT_FILE, extra=extra, raw=True)
        if self.config.lambda_gan:
            self.save_discriminator()
        return path

    def _batches(self):
        """Training batches without end, a new shuffled epoch plan after each pass."""
        if self.pairs is not None:
            yield from self.pairs.batches(self.config.batch_size, self.config.seed)
            return
        epoch = 0
        while True:
            plan = EpochPlan.make(len(self.dataset.files_a), len(self.dataset.files_b), epoch, self.config.seed)
            self.sampler.set_plan(plan)
            yield from self.loader
            epoch += 1

    def run(self) -> DistillResult:
        config = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / "distill.json", json.dumps(asdict(config), indent=2) + "\n")
        done, recs, losses_D = 0, [], []
        budget = TimeBudget(config.time_budget) if config.time_budget else None
        bar = tqdm(total=None if budget else config.steps, unit="step", desc=f"distilling {config.name}",
                   disable=not self.progress)
        started = log_clock = time.perf_counter()
        cpu_started = time.process_time()  # processor time, whatever else the machine is doing
        next_snapshot = config.snapshot_every or 0.0  # seconds of training at which the next snapshot is kept
        if config.snapshot_every:
            (self.run_dir / "snapshots").mkdir(exist_ok=True)
        if budget is not None:
            budget.start(0)

        def more() -> bool:
            return not budget.finished(done) if budget is not None else done < config.steps

        def spent() -> dict[str, str]:
            """The training and processor seconds so far, kept in every saved student's metadata."""
            return {"cycletools.training_seconds": f"{time.perf_counter() - started:.0f}",
                    "cycletools.cpu_seconds": f"{time.process_time() - cpu_started:.0f}"}

        with open(self.run_dir / "distill.csv", "w", newline="") as log_file, StopRequest() as stop:
            log = csv.writer(log_file)
            log.writerow(LOG_COLUMNS)
            batches = self._batches()
            while more() and not stop.requested:
                self.dataset.crop_size = config.crop_at(done)
                lr = config.lr * budget.factor(done + 1) if budget is not None else config.lr_at(done)
                for group in (*self.opt_G.param_groups, *self.opt_D.param_groups):
                    group["lr"] = lr
                batch = next(batches)
                target = batch["T"].to(self.device) if "T" in batch else None
                real_B = batch["B"].to(self.device) if batch["B"] is not None else None
                rec, loss_D = self.step(batch["A"].to(self.device), real_B, target)
                recs.append(rec)
                losses_D.append(loss_D)
                done += 1
                bar.update(1)
                if budget is not None and (message := budget.after_step(done)) and self.progress:
                    tqdm.write(message, file=sys.stderr)
                if done % config.log_every == 0 or not more():
                    window = done % config.log_every or config.log_every
                    rate = window / (time.perf_counter() - log_clock)
                    mean_rec = float(torch.stack(recs[-window:]).mean())
                    log.writerow((done, self.dataset.crop_size, f"{lr:.3g}", f"{mean_rec:.5f}",
                                  f"{float(torch.stack(losses_D[-window:]).mean()):.5f}", f"{rate:.2f}"))
                    log_file.flush()
                    bar.set_postfix({"rec": f"{mean_rec:.4f}", "steps/s": f"{rate:.1f}"})
                    log_clock = time.perf_counter()
                if done % config.save_every == 0:
                    self._save_run(done, spent())
                seconds_in = time.perf_counter() - started
                if config.snapshot_every and seconds_in >= next_snapshot:
                    self.save_student(done, self.run_dir / "snapshots" / f"student-{seconds_in / 60:06.1f}min.safetensors",
                                      spent())
                    next_snapshot += config.snapshot_every
        bar.close()
        for hook in self._hooks:
            hook.remove()
        self._hooks.clear()
        seconds = time.perf_counter() - started
        path = self._save_run(done, spent())
        window = max(1, min(len(recs) // 5, 50))
        first = float(torch.stack(recs[:window]).mean()) if recs else float("nan")
        last = float(torch.stack(recs[-window:]).mean()) if recs else float("nan")
        student_macs = count_macs(self.student, 256)  # at 256², the size figures are quoted at
        teacher_macs = count_macs(self.teacher, 256)
        self.student.cpu()
        return DistillResult(path, done, first, last, student_macs, teacher_macs, count_parameters(self.student),
                             seconds, not more())
