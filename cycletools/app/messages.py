"""What the page and the server's log are told: one sentence for the page, never a traceback or a server
path; the details go to the log (stderr)."""

from __future__ import annotations

import functools
import re
import sys
import traceback
from pathlib import Path

import gradio as gr

from cycletools import store
from cycletools.app.jobs import JobCancelled
from cycletools.errors import CycletoolsError, first_line

PUBLIC_MESSAGE_LIMIT = 200  # characters of an error shown on the page
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/[^\s'\"`()<>,;]+")


def log(message: str) -> None:
    """A line in the server's log (stderr), where details that users are not shown go."""
    print(f"cycletools serve: {message}", file=sys.stderr, flush=True)


def hide_paths(text: str) -> str:
    """Server paths out of a message: a file's name, or ``$CYCLETOOLS_HOME/...`` in the user's folder."""
    home = str(store.home())

    def short(match: re.Match) -> str:
        path = match.group(0)
        return "$CYCLETOOLS_HOME" + path[len(home):] if path.startswith(home + "/") else Path(path).name

    return ABSOLUTE_PATH.sub(short, text)


def public_message(exc: BaseException) -> str:
    """One sentence for the page: the error's first line with server paths hidden first, then cut at a word
    (with "…") where it is longer than ``PUBLIC_MESSAGE_LIMIT``."""
    text = hide_paths(first_line(exc, limit=100_000))
    if len(text) > PUBLIC_MESSAGE_LIMIT:
        text = text[:PUBLIC_MESSAGE_LIMIT].rsplit(" ", 1)[0].rstrip(",;:") + " …"
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def refusal(message: str, cause: BaseException | None = None) -> gr.Error:
    """The page shows ``message``; the log also gets the cause."""
    log(f"refused: {message}" + (f" ({type(cause).__name__}: {cause})" if cause else ""))
    return gr.Error(message, duration=None, print_exception=False)


def clear_errors(function):
    """Errors reach the page as one sentence without server paths; details and tracebacks go to the log."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except gr.Error:
            raise
        except JobCancelled as exc:
            log(str(exc))
            raise gr.Error("The request was cancelled.", print_exception=False) from None
        except CycletoolsError as exc:
            raise refusal(public_message(exc), exc) from None
        except Exception:
            log(f"{function.__name__} failed:\n{traceback.format_exc()}")
            raise gr.Error("The translation failed on the server; its log has the details.", duration=None,
                           print_exception=False) from None
    return wrapper
