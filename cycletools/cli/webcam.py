"""``cycletools webcam``: live translation of a camera, a video file or a stream."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = """Translate a live camera stream and show it in a window (keys: q or Esc quit, s side by side,
n / p switch to the next / previous domain that has weights). --camera takes a device index
(default 0), a video file or a stream URL; --record OUT.mp4 saves the translated stream (written to
a temporary file, renamed into place when you quit). --no-window runs without a preview (for
recording, or on machines without a display). Exit status: 0 done (q, Esc, Ctrl-C or the end of a
clip), 1 error, 3 a video file ended before the frames its container promises (the recording is kept)."""


def add_parser(commands) -> None:
    from cycletools.cli.options import COUNT, PIXELS, add_generator_options, add_renamed

    parser = commands.add_parser("webcam", help="translate a live camera stream", description=HELP,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_generator_options(parser)
    parser.add_argument("--camera", default="0", metavar="0|PATH|URL", help="device index, video file or URL")
    parser.add_argument("--record", metavar="OUT.mp4", help="also record the translated stream")
    parser.add_argument("--frame-size", dest="frame_size", type=PIXELS, metavar="S",
                        help="resize camera frames so the shorter side is S pixels (what is shown and recorded; "
                             "--working-size is what the generator sees)")
    add_renamed(parser, "--size", "--frame-size", dest="frame_size", type=PIXELS)
    parser.add_argument("--side-by-side", action="store_true", help="start with camera and translation side by side")
    parser.add_argument("--no-window", action="store_true", help="no preview window")
    parser.add_argument("--max-frames", type=COUNT, metavar="N", help="stop after N frames")
    parser.set_defaults(handler=run_webcam)


def run_webcam(args: argparse.Namespace) -> int:
    from cycletools.cli.options import translator_from_args
    from cycletools.errors import UsageError
    from cycletools.pipelines.live import LiveSession
    from cycletools.pipelines.targets import check_video_target
    from cycletools.utils.speed import speed_text

    if args.no_window and not args.record:
        raise UsageError("--no-window without --record would show and save nothing")
    if args.record:  # before the model loads and the camera opens; the session checks it again
        check_video_target(args.record, args.camera if Path(args.camera).is_file() else None)
    translator = translator_from_args(args)
    session = LiveSession(translator, args.camera, record=Path(args.record) if args.record else None,
                          size=args.frame_size, window=not args.no_window, side_by_side=args.side_by_side,
                          max_frames=args.max_frames, switch=_domain_switcher(translator, args))
    result = session.run()
    where = f" → {result.recorded}" if result.recorded else ""
    print(f"{result.frames} frames in {result.seconds:.1f} s ({speed_text(result.frames, result.seconds)}){where}")
    if result.ends_early:
        print(f"cycletools: warning: {result.ends_early}", file=sys.stderr)
        return 3
    return 0


def _domain_switcher(translator, args):
    """Cycle through the registered domains whose weights are here, with the same --device, --precision,
    --backend and --variant as the first one."""
    from cycletools import store
    from cycletools.cli.options import generator_options
    from cycletools.pipelines.translator import TranslatorCache
    from cycletools.registry import get_registry

    registry = get_registry()
    names = [name for name, spec in registry.domains.items() if store.usable(spec)]
    if len(names) < 2:
        return None
    options = {key: value for key, value in generator_options(args).items()
               if key in ("device", "precision", "backend", "variant", "calibrate")}
    cache = TranslatorCache(**options)
    if translator is not None and args.plugin in names and not args.weights:
        cache.seed(args.plugin, translator)
    position = {"index": names.index(args.plugin) if args.plugin in names else -1}

    def switch(step: int):
        position["index"] = (position["index"] + step) % len(names)
        return cache.get(names[position["index"]])

    return switch
