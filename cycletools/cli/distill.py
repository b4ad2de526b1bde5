"""``cycletools distill``: a compact student generator from a domain's (teacher's) weights."""

from __future__ import annotations

import argparse

HELP = """Distil a compact "sub-mobile" ResNet student from a domain's generator (the teacher): the
student learns the teacher's translations of DATA/trainA (L1) while a discriminator trained on
DATA/trainB keeps its outputs realistic (LSGAN), as in GAN Compression. Students: small (2.5 G
MACs at 256², ~22× fewer than ResNet-9) or tiny (0.6 G MACs). The result is RUN/student.safetensors;
register it as the domain's fast variant with
  cycletools weights import RUN/student.safetensors --plugin NAME --variant fast"""


def add_parser(commands) -> None:
    parser = commands.add_parser("distill", help="distil a fast student generator from a domain's weights",
                                 description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plugin", required=True, metavar="NAME", help="the domain whose generator is the teacher")
    parser.add_argument("--weights", metavar="FILE", help="teacher weights instead of the domain's own")
    parser.add_argument("--data", required=True, metavar="DIR", help="dataset with trainA (inputs) and trainB (real)")
    parser.add_argument("--student", choices=("small", "tiny"), default="small", help="student size (default: small)")
    parser.add_argument("--steps", type=int, default=20000, help="training steps (default: 20000)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--size", type=int, default=256, help="training crop size (default: 256)")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--name", help="run name (default: NAME-student)")
    parser.add_argument("--out", default="runs", help="folder that holds runs (default: runs)")
    parser.add_argument("--device", default=None, help="cpu, cuda ... (default: auto)")
    parser.set_defaults(handler=run_distill)


def run_distill(args: argparse.Namespace) -> int:
    from cycletools.pipelines.translator import Translator
    from cycletools.training.distill import DistillConfig, Distiller

    teacher = Translator.from_plugin(args.plugin, weights=args.weights, device="cpu", precision="fp32",
                                     variant="full")
    config = DistillConfig(data=args.data, name=args.name or f"{args.plugin}-student", out=args.out,
                           student=args.student, steps=args.steps, batch_size=args.batch_size, size=args.size,
                           lr=args.lr, device=args.device)
    result = Distiller(teacher.generator, config, teacher_source=teacher.source).run()
    print(f"student {result.student}: {result.parameters:,} parameters, {result.macs / 1e9:.2f} G MACs at 256² "
          f"({result.teacher_macs / result.macs:.1f}× fewer than the teacher); L1 to the teacher "
          f"{result.first_rec:.4f} → {result.last_rec:.4f} over {result.steps} steps")
    print(f"use it as {args.plugin}'s fast variant: cycletools weights import {result.student} "
          f"--plugin {args.plugin} --variant fast")
    return 0
