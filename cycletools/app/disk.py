"""The bound on the disk that the app's uploads and results take together (``serve --max-disk``).

Everything a client makes the server keep lives in the app's upload folder: Gradio's uploads and each
job's results. An upload is accepted, and a job writes, only while the folder plus what is on its way
stays within the bound. When it would not, the oldest files that no running job uses and that are older
than ``KEEP_SECONDS`` are removed first (a page that still shows one is told to upload it again); when
that does not make room, the upload or the job is refused with one sentence. A job that fails or is
cancelled leaves nothing behind. Gradio's own sweep still removes anything older than an hour."""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from cycletools.errors import CycletoolsError

KEEP_SECONDS = 300  # a file this young is never removed to make room: its client may be about to use it


class DiskFull(CycletoolsError):
    """The bound is reached and nothing old enough can be removed."""


def size_text(count: float) -> str:
    """``2 GB``, ``3.5 MB``, ``512 bytes`` (powers of 1024, as --max-disk and --max-upload read them)."""
    for unit, scale in (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{int(count)} bytes"


class DiskBudget:
    """The files under ``root`` and the bytes reserved for uploads on their way, kept within ``limit``."""

    def __init__(self, root: Path, limit: int, keep_seconds: float = KEEP_SECONDS,
                 clock: Callable[[], float] = time.time):
        self.root, self.limit, self.keep_seconds, self.clock = Path(root), int(limit), keep_seconds, clock
        self.removed: set[str] = set()  # files removed to make room (a later request for one is told so)
        self._lock = threading.Lock()
        self._reserved = 0
        self._in_use: list[str] = []

    def files(self) -> list[tuple[float, int, str]]:
        """(modified, size, path) of every file under the root (Gradio touches a cached file it hands out again);
        links are counted, not followed."""
        found = []
        for folder, _, names in os.walk(self.root):
            for name in names:
                path = os.path.join(folder, name)
                try:
                    info = os.lstat(path)
                except OSError:
                    continue  # removed meanwhile
                found.append((info.st_mtime, info.st_size, path))
        return found

    def used(self) -> int:
        """Bytes on disk under the root plus those reserved for uploads under way."""
        return sum(size for _, size, _ in self.files()) + self._reserved

    def make_room(self, needed: int, what: str) -> None:
        """Make sure ``needed`` more bytes fit, removing the oldest removable files if need be; ``DiskFull``
        (``what`` names the request) if they cannot."""
        with self._lock:
            self._make_room(needed, what)

    def _make_room(self, needed: int, what: str) -> None:
        files = self.files()
        used = sum(size for _, size, _ in files) + self._reserved
        if used + needed <= self.limit:
            return
        now = self.clock()
        for stamp, size, path in sorted(files):
            if now - stamp < self.keep_seconds:
                break  # sorted by age: the rest are younger still
            if self._used_by_a_job(path):
                continue
            try:
                os.unlink(path)
            except OSError:
                continue
            self.removed.add(path)
            self._remove_empty_folders(Path(path).parent)
            used -= size
            if used + needed <= self.limit:
                return
        raise DiskFull(f"the server's space for uploads and results is full ({size_text(self.limit)}): "
                       f"{what} must wait until older files are removed; try again in a few minutes")

    def take(self, needed: int, what: str) -> int:
        """Reserve ``needed`` bytes for an upload on its way (see ``make_room``); give them back with ``give``."""
        with self._lock:
            self._make_room(needed, what)
            self._reserved += needed
        return needed

    def give(self, reserved: int) -> None:
        with self._lock:
            self._reserved -= reserved

    @contextmanager
    def using(self, *paths: str | Path) -> Iterator[None]:
        """Nothing under ``paths`` (a job's input, its result folder) is removed to make room meanwhile."""
        held = [os.path.realpath(path) for path in paths if path]
        with self._lock:
            self._in_use.extend(held)
        try:
            yield
        finally:
            with self._lock:
                for path in held:
                    self._in_use.remove(path)

    def _used_by_a_job(self, path: str) -> bool:
        real = os.path.realpath(path)
        return any(real == held or real.startswith(held + os.sep) for held in self._in_use)

    def _remove_empty_folders(self, folder: Path) -> None:
        root = os.path.realpath(self.root)
        while os.path.realpath(folder) != root and os.path.realpath(folder).startswith(root + os.sep):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent


class UploadSpace:
    """ASGI middleware in front of Gradio's upload route: an upload is let in only when its bytes fit the
    bound (its Content-Length, or the largest upload allowed when it declares none); otherwise its body is
    read and dropped (nothing is written) and the answer is 507 and one sentence."""

    def __init__(self, app, budget: DiskBudget, largest: int, log: Callable[[str], None] = print):
        self.app, self.budget, self.largest, self.log = app, budget, largest, log

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or \
                not scope.get("path", "").rstrip("/").endswith("/upload"):
            await self.app(scope, receive, send)
            return
        import anyio

        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        needed = int(declared) if declared.isdigit() else self.largest
        try:
            reserved = await anyio.to_thread.run_sync(self.budget.take, min(needed, self.largest), "this upload")
        except DiskFull as exc:
            self.log(f"refused an upload of {size_text(needed)}: {exc}")
            await self._discard_body(receive)  # a client still sending would see a broken pipe, not the answer
            body = (str(exc)[:1].upper() + str(exc)[1:] + ".").encode()
            await send({"type": "http.response.start", "status": 507,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.budget.give(reserved)

    async def _discard_body(self, receive) -> None:
        """Read the refused request's body without keeping it, up to the largest upload allowed."""
        left = self.largest + 65536
        while left > 0:
            message = await receive()
            if message.get("type") != "http.request":
                return  # the client went away
            left -= len(message.get("body", b""))
            if not message.get("more_body"):
                return
