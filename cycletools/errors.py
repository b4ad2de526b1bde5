"""The error type for problems a user can fix (bad input, missing files, wrong weights)."""


class CycletoolsError(Exception):
    """A user-facing error: the CLI prints its message on one line and exits non-zero."""


class UsageError(CycletoolsError):
    """Options that do not go together; the CLI exits with status 2, like argparse."""


def one_line(text: str) -> str:
    """``text`` as one printable line: control characters (newlines, terminal escapes) become spaces, runs of
    whitespace one space."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def first_line(exc: BaseException, limit: int = 200, with_type: bool = False) -> str:
    """The first line of an exception's message (its type name when it has none), for one-line errors."""
    lines = str(exc).strip().splitlines()
    text = lines[0][:limit] if lines else type(exc).__name__
    return f"{type(exc).__name__}: {text}" if with_type and lines else text


def torchvision_mismatch(exc: BaseException) -> str | None:
    """What to do when torchvision's compiled operators do not fit the installed torch (``operator
    torchvision::nms does not exist``: a CPU torch beside a CUDA torchvision, or different releases);
    ``None`` for any other error."""
    if not isinstance(exc, RuntimeError) or "operator torchvision::" not in str(exc):
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version, vision_version = version("torch"), version("torchvision")
    except PackageNotFoundError:
        torch_version, vision_version = "?", "?"
    major_minor = torch_version.split("+")[0].split(".")[:2]
    fitting = f"0.{int(major_minor[1]) + 15}" if len(major_minor) == 2 and major_minor[1].isdigit() else "?"
    return (f"torchvision {vision_version} does not fit torch {torch_version} (one is a CPU build and the other a "
            f"CUDA build, or they are different releases): install both from one place, e.g. pip install "
            f"--force-reinstall torch=={torch_version.split('+')[0]} torchvision=={fitting}.* --index-url "
            "https://download.pytorch.org/whl/cpu (CPU) or without --index-url (CUDA)")
