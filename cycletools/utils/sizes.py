"""Frame and working sizes: shorter-side scaling, and the bounds on what the generator is given."""

from __future__ import annotations

import math
import re

MAX_WORKING_SIDE = 8192            # neither side of what the generator sees exceeds this
MAX_WORKING_PIXELS = 4096 * 4096   # nor its area (about 16.8 megapixels)
MAX_FRAME_SIDE = 8192              # a video resized by --frame-size/--scale: at most 8K
MAX_FRAME_PIXELS = 8192 * 4320
SIZE_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}  # as Gradio reads max_file_size


def parse_size(text: str) -> int:
    """``200mb``, ``2 GB``... in bytes (powers of 1024); ValueError for anything else or zero."""
    match = re.fullmatch(r"\s*(\d{1,12})\s*(b|kb|mb|gb|tb)\s*", str(text).lower())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"takes a size such as 200mb or 2gb (a whole number and b, kb, mb, gb or tb), not {text!r}")
    return int(match.group(1)) * SIZE_UNITS[match.group(2)]


def shorter_side_to(width: int, height: int, target: int) -> tuple[int, int]:
    """``(width, height)`` scaled so the shorter side is ``target`` (aspect kept)."""
    return scaled(width, height, target / min(width, height))


LARGEST = 2**31  # a side beyond any frame: sizes are capped here before the checks refuse them


def scaled(width: int, height: int, factor: float) -> tuple[int, int]:
    """``(width, height)`` times ``factor`` (finite, positive), rounded, at least 1 pixel (and capped far
    above any limit, so that a huge factor gives a size the checks refuse, not an overflow)."""
    return (max(1, round(min(width * factor, LARGEST))), max(1, round(min(height * factor, LARGEST))))


def check_frame_size(width: int, height: int, option: str) -> tuple[int, int]:
    """A video frame size asked for by ``option`` (e.g. ``--frame-size 33``): at least 2 pixels a side, at most 8K."""
    from cycletools.errors import UsageError

    if min(width, height) < 2:
        raise UsageError(f"{option} gives {width}x{height} frames; frames need at least 2 pixels a side")
    if max(width, height) > MAX_FRAME_SIDE or width * height > MAX_FRAME_PIXELS:
        raise UsageError(f"{option} gives {width}x{height} frames; resized frames may have at most "
                              f"{MAX_FRAME_SIDE} pixels a side and {MAX_FRAME_PIXELS / 1e6:.1f} megapixels (8K)")
    return width, height


def working_resolution(width: int, height: int, working_size: int | None, max_side: int = MAX_WORKING_SIDE,
                       max_pixels: int = MAX_WORKING_PIXELS) -> tuple[int, int]:
    """The size an image is translated at: its shorter side scaled to ``working_size`` (native when
    ``None``), then scaled down where a side would exceed ``max_side`` or the area ``max_pixels``.

    So a 256×1 strip at working size 256 is translated at 8192×32, not 65536×256, and a
    48-megapixel photo at about 16.8 megapixels: the work is bounded by what the model does,
    whatever the input's shape. Results are scaled back to the input's size.
    """
    factor = 1.0 if working_size is None else working_size / min(width, height)
    factor = min(factor, max_side / max(width, height), math.sqrt(max_pixels / (width * height)))
    return scaled(width, height, factor)
