"""Entry point: builds the parser from the subcommand modules and turns user errors into one line."""

from __future__ import annotations

import argparse
import sys
import time
import warnings

from cycletools import __version__
from cycletools.cli import (
    distill,
    evaluate,
    export,
    output,
    plugins,
    serve,
    train,
    translate,
    video,
    webcam,
    weights,
)

SUBCOMMANDS = (train, translate, video, webcam, serve, evaluate, export, distill, plugins, weights)

EPILOG = """examples:
  cycletools train --data datasets/horse2zebra --name horse2zebra
  cycletools translate photo.jpg --run runs/horse2zebra --direction a2b -o zebra.png
  cycletools translate photos/ --weights horse2zebra.pth -o zebras/
  cycletools plugins
  cycletools translate horse.jpg --plugin horse2zebra -o zebra.png   (the bundled generator)
  cycletools translate horse.jpg --plugin horse2zebra --variant full --download -o zebra.png
  cycletools video in.mp4 --plugin horse2zebra
  cycletools serve

Run 'cycletools COMMAND --help' for the options of each command."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, whose errors are one line (``cycletools video: error: argument --scale: ...``) and exit 2;
    the commands' sub-parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="cycletools",
        description="Unpaired image-to-image translation with CycleGAN: train a domain pair on two "
                    "folders of images, then translate images, animations, videos and camera streams with it "
                    "(also in a web app). Every domain pair is a plugin: 'cycletools plugins' lists them.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cycletools {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for module in SUBCOMMANDS:
        module.add_parser(commands)
    from cycletools.registry import get_registry

    get_registry().add_commands(commands)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"cycletools: warning: {message}", file=sys.stderr if file is None else file)


BROKEN_PIPE = 141  # 128 + SIGPIPE: the status a shell reports for a tool whose reader went away


STARTED: float | None = None  # time.perf_counter() when the running command began (see _run)


def main(argv: list[str] | None = None) -> int:
    """Run one command; output piped into a reader that stops early (``| head -1``) ends it quietly."""
    try:
        try:
            return _run(argv)
        finally:
            output.flush()  # here, not at exit, so that a closed pipe is caught below
    except BrokenPipeError:
        output.discard()
        return BROKEN_PIPE


def _run(argv: list[str] | None) -> int:
    global STARTED
    STARTED = time.perf_counter()  # before the plugins and torch load: what a command's start-up counts from
    warnings.showwarning = _show_warning
    if "--json" in (sys.argv[1:] if argv is None else argv):
        output.results_stream()  # before plugins load: stdout carries the JSON alone (see cli/output.py)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from cycletools.errors import CycletoolsError, UsageError, torchvision_mismatch

    try:
        return int(args.handler(args) or 0)
    except UsageError as exc:
        print(f"cycletools {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except CycletoolsError as exc:
        print(f"cycletools: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cycletools: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        if (advice := torchvision_mismatch(exc)) is None:
            raise
        print(f"cycletools: error: {advice}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
