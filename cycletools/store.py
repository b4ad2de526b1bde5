"""The weights manager: where a domain's generator comes from, and fetching it on request.

A domain has up to three generators here: ``bundled`` (shipped with its plugin), ``full`` (fetched or
imported into the user cache, ``$CYCLETOOLS_HOME/weights``, default ``~/.cache/cycletools/weights``) and
``fast`` (a compact student, bundled or cached). ``choose`` applies the default rule (``PREFERENCE``:
what the user fetched or imported before what ships; on the CPU a fast student first); a full
generator is downloaded only when asked for, from a URL or an ``hf://`` name (downloads.py, one downloader
for both), and checked (pinned SHA-256, else the checksum recorded at the first download or the Hub's content
hash) and validated as a generator before it is kept, so the cache never holds a partial or foreign file.
``hf://`` files are kept in the Hub cache, ``$CYCLETOOLS_HOME/hub`` (hub.py).

``obtain`` (a domain's variant) and ``weights_file`` (what ``--weights`` names) turn a name into a verified
file here in one pass: bundled, cached, downloaded on request, or a local path.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from cycletools import downloads, hub
from cycletools.domains import DomainSpec, WeightsSource
from cycletools.errors import CycletoolsError, one_line
from cycletools.utils.atomic import atomic_write_text, check_writable
from cycletools.utils.files import file_sha256
from cycletools.utils.home import HOME_ENV, home  # noqa: F401 (store.home: the one name callers use)
from cycletools.utils.safetensors_header import CONFIG_KEY, read_header_metadata

if TYPE_CHECKING:
    from cycletools.registry import Registry

ORIGIN_LIMIT = 300  # characters in an origin line: who made the weights, the licence; not a document


def cache_dir() -> Path:
    return home() / "weights"


VARIANTS = ("bundled", "full", "fast")


def _check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise CycletoolsError(f"variant must be one of {', '.join(VARIANTS)}, not {variant!r}")
    return variant


def local_file(spec: DomainSpec, variant: str = "full") -> Path:
    """Where imported or locally trained weights of a domain live (project format).

    The ``fast`` variant (a compact student) sits beside the full generator as NAME.fast.safetensors.
    """
    if _check_variant(variant) == "bundled":
        raise CycletoolsError("the bundled generator ships with its plugin; the cache holds full and fast ones")
    return cache_dir() / f"{spec.name if variant == 'full' else f'{spec.name}.{variant}'}.safetensors"


def bundled_file(spec: DomainSpec, variant: str = "bundled") -> Path | None:
    """The file a plugin ships for ``variant``: its bundled generator, or the bundled fast student beside it
    (NAME.fast.safetensors); the full-size generator is never bundled (it comes into the cache)."""
    if spec.bundled is None or _check_variant(variant) == "full":
        return None
    bundled = Path(spec.bundled)
    return bundled if variant == "bundled" else bundled.with_name(f"{bundled.stem}.{variant}{bundled.suffix}")


def downloaded_file(spec: DomainSpec, source: WeightsSource) -> Path:
    """Where a download of a URL ``source`` is kept, under its original format (an ``hf://`` source is kept in
    the Hub cache instead: ``source_file``)."""
    return cache_dir() / f"{spec.name}{source.suffix}"


def source_file(spec: DomainSpec, source: WeightsSource) -> Path | None:
    """The download of ``source`` on this machine, if any: in the weights cache for a URL, in the Hub cache (at
    the commit its revision last resolved to) for an ``hf://`` name."""
    if hub.is_hub_name(source.url):
        return hub.cached(hub.parse(source.url))
    path = downloaded_file(spec, source)
    return path if path.is_file() else None


@dataclass
class WeightsStatus:
    state: str  # bundled | cached | downloadable | missing
    path: Path | None = None
    url: str | None = None
    variant: str = "full"

    @property
    def here(self) -> bool:
        """Whether the file is on this machine (bundled or cached)."""
        return self.state in ("bundled", "cached")


def cached_path(spec: DomainSpec, variant: str = "full") -> Path | None:
    if _check_variant(variant) == "bundled":
        return None
    if local_file(spec, variant).is_file():
        return local_file(spec, variant)
    sources = spec.sources if variant == "full" else ()
    return next((path for path in (source_file(spec, source) for source in sources) if path is not None), None)


def status(spec: DomainSpec, variant: str = "full") -> WeightsStatus:
    """Where this domain's ``variant`` would come from right now (no network access): the cache (what you fetched
    or imported: ``full``, or a ``fast`` student of your own), else the bundled file (``bundled``, or a bundled
    ``fast`` student), else a download source (``full`` only)."""
    url = spec.sources[0].url if spec.sources and variant == "full" else None
    cached = cached_path(spec, variant)
    if cached is not None:
        return WeightsStatus("cached", cached, url, variant)
    bundled = bundled_file(spec, variant)
    if bundled is not None and bundled.is_file():
        return WeightsStatus("bundled", bundled, url, variant)
    return WeightsStatus("downloadable" if url else "missing", None, url, variant)


# The default rule ("auto"), in order of preference. What you fetched or imported ("full") comes before
# what ships with cycletools ("bundled"): you asked for it. On the CPU a fast student comes first (the
# full ResNet-9 runs at 1-2 frames/s there), unless it is the plugin's and the full generator is yours
# (``choose``); on a GPU speed matters less than the full generator's fidelity.
PREFERENCE = {"cpu": ("fast", "full", "bundled"), "other": ("full", "bundled", "fast")}


def choose(spec: DomainSpec, device_type: str = "cpu") -> WeightsStatus | None:
    """The generator ``--plugin NAME`` uses on a ``device_type`` device (``variant`` auto): the first here in
    ``PREFERENCE``; ``None`` when none is here. A fast student the plugin bundles learnt the bundled generator,
    so it stands in for that one only: a full generator you fetched or imported comes before it."""
    order = PREFERENCE["cpu" if device_type == "cpu" else "other"]
    found = [current for current in (status(spec, variant) for variant in order) if current.here]
    if any(current.variant == "full" for current in found):
        found = [current for current in found if not (current.variant == "fast" and current.state == "bundled")]
    return found[0] if found else None


def best_variant(spec: DomainSpec) -> str:
    """The variant a teacher or an export starts from: the most faithful one here (full, bundled, fast), else
    full (downloaded on request, or an error saying how to get it)."""
    chosen = choose(spec, "other")
    return chosen.variant if chosen else "full"


def in_use(spec: DomainSpec, device_type: str = "cpu") -> WeightsStatus:
    """What ``choose`` picks, else the full generator's status (downloadable or missing)."""
    return choose(spec, device_type) or status(spec, "full")


def here(spec: DomainSpec) -> list[WeightsStatus]:
    """The generators of ``spec`` on this machine, bundled, full, fast."""
    return [current for current in (status(spec, variant) for variant in VARIANTS) if current.here]


def weights_architecture(spec: DomainSpec, variant: str | None = None) -> dict[str, Any] | None:
    """The architecture of the weights here (read from a safetensors header; ``None`` when unknown
    without loading them, e.g. for a downloaded ``.pth``, or when none are here); ``variant`` None: the
    generator in use on the CPU."""
    current = in_use(spec) if variant is None else status(spec, variant)
    return file_architecture(current.path) if current.here else None


def architecture_text(spec: DomainSpec) -> str:
    """The declared architecture, or what the weights in use are when they differ:
    ``resnet ngf=4 blocks=1 (declared resnet ngf=64 blocks=9)``."""
    actual = weights_architecture(spec)
    if not actual or not spec.architecture_differences(actual):
        return spec.architecture_summary()
    return f"{spec.architecture_summary(actual)} (declared {spec.architecture_summary()})"


def file_architecture(path: Path) -> dict[str, Any] | None:
    """The generator config in a safetensors file's header (``None`` for other files, or none)."""
    if path.suffix != ".safetensors":
        return None
    try:
        config = json.loads(read_header_metadata(path).get(CONFIG_KEY, "null"))
    except (CycletoolsError, json.JSONDecodeError):
        return None
    return config if isinstance(config, dict) else None


def origin_text(spec: DomainSpec, current: WeightsStatus) -> str:
    """Where the generator in ``current`` came from, in a few words and without server paths: the
    ``cycletools.origin`` its file records (a bundled file's makers), else how it reached the cache."""
    if not current.here:
        return f"not here; download source {current.url}" if current.url else "not here"
    try:
        metadata = read_header_metadata(current.path) if current.path.suffix == ".safetensors" else {}
    except CycletoolsError:
        metadata = {}
    from_hub = hub.name_of(current.path)  # hf://OWNER/REPO/PATH@COMMIT for a file in the Hub cache
    if metadata.get("cycletools.origin"):
        text = one_line(metadata["cycletools.origin"])
        text = text if len(text) <= ORIGIN_LIMIT else text[:ORIGIN_LIMIT - 1] + "…"
        text += f"; downloaded from {from_hub}" if from_hub else ""
    elif metadata.get("cycletools.imported_from"):
        text = f"imported from {imported_name(metadata['cycletools.imported_from'])}"
    elif from_hub:
        text = f"downloaded from {from_hub}"
    elif current.path.suffix != ".safetensors" and spec.sources:
        text = f"downloaded from {spec.sources[0].url}"
    else:
        text = "a file in the weights cache" if current.state == "cached" else "shipped with its plugin"
    if metadata.get("cycletools.distilled_from") and "distilled" not in text:
        text += f", distilled from {Path(metadata['cycletools.distilled_from']).name}"
    return text


def imported_name(source: str) -> str:
    """How an imported file's source is shown: an ``hf://`` name whole (with its commit), a path by its name."""
    return one_line(source) if hub.is_hub_name(source) else Path(source).name


def usable(spec: DomainSpec) -> bool:
    """Whether a generator of ``spec`` (bundled, full or fast) is here, without downloading anything."""
    return choose(spec) is not None


def status_text(spec: DomainSpec, device_type: str = "cpu") -> str:
    """The state of the generator in use, then the others here: ``bundled``, ``cached, also bundled``,
    ``fast bundled, full downloadable`` … (``downloadable`` or ``missing`` when none is here)."""
    used = in_use(spec, device_type)

    def label(current: WeightsStatus) -> str:
        if current.variant == "fast":
            return f"fast {current.state}"
        if current is used:
            return current.state
        return "also bundled" if current.variant == "bundled" else f"full {current.state}"

    order = PREFERENCE["cpu" if device_type == "cpu" else "other"]
    others = sorted((current for current in here(spec) if current.variant != used.variant),
                    key=lambda current: order.index(current.variant))
    if used.variant == "fast" and not status(spec, "full").here and spec.sources:
        others.append(status(spec, "full"))
    return ", ".join(label(current) for current in [used, *others])


# ----------------------------------------------------------------- from a name to a verified file
@dataclass(frozen=True)
class Resolved:
    """A verified weights file on this machine, and where it came from."""

    path: Path
    origin: str                 # bundled | cached | downloaded (a domain's) | file | hub (--weights)
    variant: str = "full"
    source: str | None = None   # what it was downloaded from: a URL, or hf://OWNER/REPO/PATH@COMMIT

    @property
    def commit(self) -> str | None:
        """The Hub commit the file came from (hf:// only)."""
        return hub.commit_of(self.path) if self.source and hub.is_hub_name(self.source) else None


def _resolved(path: Path, origin: str, variant: str = "full", url: str | None = None) -> Resolved:
    return Resolved(path, origin, variant, hub.name_of(path) or (url if origin == "downloaded" else None))


def obtain(spec: DomainSpec, variant: str = "full", download: bool = False, progress: bool = True,
           registry: "Registry | None" = None) -> Resolved:
    """The weights file of ``spec``'s ``variant``, in one pass: where it is now (bundled, else cached, its
    checksum verified), else (the full generator) downloaded when ``download`` is true; otherwise an error
    saying how to get it."""
    current = status(spec, _check_variant(variant))
    if current.state == "cached":
        verify_checksum(spec, current.path)
    if current.here:
        return _resolved(current.path, current.state, variant, current.url)
    if variant == "bundled":
        raise CycletoolsError(f"{spec.name} has no bundled generator ({status_text(spec)}); 'cycletools weights "
                              "list' shows what is here")
    if variant == "fast":
        raise CycletoolsError(f"{spec.name} has no {variant} variant here: distil one (cycletools distill --plugin "
                              f"{spec.name} --data DIR) and import it with --variant {variant}, or place it at "
                              f"{local_file(spec, variant)}")
    if download and spec.sources:
        return _resolved(_download(spec, spec.sources[0], progress, registry, force=False), "downloaded",
                         url=spec.sources[0].url)
    if spec.sources:
        source = spec.sources[0]
        where = (f"into {hub.cache_dir()}" if hub.is_hub_name(source.url)
                 else f"to {downloaded_file(spec, source)}")
        raise CycletoolsError(f"no full weights for {spec.name} yet: fetch them with 'cycletools weights fetch "
                              f"{spec.name}' (or add --download), which downloads {source.url} {where}")
    raise CycletoolsError(f"no weights for {spec.name}: train them (cycletools train --plugin {spec.name} "
                          f"--data DIR) and import the run with 'cycletools weights import RUN_DIR --plugin "
                          f"{spec.name}', or place a generator at {local_file(spec)}")


def weights_file(name: str | os.PathLike, download: bool = False, progress: bool = True,
                 registry: "Registry | None" = None) -> Resolved:
    """What ``--weights NAME`` names, as a file here: a local path as it is (the loader reports what is wrong with
    it), or an ``hf://`` file from the Hub cache (content verified), downloaded first when ``download`` is true."""
    if not hub.is_hub_name(name):
        return Resolved(Path(name), "file")
    ref = hub.parse(str(name))
    path = hub.cached(ref)
    if path is not None:
        hub.verify(path, ref.name)
        return _resolved(path, "hub")
    if not download:
        raise CycletoolsError(f"{ref.name} is not downloaded yet: fetch it first with 'cycletools weights fetch "
                              f"{ref.name}' (or add --download, where the command has it)")
    return fetch_file(ref.name, progress=progress, registry=registry)


def fetch_file(name: str, force: bool = False, progress: bool = True, registry: "Registry | None" = None) -> Resolved:
    """Download an ``hf://`` file into the Hub cache (huggingface_hub checks whether the cached copy is current),
    and check that it is a generator."""
    downloaded = downloads.download(name, progress=progress, validate=_generator_check(name, registry), force=force)
    return _resolved(downloaded.path, "hub")


def _generator_check(source: str, registry: "Registry | None") -> Callable[[Path], None]:
    """A ``validate`` for downloads: the file loads as a generator, or one error naming ``source``."""
    def validate(path: Path) -> None:
        from cycletools.weights import load_generator

        try:
            load_generator(path, registry)
        except CycletoolsError as exc:
            reason = str(exc).removeprefix(f"{path}: ")
            raise CycletoolsError(f"{source} did not give a usable generator ({reason})") from None

    return validate


# ----------------------------------------------------------------- checksums
def _checksums_path() -> Path:
    return cache_dir() / "checksums.json"


def _read_checksums() -> dict[str, str]:
    try:
        return json.loads(_checksums_path().read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def record_checksum(path: Path, digest: str) -> None:
    checksums = _read_checksums()
    checksums[path.name] = digest
    atomic_write_text(_checksums_path(), json.dumps(checksums, indent=2, sort_keys=True) + "\n")


def verify_checksum(spec: DomainSpec, path: Path) -> None:
    """Compare a cached file with its pinned or first-recorded SHA-256 (a Hub file: its pinned one and the content
    hash the Hub names it by)."""
    name = hub.name_of(path)
    if name is not None:
        expected = next((s.sha256 for s in spec.sources if s.sha256 and hub.is_hub_name(s.url)
                         and hub.cached(hub.parse(s.url)) == path), None)
    else:
        pinned = {downloaded_file(spec, s).name: s.sha256 for s in spec.sources if s.sha256}
        expected = pinned.get(path.name) or _read_checksums().get(path.name)
    actual = None
    if expected is not None:
        actual = file_sha256(path)
        if actual != expected:
            raise CycletoolsError(f"{path} does not match its checksum (expected {expected[:12]}…, found "
                                  f"{actual[:12]}…): delete it and run 'cycletools weights fetch {spec.name}'")
    if name is not None:
        hub.verify(path, name, sha256=actual)


# ----------------------------------------------------------------- fetching and importing
def fetch(spec: DomainSpec, force: bool = False, progress: bool = True, registry: "Registry | None" = None) -> Path:
    """Download the domain's weights into the cache (unless a verified copy is there already)."""
    if not spec.sources:
        raise CycletoolsError(f"{spec.name} names no download source for its weights")
    source = spec.sources[0]
    here = source_file(spec, source)
    if here is not None and not force:
        verify_checksum(spec, here)
        return here
    return _download(spec, source, progress, registry, force)


def _download(spec: DomainSpec, source: WeightsSource, progress: bool, registry: "Registry | None",
              force: bool) -> Path:
    downloaded = downloads.download(source.url, downloaded_file(spec, source), sha256=source.sha256,
                                    progress=progress, validate=_generator_check(source.url, registry),
                                    hint=f"'cycletools weights import FILE --plugin {spec.name}'", force=force)
    if not hub.is_hub_name(source.url):
        record_checksum(downloaded.path, downloaded.sha256)
    return downloaded.path


def clean_origin(text: str | None) -> str | None:
    """An origin line as it is kept and shown: whitespace folded, control characters (terminal escapes)
    dropped, at most ``ORIGIN_LIMIT`` characters; ``None`` for nothing."""
    if text is None:
        return None
    line = one_line(text)
    if len(line) > ORIGIN_LIMIT:
        raise CycletoolsError(f"--origin takes one line of at most {ORIGIN_LIMIT} characters (who made the "
                              f"weights, the licence), not {len(line)}")
    return line or None


def make_folder(folder: Path) -> None:
    """Create the cache folder; one clear error where that cannot be done."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CycletoolsError(f"cannot create {folder} ({(exc.strerror or str(exc)).lower()}); set "
                              f"{HOME_ENV} to a folder you can write") from None


def import_weights(spec: DomainSpec, source: str | os.PathLike, direction: str | None = None,
                   registry: "Registry | None" = None, variant: str = "full", output: str | os.PathLike | None = None,
                   origin: str | None = None, download: bool = False) -> Path:
    """Convert a generator file, an ``hf://`` file (from the Hub cache, or downloaded when ``download`` is true) or
    a training run into the cache, as this domain's ``variant`` (full or fast), or into ``output`` (e.g. a plugin's
    bundled file), recording where it came from: the source's name (an ``hf://`` one with its commit) and SHA-256
    and, when given, ``origin`` (who made it, shown by ``weights list`` and the app)."""
    from cycletools.runs import run_weights_path
    from cycletools.weights import load_generator, read_metadata, save_generator

    if _check_variant(variant) == "bundled" and output is None:
        raise CycletoolsError("a bundled generator is written into a plugin's weights folder: give --output FILE")
    origin = clean_origin(origin)
    resolved = weights_file(source, download, registry=registry)  # a local path as it is; hf:// from the cache
    source, from_hub = resolved.path, resolved.source
    if source.is_dir():
        direction = direction or spec.run_direction
        run_weights = run_weights_path(source, direction)
        if not run_weights.is_file():
            raise CycletoolsError(f"{source} is not a training run with {direction} weights "
                                  f"(no {run_weights})")
        source = run_weights
    target = Path(output) if output is not None else local_file(spec, variant)
    if target.is_dir():
        raise CycletoolsError(f"{target} is a folder; give the converted file's name (NAME.safetensors)")
    if target.suffix != ".safetensors":
        raise CycletoolsError(f"{target}: imported weights are written as .safetensors")
    if target.exists() and target.resolve() == source.resolve():
        raise CycletoolsError(f"{target} is the file being imported; write the converted one elsewhere")
    generator, config = load_generator(source, registry)
    if output is None:
        make_folder(target.parent)
    check_writable(target)  # one line for a read-only or missing folder, before anything is written
    kept = {key: value for key, value in read_metadata(source).items() if key != CONFIG_KEY}  # e.g. distilled_from
    if output is not None and "cycletools.distilled_from" in kept:  # a shipped file names its teacher, not a path
        kept["cycletools.distilled_from"] = Path(kept["cycletools.distilled_from"]).name
    metadata = {**kept, "cycletools.domain": spec.name, "cycletools.variant": variant,
                # a file written to be shipped names its source, not a path on this machine
                "cycletools.imported_from": from_hub or (source.name if output is not None else str(source.resolve())),
                "cycletools.imported_sha256": file_sha256(source)}
    if origin:
        metadata["cycletools.origin"] = origin
    save_generator(generator, target, config, metadata=metadata)
    if output is None:
        record_checksum(target, file_sha256(target))
    return target
