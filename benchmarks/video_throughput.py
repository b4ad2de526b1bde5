"""End-to-end video translation vs the model alone, in the same process.

    python benchmarks/video_throughput.py [--frames 24] [--size 256] [--batch 4] [--generator resnet9|mobile]

Writes a synthetic H.264 clip of SIZE×SIZE, then measures (1) the model only:
Translator.translate_frames on those frames in batches, and (2) `translate_video` end to end
(decode, translate, encode, overlapped). Prints both frames/s and their ratio (target ≥ 0.9).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from cycletools.media.video import FrameReader, VideoWriter
from cycletools.models import ResnetGenerator, init_weights
from cycletools.models.mobile import MobileResnetGenerator
from cycletools.pipelines.translator import Translator
from cycletools.pipelines.video import translate_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--generator", choices=("resnet9", "mobile"), default="resnet9")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    generator = ResnetGenerator(ngf=64, n_blocks=9) if args.generator == "resnet9" else MobileResnetGenerator()
    translator = Translator(init_weights(generator), device=args.device)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        writer = VideoWriter(clip, args.size, args.size, Fraction(30))
        for i in range(args.frames):
            writer.write(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8), i / 30)
        writer.close()
        frames = np.stack([f.image for f in FrameReader(clip)])
        translator.translate_frames(frames[: args.batch])  # warm-up
        start = time.perf_counter()
        for i in range(0, len(frames), args.batch):
            translator.translate_frames(frames[i:i + args.batch])
        model_fps = len(frames) / (time.perf_counter() - start)
        result = translate_video(translator, clip, Path(tmp) / "out.mp4", batch_size=args.batch, progress=False)
    machine = torch.cuda.get_device_name() if translator.device.type == "cuda" else \
        f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    print(json.dumps({"machine": machine, "generator": args.generator, "size": args.size, "frames": args.frames,
                      "batch": args.batch, "model_only_fps": round(model_fps, 2),
                      "end_to_end_fps": round(result.frames_per_second, 2),
                      "ratio": round(result.frames_per_second / model_fps, 3)}))


if __name__ == "__main__":
    main()
