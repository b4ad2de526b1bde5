"""The error type for problems a user can fix (bad input, missing files, wrong weights)."""


class CycletoolsError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero."""
