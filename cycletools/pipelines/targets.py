"""Where a video may be written: checked before a model loads, a camera opens or a frame decodes."""

from __future__ import annotations

import os
from pathlib import Path

from cycletools.errors import CycletoolsError
from cycletools.utils.atomic import check_writable

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".m4v", ".webm"}


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: after ``..`` and links are resolved, or as one inode (a hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def check_video_target(target: str | os.PathLike, source: str | os.PathLike | None = None) -> Path:
    """One clear error unless ``target`` is a video file cycletools writes, is not ``source`` (the input
    the job reads, if it is a file), and can be created in its folder."""
    target = Path(target)
    if target.suffix.lower() not in VIDEO_SUFFIXES:
        raise CycletoolsError(f"{target}: output must be one of {', '.join(sorted(VIDEO_SUFFIXES))}")
    if source is not None and same_file(target, Path(source)):
        raise CycletoolsError(f"{target}: refusing to overwrite the input video")
    check_writable(target)
    return target
