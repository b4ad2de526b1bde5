"""stdout that carries a command's results and nothing else (``plugins --json``, ``weights info --json``).

Plugins run inside the command: one may print at import, from a thread of its own at any later time or
at exit, or through a library writing to file descriptor 1. ``results_stream`` keeps the real stdout for
the results alone and sends everything else written to stdout to stderr, until the process ends."""

from __future__ import annotations

import os
import sys
from typing import TextIO

_results: list[TextIO] = []  # the stream results_stream made, if any


def results_stream() -> TextIO:
    """A stream on the real stdout for this command's results; sys.stdout and file descriptor 1 now lead to
    stderr (for good: a plugin's thread may still print after the results are written). Where a caller has
    put its own sys.stdout in place (main() called in-process, a test capturing it), that is used as it is."""
    if _results:
        return _results[0]
    if sys.stdout is not sys.__stdout__:
        return sys.stdout
    sys.stdout.flush()
    results = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _results.append(results)
    return results


def flush() -> None:
    """Flush the results and stdout (a closed pipe raises BrokenPipeError here, for main to catch)."""
    for stream in (*_results, sys.stdout):
        stream.flush()


def discard() -> None:
    """The reader went away: point the results' descriptor (or stdout's) at the null device, so that what is
    still buffered cannot fail again at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, _results[0].fileno() if _results else sys.stdout.fileno())
    os.close(devnull)
