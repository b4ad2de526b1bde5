"""``cycletools export``: a generator as ONNX or TorchScript, checked against PyTorch."""

from __future__ import annotations

import argparse

HELP = """Export a generator (a domain's, a weights file's or a training run's) to ONNX (opset 18,
for ONNX Runtime and other engines) or TorchScript. The export takes NCHW float images in
[-1, 1]; with --dynamic-size any height and width that are multiples of 4, otherwise
--input-size×--input-size only. After writing, the export is run beside PyTorch on random inputs (several
sizes, odd ones through the same padding the translator uses) and must agree within 1e-3."""


def add_parser(commands) -> None:
    from cycletools.cli.options import add_renamed

    parser = commands.add_parser("export", help="export a generator to ONNX or TorchScript", description=HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plugin", metavar="NAME", help="a registered domain")
    parser.add_argument("--weights", metavar="FILE", help="a generator weights file")
    parser.add_argument("--run", metavar="DIR", help="a training run folder")
    parser.add_argument("--direction", choices=("a2b", "b2a"), default="a2b", help="with --run (default: a2b)")
    parser.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="default: onnx")
    parser.add_argument("-o", "--output", metavar="FILE", help="default: NAME.onnx / NAME.pt here")
    parser.add_argument("--dynamic-size", action="store_true", help="accept any multiple-of-4 height and width")
    parser.add_argument("--input-size", dest="export_size", type=int, default=256,
                        help="the (fixed or example) input height and width of the export (default: 256)")
    add_renamed(parser, "--size", "--input-size", dest="export_size", type=int)
    parser.add_argument("--int8", action="store_true",
                        help="ONNX only: also write NAME.int8.onnx, convolutions quantised to int8 (per-channel "
                             "weights, uint8 activations, QDQ) and calibrated on --calibrate DIR")
    parser.add_argument("--calibrate", metavar="DIR",
                        help="with --int8: images of the domain's input side (e.g. DATA/trainA); 32 are used")
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cycletools.errors import CycletoolsError, UsageError
    from cycletools.export import FORMATS, PARITY_TOLERANCE, export_generator, load_exported, parity
    from cycletools.pipelines.translator import Translator
    from cycletools.resolver import get_generator

    if args.int8 and (args.format != "onnx" or not args.calibrate):
        raise UsageError("--int8 writes ONNX and needs --calibrate DIR (images of the domain's input side)")
    if args.calibrate and not args.int8:
        raise UsageError("--calibrate goes with --int8 (it calibrates the int8 export)")
    name = args.plugin or (Path(args.weights).stem if args.weights else f"{Path(args.run).name}_{args.direction}"
                           if args.run else "generator")
    target = Path(args.output or f"{name}{FORMATS[args.format]}")
    if not target.parent.is_dir():
        raise CycletoolsError(f"output folder does not exist: {target.parent}")
    calibration = None
    if args.int8:  # read before anything is written: a bad folder must not leave an fp32 export behind
        from cycletools.quantize import calibration_inputs

        calibration = calibration_inputs(args.calibrate, args.export_size)
    loaded = get_generator(args.plugin, weights=args.weights, run=args.run, direction=args.direction,
                           variant="full", device="cpu", precision="fp32")
    translator = Translator.from_loaded(loaded, working_size=None)
    export_generator(translator.generator, target, args.format, args.export_size, args.dynamic_size)
    exported = Translator(load_exported(target), device="cpu", config=translator.config, precision="fp32")
    sizes = [(args.export_size, args.export_size)] + ([(36, 52), (45, 31), (17, 9)] if args.dynamic_size else [])
    worst = 0.0
    for height, width in sizes:
        if not args.dynamic_size and (height, width) != (args.export_size, args.export_size):
            continue
        worst = max(worst, parity(translator.translate_tensor, exported.translate_tensor, [(height, width)]))
    if worst > PARITY_TOLERANCE:
        target.unlink(missing_ok=True)
        raise CycletoolsError(f"the {args.format} export differs from PyTorch by {worst:.2e} (> {PARITY_TOLERANCE}); "
                              "nothing was kept")
    shape = "any multiple-of-4 size" if args.dynamic_size else f"{args.export_size}×{args.export_size}"
    print(f"{target}: {args.format}, {shape}; max difference from PyTorch {worst:.1e} on "
          + ", ".join(f"{w}×{h}" for h, w in sizes))
    if args.int8:
        export_int8(translator, target, args.calibrate, calibration)
    return 0


INT8_MEAN_LIMIT = 12.0  # grey levels: beyond this the quantised generator is broken, not merely approximate


def export_int8(translator, fp32: "Path", calibrate: str, inputs: list) -> "Path":
    """Quantise the fp32 ONNX export, then compare it with PyTorch on the calibration ``inputs``, in grey levels."""
    import numpy as np
    import torch

    from cycletools.errors import CycletoolsError
    from cycletools.export import load_exported
    from cycletools.pipelines.translator import Translator
    from cycletools.quantize import quantize_onnx

    target = quantize_onnx(fp32, fp32.with_name(f"{fp32.stem}.int8.onnx"), inputs)
    quantized = Translator(load_exported(target), device="cpu", config=translator.config, precision="fp32")
    batch = torch.from_numpy(np.concatenate(inputs[:8]))
    difference = (translator.translate_tensor(batch) - quantized.translate_tensor(batch)).abs().mul(127.5)
    mean, p99 = float(difference.mean()), float(torch.quantile(difference.flatten()[::97], 0.99))
    if mean > INT8_MEAN_LIMIT:
        target.unlink(missing_ok=True)
        raise CycletoolsError(f"the int8 export differs from PyTorch by {mean:.1f} grey levels on average "
                              f"(> {INT8_MEAN_LIMIT}); nothing was kept")
    print(f"{target}: int8 (QDQ, per-channel), calibrated on {len(inputs)} images of {calibrate}; differs from "
          f"PyTorch by {mean:.2f} grey levels on average (99th percentile {p99:.1f}) on {len(batch)} of them")
    return target
