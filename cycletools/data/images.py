"""Reading images of any mode into RGB (+ alpha), listing image folders, saving safely."""

from __future__ import annotations

import glob
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cycletools.errors import CycletoolsError
from cycletools.utils.atomic import atomic_path

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff",
                              ".ppm", ".pgm", ".pnm", ".gif"})
# Formats whose files cannot hold an alpha channel.
NO_ALPHA_EXTENSIONS = frozenset({".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".pnm"})


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


@dataclass
class ImageListing:
    """Image files found in a folder, and how many other files were passed over."""

    files: list[Path]
    skipped: int


def list_images(folder: str | os.PathLike, recursive: bool = False) -> ImageListing:
    """Image files in ``folder`` by extension, sorted by name; other files are counted."""
    folder = Path(folder)
    entries = folder.rglob("*") if recursive else folder.iterdir()
    files, skipped = [], 0
    for entry in entries:
        if not entry.is_file() or entry.name.startswith("."):
            continue
        if is_image_path(entry):
            files.append(entry)
        else:
            skipped += 1
    return ImageListing(sorted(files), skipped)


def expand_inputs(inputs: list[str]) -> tuple[list[Path], int]:
    """Expand files, folders and glob patterns into image paths; returns ``(paths, skipped)``.

    A file named explicitly is kept whatever its extension (so a mislabelled image still
    gets a clear per-file error); folders and globs keep image extensions only.
    """
    paths: list[Path] = []
    skipped = 0
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            listing = list_images(path)
            paths += listing.files
            skipped += listing.skipped
        elif path.exists():
            paths.append(path)
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(item, recursive=True))
            for match in matches:
                if match.is_file() and is_image_path(match):
                    paths.append(match)
                elif match.is_file():
                    skipped += 1
            if not matches:
                raise CycletoolsError(f"no files match {item!r}")
        else:
            raise CycletoolsError(f"input not found: {item}")
    seen: set[Path] = set()
    unique = [p for p in paths if not (p.resolve() in seen or seen.add(p.resolve()))]
    return unique, skipped


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode an image, upright per its EXIF orientation."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise CycletoolsError(f"{path}: file not found") from None
    except UnidentifiedImageError:
        raise CycletoolsError(f"{path}: not an image file (format not recognised)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise CycletoolsError(f"{path}: unreadable image ({exc})") from None


def _to_8bit(array: np.ndarray) -> np.ndarray:
    """Scale a 16/32-bit integer or float array to uint8."""
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        top = 1.0 if array.size and float(np.nanmax(array)) <= 1.0 else 255.0
        return np.clip(np.nan_to_num(array) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    top = 65535.0 if array.size and int(array.max()) > 255 else 255.0
    return np.clip(array.astype(np.float64) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)


def split_alpha(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """Return ``(rgb, alpha)`` for any PIL mode; ``alpha`` is ``None`` for opaque modes.

    Handles 1, L, LA, P (with or without transparency), PA, RGB, RGBA, CMYK, YCbCr,
    and 16/32-bit integer or float greyscale (I;16*, I, F), scaled to 8 bits.
    """
    mode = image.mode
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    elif mode == "PA":
        image, mode = image.convert("RGBA"), "RGBA"
    if mode.startswith("I") or mode == "F":
        grey = Image.fromarray(_to_8bit(np.asarray(image)))
        return grey.convert("RGB"), None
    if mode == "RGBA":
        return image.convert("RGB"), image.getchannel("A")
    if mode == "LA":
        return image.getchannel("L").convert("RGB"), image.getchannel("A")
    if mode == "RGBa":
        image = image.convert("RGBA")
        return image.convert("RGB"), image.getchannel("A")
    return image.convert("RGB"), None


def side_by_side(before: Image.Image, after: Image.Image) -> Image.Image:
    """``before`` (any mode, read as the translator reads it) on the left of ``after`` (its translation,
    RGB or RGBA, the same size): one picture twice as wide, in ``after``'s mode."""
    rgb, alpha = split_alpha(before)
    left = rgb if alpha is None else Image.merge("RGBA", (*rgb.split(), alpha))
    canvas = Image.new(after.mode, (left.width + after.width, after.height))
    canvas.paste(left.convert(after.mode), (0, 0))
    canvas.paste(after, (left.width, 0))
    return canvas


def save_image(image: Image.Image, path: str | os.PathLike, icc_profile: bytes | None = None) -> Path:
    """Save atomically: the target path only ever holds a complete file.

    An alpha channel is dropped (with a warning) for formats that cannot store it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise CycletoolsError(f"{path}: unsupported output format {path.suffix or '(none)'!r}; "
                              f"use one of {', '.join(sorted(IMAGE_EXTENSIONS))}")
    if image.mode == "RGBA" and suffix in NO_ALPHA_EXTENSIONS:
        warnings.warn(f"{path.name}: {suffix} cannot store transparency; alpha channel dropped",
                      stacklevel=2)
        image = image.convert("RGB")
    elif image.mode == "RGBA" and suffix == ".gif":
        alpha = image.getchannel("A")
        if any(0 < level < 255 and count for level, count in enumerate(alpha.histogram())):
            warnings.warn(f"{path.name}: .gif stores a pixel as transparent or opaque, nothing between; partly "
                          "transparent pixels become one or the other (PNG or WebP keep them)", stacklevel=2)
    options: dict = {"icc_profile": icc_profile} if icc_profile else {}
    if suffix in {".jpg", ".jpeg"}:
        options.update(quality=95, subsampling=0)
    if not path.parent.is_dir():
        raise CycletoolsError(f"{path}: output folder does not exist")
    try:
        with atomic_path(path) as tmp:
            image.save(tmp, format=Image.registered_extensions()[suffix], **options)
    except PermissionError:
        raise CycletoolsError(f"{path}: cannot write here (permission denied)") from None
    except OSError as exc:
        raise CycletoolsError(f"{path}: cannot write ({exc})") from None
    return path
