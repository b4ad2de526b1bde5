"""The Hugging Face Hub: ``hf://OWNER/REPO/PATH[@REVISION]`` names, their downloads, and publishing a folder.

Downloads go through huggingface_hub (``hf_hub_download``) into ``$CYCLETOOLS_HOME/hub``, in the Hub's own cache
layout (``models--OWNER--REPO/blobs`` named by content hash, ``snapshots/COMMIT/PATH``, ``refs/BRANCH``): revisions,
offline use from the cache (``HF_HUB_OFFLINE=1``), private repositories (``HF_TOKEN``) and other endpoints
(``HF_ENDPOINT``) work as huggingface_hub documents them, and the commit a file came from is the name of its
snapshot folder. Every failure becomes one CycletoolsError line that names the ``hf://`` file.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from cycletools.errors import CycletoolsError, first_line
from cycletools.utils.files import file_sha256
from cycletools.utils.home import home

PREFIX = "hf://"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
LOGIN = ("pushing to the Hugging Face Hub needs a write token: log in with 'hf auth login' (or set HF_TOKEN to a "
         "token from https://huggingface.co/settings/tokens)")


@dataclass(frozen=True)
class HubFile:
    """One file of a model repository on the Hub, at a revision (a branch, a tag or a commit; None: main)."""

    repo_id: str
    filename: str
    revision: str | None = None

    @property
    def name(self) -> str:
        """``hf://OWNER/REPO/PATH[@REVISION]``, as the user writes it."""
        return f"{PREFIX}{self.repo_id}/{self.filename}" + (f"@{self.revision}" if self.revision else "")

    def at(self, commit: str | None) -> str:
        """The name pinned to ``commit`` (what a reader needs to get exactly this file again)."""
        return f"{PREFIX}{self.repo_id}/{self.filename}@{commit}" if commit else self.name

    @property
    def suffix(self) -> str:
        return Path(self.filename).suffix

    def __str__(self) -> str:
        return self.name


def is_hub_name(value: object) -> bool:
    """Whether ``value`` names a file on the Hub (``hf://...``)."""
    return isinstance(value, str) and value.startswith(PREFIX)


def parse(text: str) -> HubFile:
    """``hf://OWNER/REPO/PATH[@REVISION]`` (also huggingface_hub's ``hf://OWNER/REPO@REVISION/PATH``) → HubFile."""
    rest = text[len(PREFIX):] if is_hub_name(text) else ""
    owner, _, rest = rest.partition("/")
    revision = None
    if "@" in rest.partition("/")[0]:  # hf://OWNER/REPO@REVISION/PATH: the revision holds no "/" there
        repo, _, rest = rest.partition("/")
        repo, _, revision = repo.partition("@")
        path = rest
    else:  # hf://OWNER/REPO/PATH@REVISION: everything after the last "@" (a branch may hold "/": feat/x)
        repo, _, path = rest.partition("/")
        if "@" in path:
            path, _, revision = path.rpartition("@")
    if not _valid_repo_id(f"{owner}/{repo}") or not path or path.endswith("/") or revision == "" \
            or any(part in ("", ".", "..") for part in path.split("/")):
        raise CycletoolsError(f"{text!r} is not a Hub file name: write hf://OWNER/REPO/PATH or "
                              "hf://OWNER/REPO/PATH@REVISION (a branch, tag or commit; a file whose name holds "
                              "'@': hf://OWNER/REPO@REVISION/PATH)")
    return HubFile(f"{owner}/{repo}", path, revision)


def _valid_repo_id(repo_id: str) -> bool:
    """OWNER/NAME as the Hub accepts it (huggingface_hub's own check: characters, '--', '..', a final '.', length)."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if not NAME_PATTERN.fullmatch(repo_id):
        return False
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        return False
    return True


def cache_dir() -> Path:
    """Where Hub downloads are kept: ``$CYCLETOOLS_HOME/hub``, in huggingface_hub's cache layout."""
    return home() / "hub"


def endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def cached(ref: HubFile) -> Path | None:
    """The file in the cache for ``ref``'s revision (what the branch last resolved to), without the network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(ref.repo_id, ref.filename, cache_dir=cache_dir(), revision=ref.revision)
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def commit_of(path: Path) -> str | None:
    """The commit a cached Hub file came from: the name of its snapshot folder."""
    parts = Path(path).parts
    if "snapshots" in parts[:-1]:
        index = len(parts) - 1 - parts[::-1].index("snapshots")
        if index + 1 < len(parts) - 1:
            return parts[index + 1]
    return None


def name_of(path: Path) -> str | None:
    """``hf://OWNER/REPO/PATH@COMMIT`` for a file in the Hub cache, else None."""
    try:
        relative = Path(path).relative_to(cache_dir())
    except ValueError:
        return None
    parts = relative.parts
    if len(parts) < 4 or not parts[0].startswith("models--") or parts[1] != "snapshots":
        return None
    repo_id = parts[0].removeprefix("models--").replace("--", "/", 1)
    return f"{PREFIX}{repo_id}/{'/'.join(parts[3:])}@{parts[2]}"


def verify(path: Path, name: str, sha256: str | None = None) -> None:
    """Check a cached Hub file against the content hash its blob is named by (the SHA-256 of a large file, the git
    object id of a small one); one error saying how to get it again when they differ. ``sha256``: the file's
    SHA-256 where the caller has already computed it (it is not read again)."""
    blob = Path(path).resolve()
    data_hash = blob.name
    if re.fullmatch(r"[0-9a-f]{64}", data_hash):
        found = sha256 or file_sha256(blob)
    elif re.fullmatch(r"[0-9a-f]{40}", data_hash):
        digest = hashlib.sha1(f"blob {blob.stat().st_size}\0".encode())
        with open(blob, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        found = digest.hexdigest()
    else:
        return
    if found != data_hash:
        raise CycletoolsError(f"{path} (from {name}) does not match its content hash (expected {data_hash[:12]}…, "
                              f"found {found[:12]}…): fetch it again with 'cycletools weights fetch {name} --force'")


def forget(path: Path) -> None:
    """Remove a downloaded file from the cache (its snapshot entry and its blob), e.g. one that is no generator."""
    blob = Path(path).resolve()
    for item in (Path(path), blob):
        with contextlib.suppress(OSError):
            item.unlink()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """huggingface_hub's retry notices off for the call: cycletools says what happened in one line."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def silent_bar():
    """A tqdm class that shows nothing (``progress=False``)."""
    from tqdm.auto import tqdm

    class SilentBar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

    return SilentBar


def transfer_failure(exc: BaseException) -> str | None:
    """``unreachable`` or ``interrupted`` for the network errors of huggingface_hub's HTTP client, else None."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"OfflineModeIsEnabled", "ConnectError", "ConnectTimeout", "ProxyError", "LocalEntryNotFoundError"}:
        return "unreachable"
    if names & {"TransportError", "ProtocolError", "ReadError", "ReadTimeout", "ChunkedEncodingError"} or \
            (isinstance(exc, OSError) and "Consistency check failed" in str(exc)):
        return "interrupted"
    return None


def download(ref: HubFile, progress: bool = True, force: bool = False) -> Path:
    """Download ``ref`` into the Hub cache (or find it there) with huggingface_hub; returns its snapshot path.

    huggingface_hub writes a blob under a temporary name, removed when the transfer fails, and links it into the
    snapshot only when complete."""
    from huggingface_hub import hf_hub_download

    from cycletools import __version__

    try:
        with quiet():
            return Path(hf_hub_download(ref.repo_id, ref.filename, revision=ref.revision, cache_dir=cache_dir(),
                                        force_download=force, library_name="cycletools", library_version=__version__,
                                        tqdm_class=None if progress else silent_bar()))
    except Exception as exc:
        raise download_error(exc, ref) from None


def download_error(exc: BaseException, ref: HubFile) -> CycletoolsError:
    """One line for what went wrong getting ``ref``."""
    from huggingface_hub import errors

    name = ref.name
    fetch_later = f"fetch it later with 'cycletools weights fetch {name}'"
    if isinstance(exc, errors.GatedRepoError):
        return CycletoolsError(f"{name}: {ref.repo_id} is gated: accept its conditions on its page on the Hub, then "
                               "log in with 'hf auth login' (or set HF_TOKEN)")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return CycletoolsError(f"{name}: no repository {ref.repo_id} on {endpoint()} (a private one needs a token: "
                               "'hf auth login' or HF_TOKEN)")
    if isinstance(exc, errors.RevisionNotFoundError):
        return CycletoolsError(f"{name}: {ref.repo_id} has no revision {ref.revision!r} (a branch, tag or commit)")
    if isinstance(exc, errors.RemoteEntryNotFoundError):
        return CycletoolsError(f"{name}: {ref.repo_id} has no file {ref.filename} at revision "
                               f"{ref.revision or 'main'}")
    answered = _http_answer(exc)
    if answered is not None:
        return CycletoolsError(f"cannot download {name}: the Hub ({endpoint()}) answered {answered}; try again, "
                               f"or {fetch_later}")
    failure = transfer_failure(exc)
    if failure == "unreachable" and offline():
        return CycletoolsError(f"{name} is not in the cache and HF_HUB_OFFLINE is set: {fetch_later} with the "
                               "network on")
    if failure == "unreachable":
        return CycletoolsError(f"cannot reach the Hub ({endpoint()}) to download {name} (offline?); {fetch_later}")
    if failure == "interrupted":
        return CycletoolsError(f"download of {name} was interrupted ({first_line(exc)}); nothing was saved; try "
                               f"again, or {fetch_later}")
    return CycletoolsError(f"cannot download {name}: {first_line(exc, with_type=True)}")


def _http_answer(exc: BaseException) -> int | None:
    """The HTTP status the Hub answered, where ``exc`` or an error it was raised from carries one (huggingface_hub
    reports a HEAD answered 500 as a file it cannot find in the cache, raised from the HTTP error)."""
    from huggingface_hub import errors

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, errors.HfHubHTTPError) and getattr(exc, "response", None) is not None:
            return exc.response.status_code
        exc = exc.__cause__ or exc.__context__
    return None


def require_token() -> None:
    """One line saying how to log in, where huggingface_hub finds no token (HF_TOKEN, or the token file of
    'hf auth login')."""
    from huggingface_hub import get_token

    if get_token() is None:
        raise CycletoolsError(LOGIN)


def push(folder: Path, repo_id: str, *, private: bool = False, revision: str | None = None,
         message: str = "Upload a cycletools generator") -> str:
    """Publish the files in ``folder`` to the model repository ``repo_id`` (created where missing; ``revision``:
    a branch, created from main where missing) in one commit; returns the commit hash."""
    from huggingface_hub import HfApi

    if not _valid_repo_id(repo_id):
        raise CycletoolsError(f"--repo takes OWNER/NAME as the Hub accepts it (letters, digits, '-', '_', '.'; "
                              f"e.g. alice/horse2zebra-cyclegan), not {repo_id!r}")
    require_token()
    api = HfApi()
    try:
        with quiet():
            if private and _is_public(api, repo_id):  # --private makes new repositories only
                raise CycletoolsError(f"{repo_id} already exists and is public, so --private cannot keep this "
                                      "upload private: make the repository private on the Hub first, or push "
                                      "without --private; nothing was published")
            api.create_repo(repo_id, private=True if private else None, exist_ok=True)
            if revision:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            info = api.upload_folder(repo_id=repo_id, folder_path=folder, revision=revision, commit_message=message)
    except CycletoolsError:
        raise
    except Exception as exc:
        raise push_error(exc, repo_id) from None
    return info.oid


def _is_public(api, repo_id: str) -> bool:
    """Whether ``repo_id`` exists and is public (False where it does not exist yet)."""
    from huggingface_hub import errors

    try:
        return not api.model_info(repo_id).private
    except errors.RepositoryNotFoundError:
        return False


def push_error(exc: BaseException, repo_id: str) -> CycletoolsError:
    from huggingface_hub import errors

    if isinstance(exc, errors.HfHubHTTPError) and getattr(exc, "response", None) is not None:
        status = exc.response.status_code
        if status == 401:
            return CycletoolsError(f"the Hub ({endpoint()}) refused the token: {LOGIN.split(': ', 1)[1]}")
        if status == 403:
            return CycletoolsError(f"the token may not write to {repo_id} on {endpoint()}: use a write token of "
                                   f"{repo_id.split('/')[0]} ('hf auth login')")
        return CycletoolsError(f"cannot push to {repo_id}: the Hub ({endpoint()}) answered {status}")
    if transfer_failure(exc) and offline():
        return CycletoolsError(f"cannot push to {repo_id}: HF_HUB_OFFLINE is set; unset it to publish")
    if transfer_failure(exc):
        return CycletoolsError(f"cannot reach the Hub ({endpoint()}) to push to {repo_id} (offline?); nothing was "
                               "published")
    return CycletoolsError(f"cannot push to {repo_id}: {first_line(exc, with_type=True)}")
