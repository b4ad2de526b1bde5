"""The one downloader: a plain http(s) URL or an ``hf://`` name becomes a complete, checked local file.

Both go through huggingface_hub's transfer code: ``http_get`` for a URL (into a temporary file beside the target,
renamed into place only once checked), ``hf_hub_download`` for a Hub file (into the Hub cache, see hub.py). It
retries and resumes a transfer that breaks off, checks the size the server declared, shows a progress bar and
honours ``HF_HUB_OFFLINE``. Here each result is then checked against a pinned SHA-256 and ``validate`` (e.g. that it
loads as a generator); a file that fails is not kept. Every failure is one CycletoolsError naming the source.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit
from urllib.request import url2pathname

from cycletools import hub
from cycletools.errors import CycletoolsError, first_line
from cycletools.utils.atomic import atomic_path
from cycletools.utils.files import file_sha256


@dataclass(frozen=True)
class Downloaded:
    path: Path
    sha256: str
    commit: str | None = None  # the Hub commit the file came from (hf:// only)


def download(source: str, target: Path | None = None, *, sha256: str | None = None, progress: bool = True,
             validate: Callable[[Path], Any] | None = None, hint: str | None = None,
             force: bool = False) -> Downloaded:
    """Download ``source``: an ``hf://`` name into the Hub cache, a URL to ``target`` (atomically).

    ``sha256``: the file's pinned checksum; ``validate``: raises CycletoolsError for content that is not usable;
    ``hint``: another way to get the file, named in the error; ``force``: download again even if cached.
    """
    if hub.is_hub_name(source):
        return _from_hub(hub.parse(source), sha256, progress, validate, force)
    if target is None:
        raise ValueError("a URL is downloaded to a target file")
    return _from_url(source, Path(target), sha256, progress, validate, hint)


def _from_hub(ref: hub.HubFile, sha256: str | None, progress: bool, validate, force: bool) -> Downloaded:
    path = hub.download(ref, progress=progress, force=force)
    try:
        found = file_sha256(path)
        _check(ref.name, found, sha256)
        hub.verify(path, ref.name, sha256=found)
        if validate is not None:
            validate(path)
    except CycletoolsError:
        hub.forget(path)  # a foreign or damaged file is not kept in the cache
        raise
    return Downloaded(path, found, hub.commit_of(path))


def _from_url(url: str, target: Path, sha256: str | None, progress: bool, validate, hint: str | None) -> Downloaded:
    from huggingface_hub import errors
    from huggingface_hub.file_download import http_get

    from cycletools import __version__

    target.parent.mkdir(parents=True, exist_ok=True)
    manual = f"download it by other means and place it at {target}" + (f" (or use {hint})" if hint else "")
    with atomic_path(target) as tmp:
        try:
            if url.startswith("file://"):  # a plugin's source on a local or mounted disk
                shutil.copyfile(url2pathname(urlsplit(url).path), tmp)
            else:
                with hub.quiet(), open(tmp, "wb") as out:
                    http_get(url, out, headers={"User-Agent": f"cycletools/{__version__}"},
                             displayed_filename=target.name, tqdm_class=None if progress else hub.silent_bar())
        except errors.HfHubHTTPError as exc:
            response = exc.response
            raise CycletoolsError(f"cannot download {url}: the server answered {response.status_code} "
                                  f"{response.reason_phrase}; {manual}") from None
        except Exception as exc:
            failure = hub.transfer_failure(exc)
            if failure == "interrupted":
                raise CycletoolsError(f"download of {url} was interrupted ({first_line(exc)}); nothing was saved; "
                                      f"try again or {manual}") from None
            if failure == "unreachable" and hub.offline():
                raise CycletoolsError(f"cannot download {url}: HF_HUB_OFFLINE is set (offline); {manual}") from None
            reason = first_line(exc) if failure == "unreachable" else first_line(exc, with_type=True)
            raise CycletoolsError(f"cannot download {url} ({reason}; offline?); {manual}") from None
        found = file_sha256(tmp)
        _check(url, found, sha256)
        if validate is not None:
            validate(tmp)
    return Downloaded(target, found)


def _check(source: str, found: str, sha256: str | None) -> None:
    if sha256 and found != sha256:
        raise CycletoolsError(f"download of {source} does not match its checksum (expected {sha256[:12]}…, got "
                              f"{found[:12]}…); nothing was saved")
