"""Translate a video file frame by frame: decode, translate in batches and encode, overlapped.

A decoding thread and an encoding thread run beside the translation (PyAV and the
model release the GIL), joined by small bounded queues, so the model sets the pace.
The result is written to a temporary file and renamed over the target only when
complete; on Ctrl-C the frames done so far are finalised as ``NAME.partial.EXT``.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from cycletools.errors import CycletoolsError, UsageError, first_line
from cycletools.media.video import (
    DecodedFrame,
    FrameReader,
    VideoInfo,
    VideoWriter,
    probe,
)
from cycletools.pipelines.stopping import StoppedBetweenLayers, checking, stoppable
from cycletools.pipelines.targets import check_video_target
from cycletools.pipelines.translator import Translator
from cycletools.utils.atomic import free_name, replace_keeping_mode, temp_beside
from cycletools.utils.interrupts import StopRequest
from cycletools.utils.sizes import check_frame_size, scaled, shorter_side_to

_END = object()  # no more frames: the decoder finished, or the loop was told to stop


@dataclass
class VideoResult:
    output: Path
    frames: int
    corrupt: int
    seconds: float
    width: int   # the written frame (both halves with side_by_side), before any padding for H.264
    height: int
    audio: str | None
    partial: bool = False
    padded: bool = False
    ends_early: str | None = None  # the input gave fewer frames than it promises (a truncated file): why
    first_batch: int = 0              # frames in the first model call
    first_batch_at: float | None = None  # time.perf_counter() when they were translated
    ended_at: float | None = None        # time.perf_counter() when the last frame was handed to the encoder

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    @property
    def steady_frames_per_second(self) -> float | None:
        """Frames/s after the first model call (which may compile or warm up the model); None with too few frames."""
        if self.first_batch_at is None or self.ended_at is None or self.frames <= self.first_batch:
            return None
        seconds = self.ended_at - self.first_batch_at
        return (self.frames - self.first_batch) / seconds if seconds > 0 else None


def output_size(info: VideoInfo, size: int | None, scale: float | None) -> tuple[int, int]:
    """The frame size to translate and write: the input's, or resized by --frame-size / --scale.

    Odd sizes stay odd: the H.264 writer pads them itself, WebM keeps them."""
    if size is not None and scale is not None:
        raise UsageError("give --frame-size or --scale, not both")
    if size is not None:
        return check_frame_size(*shorter_side_to(info.width, info.height, size), f"--frame-size {size}")
    if scale is not None:
        if not math.isfinite(scale) or scale <= 0:
            raise UsageError(f"--scale must be a positive number, not {scale:g}")
        return check_frame_size(*scaled(info.width, info.height, scale), f"--scale {scale:g}")
    return info.width, info.height



def default_output(source: Path, label: str) -> Path:
    return source.with_name(f"{source.stem}_{label}.mp4")


def check_video_job(source: str | Path, target: str | Path, size: int | None = None, scale: float | None = None,
                    start: float | None = None) -> VideoInfo:
    """Everything checkable before a model loads or a frame decodes, each with one clear error; the input's info."""
    source, target = Path(source), Path(target)
    info = probe(source)
    check_video_target(target, source)
    output_size(info, size, scale)
    if start and info.duration is not None and start >= info.duration:
        raise CycletoolsError(f"--start {start:g} s is past the end of {source} ({info.duration:.2f} s long)")
    return info


def translate_video(translator: Translator, source: str | Path, target: str | Path, batch_size: int = 4,
                    size: int | None = None, scale: float | None = None, start: float | None = None,
                    duration: float | None = None, side_by_side: bool = False, progress: bool = True,
                    stabilize: float | None = None,
                    on_frame: Callable[[DecodedFrame], None] | None = None,
                    max_frame_pixels: int | None = None) -> VideoResult:
    """Translate ``source`` into ``target`` keeping frame count, frame rate, size and audio.

    ``stabilize`` (a strength in [0, 1)) blends each output with the previous one carried along
    the input's optical flow, which removes most frame-to-frame flicker. ``on_frame`` sees each
    decoded frame (in the decoding thread); an error it raises stops the job with that error.
    ``max_frame_pixels``: a frame larger than this stops the job before it is decoded (a stream may
    declare one size in its header and carry far larger frames).
    """
    source, target = Path(source), Path(target)
    info = check_video_job(source, target, size, scale, start)
    width, height = output_size(info, size, scale)
    stabilizer = None
    if stabilize is not None:
        from cycletools.media.stabilize import TemporalStabilizer

        stabilizer = TemporalStabilizer(stabilize)
    out_width = width * 2 if side_by_side else width
    tmp = temp_beside(target)  # a fresh name: never an input's, never another file's
    try:
        writer = VideoWriter(tmp, out_width, height, info.fps, audio_from=source if info.has_audio else None,
                             audio_start=start or 0.0, audio_duration=duration, time_base=info.time_base)
    except Exception as exc:
        _discard(tmp)
        raise CycletoolsError(f"{target}: cannot create the output ({first_line(exc)})") from None

    reader = FrameReader(source, start, duration, max_pixels=max_frame_pixels)
    expected = _expected_frames(info, start, duration)
    decoded: queue.Queue = queue.Queue(maxsize=batch_size * 3)
    encoded: queue.Queue = queue.Queue(maxsize=batch_size * 3)
    errors: list[BaseException] = []
    stop = threading.Event()

    def decode() -> None:
        try:
            for frame in reader:
                if stop.is_set():
                    break
                if on_frame is not None:
                    on_frame(frame)
                image = frame.image
                if image.shape[1] != width or image.shape[0] != height:
                    image = _resize(image, width, height)
                if not _put(decoded, (frame.time, image), keep_trying=lambda: not stop.is_set()):
                    break
        except BaseException as exc:  # handed to the main thread, which stops at once
            errors.append(exc)
            stop.set()
        finally:
            _put(decoded, _END, keep_trying=lambda: not stop.is_set())

    def encode() -> None:
        # Stabilising runs here, in frame order, overlapped with the model working on the next batch.
        try:
            while (item := encoded.get()) is not _END:
                stamp, original, output = item
                if stabilizer is not None:
                    output = stabilizer(original, output)
                frame = np.concatenate([original, output], axis=1) if side_by_side else output
                writer.write(frame, stamp)
        except OSError as exc:  # the disk, not the input: name the output
            reason = exc.strerror or first_line(exc)
            errors.append(CycletoolsError(f"{target}: could not write the video ({reason})"))
            stop.set()
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    decoder = threading.Thread(target=decode, name="cycletools-decode", daemon=True)
    encoder = threading.Thread(target=encode, name="cycletools-encode", daemon=True)
    decoder.start()
    encoder.start()
    bar = tqdm(total=expected, unit="frame", desc=source.name, disable=not progress, dynamic_ncols=True)
    started = time.perf_counter()
    # Ctrl-C only sets a flag, checked between queue waits (an exception raised inside a queue
    # operation could leave its lock held and hang the threads), and a second one cannot break
    # the finishing of the partial file.
    with StopRequest(force_on_repeat=False) as interrupt:
        def halt() -> bool:
            return interrupt.requested or stop.is_set()

        def between_layers() -> None:  # a stop does not wait for the frames under way (one can take minutes)
            if interrupt.requested:
                raise StoppedBetweenLayers

        stoppable(getattr(translator, "generator", None))

        first_batch, first_batch_at = 0, None
        try:
            finished = False
            while not finished and not halt():
                batch = []
                while len(batch) < batch_size:
                    item = _get(decoded, give_up=halt)
                    if item is _END:
                        finished = True
                        break
                    batch.append(item)
                if not batch or halt():
                    break
                images = np.stack([image for _, image in batch])
                try:
                    with checking(between_layers):
                        outputs = translator.translate_frames(images)
                except StoppedBetweenLayers:
                    break  # the frames under way are dropped; those done are kept (NAME.partial.EXT)
                if first_batch_at is None:
                    first_batch, first_batch_at = len(batch), time.perf_counter()
                for (stamp, original), output in zip(batch, outputs):
                    _put(encoded, (stamp, original, output), keep_trying=encoder.is_alive)
                bar.update(len(batch))
        except Exception as exc:  # e.g. the model ran out of memory: clean up below, then report
            errors.append(exc)
        finally:
            stop.set()
            _drain(decoded)
            decoder.join(timeout=10)
            _put(encoded, _END, keep_trying=encoder.is_alive)
            encoder.join()
            ended_at = time.perf_counter()
            bar.close()
        interrupted = interrupt.requested
        if errors and not interrupted:
            try:
                writer.close()
            except Exception:
                pass
            _discard(tmp)
            error = errors[0]
            if isinstance(error, CycletoolsError):
                raise error
            raise CycletoolsError(f"{source}: video processing failed ({first_line(error, with_type=True)})") from None
        short = None if interrupted else _ends_early(info, start, duration, writer)
        final = _finalise(writer, tmp, target, reader, interrupted, cut_audio=interrupted or short is not None,
                          source=source)
        return VideoResult(final, writer.frames, reader.corrupt, time.perf_counter() - started, out_width, height,
                           writer.audio_mode, partial=interrupted, padded=writer.padded, ends_early=short,
                           first_batch=first_batch, first_batch_at=first_batch_at, ended_at=ended_at)


def _finalise(writer: VideoWriter, tmp: Path, target: Path, reader: FrameReader, interrupted: bool,
              cut_audio: bool, source: Path) -> Path:
    """Close the output and move it into place (after Ctrl-C as ``NAME.partial.EXT``, or ``NAME.partial-2.EXT``...
    where that is taken or is the input); where it went."""
    if writer.frames == 0:
        try:
            writer.close()
        except Exception:
            pass  # nothing was encoded: the empty file is discarded anyway
        finally:
            _discard(tmp)
        if interrupted:
            raise KeyboardInterrupt
        if reader.duration is not None:
            raise CycletoolsError(f"{reader.path}: no frame starts between {reader.start:g} s and "
                                  f"{reader.start + reader.duration:g} s (--start, --duration); nothing was written")
        if reader.start:
            raise CycletoolsError(f"{reader.path}: no frame at or after --start {reader.start:g} s; "
                                  "nothing was written")
        raise CycletoolsError(f"{reader.path}: no frames could be decoded; nothing was written")
    try:
        writer.close(cut_audio=cut_audio)
    except Exception as exc:
        _discard(tmp)
        raise CycletoolsError(f"{target}: could not finish the video ({first_line(exc)})") from None
    final = free_name(target.with_name(f"{target.stem}.partial{target.suffix}"), avoid=source) if interrupted \
        else target
    try:
        replace_keeping_mode(tmp, final)
    except OSError as exc:  # the finished video is not thrown away
        raise CycletoolsError(f"{final}: could not put the video in place ({first_line(exc)}); "
                              f"it is kept as {tmp}") from None
    return final


def _ends_early(info: VideoInfo, start: float | None, duration: float | None, writer: VideoWriter) -> str | None:
    """Why the frames written fall short of what the input promises (a truncated file), or None.

    Short means ending more than two frames before the promised end (so a variable frame rate's
    last frame, whose length is a guess, does not count); the promise is the container's frame
    count where it has one, else its duration times the frame rate.
    """
    start = start or 0.0
    whole = not start and duration is None
    if info.duration is None:
        short = whole and writer.frames < info.declared_frames
    else:
        window_end = info.duration if duration is None else min(info.duration, start + duration)
        short = writer.end < window_end - 2 / info.fps
    if not short:
        return None
    if whole and info.declared_frames:
        promise = f"{info.declared_frames} frames"
    else:
        promise = f"{window_end - start:.2f} s (about {round((window_end - start) * info.fps)} frames)"
    return (f"{info.path} ends early: the container promises {promise}, {writer.frames} could be decoded; "
            f"the output has those {writer.frames}")


def _discard(tmp: Path) -> None:
    """Remove a temporary file if it is there; a failure to (a read-only disk) must not hide the real error."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


def _expected_frames(info: VideoInfo, start: float | None, duration: float | None) -> int | None:
    total = info.declared_frames or (round(info.duration * info.fps) if info.duration else None)
    if total is None:
        return None
    if start:
        total = max(0, total - round(start * info.fps))
    if duration is not None:
        total = min(total, round(duration * info.fps))
    return total


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    shrink = width < image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def _put(q: queue.Queue, item, keep_trying: Callable[[], bool]) -> bool:
    """Put ``item`` unless ``keep_trying()`` turns false while the queue is full; True if put."""
    while True:
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            if not keep_trying():
                return False


def _get(q: queue.Queue, give_up: Callable[[], bool]):
    """The next item, or ``_END`` once ``give_up()`` is true while the queue is empty."""
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if give_up():
                return _END


def _drain(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass
