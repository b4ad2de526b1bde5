"""Small generated video clips for the video tests (made with PyAV, never committed)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def moving_square(index: int, width: int, height: int) -> np.ndarray:
    """A frame with a square that moves one step per frame over a gradient."""
    y, x = np.mgrid[0:height, 0:width]
    frame = np.stack([(x * 255 // max(1, width - 1)), (y * 255 // max(1, height - 1)),
                      np.full_like(x, 80)], axis=-1).astype(np.uint8)
    side = max(4, min(width, height) // 3)
    left = (index * 3) % max(1, width - side)
    frame[height // 3: height // 3 + side, left: left + side] = (250, 250, 250)
    return frame


def make_clip(path: Path, width: int = 64, height: int = 48, fps: Fraction = Fraction(24), frames: int = 12,
              codec: str = "libx264", audio: str | None = None, times: list[float] | None = None,
              options: dict[str, str] | None = None) -> Path:
    """Write a clip; ``times`` (seconds) gives a variable frame rate, ``audio`` an audio codec (a 440 Hz tone)."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.options = options or {}
        stream.pix_fmt = "yuv420p" if codec in ("libx264", "mpeg4", "libvpx-vp9") else "yuv444p" if codec == "ffv1" else stream.pix_fmt
        time_base = Fraction(1, 90000) if times else 1 / Fraction(fps)
        stream.codec_context.time_base = time_base
        audio_stream = None
        if audio:
            audio_stream = container.add_stream(audio, rate=48000)
            audio_stream.layout = "stereo"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(moving_square(i, width, height), format="rgb24")
            frame.pts = round(times[i] / time_base) if times else i
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio_stream is not None:
            seconds = (times[-1] if times else frames / float(fps))
            samples = int(48000 * seconds)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
            chunk = audio_stream.codec_context.frame_size or 1024
            for start in range(0, samples, chunk):
                block = tone[start:start + chunk]
                planar = np.stack([block, block])
                frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = 48000, start
                for packet in audio_stream.encode(frame):
                    container.mux(packet)
            for packet in audio_stream.encode():
                container.mux(packet)
    return path


def frame_times(path: Path) -> list[float]:
    from cycletools.media.video import FrameReader

    return [frame.time for frame in FrameReader(path)]
