"""Where a video may be written: checked before a model loads, a camera opens or a frame decodes."""

from __future__ import annotations

import os
from pathlib import Path

from cycletools.errors import CycletoolsError
from cycletools.utils.atomic import check_writable
from cycletools.utils.files import same_file

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".m4v", ".webm"}


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
