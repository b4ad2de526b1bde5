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
MAX_ENTRIES = 10_000  # files and folders kept at once: tiny uploads must not use up inodes or slow every walk
ENTRY_BYTES = 4096  # what a file or folder takes on disk at least (one block), whatever its size


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
        self._reserved_entries = 0
        self._in_use: list[str] = []

    def files(self) -> tuple[list[tuple[float, int, str]], int, int]:
        """(modified, bytes on disk, path) of every file under the root (Gradio touches a cached file it hands out
        again), the bytes the folders take, and how many files and folders there are. A file counts what it
        takes on disk: its blocks, at least one (16 bytes take 4 KB); links are counted, not followed."""
        found, folders_bytes, entries = [], _on_disk(str(self.root)) if self.root.exists() else 0, 0
        for folder, subfolders, names in os.walk(self.root):
            entries += len(subfolders)
            folders_bytes += sum(_on_disk(os.path.join(folder, name)) for name in subfolders)
            for name in names:
                path = os.path.join(folder, name)
                try:
                    info = os.lstat(path)
                except OSError:
                    continue  # removed meanwhile
                found.append((info.st_mtime, max(info.st_blocks * 512, info.st_size, ENTRY_BYTES), path))
                entries += 1
        return found, folders_bytes, entries

    def used(self) -> int:
        """Bytes on disk under the root plus those reserved for uploads under way."""
        files, folders_bytes, _ = self.files()
        return sum(size for _, size, _ in files) + folders_bytes + self._reserved

    def make_room(self, needed: int, what: str) -> None:
        """Make sure ``needed`` more bytes fit, removing the oldest removable files if need be; ``DiskFull``
        (``what`` names the request) if they cannot."""
        with self._lock:
            self._make_room(needed, what)

    def _make_room(self, needed: int, what: str, entries_needed: int = 1) -> None:
        files, folders_bytes, entries = self.files()
        used = sum(size for _, size, _ in files) + folders_bytes + self._reserved

        def fits() -> bool:
            return used + needed <= self.limit and entries + self._reserved_entries + entries_needed <= MAX_ENTRIES

        if fits():
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
            folders = self._remove_empty_folders(Path(path).parent)
            used -= size + folders * ENTRY_BYTES
            entries -= 1 + folders
            if fits():
                return
        raise self.full(what)

    def full(self, what: str) -> DiskFull:
        return DiskFull(f"the server's space for uploads and results is full ({size_text(self.limit)}): {what} "
                        "must wait until older files are removed; try again in a few minutes")

    def take(self, needed: int, what: str, entries: int = 1) -> tuple[int, int]:
        """Reserve ``needed`` bytes and ``entries`` files and folders for an upload on its way (see
        ``make_room``); give them back with ``give``."""
        with self._lock:
            self._make_room(needed, what, entries)
            self._reserved += needed
            self._reserved_entries += entries
        return needed, entries

    def give(self, reserved: tuple[int, int]) -> None:
        with self._lock:
            self._reserved -= reserved[0]
            self._reserved_entries -= reserved[1]

    def watcher(self, folder: Path, what: str, refresh_every: int = 30) -> Callable[[], None]:
        """A check to call after each piece a job writes into ``folder``: it raises ``DiskFull`` (making room
        first, if it can) once the folder would take the bound past its limit. It reads only the job's own
        folder each time, and the whole bound every ``refresh_every`` calls (others write meanwhile)."""
        state = {"others": self.used() - _folder_bytes(folder), "calls": 0}

        def check() -> None:
            state["calls"] += 1
            if state["calls"] % refresh_every == 0:
                state["others"] = self.used() - _folder_bytes(folder)
            if state["others"] + _folder_bytes(folder) <= self.limit:
                return
            self.make_room(0, what)  # old files may go; DiskFull when they cannot
            state["others"] = self.used() - _folder_bytes(folder)
            if state["others"] + _folder_bytes(folder) > self.limit:
                raise self.full(what)

        return check

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

    def _remove_empty_folders(self, folder: Path) -> int:
        """Remove ``folder`` and the folders above it (below the root) while they are empty; how many went."""
        root, removed = os.path.realpath(self.root), 0
        while os.path.realpath(folder) != root and os.path.realpath(folder).startswith(root + os.sep):
            try:
                folder.rmdir()
            except OSError:
                break
            removed += 1
            folder = folder.parent
        return removed


def _folder_bytes(folder: Path) -> int:
    """What the files directly in ``folder`` take on disk (a job's result folder holds no subfolders)."""
    try:
        with os.scandir(folder) as entries:
            return sum(_on_disk(entry.path) for entry in entries)
    except OSError:
        return 0


def _on_disk(path: str) -> int:
    try:
        info = os.lstat(path)
    except OSError:
        return 0
    return max(info.st_blocks * 512, info.st_size, ENTRY_BYTES)


MAX_FILES_PER_UPLOAD = 16  # files in one upload request (the page sends one); Gradio would take 1,000


class RequestBounds:
    """ASGI middleware in front of Gradio's routes: what a request may make the server hold.

    - A body must declare its length (Content-Length): a chunked one is answered 411.
    - An upload (``.../upload``) may carry at most the largest upload allowed (413 beyond, before anything
      is removed to make room); it is let in only when the whole request fits the disk bound, with one
      block for each of its files and their folders (at most ``MAX_FILES_PER_UPLOAD``); otherwise its body
      is read and dropped, nothing is written, and the answer is 507 and one sentence.
    - Any other request's body (a camera frame comes inside one, as a data URL) may be at most what the
      largest upload takes in base64: larger is 413.
    - Gradio's screen-recording route, which the page never uses and which would write and run FFmpeg on
      what a client sends, is 404.
    """

    def __init__(self, app, budget: DiskBudget, largest: int, log: Callable[[str], None] = print):
        self.app, self.budget, self.largest, self.log = app, budget, largest, log
        self.largest_body = largest * 4 // 3 + 65536

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "").rstrip("/")
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"")
        if path.endswith("/process_recording"):
            await _answer(send, 404, "Not found.")
            return
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower() or (declared and not declared.isdigit()):
            await self._discard_body(receive, self.largest_body)
            await _answer(send, 411, "A request must declare its length (Content-Length).")
            return
        length = int(declared or 0)
        if not path.endswith("/upload"):
            if length > self.largest_body:
                self.log(f"refused a request of {size_text(length)} to {path[:80]}")
                await self._discard_body(receive, 2 * self.largest_body)  # far larger: the connection is cut
                await _answer(send, 413, f"The request is larger than this server takes ({size_text(self.largest_body)}).")
                return
            await self.app(scope, receive, send)
            return
        if length > self.largest + 65536:  # one upload request carries at most --max-upload (and its framing)
            self.log(f"refused an upload of {size_text(length)}: over --max-upload")
            await self._discard_body(receive, 2 * self.largest_body)  # far larger: the connection is cut
            await _answer(send, 413, f"The upload is larger than this server takes ({size_text(self.largest)}).")
            return
        import anyio

        entries = 2 * MAX_FILES_PER_UPLOAD  # each file and the folder Gradio puts it in
        try:
            reserved = await anyio.to_thread.run_sync(self.budget.take, length + entries * ENTRY_BYTES,
                                                      "this upload", entries)
        except DiskFull as exc:
            self.log(f"refused an upload of {size_text(length)}: {exc}")
            await self._discard_body(receive, self.largest + 65536)  # a client still sending would see a
            # broken pipe, not the answer
            await _answer(send, 507, str(exc)[:1].upper() + str(exc)[1:] + ".")
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.budget.give(reserved)

    async def _discard_body(self, receive, limit: int) -> None:
        """Read a refused request's body without keeping it, up to ``limit`` bytes."""
        left = limit
        while left > 0:
            message = await receive()
            if message.get("type") != "http.request":
                return  # the client went away
            left -= len(message.get("body", b""))
            if not message.get("more_body"):
                return


async def _answer(send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
