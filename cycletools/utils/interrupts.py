"""Ctrl-C / SIGTERM as a request to stop at the next safe point, instead of an exception anywhere.

A KeyboardInterrupt raised in the middle of a queue or lock operation can leave that lock held
and hang the threads that share it; loops that work with threads (video, recording) or must
save their state (training) poll ``StopRequest.requested`` instead.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopRequest:
    """Turns the first Ctrl-C / SIGTERM into ``requested = True``; loops check it between steps.

    ``force_on_repeat``: a second signal raises KeyboardInterrupt (stop now), for loops whose
    last saved state stays intact; otherwise repeats are only noted. Off the main thread (e.g.
    in a web server's worker) signals cannot be handled here, and nothing is installed.
    """

    def __init__(self, force_on_repeat: bool = True):
        self.requested = False
        self.force_on_repeat = force_on_repeat
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested and self.force_on_repeat:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
