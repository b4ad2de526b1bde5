"""Where `cycletools video`'s time goes: each stage alone, then end to end, in one process.

    python benchmarks/video_profile.py [--clip FILE] [--frames 600] [--size 256] [--plugin horse2zebra]
                                       [--variant bundled] [--backend openvino] [--batch 4] [--working-size 256]

Without --clip it writes a FRAMES-frame SIZE×SIZE H.264 clip at 30 fps from real footage
(../shared/media/horse-gallop.mp4 looped, or $CYCLETOOLS_SHARED/media/...; a moving synthetic
pattern where that is missing). Then, one after the other, on the same frames:

- start-up: `get_generator` (weights, the cached ONNX export, the backend's compile), twice: once in an
  empty cache folder (what a first run pays) and once again (what every later run pays);
- decode: FrameReader alone (PyAV, RGB frames);
- model: Translator.translate_tensor on ready [-1, 1] batches of the working size (what
  benchmarks/generators.py calls model-only);
- pixel path: Translator.translate_frames on the decoded frames, minus the model: conversion to and from
  floats, resizing to the working size and back;
- encode: VideoWriter alone (RGB → yuv420p, x264);
- end to end: translate_video (decode, translate, encode overlapped): frames/s over the whole clip and
  after its first batch (steady state), and the cores it kept busy.

One JSON object: milliseconds per frame for each stage, their sum, the end-to-end figures and the ratio
of end-to-end to model-only frames/s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from cycletools.media.video import FrameReader, VideoWriter
from cycletools.pipelines.translator import Translator
from cycletools.pipelines.video import translate_video
from cycletools.resolver import get_generator
from cycletools.utils.devices import describe_cpu

FOOTAGE = "media/horse-gallop.mp4"


def shared_footage() -> Path | None:
    for root in (os.environ.get("CYCLETOOLS_SHARED"), Path(__file__).resolve().parents[2] / "shared"):
        if root and (Path(root) / FOOTAGE).is_file():
            return Path(root) / FOOTAGE
    return None


def square_frames(source: Path | None, size: int, count: int) -> list[np.ndarray]:
    """``count`` size×size RGB frames: the footage's centre squares, looped forwards and backwards."""
    import cv2

    if source is None:
        y, x = np.mgrid[0:size, 0:size]
        return [np.stack([(x + 3 * i) % 256, (y + 2 * i) % 256, (x + y + i) % 256], axis=-1).astype(np.uint8)
                for i in range(count)]
    footage = []
    for frame in FrameReader(source):
        image = frame.image
        side = min(image.shape[:2])
        top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        footage.append(cv2.resize(image[top:top + side, left:left + side], (size, size),
                                  interpolation=cv2.INTER_AREA))
    loop = footage + footage[-2:0:-1]
    return [loop[i % len(loop)] for i in range(count)]


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 30) -> None:
    height, width = frames[0].shape[:2]
    writer = VideoWriter(path, width, height, Fraction(fps))
    for i, frame in enumerate(frames):
        writer.write(frame, i / fps)
    writer.close()


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", type=Path, help="a video to profile on instead of the made clip")
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--plugin", default="horse2zebra")
    parser.add_argument("--variant", default="bundled")
    parser.add_argument("--weights", type=Path, help="a weights file for the plugin instead of its variant")
    parser.add_argument("--backend", default="openvino")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--working-size", type=int, default=256)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = args.clip
        if clip is None:
            clip = tmp / "clip.mp4"
            write_clip(clip, square_frames(shared_footage(), args.size, args.frames))

        options = dict(weights=args.weights, variant="auto" if args.weights else args.variant,
                       backend=args.backend, device="cpu")
        home = os.environ.get("CYCLETOOLS_HOME")
        os.environ["CYCLETOOLS_HOME"] = str(tmp / "home")  # an empty cache: the first run's start-up
        first_start, _ = timed(lambda: get_generator(args.plugin, **options))
        later_start, loaded = timed(lambda: get_generator(args.plugin, **options))
        if home is None:
            del os.environ["CYCLETOOLS_HOME"]
        else:
            os.environ["CYCLETOOLS_HOME"] = home
        translator = Translator.from_loaded(loaded, working_size=args.working_size)

        decode_s, frames = timed(lambda: [frame.image for frame in FrameReader(clip)])
        count = len(frames)
        batches = [np.stack(frames[i:i + args.batch]) for i in range(0, count, args.batch)]

        # The model alone, on batches already converted and resized the way translate_frames does it.
        tensors = []
        for batch in batches:
            x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
            h, w = x.shape[-2:]
            scale = args.working_size / min(h, w)
            size = (max(8, round(h * scale)), max(8, round(w * scale)))
            tensors.append(torch.nn.functional.interpolate(x, size=size, mode="bicubic", antialias=True)
                           if size != (h, w) else x)
        translator.translate_tensor(tensors[0])  # warm-up
        model_s, _ = timed(lambda: [translator.translate_tensor(x) for x in tensors])
        pixel_s, outputs = timed(lambda: [translator.translate_frames(batch) for batch in batches])
        outputs = [frame for batch in outputs for frame in batch]

        def encode() -> None:
            write_clip(tmp / "encoded.mp4", outputs)
        encode_s, _ = timed(encode)

        cpu_before = cpu_seconds()
        result = translate_video(translator, clip, tmp / "translated.mp4", batch_size=args.batch, progress=False,
                                 size=None)
        cores = (cpu_seconds() - cpu_before) / result.seconds

    per_frame = {"decode": decode_s, "model": model_s, "pixel_path": pixel_s - model_s, "encode": encode_s}
    ms = {name: round(1000 * seconds / count, 2) for name, seconds in per_frame.items()}
    model_fps = count / model_s
    print(json.dumps({
        "machine": describe_cpu(), "threads": torch.get_num_threads(), "clip": str(args.clip or "made"),
        "frames": count, "frame_size": list(frames[0].shape[1::-1]), "working_size": args.working_size,
        "plugin": args.plugin, "variant": args.variant, "weights": str(args.weights) if args.weights else None,
        "backend": args.backend, "batch": args.batch,
        "startup_s": {"first_run": round(first_start, 2), "later_runs": round(later_start, 2)},
        "ms_per_frame": {**ms, "sum": round(sum(ms.values()), 2),
                         "end_to_end": round(1000 * result.seconds / result.frames, 2)},
        "model_only_fps": round(model_fps, 2), "end_to_end_fps": round(result.frames_per_second, 2),
        "end_to_end_steady_fps": round(result.steady_frames_per_second or 0.0, 2),
        "end_to_end_cores": round(cores, 2), "ratio": round(result.frames_per_second / model_fps, 3)}))


if __name__ == "__main__":
    main()
