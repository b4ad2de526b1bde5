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
              options: dict[str, str] | None = None, container_options: dict[str, str] | None = None) -> Path:
    """Write a clip; ``times`` (seconds) gives a variable frame rate, ``audio`` an audio codec (a 440 Hz tone).

    ``container_options`` go to the muxer, e.g. ``{"movflags": "faststart"}`` for an MP4 with its index in front.
    """
    import av

    with av.open(str(path), mode="w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.options = options or {}
        stream.pix_fmt = "yuv420p" if codec in ("libx264", "mpeg4", "libvpx-vp9") else "yuv444p" if codec == "ffv1" else stream.pix_fmt
        time_base = Fraction(1, 90000) if times else 1 / Fraction(fps)
        stream.codec_context.time_base = time_base
        tone = _Tone(container, audio, times[-1] if times else frames / float(fps)) if audio else None
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(moving_square(i, width, height), format="rgb24")
            frame.pts = round(times[i] / time_base) if times else i
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
            if tone is not None:  # interleaved with the video, as cameras and muxers write them
                tone.write_until(times[i + 1] if times and i + 1 < len(times) else (i + 1) / float(fps))
        for packet in stream.encode():
            container.mux(packet)
        if tone is not None:
            tone.finish()
    return path


class _Tone:
    """A 440 Hz stereo tone of ``seconds``, encoded with ``codec`` in chunks as the video goes."""

    def __init__(self, container, codec: str, seconds: float):
        self.container = container
        self.stream = container.add_stream(codec, rate=48000)
        self.stream.layout = "stereo"
        samples = int(48000 * seconds)
        self.samples = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 48000)).astype(np.float32)
        self.done = 0

    def write_until(self, seconds: float) -> None:
        import av

        chunk = self.stream.codec_context.frame_size or 1024
        while self.done < min(len(self.samples), int(48000 * seconds)):
            block = self.samples[self.done:self.done + chunk]
            frame = av.AudioFrame.from_ndarray(np.stack([block, block]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 48000, self.done
            self.done += len(block)
            for packet in self.stream.encode(frame):
                self.container.mux(packet)

    def finish(self) -> None:
        self.write_until(len(self.samples) / 48000)
        for packet in self.stream.encode():
            self.container.mux(packet)


def frame_times(path: Path) -> list[float]:
    from cycletools.media.video import FrameReader

    return [frame.time for frame in FrameReader(path)]


def stream_spans(path: Path) -> dict[str, tuple[float, float]]:
    """Each stream type's (first packet's start, last packet's end) in seconds, as a player sees them."""
    import av

    spans: dict[str, tuple[float, float]] = {}
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is None or packet.dts is None:
                continue
            begin = float(packet.pts * packet.time_base)
            end = float((packet.pts + packet.duration) * packet.time_base)
            low, high = spans.get(packet.stream.type, (begin, end))
            spans[packet.stream.type] = (min(low, begin), max(high, end))
    return spans


def undecodable_audio_packets(path: Path) -> int:
    """How many of the file's audio packets the decoder rejects (a damaged packet at a cut, say)."""
    import av

    bad = 0
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.audio[0]):
            if packet.dts is None:
                continue
            try:
                packet.decode()
            except av.FFmpegError:
                bad += 1
    return bad
