"""Run under torchrun by test_ddp.py: trains a few steps with DDP, then saves this rank's weights."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist

from cycletools.training.config import resolve_config
from cycletools.training.trainer import CycleGANTrainer

data, out = sys.argv[1], Path(sys.argv[2])
config = resolve_config({"data": data, "name": "ddp", "out": str(out), "size": 32, "load_size": 36, "ngf": 4,
                         "ndf": 4, "blocks": 1, "max_steps": 5, "save_every": 2, "log_every": 1,
                         "device": "cpu", "pool_size": 2})
trainer = CycleGANTrainer(config, progress=False)
result = trainer.train()
state = {f"{n}.{k}": v for n in ("G_A", "G_B", "D_A", "D_B") for k, v in getattr(trainer, n).state_dict().items()}
torch.save({"state": state, "step": result.global_step, "world": trainer.ctx.world_size},
           out / f"rank{trainer.ctx.rank}.pt")
dist.destroy_process_group()
