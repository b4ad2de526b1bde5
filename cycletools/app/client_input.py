"""What a client may make the server open, in one place.

- Files: only those this server received through its upload route (or wrote as results), still regular
  files inside its upload folder once links are followed (``is_received``); never a path or URL a
  request names otherwise. Gradio's routes are held to the same rule in ``gradio_guards``.
- Images: their size and shape are read from the file's header and held to the limits before anything
  is decoded (``open_image``); a camera frame comes as a base64 data URL and gets the same checks.
- Clips: only container formats that hold their own frames (``ACCEPTED_VIDEO_FORMATS``), never a
  playlist or anything else that names other files or URLs; their length and frame size are checked
  from the header first and again while decoding (``limits.DecodeBudget``).
- Space: uploads and results stay within ``--max-disk`` (``disk``).
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from pathlib import Path
from typing import Any

from PIL import Image

from cycletools.app.limits import DecodeBudget, ServeLimits
from cycletools.app.messages import refusal
from cycletools.errors import CycletoolsError

# The FFmpeg demuxers an uploaded clip may use: containers and raw streams that hold their own frames. Not
# playlists or anything that names other files or URLs (HLS, DASH, concat, SDP/RTP, image sequences): FFmpeg
# would open those on the server.
ACCEPTED_VIDEO_FORMATS = ",".join(["mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "mpegts", "mpeg", "flv",
                                   "ogg", "asf", "ivf", "obu", "h264", "hevc", "m4v", "mpegvideo", "gif"])
ACCEPTED_VIDEO_TEXT = "MP4, MOV, WebM, MKV, AVI, MPEG-TS, Ogg, FLV, raw H.264 and more; no playlists"
FOREIGN_FILE = "This file was not uploaded to this server: upload it first."
REMOVED_FILE = "This upload was removed to make room for newer ones: upload it again."


def is_received(path: object, received: list[set], root: Path) -> bool:
    """Whether ``path`` names a file this server received (``received``: Blocks.temp_file_sets, uploads
    first) that is still a regular file inside ``root`` (the upload folder) once links are followed."""
    if not isinstance(path, str) or not any(path in files for files in received):
        return False
    real, top = os.path.realpath(path), os.path.realpath(root)
    return os.path.commonpath([real, top]) == top and os.path.isfile(real)


def upload_path(value: dict | str | None) -> str | None:
    """The path a client gave for an upload (Gradio's FileData, unprocessed): not yet trusted."""
    path = value.get("path") if isinstance(value, dict) else value
    return path if isinstance(path, str) and path else None


def received_file(path: str, received: list[set], root: Path, removed: set[str] = frozenset()) -> str:
    """``path`` (followed to its real place) if this server received it and it is a regular file inside
    ``root``; otherwise a refusal, and nothing is opened. ``removed``: uploads removed to make room."""
    if not is_received(path, received, root):
        message = REMOVED_FILE if path in removed else FOREIGN_FILE
        raise refusal(message, CycletoolsError(f"refused to open {path!r}: not a file this server holds in its "
                                               "upload folder"))
    return os.path.realpath(path)


def data_url(value: Any) -> str | None:
    """The ``data:image/...`` URL a browser's camera frame comes as (Gradio's FileData ``url``), if it is one."""
    url = value.get("url") if isinstance(value, dict) else None
    return url if isinstance(url, str) and url.startswith("data:image/") else None


def camera_bytes(url: str) -> io.BytesIO:
    """The image file inside a base64 data URL; one sentence for anything else."""
    header, _, payload = url.partition(",")
    try:
        if not header.endswith(";base64"):
            raise ValueError("not base64")
        return io.BytesIO(base64.b64decode(payload, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise refusal("The camera frame is not an image that can be read.", exc) from None


def open_image(path: str | io.BytesIO, limits: ServeLimits) -> Image.Image:
    """Decode an uploaded image once its declared size and shape are checked; one sentence for what is
    not a readable image, too large, too long and thin, or damaged."""
    max_pixels = limits.max_image_pixels
    limit = f"{max_pixels / 1e6:.0f} megapixels"
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise refusal(f"The image is too large: over the limit of {limit}.", exc) from None
    except Exception as exc:  # UnidentifiedImageError, and what a broken header raises
        raise refusal("This file is not an image that can be read (try PNG, JPEG or WebP).", exc) from None
    if image.width * image.height > max_pixels:
        raise refusal(f"The image is {image.width}×{image.height}; the limit is {limit}.")
    if max(image.size) > limits.max_aspect_ratio * min(image.size):
        raise refusal(f"The image is {image.width}×{image.height}; its longer side may be at most "
                      f"{limits.max_aspect_ratio:g} times its shorter side.")
    try:
        image.load()
    except Exception as exc:
        raise refusal("The image file is damaged or incomplete.", exc) from None
    return image


def probe_clip(path: str):
    """The clip's header (``media.video.probe``), read only through the accepted formats; one sentence else."""
    from cycletools.media.video import FormatRefused, probe

    try:
        return probe(path, formats=ACCEPTED_VIDEO_FORMATS)
    except FormatRefused as exc:
        raise refusal(f"This file is not a readable video in a format the app takes ({ACCEPTED_VIDEO_TEXT}).",
                      exc) from None
    except CycletoolsError as exc:
        raise refusal("This file is not a readable video.", exc) from None


def open_clip(path: str, limits: ServeLimits):
    """The clip's header and the budget that holds its decoding to the limits, once its declared length and
    frame size are within them."""
    info = probe_clip(path)
    if info.duration and info.duration > limits.max_video_seconds:
        raise refusal(f"The clip lasts {info.duration:.0f} s; the limit is {limits.max_video_seconds:.0f} s.")
    budget = DecodeBudget.for_clip(info, limits)
    budget.check_size(info.width, info.height)  # from the stream's header, before anything is decoded
    return info, budget
