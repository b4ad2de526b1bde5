"""``cycletools translate``: translate image files, folders or globs with a generator."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = """Translate images with a generator: a registered domain (--plugin, see 'cycletools plugins'),
a project weights file (.safetensors), an official CycleGAN .pth file (architecture inferred
from its shapes), or a training run folder.

Each output has exactly its input's width and height, whatever the mode (greyscale, palette,
16-bit, RGBA: alpha is carried over unchanged) or EXIF orientation (outputs are stored upright).
With one input file, -o names the output file; otherwise -o is a folder (created if needed) and
input file names are kept. A file that cannot be read gets a one-line error and the others
are still translated. Exit status: 0 all done, 1 nothing translated, 3 some files failed."""


def add_parser(commands) -> None:
    parser = commands.add_parser("translate", help="translate images with a trained generator",
                                 description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder or glob pattern")
    add_generator_options(parser)
    parser.add_argument("--size", metavar="N|native", default=None,
                        help="translate with the shorter side scaled to N pixels, then scale back to the "
                             "input's size (default: the plugin's recommended size with --plugin, else native)")
    parser.add_argument("-o", "--output", metavar="OUT", default=None,
                        help="output file (one input) or folder (default: folder 'translated')")
    parser.set_defaults(handler=run_translate)


def plan_outputs(inputs: list[Path], output: str | None, single_file_input: bool) -> list[Path]:
    """Where each input goes: one named file, or the same name inside an output folder."""
    from cycletools.data.images import is_image_path
    from cycletools.errors import CycletoolsError

    if output is not None and is_image_path(output) and not Path(output).is_dir():
        if not single_file_input:
            raise CycletoolsError(f"-o {output} names a file, but there are {len(inputs)} inputs; "
                                  "give a folder with several inputs")
        target = Path(output)
        if not target.parent.is_dir():
            raise CycletoolsError(f"output folder does not exist: {target.parent}")
        return [target]
    folder = Path(output or "translated")
    targets, used = [], set()
    for path in inputs:
        target, n = folder / path.name, 1
        while target in used:
            n += 1
            target = folder / f"{path.stem}-{n}{path.suffix}"
        used.add(target)
        targets.append(target)
    return targets


def check_targets(inputs: list[Path], targets: list[Path]) -> None:
    """Before the generator loads, creating nothing: the output folder takes files, or can be made; not all in place."""
    from cycletools.errors import CycletoolsError
    from cycletools.utils.atomic import check_writable

    folder = targets[0].parent
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    if not existing.is_dir():
        raise CycletoolsError(f"cannot create output folder {folder}: {existing} is not a folder")
    check_writable(targets[0], within=existing)
    if all(source.resolve() == target.resolve() for source, target in zip(inputs, targets)):
        raise CycletoolsError(f"{targets[0]}: refusing to overwrite the input image")


def make_folder(folder: Path) -> None:
    """Create the output folder (and its parents) if needed; one clear error if that fails."""
    from cycletools.errors import CycletoolsError

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CycletoolsError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None


def parse_size(value: str | None) -> int | None | str:
    """``None`` → "auto", ``native`` → None, else a positive pixel count."""
    from cycletools.errors import UsageError

    if value is None:
        return "auto"
    if value == "native":
        return None
    if not value.isdigit() or int(value) < 8:
        raise UsageError(f"--size takes a number of pixels (at least 8) or 'native', not {value!r}")
    return int(value)


def add_generator_options(parser: argparse.ArgumentParser) -> None:
    """--plugin / --weights / --run and their companions, shared by the commands that translate."""
    parser.add_argument("--plugin", metavar="NAME", help="a registered domain, e.g. horse2zebra; its weights "
                        "come from --weights, else bundled, else the cache, else --download")
    parser.add_argument("--weights", metavar="FILE", help="generator weights (.safetensors or .pth)")
    parser.add_argument("--run", metavar="DIR", help="training run folder (uses DIR/weights/)")
    parser.add_argument("--direction", choices=("a2b", "b2a"), default="a2b",
                        help="with --run: a2b (trainA→trainB style) or b2a (default: a2b)")
    parser.add_argument("--download", action="store_true",
                        help="with --plugin: download the domain's weights if they are not here yet")
    parser.add_argument("--device", metavar="DEV", default=None, help="cpu, cuda, cuda:1 ... (default: auto)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                        help="compute precision: auto is fp32 on the CPU, fp16 on CUDA; bf16 roughly halves "
                             "CPU time on CPUs with bf16 support, within a few grey levels of fp32")
    parser.add_argument("--variant", choices=("auto", "full", "fast"), default="auto",
                        help="with --plugin: the full generator or its compact fast student; auto takes the "
                             "fast one on the CPU when it is here (default: auto)")
    parser.add_argument("--backend", choices=("torch", "compile", "onnxruntime"), default="torch",
                        help="torch: plain PyTorch; compile: PyTorch with torch.compile, fastest for videos, "
                             "the webcam and folders of same-sized images (the first call per frame size waits "
                             "for compilation, seconds, cached on disk for later runs); onnxruntime (CPU): an "
                             "ONNX export run with ONNX Runtime, made on first use and cached (default: torch)")


def load_translator(args: argparse.Namespace):
    """The Translator that --plugin / --weights / --run name (shared by commands that translate)."""
    from cycletools.errors import UsageError
    from cycletools.pipelines.translator import Translator

    if sum(bool(x) for x in (args.plugin, args.run, args.weights and not args.plugin)) != 1:
        raise UsageError("name the generator with one of --plugin NAME, --weights FILE or --run DIR "
                              "(--weights may also go with --plugin)")
    size = parse_size(getattr(args, "size", None))
    options = {"device": args.device, "precision": args.precision, "backend": getattr(args, "backend", "torch")}
    if options["backend"] == "compile":
        print("compiling the generator with torch.compile: the first frames wait for it (cached for later runs)",
              file=sys.stderr)
    if args.plugin:
        translator = Translator.from_plugin(args.plugin, weights=args.weights, download=args.download,
                                            working_size=size, variant=getattr(args, "variant", "auto"), **options)
        if translator.variant == "fast" and getattr(args, "variant", "auto") == "auto":
            where = "on the CPU" if translator.device.type == "cpu" else "(the only one here)"
            print(f"using the fast variant of {args.plugin} {where} (--variant full for the full generator)",
                  file=sys.stderr)
        return translator
    translator = (Translator.from_file(args.weights, **options) if args.weights
                  else Translator.from_run(args.run, args.direction, **options))
    translator.working_size = None if size == "auto" else size
    return translator


def translate_file(translator, source: Path, target: Path) -> None:
    """Translate one image file, or every frame of an animated GIF/WebP/PNG (timings kept)."""
    from PIL import Image

    from cycletools.data.images import open_image, save_image
    from cycletools.media.animation import is_animated, read_animation, save_animation

    image = open_image(source)  # decodes the first frame: unreadable files fail here, with a clear error
    with Image.open(source) as raw:
        animation = read_animation(raw, source) if is_animated(raw) else None
    if animation is not None:
        animation.frames = [translator(frame) for frame in animation.frames]
        save_animation(animation, target)
    else:
        save_image(translator(image), target, icc_profile=image.info.get("icc_profile"))


def run_translate(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from cycletools.data.images import expand_inputs
    from cycletools.errors import CycletoolsError

    inputs, skipped = expand_inputs(args.inputs)
    if not inputs:
        raise CycletoolsError("no images to translate" + (f" ({skipped} non-image files skipped)" if skipped else ""))
    single = len(inputs) == 1 and len(args.inputs) == 1 and Path(args.inputs[0]).is_file()
    targets = plan_outputs(inputs, args.output, single)
    check_targets(inputs, targets)
    translator = load_translator(args)
    make_folder(targets[0].parent)

    done, failed = 0, 0
    bar = tqdm(list(zip(inputs, targets)), unit="img", disable=len(inputs) < 2, dynamic_ncols=True)
    for source, target in bar:
        try:
            if source.resolve() == target.resolve():
                raise CycletoolsError(f"{target}: refusing to overwrite the input image")
            translate_file(translator, source, target)
            done += 1
        except CycletoolsError as exc:
            failed += 1
            tqdm.write(f"cycletools: error: {exc}", file=sys.stderr)
    where = targets[0] if single else targets[0].parent
    print(f"translated {done} of {len(inputs)} image(s) → {where}"
          + (f"; {failed} failed" if failed else "") + (f"; {skipped} non-image files skipped" if skipped else ""))
    if done == 0:
        return 1
    return 3 if failed else 0
