"""Training throughput, official recipe vs fast recipe, measured in the same process.

    python benchmarks/train_throughput.py [--device cuda] [--size 256] [--steps 20] [--fast-batch 8] [--compile]

Each recipe runs CycleGANTrainer.train_step on random image batches already on the
device (the step itself: four generator passes plus identity passes, both
discriminators, both Adam updates), after warm-up steps; the figure is image pairs per
second. Prints one JSON line per recipe and the fast/official ratio.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from cycletools.data.toy import make_shapes_dataset
from cycletools.training.config import resolve_config
from cycletools.training.trainer import CycleGANTrainer
from cycletools.utils.devices import describe_cpu


def measure(recipe: str, args: argparse.Namespace, data: str, out: str) -> dict:
    flags = {"data": data, "name": recipe, "out": out, "recipe": recipe, "device": args.device,
             "size": args.size, "ngf": args.ngf, "blocks": args.blocks}
    if recipe == "fast":
        flags["batch_size"] = args.fast_batch
        flags["compile"] = args.compile
        if getattr(args, "amp", None):
            flags["amp"] = args.amp
    trainer = CycleGANTrainer(resolve_config(flags), progress=False)
    batch = trainer.config.batch_size
    shape = (batch, 3, args.size, args.size)
    real_A = torch.rand(shape, device=trainer.device).mul_(2).sub_(1).contiguous(memory_format=trainer.memory_format)
    real_B = torch.rand(shape, device=trainer.device).mul_(2).sub_(1).contiguous(memory_format=trainer.memory_format)

    def sync():
        if trainer.device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        trainer.train_step(real_A, real_B)
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        losses = trainer.train_step(real_A, real_B)
    sync()
    elapsed = time.perf_counter() - start
    assert torch.isfinite(losses).all()
    return {"recipe": recipe, "batch": batch, "amp": trainer.config.amp,
            "channels_last": trainer.config.channels_last, "compile": trainer.config.compile,
            "ms_per_step": round(1000 * elapsed / args.steps, 1),
            "pairs_per_s": round(batch * args.steps / elapsed, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--fast-batch", type=int, default=8)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()
    machine = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
        describe_cpu()
    with tempfile.TemporaryDirectory() as tmp:
        data = str(make_shapes_dataset(f"{tmp}/data", count=2, size=16, test_count=0))
        results = [measure(recipe, args, data, f"{tmp}/runs") for recipe in ("official", "fast")]
    for result in results:
        print(json.dumps({"machine": machine, "torch": torch.__version__, "size": args.size, **result}))
    print(json.dumps({"fast_over_official": round(results[1]["pairs_per_s"] / results[0]["pairs_per_s"], 2)}))


if __name__ == "__main__":
    main()
