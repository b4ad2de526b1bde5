"""``cycletools translate``: translate image files, folders or globs with a generator."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HELP = """Translate images with a generator: a registered domain (--plugin, see 'cycletools plugins'),
a project weights file (.safetensors), an official CycleGAN .pth file (architecture inferred
from its shapes), or a training run folder.

Each output has exactly its input's width and height, whatever the mode (greyscale, palette,
16-bit, RGBA: alpha is carried over unchanged) or EXIF orientation (outputs are stored upright).
With one input file, -o names the output file; otherwise -o is a folder (created if needed) and
input file names are kept. --side-by-side writes each input and its translation next to each
other instead (twice the input's width). A file that cannot be read gets a one-line error and the
others are still translated. Exit status: 0 all done, 1 nothing translated, 3 some files failed."""


def add_parser(commands) -> None:
    parser = commands.add_parser("translate", help="translate images with a trained generator",
                                 description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    from cycletools.cli.options import add_generator_options, add_renamed

    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder or glob pattern")
    add_generator_options(parser)
    add_renamed(parser, "--size", "--working-size", dest="working_size")
    parser.add_argument("-o", "--output", metavar="OUT", default=None,
                        help="output file (one input) or folder (default: folder 'translated')")
    parser.add_argument("--side-by-side", action="store_true",
                        help="write the input and its translation next to each other (a before/after picture "
                             "twice the input's width)")
    parser.set_defaults(handler=run_translate)


def plan_outputs(inputs: list[Path], output: str | None, single_file_input: bool) -> list[Path]:
    """Where each input goes: one named file, or the same name inside an output folder."""
    from cycletools.data.images import IMAGE_EXTENSIONS, is_image_path
    from cycletools.errors import CycletoolsError, UsageError

    if (output is not None and Path(output).suffix and not is_image_path(output) and not Path(output).is_dir()
            and not output.endswith(("/", os.sep))):
        raise UsageError(f"-o {output}: not an image format ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                         f"for a folder of that name, write -o {output}/")
    if output is not None and is_image_path(output) and not Path(output).is_dir():
        if not single_file_input:
            raise UsageError(f"-o {output} names a file, but there are {len(inputs)} inputs; "
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


def translate_file(translator, source: Path, target: Path, beside: bool = False) -> None:
    """Translate one image file, or every frame of an animated GIF/WebP/PNG (timings kept); ``beside``:
    each input on the left of its translation."""
    from PIL import Image

    from cycletools.data.images import open_image, save_image, side_by_side
    from cycletools.media.animation import is_animated, read_animation, save_animation

    def translate(image: Image.Image) -> Image.Image:
        return side_by_side(image, translator(image)) if beside else translator(image)

    image = open_image(source)  # decodes the first frame: unreadable files fail here, with a clear error
    with Image.open(source) as raw:
        animation = read_animation(raw, source) if is_animated(raw) else None
    if animation is not None:
        animation.frames = [translate(frame) for frame in animation.frames]
        save_animation(animation, target)
    else:
        save_image(translate(image), target, icc_profile=image.info.get("icc_profile"))


def run_translate(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from cycletools.cli.options import translator_from_args
    from cycletools.data.images import expand_inputs
    from cycletools.errors import CycletoolsError

    inputs, skipped = expand_inputs(args.inputs)
    if not inputs:
        raise CycletoolsError("no images to translate" + (f" ({skipped} non-image files skipped)" if skipped else ""))
    single = len(inputs) == 1 and len(args.inputs) == 1 and Path(args.inputs[0]).is_file()
    targets = plan_outputs(inputs, args.output, single)
    check_targets(inputs, targets)
    translator = translator_from_args(args)
    make_folder(targets[0].parent)

    done, failed = 0, 0
    bar = tqdm(list(zip(inputs, targets)), unit="img", disable=len(inputs) < 2, dynamic_ncols=True)
    for source, target in bar:
        try:
            if source.resolve() == target.resolve():
                raise CycletoolsError(f"{target}: refusing to overwrite the input image")
            translate_file(translator, source, target, args.side_by_side)
            done += 1
        except CycletoolsError as exc:
            failed += 1
            tqdm.write(f"cycletools: error: {exc}", file=sys.stderr)
    where = targets[0] if single else targets[0].parent
    print(f"translated {done} of {len(inputs)} image(s)" + (f" → {where}" if done else "")
          + (f"; {failed} failed" if failed else "") + (f"; {skipped} non-image files skipped" if skipped else ""))
    if done == 0:
        return 1
    return 3 if failed else 0
