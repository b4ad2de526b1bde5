"""Animated images (GIF, animated WebP, APNG) in and out with Pillow, keeping every frame's timing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageSequence

from cycletools.errors import CycletoolsError
from cycletools.utils.atomic import atomic_path

ANIMATION_SUFFIXES = {".gif": "GIF", ".webp": "WEBP", ".png": "PNG"}


@dataclass
class Animation:
    frames: list[Image.Image]   # full frames (RGB or RGBA), already composited
    durations: list[int]        # milliseconds per frame
    loop: int                   # 0 = forever


def is_animated(image: Image.Image) -> bool:
    return bool(getattr(image, "is_animated", False)) and getattr(image, "n_frames", 1) > 1


def read_animation(image: Image.Image, path: str | Path = "animation") -> Animation:
    """Every frame of an open animated image, composited, with its duration."""
    frames, durations = [], []
    try:
        for frame in ImageSequence.Iterator(image):
            frame.load()  # WebP sets a frame's duration only once it is decoded
            durations.append(int(frame.info.get("duration", image.info.get("duration", 100)) or 100))
            has_alpha = frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info
            frames.append(frame.convert("RGBA" if has_alpha else "RGB"))
    except (OSError, ValueError, EOFError) as exc:
        raise CycletoolsError(f"{path}: unreadable animation frame {len(frames)} ({exc})") from None
    return Animation(frames, durations, int(image.info.get("loop", 0)))


def save_animation(animation: Animation, path: str | Path) -> Path:
    """Write all frames with their durations, atomically; GIF, WebP or APNG by extension."""
    path = Path(path)
    fmt = ANIMATION_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise CycletoolsError(f"{path}: animations are written as {', '.join(ANIMATION_SUFFIXES)}, not {path.suffix!r}")
    first, rest = animation.frames[0], animation.frames[1:]
    options = {"save_all": True, "append_images": rest, "duration": animation.durations, "loop": animation.loop}
    if fmt == "GIF":
        options["disposal"] = 2
    elif fmt == "WEBP":
        options["lossless"] = False
        options["quality"] = 90
    try:
        with atomic_path(path) as tmp:
            first.save(tmp, format=fmt, **options)
    except OSError as exc:
        raise CycletoolsError(f"{path}: cannot write ({exc})") from None
    return path
