"""The error type for problems a user can fix (bad input, missing files, wrong weights)."""


class CycletoolsError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero."""


class UsageError(CycletoolsError):
    """Options that do not go together; the CLI exits with status 2, like argparse."""
