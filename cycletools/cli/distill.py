"""``cycletools distill``: a compact student generator from a domain's (teacher's) weights."""

from __future__ import annotations

import argparse
import sys

HELP = """Distil a compact "sub-mobile" ResNet student from a domain's generator (the teacher): the
student learns the teacher's translations of DATA/trainA (L1) while a discriminator trained on
DATA/trainB keeps its outputs realistic (LSGAN), as in GAN Compression. Students: small (2.5 G
MACs at 256², ~22× fewer than ResNet-9: GAN Compression's horse→zebra layout), wide (its inner widths
with the residual stream cut to 96: 2.07 G), lean (the stream cut to 112, the upsampling layers
to 24/12: 2.00 G), medium (1.6 G) or tiny (0.6 G MACs); --stream, --inner-widths and --up-widths
change a size's residual stream, its blocks' inner widths and its two upsampling layers. Its widths, parameters
and MACs are printed before training; a student wider than its teacher anywhere is refused.

When the teacher is itself a wider sub-mobile ResNet (e.g. a GAN Compression generator), the
student starts from the teacher's weights: each cut keeps the channels whose loss the next layer
minds least, and every cut layer is refitted by least squares on a few real images; the student
also learns every block's output from the teacher's kept channels (--lambda-feat; it needs the
teacher at every step). --no-inherit starts from random weights instead. --lambda-perceptual also
compares the student's translations with the teacher's in an ImageNet network's features, which
mind the blurred textures L1 forgives (horse2zebra on a 2-core CPU: a lean student with it reached
FID 71.5 in 179 CPU minutes, a wide one without it 77.6 in 151; docs/training.md).

A CycleGAN generator's output depends on the whole image (InstanceNorm), so train on images of
the size you translate at: --whole-images --crop-size 256 (the teacher translates them once, and
the translations are kept in $CYCLETOOLS_HOME/teacher-pairs for the next run with the same teacher,
data and size, 0.84 GB for horse2zebra; with --lambda-feat 0 the teacher is not needed again); --lambda-gan 0 leaves the discriminator out (a step
costs about 2.5× less). The student is saved to RUN/student.safetensors every --save-every steps
and when the run stops (Ctrl-C stops after the current step), the discriminator beside it as
RUN/discriminator.safetensors (continue a run with --init RUN/student.safetensors
--init-discriminator RUN/discriminator.safetensors); RUN/distill.csv logs the losses. Register
the student as the domain's fast variant with
  cycletools weights import RUN/student.safetensors --plugin NAME --variant fast"""

STUDENT_SIZES = ("small", "wide", "lean", "medium", "tiny")  # the keys of cycletools.training.distill.STUDENTS


def inner_widths(text: str) -> list[int]:
    """An argparse type: ``64x3,128x6`` or ``48,48,64``: each block's inner width, in order (1 to 64 blocks)."""
    widths: list[int] = []
    try:
        for part in text.replace(" ", "").split(","):
            width, times, count = part.partition("x")
            if not width.isdigit() or (times and not count.isdigit()) or count == "0":
                raise ValueError
            widths += [int(width)] * (int(count) if count else 1)
    except ValueError:
        widths = []
    if not widths or len(widths) > 64 or not all(1 <= width <= 4096 for width in widths):
        raise argparse.ArgumentTypeError(f"takes each block's inner width, such as 64x3,128x6 (3 blocks of 64, "
                                         f"then 6 of 128) or 48,48,64: 1 to 64 blocks of 1 to 4096, not {text!r}")
    return widths


def up_widths(text: str) -> list[int]:
    """An argparse type: ``24/8`` (or ``24,8``): the two upsampling layers' widths, at half and at full size."""
    parts = text.replace(" ", "").replace(",", "/").split("/")
    if len(parts) != 2 or not all(part.isdigit() and 1 <= int(part) <= 4096 for part in parts):
        raise argparse.ArgumentTypeError(f"takes the two upsampling layers' widths, such as 24/8 (1 to 4096 each), "
                                         f"not {text!r}")
    return [int(part) for part in parts]


def add_parser(commands) -> None:
    from cycletools.cli.options import (
        BATCH,
        COUNT,
        COUNT_OR_ZERO,
        CROP,
        DECAY,
        RATE,
        WEIGHT,
        WIDTH,
        WORKERS,
        add_renamed,
    )

    parser = commands.add_parser("distill", help="distil a fast student generator from a domain's weights",
                                 description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plugin", required=True, metavar="NAME", help="the domain whose generator is the teacher")
    parser.add_argument("--weights", metavar="FILE", help="teacher weights instead of the domain's own (a file, or "
                        "hf://OWNER/REPO/PATH[@REVISION])")
    parser.add_argument("--download", action="store_true",
                        help="download the teacher's weights if they are not here yet (an hf:// file, the domain's)")
    parser.add_argument("--data", required=True, metavar="DIR", help="dataset with trainA (inputs) and trainB (real)")
    parser.add_argument("--student", choices=STUDENT_SIZES, default="small", help="student size (default: small)")
    parser.add_argument("--stream", type=WIDTH, metavar="N",
                        help="the student's residual stream (channels between its blocks) instead of its size's")
    parser.add_argument("--inner-widths", type=inner_widths, metavar="LIST",
                        help="each block's inner width instead of its size's, e.g. 64x3,128x6")
    parser.add_argument("--up-widths", type=up_widths, metavar="A/B",
                        help="the two upsampling layers' widths (half, then full size) instead of its size's, "
                             "e.g. 24/8")
    parser.add_argument("--no-teacher-cache", dest="teacher_cache", action="store_false",
                        help="with --whole-images, do not keep or reuse the teacher's translations on disk")
    parser.add_argument("--steps", type=COUNT, default=20000, help="training steps (default: 20000)")
    parser.add_argument("--time-budget", metavar="DURATION",
                        help="distil for this long instead of --steps (e.g. 10m, 2h): the steps are planned from "
                             "the measured speed, constant learning rate for the first half, then linear decay to "
                             "zero at the last step; --steps is ignored and --decay-steps refused")
    parser.add_argument("--whole-images", action="store_true",
                        help="train on whole images at --crop-size (and their mirror images), which the teacher "
                             "translates once, at the start, instead of at every step (kept in memory: 1.26 GB "
                             "for horse2zebra's 1,067 training images and their mirror images at 256²); the way to "
                             "distil a student for whole-image translation (the teacher still runs at every step "
                             "where --lambda-feat asks for its block features: add --lambda-feat 0)")
    parser.add_argument("--gan-target", choices=("real", "teacher"), default="real",
                        help="what the discriminator learns as real: real: DATA/trainB's images (default); teacher: "
                             "the teacher's translations, judged beside their input (a pix2pix discriminator), "
                             "which sharpens what L1 alone blurs")
    parser.add_argument("--snapshot-every", metavar="DURATION",
                        help="also keep the student every DURATION of training (e.g. 15m) as "
                             "RUN/snapshots/student-MMMM.Mmin.safetensors (minutes of training, e.g. "
                             "student-0015.0min), to score it against the time spent")
    parser.add_argument("--workers", type=WORKERS, metavar="N",
                        help="data loader processes (default: up to 8 on a GPU, 0 on the CPU)")
    parser.add_argument("--batch-size", type=BATCH, default=1)
    parser.add_argument("--crop-size", dest="size", type=CROP, default=256, help="training crop size (default: 256)")
    add_renamed(parser, "--size", "--crop-size", dest="size", type=CROP)
    parser.add_argument("--finish-size", type=CROP, metavar="SIZE", help="crop size of the last --finish-steps steps")
    parser.add_argument("--finish-steps", type=COUNT_OR_ZERO, default=0, metavar="N", help="steps at --finish-size (default: 0)")
    parser.add_argument("--load-size", type=CROP, metavar="SIZE",
                        help="images are resized to this square before cropping (default: 286/256 of the crop)")
    parser.add_argument("--lr", type=RATE, default=2e-4, help="Adam learning rate (default: 2e-4)")
    parser.add_argument("--decay-steps", type=COUNT_OR_ZERO, metavar="N",
                        help="the learning rate falls linearly to 0 over the last N steps (default: half the steps)")
    parser.add_argument("--lambda-rec", type=WEIGHT, default=10.0, help="weight of the L1 to the teacher (default: 10)")
    parser.add_argument("--lambda-gan", type=WEIGHT, default=1.0,
                        help="weight of the GAN loss (default: 1; 0 = distillation alone, no discriminator)")
    parser.add_argument("--lambda-feat", type=WEIGHT, default=1.0,
                        help="weight of the block-feature loss when the student inherits (default: 1)")
    parser.add_argument("--lambda-perceptual", type=WEIGHT, default=0.0,
                        help="weight of the distance to the teacher's translation in EfficientNet-Lite0's ImageNet "
                             "features, which minds blurred textures more than L1 does (default: 0, off; needs "
                             "cycletools[eval])")
    parser.add_argument("--ema", type=DECAY, metavar="DECAY",
                        help="keep an exponential moving average of the student's weights (e.g. 0.998: about the "
                             "last 500 steps), which wanders less than the weights themselves, and save it as "
                             "RUN/student.safetensors and the snapshots; the weights themselves are kept as "
                             "RUN/student-raw.safetensors")
    parser.add_argument("--ndf", type=WIDTH, default=64, help="discriminator width (default: 64, the paper's)")
    parser.add_argument("--init", metavar="FILE", help="start from an earlier student of the same size")
    parser.add_argument("--init-discriminator", metavar="FILE",
                        help="continue with an earlier run's discriminator (RUN/discriminator.safetensors, saved "
                             "with each student), so the GAN loss does not restart from an untrained judge; same "
                             "--gan-target and --ndf")
    parser.add_argument("--no-inherit", dest="inherit", action="store_false",
                        help="start from random weights even when the teacher is a wider sub-mobile ResNet "
                             "(by default the student inherits the teacher's weights, refitted)")
    parser.add_argument("--save-every", type=COUNT, default=1000, metavar="N", help="save the student every N steps")
    parser.add_argument("--name", help="run name (default: NAME-student)")
    parser.add_argument("--out", default="runs", help="folder that holds runs (default: runs)")
    parser.add_argument("--device", default=None, help="cpu, cuda ... (default: auto)")
    parser.set_defaults(handler=run_distill)


def run_distill(args: argparse.Namespace) -> int:
    from cycletools.training.budget import parse_duration

    budget = parse_duration(args.time_budget) if args.time_budget is not None else None  # refused before torch loads
    snapshots = parse_duration(args.snapshot_every) if args.snapshot_every is not None else None

    from cycletools import store
    from cycletools.cli.options import faithful_variant
    from cycletools.resolver import get_generator
    from cycletools.training.distill import DistillConfig, Distiller, student_widths

    teacher = get_generator(args.plugin, weights=args.weights, device="cpu", precision="fp32",
                            variant=faithful_variant(args.plugin, args.weights), download=args.download)
    widths = student_widths(args.student, args.stream, args.inner_widths, args.up_widths)
    config = DistillConfig(data=args.data, name=args.name or f"{args.plugin}-student", out=args.out,
                           student=args.student, student_config=widths,
                           teacher_cache=str(store.home() / "teacher-pairs") if args.teacher_cache else None, steps=args.steps, batch_size=args.batch_size, size=args.size,
                           finish_size=args.finish_size, finish_steps=args.finish_steps, load_size=args.load_size,
                           lr=args.lr, decay_steps=args.decay_steps, lambda_rec=args.lambda_rec,
                           lambda_gan=args.lambda_gan, lambda_feat=args.lambda_feat,
                           lambda_perceptual=args.lambda_perceptual, ndf=args.ndf,
                           save_every=args.save_every, init=args.init, init_discriminator=args.init_discriminator,
                           inherit=args.inherit, device=args.device,
                           time_budget=budget, workers=args.workers, whole_images=args.whole_images,
                           gan_target=args.gan_target, snapshot_every=snapshots, ema=args.ema)
    distiller = Distiller(teacher.module, config, teacher_source=str(teacher.source))
    print(distiller.describe(), file=sys.stderr)
    if distiller.pairs is not None and distiller.pairs.from_cache:
        print(f"the teacher's translations come from {distiller.pairs.cache_file}", file=sys.stderr)
    if distiller.inherited:
        print(f"the student starts from the teacher's channels, refitted ({teacher.source})", file=sys.stderr)
    result = distiller.run()
    planned = "the planned" if config.time_budget else f"{config.steps}"
    stopped = "" if result.completed else f" (interrupted after {result.steps} of {planned} steps; saved)"
    print(f"student {result.student}{stopped}: {result.parameters:,} parameters, {result.macs / 1e9:.2f} G MACs "
          f"at 256² ({result.teacher_macs / result.macs:.1f}× fewer than the teacher); L1 to the teacher "
          f"{result.first_rec:.4f} → {result.last_rec:.4f} over {result.steps} steps in {result.seconds / 60:.1f} min")
    print(f"use it as {args.plugin}'s fast variant: cycletools weights import {result.student} "
          f"--plugin {args.plugin} --variant fast")
    return 0 if result.completed else 130

