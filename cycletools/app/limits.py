"""The app's limits (``cycletools serve`` options) and the budget that holds a clip to them while it is
decoded."""

from __future__ import annotations

from dataclasses import dataclass

from cycletools.errors import CycletoolsError

MAX_BUDGET_FPS = 60  # a clip declaring a faster frame rate is budgeted as if it had 60 frames a second

@dataclass
class ServeLimits:
    max_upload: str = "200mb"          # any single upload (Gradio refuses larger ones)
    max_image_pixels: int = 40_000_000  # width × height, of the upload and of what the model works at
    max_aspect_ratio: float = 16.0      # longer side / shorter side (a 256×1 image is no photo)
    max_video_seconds: float = 600.0
    max_disk: int = 2 * 1024**3        # bytes that uploads and results may take together (see disk.py)
    queue_size: int = 16               # waiting requests beyond the running ones
    concurrency: int = 1               # translations at once on the device
    allow_downloads: bool = True       # whether a client may make the server fetch weights (Plugins tab)


@dataclass
class DecodeBudget:
    """Stops a clip once what is decoded passes the limits, whatever its file declares (a length can be
    missing or false, and a stream may change its picture size): every frame must be an image the app
    would take (pixels, aspect ratio); the clip stops past the time limit by the frames' timestamps, by
    their number (the limit's seconds at 60 frames a second, the fastest rate budgeted) and by frames ×
    pixels (worth ``seconds`` of frames at the declared size and frame rate)."""

    seconds: float
    pixels: float
    max_frame_pixels: int = 40_000_000
    max_aspect_ratio: float = 16.0
    decoded: int = 0
    frames: int = 0

    @classmethod
    def for_clip(cls, info, limits: ServeLimits) -> "DecodeBudget":
        rate = min(float(info.fps), MAX_BUDGET_FPS)
        seconds = limits.max_video_seconds
        return cls(seconds, seconds * rate * info.width * info.height, limits.max_image_pixels,
                   limits.max_aspect_ratio)

    def check_size(self, width: int, height: int) -> None:
        """A frame of ``width``×``height`` must be within the image limits."""
        if width * height > self.max_frame_pixels:
            raise CycletoolsError(f"the clip's frames are {width}×{height}; the limit is "
                                  f"{self.max_frame_pixels / 1e6:g} megapixels")
        if max(width, height) > self.max_aspect_ratio * min(width, height):
            raise CycletoolsError(f"the clip's frames are {width}×{height}; their longer side may be at most "
                                  f"{self.max_aspect_ratio:g} times their shorter side")

    def __call__(self, frame) -> None:
        height, width = frame.image.shape[:2]
        self.check_size(width, height)
        self.decoded += width * height
        self.frames += 1
        if frame.time > self.seconds or self.frames > self.seconds * MAX_BUDGET_FPS:
            raise CycletoolsError(f"the clip runs past the {self.seconds:g} s limit")
        if self.decoded > self.pixels:
            raise CycletoolsError(f"the clip runs past the {self.seconds:g} s limit: its frames hold more pixels "
                                  f"than {self.seconds:g} s at its declared size and frame rate")
