"""Flicker with and without --stabilize on a real clip, and what stabilising costs in frames/s.

    python benchmarks/flicker.py CLIP --weights FILE [--strength 0.6] [--size 256]

Translates CLIP twice in this process (plain, then stabilised), and reports the flicker of
each output (mean warping error between consecutive frames along the input's optical flow,
over reliable pixels, grey levels) and the end-to-end frames/s of each run.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import torch

from cycletools.media.stabilize import flicker
from cycletools.media.video import FrameReader
from cycletools.pipelines.translator import Translator
from cycletools.pipelines.video import translate_video


def frames(path: Path) -> list:
    return [frame.image for frame in FrameReader(path)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("clip", type=Path)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--strength", type=float, default=0.6)
    parser.add_argument("--size", type=int, default=None, help="resize frames (shorter side)")
    args = parser.parse_args()
    translator = Translator.from_file(args.weights)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, strength in (("plain", None), ("stabilized", args.strength)):
            out = Path(tmp) / f"{label}.mp4"
            run = translate_video(translator, args.clip, out, size=args.size, stabilize=strength, progress=False)
            source = frames(args.clip) if args.size is None else None
            outputs = frames(out)
            if source is None:
                import cv2

                source = [cv2.resize(f, (outputs[0].shape[1], outputs[0].shape[0]), interpolation=cv2.INTER_AREA)
                          for f in frames(args.clip)]
            results[label] = {"flicker": round(flicker(source, outputs), 3), "fps": round(run.frames_per_second, 2)}
        results["input_flicker"] = round(flicker(source, source), 3)
    machine = f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
    print(json.dumps({"clip": args.clip.name, "weights": Path(args.weights).name, "machine": machine, **results,
                      "flicker_reduction": round(1 - results["stabilized"]["flicker"] / results["plain"]["flicker"], 3),
                      "fps_cost": round(1 - results["stabilized"]["fps"] / results["plain"]["fps"], 3)}))


if __name__ == "__main__":
    main()
