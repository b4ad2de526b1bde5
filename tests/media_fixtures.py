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
              options: dict[str, str] | None = None, container_options: dict[str, str] | None = None,
              grain: int = 0, sound: str = "tone") -> Path:
    """Write a clip; ``times`` (seconds) gives a variable frame rate, ``audio`` an audio codec (a 440 Hz tone).

    ``container_options`` go to the muxer, e.g. ``{"movflags": "faststart"}`` for an MP4 with its index in front.
    ``grain`` adds seeded noise of that many grey levels to the frames (a camera's bitrate, not a cartoon's);
    ``sound="noise"``: seeded white noise instead of the tone, which has no period, so shifts show.
    """
    import av

    with av.open(str(path), mode="w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.options = options or {}
        stream.pix_fmt = "yuv420p" if codec in ("libx264", "mpeg4", "libvpx-vp9") else "yuv444p" if codec == "ffv1" else stream.pix_fmt
        time_base = Fraction(1, 90000) if times else 1 / Fraction(fps)
        stream.codec_context.time_base = time_base
        tone = _Tone(container, audio, times[-1] if times else frames / float(fps), sound) if audio else None
        for i in range(frames):
            image = moving_square(i, width, height)
            if grain:
                noise = np.random.default_rng(i).integers(-grain, grain + 1, (height, width, 1))
                image = np.clip(image + noise, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
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
    """A 440 Hz stereo tone (or seeded white noise) of ``seconds``, encoded with ``codec`` as the video goes."""

    def __init__(self, container, codec: str, seconds: float, sound: str = "tone"):
        self.container = container
        self.stream = container.add_stream(codec, rate=48000)
        self.stream.layout = "stereo"
        samples = int(48000 * seconds)
        if sound == "noise":
            self.samples = np.random.default_rng(440).uniform(-0.3, 0.3, samples).astype(np.float32)
        else:
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


def damage(path: Path, target: Path, size: int, fill: str = "ff") -> Path:
    """A copy of ``path`` with ``size`` bytes in its middle overwritten: 0xFF, zeros or (seeded) random bytes."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + size] = {"ff": b"\xff" * size, "zeros": bytes(size),
                                  "random": np.random.default_rng(0).integers(0, 256, size, np.uint8).tobytes()}[fill]
    target.write_bytes(bytes(data))
    return target


def decoded_audio(path: Path) -> tuple[np.ndarray, int]:
    """The first audio channel as a player hears it: each decoded frame put at its own time (from the video
    stream's start), gaps silent; and the sample rate."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        video_start = float(video.start_time * video.time_base) if video.start_time else 0.0
        pieces, length, rate = [], 0, None
        for frame in container.decode(audio=0):
            rate = frame.sample_rate
            at = round((float(frame.pts * frame.time_base) - video_start) * rate)
            samples = frame.to_ndarray()
            channel = samples[0] if frame.format.is_planar else samples[0, ::len(frame.layout.channels)]
            pieces.append((at, channel.astype(np.float64)))
            length = max(length, at + len(channel))
    audio = np.zeros(length)
    for at, channel in pieces:
        if at + len(channel) > 0:
            audio[max(at, 0):at + len(channel)] = channel[max(-at, 0):]
    return audio, rate


def audio_lag(reference: np.ndarray, start: int, other: np.ndarray, at: int, length: int, max_lag: int = 2048) -> int:
    """How many samples late ``other`` plays ``reference`` from its sample ``start`` (``other``'s sample 0 should be
    ``reference``'s ``start``): the shift with the highest cross-correlation, over ``length`` samples of ``other``
    from its sample ``at``."""
    piece = other[at:at + length]
    low = start + at - max_lag
    assert len(piece) == length and low >= 0, "the window does not fit in the clips"
    scores = np.correlate(reference[low:low + length + 2 * max_lag], piece, mode="valid")
    return max_lag - int(np.argmax(scores))
