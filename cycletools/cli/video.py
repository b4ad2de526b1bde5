"""``cycletools video``: translate a video file frame by frame."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HELP = """Translate a video file frame by frame and write a video people can play and share.

The output keeps the exact frame count, the frame rate (as a rational, e.g. 30000/1001; variable
frame rates keep each frame's timestamp), the width and height (unless --frame-size or --scale is
given) and the audio track (copied when the container takes it, re-encoded otherwise). MP4/MOV/MKV
outputs are H.264 + yuv420p (browser-playable; an odd width or height gets one repeated edge pixel,
as yuv420p needs even sizes), WebM outputs VP9 + Opus. Frames that fail to decode are replaced by
the previous good frame and counted. The output is written to a temporary file and renamed into
place when complete; Ctrl-C keeps the frames done so far as NAME.partial.mp4. With --start and
--duration the output starts at 0 and its audio covers the same window; a partial file, or an input
that ends before what its container promises (a warning says so), keeps only the audio of its frames.
Exit status: 0 done, 1 nothing written, 3 the input ended early (output kept), 130 interrupted.

--stabilize removes most frame-to-frame flicker (OpenCV DIS optical flow) at some cost in speed.
With --plugin, each frame is translated at the domain's recommended size (shorter side, e.g. 256)
and scaled back, as for images. Decoding, translation and encoding run overlapped."""


def add_parser(commands) -> None:
    from cycletools.cli.options import BATCH, LENGTH, PIXELS, SECONDS, Number, add_generator_options, add_renamed

    parser = commands.add_parser("video", help="translate a video file frame by frame", description=HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", metavar="IN", help="video file (anything FFmpeg reads)")
    add_generator_options(parser)
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="output video, or an existing folder for IN_<plugin>.mp4 (default: IN_<plugin>.mp4 "
                             "beside IN)")
    parser.add_argument("--frame-size", dest="frame_size", type=PIXELS, metavar="S",
                        help="resize the video so the shorter side of its frames is S pixels (what is written; "
                             "--working-size is what the generator sees)")
    add_renamed(parser, "--size", "--frame-size", dest="frame_size", type=PIXELS)
    parser.add_argument("--scale", type=Number(float, above=0, high=64), metavar="F", help="resize frames by F (e.g. 0.5)")
    parser.add_argument("--batch-size", type=BATCH, default=4, metavar="B", help="frames per model call (default: 4)")
    parser.add_argument("--start", type=SECONDS, metavar="T", help="start at T seconds")
    parser.add_argument("--duration", type=LENGTH, metavar="T", help="translate T seconds")
    parser.add_argument("--side-by-side", action="store_true", help="write input and translation side by side")
    parser.add_argument("--stabilize", nargs="?", type=Number(float, 0, below=1), const=0.6, default=None, metavar="STRENGTH",
                        help="reduce flicker: blend each frame with the previous output carried along the "
                             "input's optical flow where the flow is reliable (strength from 0 up to but not including 1, default 0.6)")
    parser.set_defaults(handler=run_video)


def video_target(source: Path, output: str | None, label: str) -> Path:
    """The output file: -o as given, or the default name beside the input or inside the folder -o names."""
    from cycletools.errors import CycletoolsError
    from cycletools.pipelines.video import default_output

    if output is None:
        return default_output(source, label)
    if output.endswith(("/", os.sep)) or Path(output).is_dir():
        if not Path(output).is_dir():
            raise CycletoolsError(f"output folder does not exist: {output}")
        return Path(output) / default_output(source, label).name
    return Path(output)


def run_video(args: argparse.Namespace) -> int:
    from cycletools.cli import main as command
    from cycletools.cli.options import translator_from_args
    from cycletools.pipelines.video import check_video_job, translate_video
    from cycletools.utils.speed import speed_text

    began = command.STARTED or time.perf_counter()  # the command's start: its start-up counts loading too
    source = Path(args.input)
    label = args.plugin or (Path(args.weights).stem if args.weights else args.direction or "a2b")
    target = video_target(source, args.output, label)
    check_video_job(source, target, args.frame_size, args.scale, args.start)  # before the model loads (seconds)
    translator = translator_from_args(args)
    result = translate_video(translator, source, target, batch_size=args.batch_size, size=args.frame_size,
                             scale=args.scale, start=args.start, duration=args.duration,
                             side_by_side=args.side_by_side, stabilize=args.stabilize)
    notes = []
    if result.audio:
        notes.append(f"audio {result.audio}")
    if result.corrupt:
        notes.append(f"{result.corrupt} undecodable frame(s) replaced by the previous one")
    if result.padded:
        notes.append("odd size padded by one pixel for H.264")
    steady = result.steady_frames_per_second
    if steady is not None:  # loading and compiling the model and the first frames, then the pace it kept
        notes.insert(0, f"start-up {result.first_batch_at - began:.1f} s, then "
                        f"{speed_text(result.frames - result.first_batch, (result.frames - result.first_batch) / steady)}")
    summary = (f"{result.frames} frames in {result.seconds:.1f} s ({speed_text(result.frames, result.seconds)}), "
               f"{result.width}x{result.height} → {result.output}" + (f"; {'; '.join(notes)}" if notes else ""))
    if result.partial:
        print(f"interrupted: kept {summary} (partial)", file=sys.stderr)
        return 130
    print(summary)
    if result.ends_early:
        print(f"cycletools: warning: {result.ends_early}", file=sys.stderr)
        return 3
    return 0
