"""The error type for problems a user can fix (bad input, missing files, wrong weights)."""


class CycletoolsError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero."""


class UsageError(CycletoolsError):
    """Options that do not go together; the CLI exits with status 2, like argparse."""


def first_line(exc: BaseException, limit: int = 200, with_type: bool = False) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line errors."""
    lines = str(exc).strip().splitlines()
    text = lines[0][:limit] if lines else type(exc).__name__
    return f"{type(exc).__name__}: {text}" if with_type and lines else text
