"""What a run records as it goes: a losses CSV, TensorBoard scalars (when installed), sample grids."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import torch
from PIL import Image
from torchvision.utils import make_grid

from cycletools.utils.atomic import atomic_path

LOSS_NAMES = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")
CSV_FIELDS = ("step", "epoch", "lr", "pairs_per_s", *LOSS_NAMES)


class RunMonitor:
    """Appends loss rows to ``losses.csv`` and TensorBoard; on resume drops rows past the checkpoint."""

    def __init__(self, run_dir: Path, resume_step: int | None = None, tensorboard: bool = True):
        self.csv_path = run_dir / "losses.csv"
        if resume_step is not None and self.csv_path.exists():
            self._truncate_after(resume_step)
        new_file = not self.csv_path.exists()
        self._csv_file = open(self.csv_path, "a", newline="", encoding="utf-8")
        self._csv = csv.DictWriter(self._csv_file, fieldnames=CSV_FIELDS)
        if new_file:
            self._csv.writeheader()
        self._tensorboard = None
        if tensorboard:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    from torch.utils.tensorboard import SummaryWriter
                self._tensorboard = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step)
            except ImportError:
                pass

    def _truncate_after(self, step: int) -> None:
        with open(self.csv_path, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.DictReader(handle) if int(row["step"]) <= step]
        with atomic_path(self.csv_path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
                writer.writeheader()
                writer.writerows(rows)

    def log(self, step: int, epoch: int, lr: float, pairs_per_s: float, losses: dict[str, float]) -> None:
        row = {"step": step, "epoch": epoch, "lr": f"{lr:.6g}", "pairs_per_s": f"{pairs_per_s:.3f}",
               **{name: f"{losses.get(name, 0.0):.6f}" for name in LOSS_NAMES}}
        self._csv.writerow(row)
        self._csv_file.flush()
        if self._tensorboard is not None:
            for name, value in losses.items():
                self._tensorboard.add_scalar(f"loss/{name}", value, step)
            self._tensorboard.add_scalar("lr", lr, step)
            self._tensorboard.add_scalar("pairs_per_s", pairs_per_s, step)

    def close(self) -> None:
        self._csv_file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()


def save_sample_grid(path: Path, rows: list[torch.Tensor]) -> None:
    """Save rows of [-1, 1] image batches as one PNG grid (one row per batch), atomically."""
    images = torch.cat([row.detach().float().cpu() for row in rows], 0)
    grid = make_grid((images.clamp(-1, 1) + 1) / 2, nrow=rows[0].shape[0], padding=2, pad_value=1.0)
    array = (grid * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
