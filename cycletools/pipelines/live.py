"""Live translation of a camera (or a video file or stream standing in for one) with OpenCV.

Shows a preview window with the translated stream (keys: q/Esc quit, s side by side,
n/p next/previous domain), an FPS overlay, and optionally records what it translates.
Without a display (or with ``window=False``) it runs headless, e.g. to record.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from cycletools.errors import CycletoolsError
from cycletools.media.video import VideoWriter
from cycletools.pipelines.targets import check_video_target
from cycletools.pipelines.translator import Translator
from cycletools.utils.atomic import replace_keeping_mode, temp_beside
from cycletools.utils.interrupts import StopRequest
from cycletools.utils.optional import require
from cycletools.utils.sizes import check_frame_size, shorter_side_to

STREAM_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")
WINDOW = "cycletools"


def _cv2():
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")  # our own error and warning lines say what went wrong
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own lines too (AV_LOG_QUIET)
    return require("cv2", "media", "the webcam")


def open_camera(camera: str):
    """A device index ("0"), a video file or a stream URL, opened with OpenCV; one clear error if not."""
    cv2 = _cv2()
    if camera.isdigit():
        capture = cv2.VideoCapture(int(camera)) if int(camera) < 2**31 else None  # OpenCV takes a C int
        if capture is None or not capture.isOpened():
            raise CycletoolsError(f"cannot open camera {camera}: no such device, or it is busy "
                                  "(try another --camera index, a video file or a stream URL)")
        return capture, False
    if not camera.startswith(STREAM_PREFIXES) and not Path(camera).is_file():
        raise CycletoolsError(f"camera not found: {camera} is neither a device index, a file nor a stream URL")
    capture = cv2.VideoCapture(camera)
    if not capture.isOpened():
        raise CycletoolsError(f"cannot open {camera} as a camera (not a video OpenCV can read)")
    return capture, not camera.startswith(STREAM_PREFIXES)


def display_available() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


@dataclass
class LiveResult:
    frames: int
    seconds: float
    recorded: Path | None
    ends_early: str | None = None  # why a clip stopped short of the frames its container promises

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


class _Recorder:
    """Encodes recorded frames on a thread of its own, so recording does not slow the live loop."""

    def __init__(self, writer: VideoWriter):
        self.writer = writer
        self.queue: queue.Queue = queue.Queue(maxsize=64)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="cycletools-record", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.writer.write(*item)
                except BaseException as exc:  # reported when the session ends
                    self.error = exc

    def put(self, frame: np.ndarray, stamp: float) -> None:
        self.queue.put((frame, stamp))

    def finish(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise CycletoolsError(f"recording failed: {self.error}")


class LiveSession:
    """Reads frames, translates them one by one, shows and/or records them."""

    def __init__(self, translator: Translator, camera: str, record: Path | None = None, size: int | None = None,
                 window: bool = True, side_by_side: bool = False, max_frames: int | None = None,
                 switch: Callable[[int], Translator | None] | None = None):
        self.cv2 = _cv2()
        self.translator, self.size, self.side_by_side = translator, size, side_by_side
        self.max_frames, self.switch = max_frames, switch
        if window and not display_available():
            raise CycletoolsError("no display for the preview window; add --no-window (and --record OUT.mp4)")
        if record is not None:  # before the camera opens: a recording never replaces the clip it reads
            check_video_target(record, camera if Path(camera).is_file() else None)
        self.window, self.record = window, Path(record) if record else None
        self.camera = camera
        self.capture, self.is_file = open_camera(camera)

    def _frame_size(self, width: int, height: int) -> tuple[int, int]:
        if self.size is None:
            return width, height
        return check_frame_size(*shorter_side_to(width, height, self.size), f"--frame-size {self.size}")

    def run(self) -> LiveResult:
        cv2 = self.cv2
        fps = Fraction(self.capture.get(cv2.CAP_PROP_FPS) or 30).limit_denominator(1001)
        writer, tmp, recorder, ends_early = None, None, None, None
        frames, started, shown_fps = 0, time.perf_counter(), 0.0
        promised = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if self.is_file else 0
        with StopRequest(force_on_repeat=False) as stop:
            try:
                while (self.max_frames is None or frames < self.max_frames) and not stop.requested:
                    ok, bgr = self.capture.read()
                    if not ok:
                        if frames == 0:
                            raise CycletoolsError(f"{self.camera}: no frames could be decoded" if self.is_file
                                                  else "the camera gave no frames")
                        if frames < promised - 2:  # a truncated clip (two frames' slack for estimated counts)
                            ends_early = (f"{self.camera} ends early: the container promises {promised} frames, "
                                          f"{frames} could be decoded")
                        break
                    stamp = (self.capture.get(cv2.CAP_PROP_POS_MSEC) / 1000 if self.is_file
                             else time.perf_counter() - started)
                    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    width, height = self._frame_size(rgb.shape[1], rgb.shape[0])
                    if (width, height) != (rgb.shape[1], rgb.shape[0]):
                        rgb = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
                    clock = time.perf_counter()
                    output = self.translator.translate_frames(rgb[None])[0]
                    shown_fps = 0.9 * shown_fps + 0.1 / max(time.perf_counter() - clock, 1e-6) if frames else \
                        1 / max(time.perf_counter() - clock, 1e-6)
                    frame = np.concatenate([rgb, output], axis=1) if self.side_by_side else output
                    if self.record is not None:
                        if writer is None or (writer.width, writer.height) != (frame.shape[1], frame.shape[0]):
                            if writer is not None:
                                break  # the side-by-side toggle changed the size: stop recording cleanly
                            tmp = temp_beside(self.record)  # a fresh name: never the clip read, nor another file
                            writer = VideoWriter(tmp, frame.shape[1], frame.shape[0], fps)
                            recorder = _Recorder(writer)
                        recorder.put(frame, stamp)
                    frames += 1
                    if self.window and not self._show(frame, shown_fps):
                        break
            finally:
                self.capture.release()
                if self.window:
                    cv2.destroyAllWindows()
                # What was recorded is kept even when the loop failed: finish and rename it. A recording
                # that cannot be finished (a full disk) is removed, not left half-written.
                if recorder is not None:
                    try:
                        recorder.finish()
                        writer.close()
                        replace_keeping_mode(tmp, self.record)
                    except BaseException:
                        tmp.unlink(missing_ok=True)
                        raise
        return LiveResult(frames, time.perf_counter() - started, self.record if recorder is not None else None,
                          ends_early)

    def _show(self, frame: np.ndarray, fps: float) -> bool:
        """Display with an FPS overlay; handle keys. False when the user quits."""
        cv2 = self.cv2
        view = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        label = f"{fps:.1f} fps  {getattr(self.translator.domain, 'name', '')}  [s] side by side  [n/p] domain  [q] quit"
        (text_width, text_height), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        cv2.rectangle(view, (4, 4), (12 + text_width, 14 + text_height), (0, 0, 0), -1)
        cv2.putText(view, label, (8, 8 + text_height), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.imshow(WINDOW, view)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return False
        if key == ord("s"):
            self.side_by_side = not self.side_by_side
        if key in (ord("n"), ord("p")) and self.switch is not None:
            replacement = self.switch(1 if key == ord("n") else -1)
            if replacement is not None:
                self.translator = replacement
        return True
