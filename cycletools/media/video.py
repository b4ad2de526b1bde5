"""Video files in and out with PyAV (FFmpeg): exact frame rates, timestamps and audio.

PyAV rather than OpenCV does the container work because only it gives the frame rate as
a rational (30000/1001), each frame's timestamp (variable frame rate), and the audio
packets to copy into the output.
"""

from __future__ import annotations

import bisect
import errno
import heapq
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from cycletools.errors import CycletoolsError, first_line
from cycletools.utils.optional import require


def _av():
    return require("av", "media", "video")


@dataclass
class VideoInfo:
    """What a video file declares (frame counts in containers can be wrong: decode to be sure)."""

    path: Path
    width: int
    height: int
    fps: Fraction
    declared_frames: int
    duration: float | None
    codec: str
    time_base: Fraction = Fraction(1, 90000)
    audio_codecs: list[str] = field(default_factory=list)

    @property
    def has_audio(self) -> bool:
        return bool(self.audio_codecs)


class FormatRefused(CycletoolsError):
    """The file is in a container format the caller does not accept (see ``probe``'s ``formats``)."""


def probe(path: str | Path, formats: str | None = None) -> VideoInfo:
    """Read a video file's stream information; one clear error if it is not a video.

    ``formats``: the FFmpeg demuxers allowed (``format_whitelist``, comma-separated), for files from
    others: a playlist (HLS, DASH, concat) or an image sequence would make FFmpeg open the files or URLs it
    names, and is refused (``FormatRefused``) before any of them is read. Later opens of the same bytes
    pick the same demuxer."""
    av = _av()
    path = Path(path)
    if path.is_dir():
        raise CycletoolsError(f"{path} is a folder, not a video file")
    if not path.is_file():
        raise CycletoolsError(f"video not found: {path}")
    if path.stat().st_size == 0:
        raise CycletoolsError(f"{path}: not a readable video (the file is empty)")
    try:
        with av.open(str(path), options={"format_whitelist": formats} if formats else None) as container:
            if not container.streams.video:
                raise CycletoolsError(f"{path}: no video stream in this file")
            stream = container.streams.video[0]
            if not stream.codec_context.width or not stream.codec_context.height:
                raise CycletoolsError(f"{path}: not a readable video (its video stream has no picture size)")
            rate = _frame_rate(stream)
            if not rate:
                raise CycletoolsError(f"{path}: the video stream has no frame rate")
            duration = None
            if stream.duration is not None and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            elif container.duration:
                duration = container.duration / 1_000_000
            return VideoInfo(path, stream.codec_context.width, stream.codec_context.height, Fraction(rate),
                             stream.frames or 0, duration, stream.codec_context.name,
                             Fraction(stream.time_base or Fraction(1, 90000)),
                             [a.codec_context.name for a in container.streams.audio])
    except CycletoolsError:
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        if formats and getattr(exc, "errno", None) == errno.EINVAL:  # what FFmpeg says of a demuxer not allowed
            raise FormatRefused(f"{path}: not a video in a format accepted here") from None
        raise CycletoolsError(f"{path}: not a readable video ({ffmpeg_reason(exc)})") from None


@dataclass
class DecodedFrame:
    index: int
    time: float          # seconds from the start of the stream
    image: np.ndarray    # H×W×3 uint8 RGB
    repeated: bool = False  # a copy of the previous frame standing in for an undecodable one


class FrameReader:
    """Decodes a video's frames as RGB arrays, in order, from ``start`` for ``duration`` seconds.

    A frame whose packet fails to decode in the middle of the stream is replaced by a repeat of
    the last good frame, at the time its packet gives it (so the frame count and timing hold),
    and counted in ``corrupt``. A frame without any timestamp (a raw stream) goes one frame
    (at the stream's frame rate) after the one before it.
    """

    def __init__(self, path: str | Path, start: float | None = None, duration: float | None = None,
                 max_pixels: int | None = None):
        self.path = Path(path)
        self.start, self.duration = start or 0.0, duration
        self.max_pixels = max_pixels  # frames larger than this are refused by the decoder, before it allocates
        self.corrupt = 0
        self.decoded = 0

    def __iter__(self) -> Iterator[DecodedFrame]:
        av = _av()
        try:
            container = av.open(str(self.path))
        except (av.FFmpegError, OSError) as exc:
            raise CycletoolsError(f"{self.path}: not a readable video ({first_line(exc)})") from None
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if self.max_pixels:  # the header's size proves nothing: each frame may declare another
                stream.codec_context.options = {"max_pixels": str(self.max_pixels)}
            time_base = stream.time_base
            first_pts = stream.start_time or 0
            # Codecs whose every packet is one frame: a packet passed over is a frame lost, even when the
            # decoder drops it without a word (damaged H.264 can lose frames that way).
            one_per_packet = stream.codec_context.name in ONE_FRAME_PER_PACKET
            tick = 1 / float(_frame_rate(stream) or 25)  # 25: FFmpeg's own guess for a stream that names none
            end = None if self.duration is None else self.start + self.duration
            if self.start > 0:
                container.seek(int((self.start) / time_base) + first_pts, stream=stream, backward=True)
            # Decoded frames and stand-ins for lost ones, as (time, image or None for a lost frame), go
            # through a small buffer ordered by time: a frame found lost after a later one came out (damage
            # upsets a decoder's order) still takes its place, a repeat of the good frame before it.
            pending: list[tuple[float, int, np.ndarray | None]] = []
            last: DecodedFrame | None = None  # the last frame handed out
            order = 0                          # ties in time: first come, first out

            def push(time: float, image: np.ndarray | None) -> Iterator[DecodedFrame]:
                nonlocal order
                if in_window(time):
                    heapq.heappush(pending, (time, order, image))
                    order += 1
                while len(pending) > REORDER_WINDOW:
                    yield from pop()

            def pop() -> Iterator[DecodedFrame]:
                nonlocal last
                time, _, image = heapq.heappop(pending)
                if last is not None and time <= last.time + 1e-6:
                    return  # a decoded frame that a stand-in already covers, or a second stand-in
                if image is None:
                    if last is None:
                        return  # lost before any good frame: nothing to repeat
                    self.corrupt += 1
                    image, repeated = last.image, True
                else:
                    self.decoded += 1
                    repeated = False
                last = DecodedFrame(last.index + 1 if last is not None else 0, time, image, repeated)
                yield last

            def in_window(time: float) -> bool:
                return time >= self.start - 1e-6 and (end is None or time < end - 1e-6)

            clock = None  # the time of the last frame decoded: the next one without a timestamp follows it
            # The pts of the packets read whose frames have not come out yet, sorted. A decoder hands
            # frames out in presentation order, some packets after their own (and reports a damaged
            # packet some packets later, decoding in threads, so the error names the wrong packet):
            # a frame is known lost when a later one comes out before it.
            waiting: list[int] = []
            failures = 0  # packets that failed to decode, not yet matched with the frames lost

            def lost_before(pts: int | None) -> Iterator[DecodedFrame]:
                """Stand-ins for the frames lost before ``pts`` (None: all that are left)."""
                nonlocal failures
                while waiting and (pts is None or waiting[0] < pts):
                    lost = waiting.pop(0)
                    if not failures and not one_per_packet:
                        continue  # nothing failed: a packet that has no frame of its own (packed B-frames)
                    failures = max(0, failures - 1)
                    yield from push(float((lost - first_pts) * time_base), None)

            demux = container.demux(stream)
            past_end = False
            while not past_end:
                try:
                    packet = next(demux)
                except StopIteration:
                    break
                except av.FFmpegError:
                    self.corrupt += 1  # a damaged container: keep what decoded so far
                    break
                if packet.size and packet.pts is not None:
                    bisect.insort(waiting, packet.pts)
                try:
                    frames = packet.decode()
                except av.FFmpegError as exc:
                    if self.max_pixels and exc.errno == errno.EINVAL:  # what FFmpeg says of a frame over max_pixels
                        raise CycletoolsError(f"{self.path}: the clip has frames over the limit of "
                                              f"{self.max_pixels / 1e6:g} megapixels") from None
                    if packet.size and packet.pts is not None:
                        failures += 1
                    continue
                for frame in frames:
                    pts = frame.pts if frame.pts is not None else frame.dts
                    if pts is None:
                        time = 0.0 if clock is None else clock + tick
                    else:
                        # Frames lost before this one come first, each at its own packet's time.
                        yield from lost_before(pts)
                        if waiting and waiting[0] == pts:
                            waiting.pop(0)
                        time = float((pts - first_pts) * time_base)
                    clock = time
                    if end is not None and time >= end - 1e-6:
                        past_end = True  # the window is done: what is held back goes out below
                        break
                    yield from push(time, frame.to_ndarray(format="rgb24") if in_window(time) else None)
            if not past_end:
                yield from lost_before(None)  # lost at the very end: repeats of the last good frame
            while pending:
                yield from pop()


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's words for an error, without its error number and the path it repeats:
    ``Invalid data found when processing input``, not ``[Errno 1094995529] Invalid data ...: 'x.mp4'``."""
    text = getattr(exc, "strerror", None) or first_line(exc)
    return text.split("[Errno", 1)[0].strip() or first_line(exc)


REORDER_WINDOW = 16  # frames held back to put late-found stand-ins in their place
ONE_FRAME_PER_PACKET = {"h264", "hevc", "mjpeg", "png", "prores", "ffv1", "rawvideo", "dnxhd", "qtrle", "vp9",
                        "av1"}


def _frame_rate(stream) -> Fraction | None:
    """A video stream's frame rate: the average of its timestamps, else what FFmpeg guesses from the codec."""
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return Fraction(rate) if rate else None


def _fraction_gcd(a: Fraction, b: Fraction) -> Fraction:
    return Fraction(math.gcd(a.numerator * b.denominator, b.numerator * a.denominator), a.denominator * b.denominator)


def even(n: int) -> int:
    return n + (n % 2)


ENCODER_PRESET = "superfast"  # x264; see VideoWriter


class VideoWriter:
    """Encodes RGB frames to H.264 (yuv420p, MP4/MOV/MKV) or VP9 (WebM), optionally with audio.

    Frames are stamped with the input's timestamps on the input's time base (``time_base``),
    so the output keeps the exact frame rate, and a variable frame rate's timing. Audio is copied packet for packet when
    the output container takes the codec, otherwise re-encoded (AAC in MP4, Opus in WebM).
    H.264 in yuv420p needs even sizes: an odd width or height is padded by one repeated edge pixel.

    A window of the source (``audio_start`` > 0 or an ``audio_duration``) starts at 0: its first
    frame is moved there and the audio is cut to the frames written, as it is with
    ``close(cut_audio=True)`` when the frames stop early (Ctrl-C, a truncated file).
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: Fraction, audio_from: str | Path | None = None,
                 audio_start: float = 0.0, audio_duration: float | None = None, crf: int = 18,
                 time_base: Fraction | None = None):
        av = _av()
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        self.webm = suffix == ".webm"
        self.width, self.height, self.fps = width, height, Fraction(fps)
        self.container = av.open(str(self.path), mode="w", format="webm" if self.webm else None)
        codec = "libvpx-vp9" if self.webm else "libx264"
        self.stream = self.container.add_stream(codec, rate=self.fps)
        self.stream.width = width if self.webm else even(width)
        self.stream.height = height if self.webm else even(height)
        self.stream.pix_fmt = "yuv420p"
        frame_tick = 1 / self.fps
        source_tick = Fraction(time_base) if time_base else frame_tick
        # A grid holding both whole frames and the source's ticks: CFR stays exact, VFR keeps its times.
        self.time_base = _fraction_gcd(frame_tick, source_tick)
        self._frame_ticks = frame_tick / self.time_base
        self._snap = float(source_tick)
        self.stream.time_base = self.time_base
        self.stream.codec_context.time_base = self.time_base
        # x264 "superfast" at CRF 18: on translated 640×360 frames (2-core CPU) it encoded in 2.8 ms a frame
        # against 5.5 for "veryfast", for 6 % more bits and 0.4 dB less PSNR ("ultrafast": 1.7 ms, 53 % more
        # bits, 1.4 dB less). The encoder shares the CPU with the model, so its time is the video's time.
        self.stream.options = ({"crf": str(crf), "preset": ENCODER_PRESET} if not self.webm
                               else {"crf": str(crf + 14), "b:v": "0", "row-mt": "1", "deadline": "realtime",
                                     "cpu-used": "8"})
        self.padded = (self.stream.width, self.stream.height) != (width, height)
        self.trimmed = bool(audio_start) or audio_duration is not None
        self._audio = _AudioCopier(self.container, audio_from, self.trimmed, self.webm) if audio_from else None
        self._last_pts = -1
        self.frames = 0
        self.origin: float | None = None  # source time written at 0: the first frame's when trimmed, else 0
        self.end = 0.0                    # source time where the frames written end

    def write(self, image: np.ndarray, time: float) -> None:
        av = _av()
        if self.padded:
            image = np.pad(image, ((0, self.stream.height - image.shape[0]), (0, self.stream.width - image.shape[1]),
                                   (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        if self.origin is None:
            self.origin = time if self.trimmed else 0.0
        self.end = max(self.end, time + 1 / self.fps)
        time -= self.origin
        index = round(time * self.fps)
        if abs(time - index / self.fps) <= self._snap:  # on the frame grid, up to the source's rounding
            pts = int(index * self._frame_ticks)
        else:
            pts = round(time / self.time_base)
        pts = max(pts, self._last_pts + 1)
        frame.pts, self._last_pts = pts, pts
        frame.time_base = self.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def close(self, cut_audio: bool = False) -> None:
        """Finish the file; ``cut_audio``: end the audio where the frames written end (they stopped early)."""
        for packet in self.stream.encode():
            self.container.mux(packet)
        if self._audio is not None:
            start = self.origin or 0.0
            self._audio.finish(start, self.end if cut_audio or self.trimmed else None)
        self.container.close()

    @property
    def audio_mode(self) -> str | None:
        return None if self._audio is None else self._audio.mode


class _AudioCopier:
    """Moves the first audio stream of a source file into the output: copied, or re-encoded.

    Times are seconds from the start of the source's video stream, as the frames' are, so the
    audio keeps its place beside the video. Damaged packets (a file cut off mid-packet, bytes
    overwritten) are left out and what they held becomes silence of the same length: a track with any is
    re-encoded rather than copied, since players play copied packets back to back and would run ahead.
    """

    COPYABLE = {False: {"aac", "mp3", "ac3", "eac3", "opus", "flac", "alac"}, True: {"opus", "vorbis"}}

    def __init__(self, output, source: str | Path, trimmed: bool, webm: bool):
        av = _av()
        self.source = av.open(str(source))
        self.input = self.source.streams.audio[0] if self.source.streams.audio else None
        video = self.source.streams.video[0] if self.source.streams.video else None
        self.video_start = float(video.start_time * video.time_base) if video and video.start_time else 0.0
        self.mux = output.mux
        self.mode = None
        if self.input is None:
            return
        name = self.input.codec_context.name
        self.copy = name in self.COPYABLE[webm] and not trimmed
        damaged = self.copy and self._damaged(av)
        if damaged:  # copied, the packets after a hole keep their times, but players play samples back to back
            self.copy = False
        if self.copy:
            self.output = output.add_stream_from_template(self.input)
            self.mode = f"copied ({name})"
        else:
            codec = "libopus" if webm else "aac"
            rate = 48000 if webm else (self.input.codec_context.sample_rate or 48000)
            self.output = output.add_stream(codec, rate=rate)
            layout = self.input.codec_context.layout.name if self.input.codec_context.layout else "stereo"
            self.output.layout = layout if layout in ("mono", "stereo") else "stereo"
            self.resampler = av.AudioResampler(format=self.output.format.name, layout=self.output.layout.name,
                                               rate=rate)
            self.rate, self.written = rate, 0  # samples handed to the encoder: the next one's time
            self.mode = f"re-encoded ({name} → {codec.removeprefix('lib')})" + (
                ": damaged packets became silence, so that it stays in step" if damaged else "")

    def _damaged(self, av) -> bool:
        """Whether any audio packet is damaged (flagged, or failing to decode): a copy would leave a hole that a
        player closes up, running ahead of the picture from there on. Reads the audio once, then starts over."""
        try:
            for packet in self.source.demux(self.input):
                if packet.dts is None:
                    continue
                if packet.is_corrupt:
                    return True
                try:
                    packet.decode()
                except av.FFmpegError:
                    return True
            return False
        finally:
            path = self.source.name
            self.source.close()
            self.source = av.open(path)
            self.input = self.source.streams.audio[0]

    def finish(self, start: float, end: float | None) -> None:
        """Write the audio from ``start`` (at time 0 in the output) to ``end`` (None: to its end)."""
        av = _av()
        if self.input is None:
            self.source.close()
            return
        try:
            if self.copy:
                self._copy(av, end)
            else:
                self._reencode(av, start, end)
        finally:
            self.source.close()

    def _time(self, pts: int) -> float:
        return float(pts * self.input.time_base) - self.video_start

    def _copy(self, av, end: float | None) -> None:
        shift = round(self.video_start / self.input.time_base)
        for packet in self.source.demux(self.input):
            if packet.dts is None or packet.is_corrupt:
                continue
            if end is not None and packet.pts is not None and self._time(packet.pts) >= end - 1e-6:
                break
            try:  # damage inside the file is not flagged by the demuxer: the decoder finds it
                packet.decode()
            except av.FFmpegError:
                continue
            packet.pts = None if packet.pts is None else packet.pts - shift
            packet.dts -= shift
            packet.stream = self.output
            self.mux(packet)

    GAP = 0.002  # audio missing for longer than this (damaged packets left out) becomes silence, in its place

    def _reencode(self, av, start: float, end: float | None) -> None:
        if start:
            self.source.seek(int((self.video_start + start) * 1_000_000), backward=True)
        for frame in self._decoded(av):
            time = self._time(frame.pts) if frame.pts is not None else None
            if time is not None:
                if end is not None and time >= end - 1e-6:
                    break
                frame = _clip_samples(av, frame, time, start, end)
                if frame is None:
                    continue
                self._silence_until(av, max(time, start) - start)
            frame.pts = None
            self._encode(self.resampler.resample(frame))
        self._encode(self.resampler.resample(None))
        for packet in self.output.encode(None):
            self.mux(packet)

    def _silence_until(self, av, time: float) -> None:
        """Fill the output with silence up to ``time`` (s) when the source's audio starts later or has a hole."""
        missing = round(time * self.rate) - self.written
        if missing <= self.GAP * self.rate:
            return
        silence = av.AudioFrame(format=self.output.format.name, layout=self.output.layout.name, samples=missing)
        for plane in silence.planes:
            plane.update(bytes(plane.buffer_size))
        silence.sample_rate = self.rate
        self._encode([silence])

    def _decoded(self, av):
        """The source's audio frames, leaving out packets that are damaged or fail to decode."""
        for packet in self.source.demux(self.input):
            if packet.is_corrupt:
                continue
            try:
                yield from packet.decode()
            except av.FFmpegError:
                continue

    def _encode(self, frames) -> None:
        # Stamped by the samples before them: the encoder then stamps its first packet before 0 by its
        # priming (AAC 1024 samples, Opus 312), which the muxer records (MP4's edit list, Matroska's codec
        # delay) so that players skip it. Unstamped, the priming would be heard first and the audio be late.
        for frame in frames:
            frame.pts, frame.time_base = self.written, Fraction(1, self.rate)
            self.written += frame.samples
            for packet in self.output.encode(frame):
                self.mux(packet)


def _clip_samples(av, frame, time: float, start: float, end: float | None):
    """``frame`` (starting at ``time`` s) cut to the samples inside [start, end); None if none are."""
    rate, count = frame.sample_rate, frame.samples
    first = max(0, round((start - time) * rate))
    last = count if end is None else min(count, round((end - time) * rate))
    if last <= first:
        return None
    if (first, last) == (0, count):
        return frame
    samples = frame.to_ndarray()
    if frame.format.is_planar:
        samples = samples[:, first:last]
    else:
        channels = len(frame.layout.channels)
        samples = samples[:, first * channels:last * channels]
    clipped = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format=frame.format.name,
                                         layout=frame.layout.name)
    clipped.sample_rate = rate
    return clipped
