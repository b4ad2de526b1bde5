"""Write files so that the target path only ever holds a complete file."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import Iterator

from cycletools.utils.files import same_file


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it over ``target`` only on success.

    The temporary file keeps ``target``'s suffix (so format-by-extension writers work),
    is flushed to disk before the rename, and is removed if the body raises. The result has
    the permissions any program would give it: the umask's for a new file, the old file's
    for one it replaces.
    """
    target = Path(target)
    tmp = temp_beside(target)
    fresh_mode = stat.S_IMODE(tmp.stat().st_mode)  # the umask's: what a new file gets
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        replace_keeping_mode(tmp, target, fresh_mode)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def check_writable(target: str | os.PathLike, within: str | os.PathLike | None = None) -> None:
    """One clear error naming ``target`` unless a file can be created beside it (one is, then removed).

    ``within``: the folder to try instead, for a target whose folder is still to be made there.
    """
    from cycletools.errors import CycletoolsError

    target = Path(target)
    folder = Path(within) if within is not None else target.parent
    if not folder.is_dir():
        raise CycletoolsError(f"output folder does not exist: {folder}")
    try:
        tmp = temp_beside(folder / target.name)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise CycletoolsError(f"{target}: cannot write here ({reason})") from None
    with contextlib.suppress(OSError):
        tmp.unlink()


def temp_beside(target: Path) -> Path:
    """A new empty file beside ``target``, of a name no file had (``.NAME.RANDOM.tmp.EXT``: the suffix kept for
    writers that choose the format by it), created with mode 0666 less the umask (mkstemp gives 0600)."""
    while True:
        tmp = target.with_name(f".{target.stem}.{secrets.token_hex(4)}.tmp{target.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def free_name(path: Path, avoid: Path | None = None) -> Path:
    """``path``, or ``NAME-2.EXT``, ``NAME-3.EXT``... the first that names no existing file and is not ``avoid``."""
    candidate, number = path, 1
    while candidate.exists() or candidate.is_symlink() or (avoid is not None and same_file(candidate, avoid)):
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def replace_keeping_mode(tmp: str | os.PathLike, target: str | os.PathLike, fresh_mode: int | None = None) -> None:
    """Move the finished ``tmp`` over ``target``; a file it replaces passes on its permissions, and a new
    one gets ``fresh_mode`` (writers such as safetensors' replace the file they are given with a 0600 one)."""
    try:
        os.chmod(tmp, stat.S_IMODE(Path(target).stat().st_mode))
    except FileNotFoundError:
        if fresh_mode is not None:
            os.chmod(tmp, fresh_mode)
    os.replace(tmp, target)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
