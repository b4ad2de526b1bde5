"""``cycletools export``: a generator as ONNX or TorchScript, checked against PyTorch."""

from __future__ import annotations

import argparse
import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports pathlib's Path only where a command runs
    from pathlib import Path

HELP = """Export a generator (a domain's, a weights file's or a training run's) to ONNX (opset 18,
for ONNX Runtime and other engines) or TorchScript. The export takes NCHW float images in
[-1, 1]; with --dynamic-size any height and width that are multiples of 4, otherwise
--input-size×--input-size only. After writing, the export is run beside PyTorch on random inputs (several
sizes, odd ones through the same padding the translator uses) and must agree within 1e-3; an
export that does not is removed. The output is checked before anything loads: an ONNX export is
named *.onnx, a TorchScript one anything else, and the folder must be writable."""


def add_parser(commands) -> None:
    from cycletools.cli.options import CROP, add_renamed

    parser = commands.add_parser("export", help="export a generator to ONNX or TorchScript", description=HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plugin", metavar="NAME", help="a registered domain")
    parser.add_argument("--weights", metavar="FILE", help="a generator weights file, or "
                        "hf://OWNER/REPO/PATH[@REVISION]")
    parser.add_argument("--download", action="store_true",
                        help="download the weights if they are not here yet (an hf:// file, the domain's)")
    parser.add_argument("--run", metavar="DIR", help="a training run folder")
    parser.add_argument("--direction", choices=("a2b", "b2a"), default="a2b", help="with --run (default: a2b)")
    parser.add_argument("--format", choices=("onnx", "torchscript"), default="onnx", help="default: onnx")
    parser.add_argument("-o", "--output", metavar="FILE", help="default: NAME.onnx / NAME.pt here")
    parser.add_argument("--dynamic-size", action="store_true", help="accept any multiple-of-4 height and width")
    parser.add_argument("--input-size", dest="export_size", type=CROP, default=256,
                        help="the (fixed or example) input height and width of the export (default: 256)")
    add_renamed(parser, "--size", "--input-size", dest="export_size", type=CROP)
    parser.add_argument("--int8", action="store_true",
                        help="ONNX only: also write NAME.int8.onnx, convolutions quantised to int8 (per-channel "
                             "weights, uint8 activations, QDQ) and calibrated on --calibrate DIR")
    parser.add_argument("--calibrate", metavar="DIR",
                        help="with --int8: images of the domain's input side (e.g. DATA/trainA); 32 are used")
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:

    from cycletools.errors import CycletoolsError
    from cycletools.export import PARITY_TOLERANCE, export_generator, load_exported, parity
    from cycletools.pipelines.translator import Translator
    from cycletools.resolver import get_generator

    target, int8_target = check_export_targets(args)
    calibration = None
    if args.int8:  # read before anything is written: a bad folder must not leave an fp32 export behind
        from cycletools.quantize import calibration_inputs

        calibration = calibration_inputs(args.calibrate, args.export_size)
    from cycletools.cli.options import faithful_variant

    loaded = get_generator(args.plugin, weights=args.weights, run=args.run, direction=args.direction,
                           variant=faithful_variant(args.plugin, args.weights), device="cpu", precision="fp32",
                           download=args.download)
    translator = Translator.from_loaded(loaded, working_size=None)
    export_generator(translator.generator, target, args.format, args.export_size, args.dynamic_size)
    sizes = [(args.export_size, args.export_size)] + ([(36, 52), (45, 31), (17, 9)] if args.dynamic_size else [])
    with removed_on_failure(target, f"checking the {args.format} export"):
        exported = Translator(load_exported(target), device="cpu", config=translator.config, precision="fp32")
        worst = parity(translator.translate_tensor, exported.translate_tensor, sizes)
        if worst > PARITY_TOLERANCE:
            raise CycletoolsError(f"the {args.format} export differs from PyTorch by {worst:.2e} "
                                  f"(> {PARITY_TOLERANCE}); nothing was kept")
    shape = "any multiple-of-4 size" if args.dynamic_size else f"{args.export_size}×{args.export_size}"
    print(f"{target}: {args.format}, {shape}; max difference from PyTorch {worst:.1e} on "
          + ", ".join(f"{w}×{h}" for h, w in sizes))
    if args.int8:
        export_int8(translator, target, int8_target, args.calibrate, calibration)
    return 0


def check_export_targets(args: argparse.Namespace) -> "tuple[Path, Path | None]":
    """The export's file (and the int8 one's), checked before anything loads: options, names, folders."""
    from pathlib import Path

    from cycletools.errors import UsageError
    from cycletools.export import FORMATS
    from cycletools.utils.atomic import check_writable

    if args.int8 and args.format != "onnx":
        raise UsageError("--int8 writes ONNX: it does not go with --format torchscript")
    if args.int8 and not args.calibrate:
        raise UsageError("--int8 needs --calibrate DIR (images of the domain's input side, e.g. DATA/trainA)")
    if args.calibrate and not args.int8:
        raise UsageError("--calibrate goes with --int8 (it calibrates the int8 export)")
    suffix = FORMATS[args.format]
    name = args.plugin or (Path(args.weights).stem if args.weights else f"{Path(args.run).name}_{args.direction}"
                           if args.run else "generator")
    target = Path(args.output or f"{name}{suffix}")
    if target.is_dir():
        raise UsageError(f"-o {target} is a folder; give a file name, e.g. {target / (name + suffix)}")
    if (target.suffix.lower() == ".onnx") != (args.format == "onnx"):
        other = "torchscript" if args.format == "onnx" else "onnx"
        article = {"onnx": "an ONNX", "torchscript": "a TorchScript"}[args.format]
        raise UsageError(f"-o {target}: {article} export is named NAME{suffix} "
                         f"(or give --format {other} for {target.suffix or 'this name'})")
    check_writable(target)
    int8_target = target.with_name(f"{target.stem}.int8.onnx") if args.int8 else None
    if int8_target is not None:
        if int8_target.is_dir():
            raise UsageError(f"{int8_target}, where the int8 export goes, is a folder")
        check_writable(int8_target)
    return target, int8_target


@contextlib.contextmanager
def removed_on_failure(path: "Path", what: str, kept: str = ""):
    """Remove ``path`` if the block fails; a failure that is not cycletools' own becomes one error line."""
    from cycletools.errors import CycletoolsError, first_line

    try:
        yield
    except CycletoolsError:
        path.unlink(missing_ok=True)
        raise
    except Exception as exc:  # the runtime's or the quantiser's own failure
        path.unlink(missing_ok=True)
        raise CycletoolsError(f"{what} failed ({first_line(exc, with_type=True)}){kept}") from None
    except BaseException:  # Ctrl-C: nothing half-checked is left behind
        path.unlink(missing_ok=True)
        raise


INT8_MEAN_LIMIT = 12.0  # grey levels: beyond this the quantised generator is broken, not merely approximate


def export_int8(translator, fp32: "Path", target: "Path", calibrate: str, inputs: list) -> "Path":
    """Quantise the fp32 ONNX export into ``target``, then compare it with PyTorch on the calibration
    ``inputs`` (one at a time: a fixed-size export takes batches of one), in grey levels."""
    import torch

    from cycletools.errors import CycletoolsError
    from cycletools.export import load_exported
    from cycletools.pipelines.translator import Translator
    from cycletools.quantize import quantize_onnx

    kept = f"; {fp32} (fp32) is kept"
    with removed_on_failure(target, "the int8 export", kept):
        quantize_onnx(fp32, target, inputs)
        quantized = Translator(load_exported(target), device="cpu", config=translator.config, precision="fp32")
        checked = inputs[:8]
        difference = torch.cat([(translator.translate_tensor(torch.from_numpy(x))
                                 - quantized.translate_tensor(torch.from_numpy(x))).abs().mul(127.5).flatten()
                                for x in checked])
        mean, p99 = float(difference.mean()), float(torch.quantile(difference[::97], 0.99))
        if mean > INT8_MEAN_LIMIT:
            raise CycletoolsError(f"the int8 export differs from PyTorch by {mean:.1f} grey levels on average "
                                  f"(> {INT8_MEAN_LIMIT}), so it was not kept{kept}")
    images = "image" if len(inputs) == 1 else "images"
    print(f"{target}: int8 (QDQ, per-channel), calibrated on {len(inputs)} {images} of {calibrate}; differs from "
          f"PyTorch by {mean:.2f} grey levels on average (99th percentile {p99:.1f}) on {len(checked)} of them")
    return target
