"""Stopping a generator between its layers.

One frame of a large video, or one large image, can take minutes; a stop (Ctrl-C or SIGTERM on
``cycletools video``, a web client that went away, a server that stops) must not wait for it. A
``stoppable`` generator runs its thread's check before each of its layers; ``checking`` sets that check
for a block of code, and the check raises to stop."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from torch import nn

_thread = threading.local()   # .check: this thread's check, or None
_hooking = threading.Lock()   # hooks are added once, before any forward pass of the generator runs


class StoppedBetweenLayers(Exception):
    """A stop that was asked for reached the generator: the frames under way are dropped."""


def stoppable(generator) -> None:
    """Run the calling thread's check before each leaf layer of ``generator`` (hooks added once; a model
    that is not a torch module, such as an ONNX or OpenVINO one, stops between batches only)."""
    with _hooking:
        if isinstance(generator, nn.Module) and not getattr(generator, "_stops_between_layers", False):
            for module in generator.modules():
                if next(module.children(), None) is None:
                    module.register_forward_pre_hook(_run_check)
            generator._stops_between_layers = True


@contextmanager
def checking(check: Callable[[], None]) -> Iterator[None]:
    """While inside, ``check`` runs before each layer of a stoppable generator in this thread (after the check
    of an enclosing block, if any: a web job's video stops for either)."""
    previous = getattr(_thread, "check", None)

    def both() -> None:
        previous()
        check()

    _thread.check = check if previous is None else both
    try:
        yield
    finally:
        _thread.check = previous


def _run_check(module: nn.Module, inputs) -> None:
    check = getattr(_thread, "check", None)
    if check is not None:
        check()
