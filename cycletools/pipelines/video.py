"""Translate a video file frame by frame: decode, translate in batches and encode, overlapped.

A decoding thread and an encoding thread run beside the translation (PyAV and the
model release the GIL), joined by small bounded queues, so the model sets the pace.
The result is written to a temporary file and renamed over the target only when
complete; on Ctrl-C the frames done so far are finalised as ``NAME.partial.EXT``.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from cycletools.errors import CycletoolsError
from cycletools.media.video import FrameReader, VideoInfo, VideoWriter, even, probe
from cycletools.pipelines.translator import Translator

_END = object()
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".m4v", ".webm"}


@dataclass
class VideoResult:
    output: Path
    frames: int
    corrupt: int
    seconds: float
    width: int
    height: int
    audio: str | None
    partial: bool = False
    padded: bool = False

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def output_size(info: VideoInfo, size: int | None, scale: float | None) -> tuple[int, int]:
    """The frame size to translate and write: the input's, or resized by --size / --scale (even)."""
    if size is not None and scale is not None:
        raise CycletoolsError("give --size or --scale, not both")
    if size is not None:
        factor = size / min(info.width, info.height)
    elif scale is not None:
        if scale <= 0:
            raise CycletoolsError("--scale must be positive")
        factor = scale
    else:
        return info.width, info.height
    return even(max(2, round(info.width * factor))), even(max(2, round(info.height * factor)))


def default_output(source: Path, label: str) -> Path:
    return source.with_name(f"{source.stem}_{label}.mp4")


def translate_video(translator: Translator, source: str | Path, target: str | Path, batch_size: int = 4,
                    size: int | None = None, scale: float | None = None, start: float | None = None,
                    duration: float | None = None, side_by_side: bool = False, progress: bool = True,
                    stabilize: float | None = None) -> VideoResult:
    """Translate ``source`` into ``target`` keeping frame count, frame rate, size and audio.

    ``stabilize`` (a strength in [0, 1)) blends each output with the previous one carried along
    the input's optical flow, which removes most frame-to-frame flicker.
    """
    source, target = Path(source), Path(target)
    info = probe(source)
    if target.suffix.lower() not in VIDEO_SUFFIXES:
        raise CycletoolsError(f"{target}: output must be one of {', '.join(sorted(VIDEO_SUFFIXES))}")
    if target.resolve() == source.resolve():
        raise CycletoolsError(f"{target}: refusing to overwrite the input video")
    if not target.parent.is_dir():
        raise CycletoolsError(f"output folder does not exist: {target.parent}")
    width, height = output_size(info, size, scale)
    stabilizer = None
    if stabilize is not None:
        from cycletools.media.stabilize import TemporalStabilizer

        stabilizer = TemporalStabilizer(stabilize)
    out_width = width * 2 if side_by_side else width
    tmp = target.with_name(f".{target.stem}.tmp{target.suffix}")
    try:
        writer = VideoWriter(tmp, out_width, height, info.fps, audio_from=source if info.has_audio else None,
                             audio_start=start or 0.0, audio_duration=duration, time_base=info.time_base)
    except PermissionError:
        raise CycletoolsError(f"{target}: cannot write here (permission denied)") from None
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise CycletoolsError(f"{target}: cannot create the output ({exc})") from None

    reader = FrameReader(source, start, duration)
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
                image = frame.image
                if image.shape[1] != width or image.shape[0] != height:
                    image = _resize(image, width, height)
                decoded.put((frame.time, image))
        except BaseException as exc:  # handed to the main thread
            errors.append(exc)
        finally:
            decoded.put(_END)

    def encode() -> None:
        # Stabilising runs here, in frame order, overlapped with the model working on the next batch.
        try:
            while (item := encoded.get()) is not _END:
                stamp, original, output = item
                if stabilizer is not None:
                    output = stabilizer(original, output)
                frame = np.concatenate([original, output], axis=1) if side_by_side else output
                writer.write(frame, stamp)
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    decoder = threading.Thread(target=decode, name="cycletools-decode", daemon=True)
    encoder = threading.Thread(target=encode, name="cycletools-encode", daemon=True)
    decoder.start()
    encoder.start()
    bar = tqdm(total=expected, unit="frame", desc=source.name, disable=not progress, dynamic_ncols=True)
    started = time.perf_counter()
    interrupted = False
    try:
        finished = False
        while not finished and not stop.is_set():
            batch = []
            while len(batch) < batch_size:
                item = decoded.get()
                if item is _END:
                    finished = True
                    break
                batch.append(item)
            if not batch:
                break
            images = np.stack([image for _, image in batch])
            outputs = translator.translate_frames(images)
            for (stamp, original), output in zip(batch, outputs):
                encoded.put((stamp, original, output))
            bar.update(len(batch))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop.set()
        _drain(decoded)
        decoder.join(timeout=10)
        _drain(decoded)
        encoded.put(_END)
        encoder.join()
        bar.close()
    if errors and not interrupted:
        try:
            writer.close()
        except Exception:
            pass
        tmp.unlink(missing_ok=True)
        error = errors[0]
        if isinstance(error, CycletoolsError):
            raise error
        raise CycletoolsError(f"{source}: video processing failed ({type(error).__name__}: {error})") from None
    return _finalise(writer, tmp, target, reader, started, interrupted, width, height)


def _finalise(writer: VideoWriter, tmp: Path, target: Path, reader: FrameReader, started: float,
              interrupted: bool, width: int, height: int) -> VideoResult:
    if writer.frames == 0:
        try:
            writer.close()
        except Exception:
            pass  # nothing was encoded: the empty file is discarded anyway
        finally:
            tmp.unlink(missing_ok=True)
        if interrupted:
            raise KeyboardInterrupt
        raise CycletoolsError(f"{reader.path}: no frames could be decoded; nothing was written")
    try:
        writer.close()
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise CycletoolsError(f"{target}: could not finish the video ({exc})") from None
    final = target.with_name(f"{target.stem}.partial{target.suffix}") if interrupted else target
    os.replace(tmp, final)
    return VideoResult(final, writer.frames, reader.corrupt, time.perf_counter() - started, width, height,
                       writer.audio_mode, partial=interrupted, padded=writer.padded)


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


def _drain(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass
