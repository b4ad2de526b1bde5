"""The CycleGAN training loop (the paper's algorithm), with exact resume and optional DDP.

One step, as in the reference implementation:
  1. fake_B = G_A(A), rec_A = G_B(fake_B), fake_A = G_B(B), rec_B = G_A(fake_A)
  2. generators: LSGAN(D_A(fake_B), real) + LSGAN(D_B(fake_A), real)
     + λ_cyc·(|rec_A − A| + |rec_B − B|) + λ_cyc·λ_idt·(|G_A(B) − B| + |G_B(A) − A|)
  3. discriminators, on a history pool of fakes: ½·[LSGAN(D(real), real) + LSGAN(D(pool(fake)), fake)]
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torchvision.transforms.functional as TF
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from cycletools.data.images import list_images, open_image, split_alpha
from cycletools.data.unpaired import EpochPlan, PlanSampler, UnpairedImages
from cycletools.errors import CycletoolsError
from cycletools.architectures import build_generator
from cycletools.models import NLayerDiscriminator, init_weights
from cycletools.runs import DIRECTIONS, run_weights_path
from cycletools.training.budget import TimeBudget
from cycletools.training.checkpoint import load_checkpoint, save_checkpoint
from cycletools.training.config import RESUMABLE_CHANGES, TrainConfig, by_setting, config_from_dict, typed_setting
from cycletools.training.losses import l1_loss, linear_decay, lsgan_loss
from cycletools.training.monitor import LOSS_NAMES, RunMonitor, save_sample_grid
from cycletools.training.pool import ImagePool
from cycletools.utils.atomic import atomic_write_text
from cycletools.utils.devices import resolve_device
from cycletools.utils.interrupts import StopRequest
from cycletools.weights import save_generator

SAMPLE_COUNT = 4


@dataclass
class TrainResult:
    run_dir: Path
    global_step: int
    epoch: int
    finished: bool
    weights: dict[str, Path]


@dataclass
class DistributedContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def distributed_context() -> DistributedContext:
    """Join the process group when started by torchrun (WORLD_SIZE > 1); else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return DistributedContext(rank=dist.get_rank(), local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                              world_size=dist.get_world_size())


def _ignore_interrupts(worker_id: int) -> None:
    """Loader workers leave Ctrl-C to the main process, which stops cleanly after the step."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class CycleGANTrainer:
    """Trains the two generators and two discriminators of one domain pair.

    >>> result = CycleGANTrainer(resolve_config({"data": "datasets/horse2zebra", "name": "h2z"})).train()
    """

    def __init__(self, config: TrainConfig, progress: bool = True, state: dict[str, Any] | None = None):
        """A new run from ``config``; use :meth:`resume` to continue an existing one."""
        self.ctx = distributed_context()
        self.progress = progress and self.ctx.is_main
        self.run_dir = Path(config.out) / config.name
        self.checkpoint_path = self.run_dir / "checkpoints" / "latest.pt"
        if state is None and self.checkpoint_path.exists():
            raise CycletoolsError(f"run {self.run_dir} already has a checkpoint; add --resume to continue it "
                                  "or choose another --name")
        self.config = config
        self.device = self._pick_device(config)
        self.autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16) if config.amp == "bf16"
                         else nullcontext())
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
        if self.device.type == "cuda" and config.recipe == "fast":
            torch.backends.cudnn.benchmark = True  # fixed crop sizes: let cuDNN pick its fastest kernels

        self.dataset = UnpairedImages(config.data, "train", config.effective_load_size, config.size, config.flip)
        self.sampler = PlanSampler(config.batch_size)
        self.loader = self._make_loader()
        self._build_models()
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.budget = TimeBudget(config.time_budget) if config.time_budget else None
        self._exported_step: int | None = None
        self._saved_step: int | None = None
        if state is not None:
            self._load_state(state)
        else:
            torch.manual_seed(config.seed + 7919 * self.ctx.rank)

    @classmethod
    def resume(cls, run_dir: str | Path, changes: dict[str, Any] | None = None,
               progress: bool = True) -> "CycleGANTrainer":
        """Continue the run in ``run_dir`` exactly where its last checkpoint left it.

        ``changes`` may alter only the settings in ``RESUMABLE_CHANGES`` (epochs, workers, ...).
        """
        run_dir = Path(run_dir)
        state = load_checkpoint(run_dir / "checkpoints" / "latest.pt")
        saved = state["config"]
        typed = {name: typed_setting(name, value) for name, value in by_setting(changes or {}).items()}
        changes = {k: v for k, v in typed.items() if k not in ("name", "out") and v != saved.get(k)}
        refused = sorted(k for k in changes if k not in RESUMABLE_CHANGES)
        if refused:
            was = ", ".join(f"{k}={saved.get(k)!r}" for k in refused)
            raise CycletoolsError(f"cannot change {', '.join(refused)} when resuming (the run has {was})")
        merged = {**saved, **changes, "name": run_dir.name, "out": str(run_dir.parent)}
        return cls(config_from_dict(merged).validate(), progress=progress, state=state)

    # ----------------------------------------------------------------- set-up
    def _pick_device(self, config: TrainConfig) -> torch.device:
        device = resolve_device(config.device)
        if self.ctx.enabled and device.type == "cuda":
            device = torch.device("cuda", self.ctx.local_rank)
            torch.cuda.set_device(device)
        return device

    def _make_loader(self) -> DataLoader:
        config = self.config
        workers = config.workers
        if workers is None:
            workers = min(8, max(1, (os.cpu_count() or 2) - 1)) if self.device.type == "cuda" else 0
        return DataLoader(self.dataset, batch_size=config.batch_size, sampler=self.sampler,
                          num_workers=workers, pin_memory=self.device.type == "cuda",
                          worker_init_fn=_ignore_interrupts if workers > 0 else None,
                          persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
                          drop_last=False)

    def _build_models(self) -> None:
        config = self.config
        torch.manual_seed(config.seed)  # identical initial weights on every rank

        def place(module: nn.Module) -> nn.Module:
            return init_weights(module).to(self.device, memory_format=self.memory_format)

        from cycletools.registry import get_registry

        registry = get_registry() if config.architecture else None  # a plugin's architecture
        self.G_A = place(build_generator(config.generator_config(), registry))
        self.G_B = place(build_generator(config.generator_config(), registry))
        self.D_A = place(NLayerDiscriminator(3, config.ndf, config.d_layers))
        self.D_B = place(NLayerDiscriminator(3, config.ndf, config.d_layers))
        fused = self.device.type == "cuda" and config.recipe == "fast"
        adam = dict(lr=config.effective_lr, betas=(config.beta1, config.beta2), **({"fused": True} if fused else {}))
        self.opt_G = torch.optim.Adam(chain(self.G_A.parameters(), self.G_B.parameters()), **adam)
        self.opt_D = torch.optim.Adam(chain(self.D_A.parameters(), self.D_B.parameters()), **adam)
        rule = linear_decay(config.epochs, config.epochs_decay)
        self.sched_G = torch.optim.lr_scheduler.LambdaLR(self.opt_G, rule)
        self.sched_D = torch.optim.lr_scheduler.LambdaLR(self.opt_D, rule)
        pool_seed = config.seed * 1_000_003 + self.ctx.rank
        self.pool_A, self.pool_B = ImagePool(config.pool_size, pool_seed), ImagePool(config.pool_size, pool_seed + 1)

        # What the step calls: DDP wrappers for the modules being updated, optionally compiled.
        def runner(module: nn.Module) -> nn.Module:
            if self.ctx.enabled:
                ids = [self.device.index] if self.device.type == "cuda" else None
                module = DistributedDataParallel(module, device_ids=ids, broadcast_buffers=False)
            return torch.compile(module) if config.compile else module

        self.run_G_A, self.run_G_B = runner(self.G_A), runner(self.G_B)
        self.run_D_A, self.run_D_B = runner(self.D_A), runner(self.D_B)
        # During the generator update the discriminators are frozen and used without DDP.
        self.frozen_D_A = torch.compile(self.D_A) if config.compile else self.D_A
        self.frozen_D_B = torch.compile(self.D_B) if config.compile else self.D_B

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
            "G_A": self.G_A.state_dict(), "G_B": self.G_B.state_dict(),
            "D_A": self.D_A.state_dict(), "D_B": self.D_B.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "sched_G": self.sched_G.state_dict(), "sched_D": self.sched_D.state_dict(),
            **({"budget": self.budget.state_dict()} if self.budget is not None else {}),
            **self._rank_state(),
        }

    def _rank_state(self) -> dict[str, Any]:
        """What differs between ranks: the pools and the random generators."""
        return {
            "global_step": self.global_step,
            "pool_A": self.pool_A.state_dict(), "pool_B": self.pool_B.state_dict(),
            "rng_torch": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def _load_state(self, state: dict[str, Any]) -> None:
        for name in ("G_A", "G_B", "D_A", "D_B", "opt_G", "opt_D", "sched_G", "sched_D"):
            getattr(self, name).load_state_dict(state[name])
        self.epoch, self.step_in_epoch, self.global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
        if self.budget is not None and "budget" in state:
            self.budget = TimeBudget.from_state(state["budget"])  # the same plan, with the time that is left
        rank_state = state
        if self.ctx.rank > 0:
            rank_file = self._rank_checkpoint_path()
            rank_state = load_checkpoint(rank_file) if rank_file.exists() else None
            if rank_state is None or rank_state["global_step"] != self.global_step:
                rank_state = None
        if rank_state is not None:
            self.pool_A.load_state_dict(rank_state["pool_A"], self.device)
            self.pool_B.load_state_dict(rank_state["pool_B"], self.device)
            torch.set_rng_state(rank_state["rng_torch"])
            if rank_state["rng_cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rank_state["rng_cuda"])

    def _rank_checkpoint_path(self) -> Path:
        return self.checkpoint_path.with_name(f"latest.rank{self.ctx.rank}.pt")

    def save(self) -> None:
        """Write the full state atomically (rank 0), plus each other rank's pools and RNG."""
        self._saved_step = self.global_step
        if self.ctx.is_main:
            save_checkpoint(self.state_dict(), self.checkpoint_path)
        elif self.ctx.enabled:
            save_checkpoint(self._rank_state(), self._rank_checkpoint_path())
        if self.ctx.enabled:
            dist.barrier()

    def weight_paths(self) -> dict[str, Path]:
        return {direction: run_weights_path(self.run_dir, direction) for direction in DIRECTIONS}

    def export_weights(self) -> dict[str, Path]:
        """Write the two generators as safetensors (``a2b`` = G_A, ``b2a`` = G_B)."""
        paths = self.weight_paths()
        if self.ctx.is_main:
            paths["a2b"].parent.mkdir(parents=True, exist_ok=True)
            save_generator(self.G_A, paths["a2b"])
            save_generator(self.G_B, paths["b2a"])
        self._exported_step = self.global_step
        return paths

    # ----------------------------------------------------------------- the step
    def train_step(self, real_A: torch.Tensor, real_B: torch.Tensor) -> torch.Tensor:
        """One generator and one discriminator update; returns the losses as one device tensor."""
        config = self.config
        lambda_cyc, lambda_idt = config.lambda_cycle, config.lambda_identity
        zero = real_A.new_zeros(())

        self.D_A.requires_grad_(False)
        self.D_B.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        with self.autocast:
            fake_B = self.run_G_A(real_A)
            rec_A = self.run_G_B(fake_B)
            fake_A = self.run_G_B(real_B)
            rec_B = self.run_G_A(fake_A)
            if lambda_idt > 0:
                loss_idt_A = l1_loss(self.run_G_A(real_B), real_B) * lambda_cyc * lambda_idt
                loss_idt_B = l1_loss(self.run_G_B(real_A), real_A) * lambda_cyc * lambda_idt
            else:
                loss_idt_A = loss_idt_B = zero
            loss_G_A = lsgan_loss(self.frozen_D_A(fake_B), True)
            loss_G_B = lsgan_loss(self.frozen_D_B(fake_A), True)
            loss_cycle_A = l1_loss(rec_A, real_A) * lambda_cyc
            loss_cycle_B = l1_loss(rec_B, real_B) * lambda_cyc
            loss_G = loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B
        loss_G.backward()
        self.opt_G.step()

        self.D_A.requires_grad_(True)
        self.D_B.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        pooled_B = self.pool_B.query(fake_B.detach())
        pooled_A = self.pool_A.query(fake_A.detach())
        with self.autocast:
            loss_D_A = 0.5 * (lsgan_loss(self.run_D_A(real_B), True) + lsgan_loss(self.run_D_A(pooled_B), False))
            loss_D_B = 0.5 * (lsgan_loss(self.run_D_B(real_A), True) + lsgan_loss(self.run_D_B(pooled_A), False))
        (loss_D_A + loss_D_B).backward()
        self.opt_D.step()
        return torch.stack([loss_D_A, loss_G_A, loss_cycle_A, loss_idt_A,
                            loss_D_B, loss_G_B, loss_cycle_B, loss_idt_B]).detach()

    # ----------------------------------------------------------------- the loop
    @property
    def total_epochs(self) -> int:
        return self.config.epochs + self.config.epochs_decay

    def schedule_done(self) -> bool:
        """Whether the run's schedule is complete: every epoch, or a time budget's planned steps."""
        if self.budget is not None:
            return self.budget.finished(self.global_step)
        return self.epoch >= self.total_epochs

    def train(self) -> TrainResult:
        """Run until the last epoch, the end of the time budget or ``max_steps``; every exit is resumable."""
        config = self.config
        if self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / "config.json", json.dumps(config.to_dict(), indent=2) + "\n")
        if self.budget is not None:
            self.budget.start(self.global_step)
        resumed_at = self.global_step if self.global_step else None
        monitor = RunMonitor(self.run_dir, resume_step=resumed_at) if self.ctx.is_main else None
        try:
            with StopRequest() as stop:
                while not self.schedule_done():
                    if not self._train_epoch(monitor, stop):
                        break
        finally:
            if monitor is not None:
                monitor.close()
        finished = self.schedule_done()
        if self._exported_step != self.global_step or not self.weight_paths()["a2b"].exists():
            # Stopped (or a time budget ended) between epoch ends: the state, weights and a grid of this step.
            if self._saved_step != self.global_step:
                self.save()
            self.export_weights()
            if self.ctx.is_main:
                self._save_samples(f"step_{self.global_step:07d}")
        if finished and self.budget is not None and self.progress:
            tqdm.write(f"time budget: {self.budget.summary(self.global_step)}", file=sys.stderr)
        return TrainResult(self.run_dir, self.global_step, self.epoch, finished, self.weight_paths())

    def _train_epoch(self, monitor: RunMonitor | None, stop: StopRequest) -> bool:
        """Train from the current position to the end of the epoch; False if the run stops before it."""
        config, budget = self.config, self.budget
        plan = EpochPlan.make(len(self.dataset.files_a), len(self.dataset.files_b), self.epoch,
                              config.seed, self.ctx.rank, self.ctx.world_size)
        steps = plan.steps(config.batch_size)
        self.sampler.set_plan(plan, self.step_in_epoch)
        label = f"epoch {self.epoch + 1}" + ("" if budget is not None else f"/{self.total_epochs}")
        bar = tqdm(total=steps, initial=self.step_in_epoch, disable=not self.progress, unit="step",
                   desc=label, dynamic_ncols=True)
        loss_sum = torch.zeros(len(LOSS_NAMES), device=self.device)
        since_log, log_clock = 0, time.perf_counter()
        try:
            for batch in self.loader:
                real_A = batch["A"].to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
                real_B = batch["B"].to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
                if budget is not None:
                    self._set_lr_factor(budget.factor(self.global_step + 1))
                loss_sum += self.train_step(real_A, real_B)
                self.step_in_epoch += 1
                self.global_step += 1
                since_log += 1
                bar.update(1)
                # Logging steps are multiples of --log-every (also after a resume), plus epoch ends.
                at_log_step = self.global_step % config.log_every == 0 or self.step_in_epoch == steps
                if budget is not None and (at_log_step or not self.ctx.enabled):
                    self._plan_budget()
                budget_done = budget is not None and budget.finished(self.global_step)
                if at_log_step or budget_done:
                    pairs_per_s = since_log * config.batch_size * self.ctx.world_size / (time.perf_counter() - log_clock)
                    losses = dict(zip(LOSS_NAMES, (loss_sum / since_log).tolist()))
                    bar.set_postfix({"G": f"{losses['G_A'] + losses['G_B']:.3f}",
                                     "D": f"{losses['D_A'] + losses['D_B']:.3f}",
                                     "cyc": f"{losses['cycle_A'] + losses['cycle_B']:.3f}",
                                     "pairs/s": f"{pairs_per_s:.1f}"})
                    if monitor is not None:
                        monitor.log(self.global_step, self.epoch + 1, self.opt_G.param_groups[0]["lr"],
                                    pairs_per_s, losses)
                    loss_sum.zero_()
                    since_log, log_clock = 0, time.perf_counter()
                at_limit = config.max_steps is not None and self.global_step >= config.max_steps
                # Under DDP, ranks agree on a stop only at logging steps (agreeing costs a sync).
                may_stop = since_log == 0 or not self.ctx.enabled
                if at_limit or budget_done or (may_stop and self._stop_agreed(stop.requested)):
                    if self.step_in_epoch == steps:
                        break  # the end of the epoch is handled below
                    return False  # train() saves the state, the weights and a sample grid of this step
                if config.save_every and self.global_step % config.save_every == 0 and self.step_in_epoch < steps:
                    self.save()
        finally:
            bar.close()
        finishing = time.perf_counter()
        if budget is None:
            self.sched_G.step()
            self.sched_D.step()
        self.epoch, self.step_in_epoch = self.epoch + 1, 0
        self.save()
        self.export_weights()
        if self.ctx.is_main:
            self._save_samples(f"epoch_{self.epoch:03d}")
        if budget is not None:
            budget.note_finishing_cost(time.perf_counter() - finishing)
        at_limit = config.max_steps is not None and self.global_step >= config.max_steps
        return not (at_limit or self._stop_agreed(stop.requested)) or self.schedule_done()

    def _set_lr_factor(self, factor: float) -> None:
        for optimizer in (self.opt_G, self.opt_D):
            for group in optimizer.param_groups:
                group["lr"] = self.config.effective_lr * factor

    def _plan_budget(self) -> None:
        """Refine the time budget's plan; under DDP every rank takes rank 0's plan."""
        message = self.budget.after_step(self.global_step)
        if self.ctx.enabled:
            budget = self.budget
            plan = torch.tensor([float(budget.total_steps or -1), float(-1 if budget.decay_start is None
                                 else budget.decay_start), budget.decay_from], dtype=torch.float64,
                                device=self.device if self.device.type == "cuda" else "cpu")
            dist.broadcast(plan, src=0)
            total, start, budget.decay_from = plan.tolist()
            budget.total_steps = None if total < 0 else int(total)
            budget.decay_start = None if start < 0 else int(start)
        if message and self.progress:
            tqdm.write(message, file=sys.stderr)

    def _stop_agreed(self, requested: bool) -> bool:
        """Stop on every rank together when any rank was asked to stop."""
        if not self.ctx.enabled:
            return requested
        flag = torch.tensor([1.0 if requested else 0.0], device=self.device if self.device.type == "cuda" else "cpu")
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    # ----------------------------------------------------------------- samples
    def _sample_batches(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not hasattr(self, "_samples"):
            root = Path(self.config.data)
            split = "test" if (root / "testA").is_dir() and (root / "testB").is_dir() else "train"
            self._samples = tuple(self._load_samples(root / f"{split}{side}") for side in "AB")
        return self._samples

    def _load_samples(self, folder: Path) -> torch.Tensor:
        tensors = []
        for path in list_images(folder).files:
            try:
                image = split_alpha(open_image(path))[0]
            except CycletoolsError:
                continue
            image = TF.resize(image, [self.config.size, self.config.size],
                              interpolation=TF.InterpolationMode.BICUBIC)
            tensors.append(TF.normalize(TF.to_tensor(image), [0.5] * 3, [0.5] * 3))
            if len(tensors) == SAMPLE_COUNT:
                break
        if not tensors:
            raise CycletoolsError(f"{folder}: no readable images for the sample grid")
        return torch.stack(tensors)

    @torch.no_grad()
    def _save_samples(self, label: str) -> None:
        """Grid rows: real A, G_A(A), G_B(G_A(A)), real B, G_B(B), G_A(G_B(B))."""
        real_A, real_B = (t.to(self.device) for t in self._sample_batches())
        with self.autocast:
            fake_B, fake_A = self.G_A(real_A), self.G_B(real_B)
            rows = [real_A, fake_B, self.G_B(fake_B), real_B, fake_A, self.G_A(fake_A)]
        save_sample_grid(self.run_dir / "samples" / f"{label}.png", rows)
