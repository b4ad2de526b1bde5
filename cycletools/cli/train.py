"""``cycletools train``: train a CycleGAN domain pair from two folders of images."""

from __future__ import annotations

import argparse
import sys

S = argparse.SUPPRESS  # options not given stay out of the namespace, so config files can fill them

HELP = """Train a CycleGAN on DATA/trainA and DATA/trainB (the official layout; testA/testB, when
present, feed the per-epoch sample grids). Settings come from, lowest priority first: the
recipe, the --config file (TOML or YAML, keys named like the options), then the flags.

The run folder OUT/NAME receives config.json, checkpoints/latest.pt (full state, written
atomically every --save-every steps and at each epoch end), weights/a2b.safetensors and
weights/b2a.safetensors (each epoch), samples/*.png, losses.csv and, when the tensorboard
package is installed, tensorboard/. Ctrl-C stops after the current step and saves; --resume
continues bit-exactly. Several GPUs or machines: start the same command with torchrun, e.g.
  torchrun --nproc-per-node 4 -m cycletools train --data DIR --name RUN"""

RECIPES_HELP = ("official: the paper's recipe (fp32, batch 1, lr 2e-4); fast (default with CUDA): bf16 "
                "autocast, channels_last, fused Adam, batch 8, lr 2e-4*sqrt(batch)")


def add_parser(commands) -> None:
    from cycletools.cli.options import BATCH, COUNT, COUNT_OR_ZERO, CROP, RATE, SEED, WEIGHT, WIDTH, WORKERS, Number, add_renamed

    parser = commands.add_parser("train", help="train a CycleGAN domain pair on folders of images",
                                 description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 argument_default=S)
    run = parser.add_argument_group("run")
    run.add_argument("--data", metavar="DIR", help="dataset folder with trainA/ and trainB/ (testA/, testB/ optional)")
    run.add_argument("--plugin", metavar="DOMAIN", help="start from a registered domain's recipe (e.g. monet2photo "
                     "turns on identity loss); flags override it; the run name defaults to DOMAIN")
    run.add_argument("--name", metavar="RUN", help="run name; the run folder is OUT/RUN")
    run.add_argument("--out", metavar="DIR", help="folder that holds runs (default: runs)")
    run.add_argument("--config", metavar="FILE", help="TOML/YAML file of settings; flags override it")
    run.add_argument("--recipe", choices=("official", "fast"), help=RECIPES_HELP)
    run.add_argument("--resume", action="store_true", default=False,
                     help="continue OUT/RUN from its last checkpoint, exactly")
    run.add_argument("--device", metavar="DEV", help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    run.add_argument("--seed", type=SEED, help="random seed (default: 0)")

    schedule = parser.add_argument_group("schedule")
    schedule.add_argument("--epochs", type=COUNT_OR_ZERO, metavar="N", help="epochs at the full learning rate (default: 100)")
    schedule.add_argument("--epochs-decay", type=COUNT_OR_ZERO, metavar="M", help="epochs of linear decay to 0 (default: 100)")
    schedule.add_argument("--max-steps", type=COUNT, metavar="N", help="stop (resumably) after N steps in all")
    schedule.add_argument("--time-budget", metavar="DURATION",
                          help="train for this long, e.g. 90s, 30m, 2h or 1h30m: the run measures its speed over "
                               "its first steps and plans its steps to end inside the budget, with the paper's "
                               "shape (constant learning rate for the first half of the steps, linear decay to "
                               "zero over the second half), then saves and exits 0; --epochs and --epochs-decay "
                               "are ignored, and --resume finishes the same plan with the time that is left")
    schedule.add_argument("--batch-size", type=BATCH, metavar="B", help="images per domain per step and device")
    schedule.add_argument("--lr", type=RATE, help="Adam learning rate (default: 2e-4 * sqrt(batch size))")
    schedule.add_argument("--beta1", type=Number(float, 0, below=1), help="Adam beta1 (default: 0.5)")
    schedule.add_argument("--save-every", type=COUNT_OR_ZERO, metavar="STEPS", help="checkpoint interval in steps "
                          "(default: 500; 0: only at epoch ends)")
    schedule.add_argument("--log-every", type=COUNT, metavar="STEPS", help="loss logging interval (default: 50)")

    model = parser.add_argument_group("model and losses")
    model.add_argument("--crop-size", dest="size", type=CROP, help="training crop size (default: 256)")
    add_renamed(model, "--size", "--crop-size", dest="size", type=CROP)
    model.add_argument("--load-size", type=CROP, help="resize before cropping (default: size*286/256)")
    model.add_argument("--no-flip", dest="flip", action="store_false", help="no random horizontal flips")
    model.add_argument("--ngf", type=WIDTH, help="generator width (default: 64)")
    model.add_argument("--blocks", type=Number(int, 1, 64), help="generator residual blocks, 6 or 9 (default: 9)")
    model.add_argument("--ndf", type=WIDTH, help="discriminator width (default: 64)")
    model.add_argument("--d-layers", type=Number(int, 1, 8), help="PatchGAN layers; 3 gives 70x70 patches (default: 3)")
    model.add_argument("--lambda-cycle", type=WEIGHT, help="cycle-consistency weight (default: 10)")
    model.add_argument("--lambda-identity", type=WEIGHT, help="identity weight, relative to the cycle weight "
                       "(default: 0.5; 0 turns it off)")
    model.add_argument("--pool-size", type=Number(int, 0, 100_000), help="fakes kept for the discriminators (default: 50)")

    speed = parser.add_argument_group("speed")
    speed.add_argument("--amp", choices=("none", "bf16"), help="mixed precision (fast recipe: bf16)")
    speed.add_argument("--channels-last", action=argparse.BooleanOptionalAction, help="NHWC memory format")
    speed.add_argument("--compile", action=argparse.BooleanOptionalAction, help="torch.compile the networks")
    speed.add_argument("--workers", type=WORKERS, help="data loader processes (default: 0 on CPU, up to 8 with CUDA)")
    parser.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cycletools.training.budget import parse_duration

    if getattr(args, "time_budget", None) is not None:
        parse_duration(args.time_budget)  # a bad duration is refused before torch and the data load (seconds)

    import torch

    from cycletools.errors import CycletoolsError
    from cycletools.training.config import read_config_file, resolve_config
    from cycletools.training.trainer import CycleGANTrainer

    flags = {k: v for k, v in vars(args).items() if k not in ("command", "handler", "resume", "config", "plugin")}
    plugin = getattr(args, "plugin", None)
    if plugin:
        from cycletools.registry import get_registry

        spec = get_registry().domain(plugin)
        flags.setdefault("name", spec.name)
    if args.resume:
        if "name" not in flags:
            raise CycletoolsError("--resume needs --name RUN (and --out DIR if not runs)")
        changes = {**(read_config_file(args.config) if getattr(args, "config", None) else {}), **flags}
        trainer = CycleGANTrainer.resume(Path(flags.get("out", "runs")) / flags["name"], changes)
        print(f"resuming {trainer.run_dir} at epoch {trainer.epoch + 1}, step {trainer.global_step}",
              file=sys.stderr)
    else:
        for required in ("data", "name"):
            if required not in flags and not getattr(args, "config", None):
                raise CycletoolsError(f"--{required} is required")
        base = domain_recipe(spec, flags) if plugin else None
        config = resolve_config(flags, getattr(args, "config", None), cuda_available=torch.cuda.is_available(),
                                base=base)
        if not config.data:
            raise CycletoolsError("--data is required (or 'data' in the config file)")
        trainer = CycleGANTrainer(config)
    config = trainer.config
    if trainer.ctx.is_main:
        print(f"training {trainer.run_dir} on {trainer.device} ({trainer.ctx.world_size} process(es)), recipe "
              f"{config.recipe}: {len(trainer.dataset.files_a)} A / {len(trainer.dataset.files_b)} B images"
              + (f" ({trainer.dataset.skipped_files} non-image files skipped)" if trainer.dataset.skipped_files else "")
              + f", {schedule_text(config)}, batch {config.batch_size}, lr {config.effective_lr:.3g}",
              file=sys.stderr)
    result = trainer.train()
    if not trainer.ctx.is_main:
        return 0
    weights = ", ".join(str(p) for p in result.weights.values())
    if result.finished:
        done = (trainer.budget.summary(result.global_step) if trainer.budget is not None
                else f"{result.epoch} epochs ({result.global_step} steps)")
        print(f"finished {done}; weights: {weights}")
        if plugin:
            print(f"use them as {plugin}'s weights: cycletools weights import {trainer.run_dir} --plugin {plugin}")
        return 0
    hint = f"cycletools train --name {config.name} --out {config.out} --resume"
    limit = config.max_steps is not None and result.global_step >= config.max_steps
    print(f"stopped at step {result.global_step} ({'--max-steps reached' if limit else 'interrupted'}); "
          f"checkpoint saved, weights: {weights}; continue with: {hint}")
    return 0 if limit else 130


def schedule_text(config) -> str:
    """``100+100 epochs``, or the time budget and how its steps are planned."""
    if config.time_budget:
        from cycletools.training.budget import format_duration

        return (f"time budget {format_duration(config.time_budget)} (steps planned from the speed of the "
                "first ones: constant learning rate, then linear decay to zero)")
    return f"{config.epochs}+{config.epochs_decay} epochs"


def domain_recipe(spec, flags: dict) -> dict:
    """A domain's training defaults, with the generator it declares (flags override ngf/blocks, with a note)."""
    from cycletools.errors import UsageError

    declared = dict(spec.architecture)
    base = dict(spec.train_defaults)
    if declared.get("arch") == "resnet":
        base.update(ngf=declared.get("ngf", 64), blocks=declared.get("n_blocks", 9))
        changed = [f"--{key} {flags[key]}" for key in ("ngf", "blocks") if key in flags and flags[key] != base[key]]
        if changed:
            print(f"note: {' '.join(changed)} trains a generator other than the {spec.architecture_summary()} that "
                  f"{spec.name} declares; it will be listed as what it is when imported", file=sys.stderr)
        return base
    if "ngf" in flags or "blocks" in flags:
        raise UsageError(f"{spec.name} declares the {declared['arch']!r} architecture; --ngf and --blocks set a "
                         "resnet generator's width and depth")
    return {**base, "architecture": declared}
