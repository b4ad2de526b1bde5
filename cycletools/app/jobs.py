"""Jobs and their cancellation: a translation stops when its client goes away or the server stops.

A job checks between video frames and, through hooks on the generator's layers, between layers; so a
closed page or a Ctrl-C stops even one long frame within a layer's time."""

from __future__ import annotations

import threading
import time

from cycletools.errors import CycletoolsError
from cycletools.pipelines.stopping import checking, stoppable


class JobCancelled(CycletoolsError):
    """The request's client went away: it closed the page, cancelled, or lost its connection."""


_jobs = threading.Condition()  # guards _active; notified when a job ends
_active = 0                    # jobs running now
_stopping = threading.Event()  # the server is stopping: every job is cancelled


class Job:
    """A translation request that knows whether its client is still there.

    Gradio marks a request's event dead when its client disconnects or cancels (and drops it when
    cancelled); a job checks that between video frames and between the generator's layers. This reads
    Gradio's queue (``event_ids_to_events``, Gradio 6), and never cancels anything it does not find there.
    """

    def __init__(self, kind: str):
        from gradio.context import LocalContext

        self.kind, self.started = kind, time.perf_counter()
        self._queue = getattr(LocalContext.blocks.get(None), "_queue", None)  # falsy when empty: test for None
        self._event_id = LocalContext.event_id.get(None)
        known = self._queue.event_ids_to_events if self._queue is not None else {}
        self._event = known.get(self._event_id)

    def gone(self) -> bool:
        if _stopping.is_set():
            return True
        if self._event is None:
            return False  # not run by Gradio's queue: nobody to lose
        return not self._event.alive or self._event_id not in self._queue.event_ids_to_events

    def check(self) -> None:
        if self.gone():
            why = "the server is stopping" if _stopping.is_set() else "its client went away"
            raise JobCancelled(f"the {self.kind} job was cancelled after {time.perf_counter() - self.started:.1f} s: "
                               f"{why}")

    def __enter__(self) -> "Job":
        global _active
        with _jobs:
            _active += 1
        self._checking = checking(self.check)  # the generator's layers check too (stoppable)
        self._checking.__enter__()
        try:
            self.check()  # a job that starts while the server stops ends at once
        except JobCancelled:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        global _active
        self._checking.__exit__(None, None, None)
        with _jobs:
            _active -= 1
            _jobs.notify_all()


def start_serving() -> None:
    """A new app: a stopped app's cancellation does not reach it."""
    _stopping.clear()


def cancel_jobs() -> None:
    """The server is stopping: every running job stops at its next check, and new ones at once."""
    _stopping.set()


def stopping() -> bool:
    return _stopping.is_set()


def stop_jobs(timeout: float = 30.0) -> bool:
    """Cancel every running job and wait for them to end (their threads joined); whether all did."""
    cancel_jobs()
    with _jobs:
        return _jobs.wait_for(lambda: _active == 0, timeout)


def cancellable(translator):
    """Let the running job stop ``translator`` between its generator's layers."""
    stoppable(translator.generator)
    return translator
