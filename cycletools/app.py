"""The Gradio web app: every domain on images, video and the browser's camera, plus the plugin list.

Models are loaded once per domain and shared between requests; a queue bounds how many
translations run at once (one per device by default) and how many may wait. Uploads, images and
clips are limited before any work, and clips again while they are decoded; a job whose client went
away is cancelled. Gradio's uploads and each job's own result files live in the app's temp folder,
which is removed when the app stops. Errors reach the page as one sentence, never tracebacks or
server paths (those go to the log)."""

from __future__ import annotations

import atexit
import base64
import binascii
import functools
import io
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # the app must work offline

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402
from torch import nn  # noqa: E402

from cycletools import __version__, gradio_guards, store  # noqa: E402
from cycletools.data.images import list_images  # noqa: E402
from cycletools.errors import CycletoolsError, first_line, one_line  # noqa: E402
from cycletools.pipelines.translator import Translator, TranslatorCache  # noqa: E402
from cycletools.registry import get_registry  # noqa: E402

LOCAL_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]  # no web fonts: the page must work offline
_GRADIO_TEMP_DIR = os.environ.get("GRADIO_TEMP_DIR")  # where the operator wants temp files, if anywhere
MAX_BUDGET_FPS = 60  # a clip declaring a faster frame rate is budgeted as if it had 60 frames a second
BROWSER_CODECS = {"h264", "vp8", "vp9", "av1"}  # what browsers' <video> plays everywhere
# The FFmpeg demuxers an uploaded clip may use: containers and raw streams that hold their own frames. Not
# playlists or anything that names other files or URLs (HLS, DASH, concat, SDP/RTP, image sequences): FFmpeg
# would open those on the server.
ACCEPTED_VIDEO_FORMATS = ",".join(["mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi", "mpegts", "mpeg", "flv",
                                   "ogg", "asf", "ivf", "obu", "h264", "hevc", "m4v", "mpegvideo", "gif"])
ACCEPTED_VIDEO_TEXT = "MP4, MOV, WebM, MKV, AVI, MPEG-TS, Ogg, FLV, raw H.264 and more; no playlists"
CODEC_NAMES = {"mpeg4": "MPEG-4 Part 2", "hevc": "H.265", "mpeg2video": "MPEG-2", "mpeg1video": "MPEG-1",
               "mjpeg": "Motion JPEG", "prores": "ProRes", "theora": "Theora", "wmv2": "Windows Media"}


@dataclass
class ServeLimits:
    max_upload: str = "200mb"          # any single upload (Gradio refuses larger ones)
    max_image_pixels: int = 40_000_000  # width × height, of the upload and of what the model works at
    max_aspect_ratio: float = 16.0      # longer side / shorter side (a 256×1 image is no photo)
    max_video_seconds: float = 600.0
    queue_size: int = 16               # waiting requests beyond the running ones
    concurrency: int = 1               # translations at once on the device
    allow_downloads: bool = True       # whether a client may make the server fetch weights (Plugins tab)


@dataclass
class DecodeBudget:
    """Stops a clip once what is decoded passes the limits, whatever its file declares (a length can be
    missing or false, and a stream may change its picture size): every frame must be an image the app
    would take (pixels, aspect ratio); the clip stops past the time limit by the frames' timestamps, by
    their number (the limit's seconds at 60 frames a second, the fastest rate budgeted) and by frames ×
    pixels (worth ``seconds`` of frames at the declared size and frame rate)."""

    seconds: float
    pixels: float
    max_frame_pixels: int = 40_000_000
    max_aspect_ratio: float = 16.0
    decoded: int = 0
    frames: int = 0

    @classmethod
    def for_clip(cls, info, limits: "ServeLimits") -> "DecodeBudget":
        rate = min(float(info.fps), MAX_BUDGET_FPS)
        seconds = limits.max_video_seconds
        return cls(seconds, seconds * rate * info.width * info.height, limits.max_image_pixels,
                   limits.max_aspect_ratio)

    def check_size(self, width: int, height: int) -> None:
        """A frame of ``width``×``height`` must be within the image limits."""
        if width * height > self.max_frame_pixels:
            raise CycletoolsError(f"the clip's frames are {width}×{height}; the limit is "
                                  f"{self.max_frame_pixels / 1e6:g} megapixels")
        if max(width, height) > self.max_aspect_ratio * min(width, height):
            raise CycletoolsError(f"the clip's frames are {width}×{height}; their longer side may be at most "
                                  f"{self.max_aspect_ratio:g} times their shorter side")

    def __call__(self, frame) -> None:
        height, width = frame.image.shape[:2]
        self.check_size(width, height)
        self.decoded += width * height
        self.frames += 1
        if frame.time > self.seconds or self.frames > self.seconds * MAX_BUDGET_FPS:
            raise CycletoolsError(f"the clip runs past the {self.seconds:g} s limit")
        if self.decoded > self.pixels:
            raise CycletoolsError(f"the clip runs past the {self.seconds:g} s limit: its frames hold more pixels "
                                  f"than {self.seconds:g} s at its declared size and frame rate")


class JobCancelled(CycletoolsError):
    """The request's client went away: it closed the page, cancelled, or lost its connection."""


_running = threading.local()  # the Job of this thread, seen by the generators' hooks
_hooking = threading.Lock()   # hooks are added before any request's forward pass can run
_jobs = threading.Condition()  # guards _active; notified when a job ends
_active = 0                    # jobs running now
_stopping = threading.Event()  # the server is stopping: every job is cancelled


class Job:
    """A translation request that knows whether its client is still there.

    Gradio marks a request's event dead when its client disconnects or cancels (and drops it when
    cancelled); a job checks that between video frames and between the generator's layers. This reads
    Gradio's queue (``event_ids_to_events``, Gradio 6), and never cancels anything it does not find there.
    """

    def __init__(self, kind: str):
        from gradio.context import LocalContext

        self.kind, self.started = kind, time.perf_counter()
        self._queue = getattr(LocalContext.blocks.get(None), "_queue", None)  # falsy when empty: test for None
        self._event_id = LocalContext.event_id.get(None)
        known = self._queue.event_ids_to_events if self._queue is not None else {}
        self._event = known.get(self._event_id)

    def gone(self) -> bool:
        if _stopping.is_set():
            return True
        if self._event is None:
            return False  # not run by Gradio's queue: nobody to lose
        return not self._event.alive or self._event_id not in self._queue.event_ids_to_events

    def check(self) -> None:
        if self.gone():
            why = "the server is stopping" if _stopping.is_set() else "its client went away"
            raise JobCancelled(f"the {self.kind} job was cancelled after {time.perf_counter() - self.started:.1f} s: "
                               f"{why}")

    def __enter__(self) -> "Job":
        global _active
        with _jobs:
            _active += 1
        _running.job = self
        try:
            self.check()  # a job that starts while the server stops ends at once
        except JobCancelled:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        global _active
        _running.job = None
        with _jobs:
            _active -= 1
            _jobs.notify_all()


def cancel_jobs() -> None:
    """The server is stopping: every running job stops at its next check, and new ones at once."""
    _stopping.set()


def stopping() -> bool:
    return _stopping.is_set()


def stop_jobs(timeout: float = 30.0) -> bool:
    """Cancel every running job and wait for them to end (their threads joined); whether all did."""
    cancel_jobs()
    with _jobs:
        return _jobs.wait_for(lambda: _active == 0, timeout)


def cancellable(translator: Translator) -> Translator:
    """Let the running job stop ``translator`` between its generator's layers (hooks added once)."""
    generator = translator.generator
    with _hooking:
        if isinstance(generator, nn.Module) and not getattr(generator, "_stops_for_jobs", False):
            for module in generator.modules():
                if next(module.children(), None) is None:
                    module.register_forward_pre_hook(_stop_if_cancelled)
            generator._stops_for_jobs = True
    return translator


def _stop_if_cancelled(module: nn.Module, inputs) -> None:
    job = getattr(_running, "job", None)
    if job is not None:
        job.check()


def log(message: str) -> None:
    """A line in the server's log (stderr), where details that users are not shown go."""
    print(f"cycletools serve: {message}", file=sys.stderr, flush=True)


ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/[^\s'\"`()<>,;]+")


def hide_paths(text: str) -> str:
    """Server paths out of a message: a file's name, or ``$CYCLETOOLS_HOME/...`` in the user's folder."""
    home = str(store.home())

    def short(match: re.Match) -> str:
        path = match.group(0)
        return "$CYCLETOOLS_HOME" + path[len(home):] if path.startswith(home + "/") else Path(path).name

    return ABSOLUTE_PATH.sub(short, text)


PUBLIC_MESSAGE_LIMIT = 200  # characters of an error shown on the page


def public_message(exc: BaseException) -> str:
    """One sentence for the page: the error's first line with server paths hidden first, then cut at a word
    (with "…") where it is longer than ``PUBLIC_MESSAGE_LIMIT``."""
    text = hide_paths(first_line(exc, limit=100_000))
    if len(text) > PUBLIC_MESSAGE_LIMIT:
        text = text[:PUBLIC_MESSAGE_LIMIT].rsplit(" ", 1)[0].rstrip(",;:") + " …"
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def refusal(message: str, cause: BaseException | None = None) -> gr.Error:
    """The page shows ``message``; the log also gets the cause."""
    log(f"refused: {message}" + (f" ({type(cause).__name__}: {cause})" if cause else ""))
    return gr.Error(message, duration=None, print_exception=False)


def clear_errors(function):
    """Errors reach the page as one sentence without server paths; details and tracebacks go to the log."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except gr.Error:
            raise
        except JobCancelled as exc:
            log(str(exc))
            raise gr.Error("The request was cancelled.", print_exception=False) from None
        except CycletoolsError as exc:
            raise refusal(public_message(exc), exc) from None
        except Exception:
            log(f"{function.__name__} failed:\n{traceback.format_exc()}")
            raise gr.Error("The translation failed on the server; its log has the details.", duration=None,
                           print_exception=False) from None
    return wrapper


def upload_path(value: dict | str | None) -> str | None:
    """The path a client gave for an upload (Gradio's FileData, unprocessed): not yet trusted."""
    path = value.get("path") if isinstance(value, dict) else value
    return path if isinstance(path, str) and path else None


def received_file(path: str, received: list[set], root: Path) -> str:
    """``path`` (followed to its real place) if this server received it and it is a regular file inside
    ``root`` (see ``gradio_guards.is_received``); otherwise a refusal, and nothing is opened."""
    if not gradio_guards.is_received(path, received, root):
        raise refusal(gradio_guards.FOREIGN_FILE, CycletoolsError(f"refused to open {path!r}: not a file "
                                                                  "this server received in its upload folder"))
    return os.path.realpath(path)


def data_url(value: Any) -> str | None:
    """The ``data:image/...`` URL a browser's camera frame comes as (Gradio's FileData ``url``), if it is one."""
    url = value.get("url") if isinstance(value, dict) else None
    return url if isinstance(url, str) and url.startswith("data:image/") else None


def camera_bytes(url: str) -> io.BytesIO:
    """The image file inside a base64 data URL; one sentence for anything else."""
    header, _, payload = url.partition(",")
    try:
        if not header.endswith(";base64"):
            raise ValueError("not base64")
        return io.BytesIO(base64.b64decode(payload, validate=True))
    except (ValueError, binascii.Error) as exc:
        raise refusal("The camera frame is not an image that can be read.", exc) from None


def open_image(path: str | io.BytesIO, limits: ServeLimits) -> Image.Image:
    """Decode an uploaded image once its declared size and shape are checked; one sentence for what is
    not a readable image, too large, too long and thin, or damaged."""
    max_pixels = limits.max_image_pixels
    limit = f"{max_pixels / 1e6:.0f} megapixels"
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise refusal(f"The image is too large: over the limit of {limit}.", exc) from None
    except Exception as exc:  # UnidentifiedImageError, and what a broken header raises
        raise refusal("This file is not an image that can be read (try PNG, JPEG or WebP).", exc) from None
    if image.width * image.height > max_pixels:
        raise refusal(f"The image is {image.width}×{image.height}; the limit is {limit}.")
    if max(image.size) > limits.max_aspect_ratio * min(image.size):
        raise refusal(f"The image is {image.width}×{image.height}; its longer side may be at most "
                      f"{limits.max_aspect_ratio:g} times its shorter side.")
    try:
        image.load()
    except Exception as exc:
        raise refusal("The image file is damaged or incomplete.", exc) from None
    return image


def weights_card(spec, current: "store.WeightsStatus") -> str:
    """What a weights file here is: its architecture and where it came from (no server paths)."""
    actual = store.file_architecture(current.path)
    architecture = spec.architecture_summary(actual) if actual else spec.architecture_summary()
    if actual and spec.architecture_differences(actual):
        architecture += f" (the domain declares {spec.architecture_summary()})"
    origin = re.sub(r"(imported|distilled) from (\S+)", r"\1 from `\2`", store.origin_text(spec, current))
    title = spec.title + {"fast": " — fast variant", "bundled": " — bundled generator"}.get(current.variant, "")
    return (f"### {title}\n{spec.description}\n\n- weights: {origin}\n- architecture: {architecture}\n"
            f"- family: {spec.family_title}\n- dataset: {spec.dataset or '—'}")


def file_card(served: "Served") -> str:
    """The card of a generator served with --weights: its file's name, architecture and origin, and whether it
    stands for a domain (--plugin) or for itself."""
    from cycletools.domains import summarize_architecture

    loaded = served.loaded
    origin = loaded.metadata.get("cycletools.origin") or "the file given to cycletools serve --weights"
    if served.plugin:
        spec = get_registry().domain(served.plugin)
        what = (f"### {spec.title}: your generator `{loaded.source.name}`\nServed with --weights as {spec.name}; "
                f"the reverse direction is the domain's own ({spec.reverse or 'none'}).")
    else:
        what = (f"### Your generator: `{loaded.source.name}`\nServed with --weights; it has no domain, so no "
                "reverse direction.")
    return f"{what}\n\n- weights: {one_line(origin)}\n- architecture: {summarize_architecture(loaded.config)}"


OWN_GENERATOR = "--weights"  # the picker's value for a generator served with --weights alone (no domain's name)


@dataclass
class Served:
    """What ``cycletools serve`` shows first: a domain (--plugin), a generator file (--weights) for it or on
    its own, and which of each domain's generators (--variant) the app uses."""

    plugin: str | None = None
    weights: str | None = None
    variant: str = "auto"
    device_type: str = "cpu"
    loaded: Any = None  # the --weights generator, once loaded

    @property
    def own_key(self) -> str | None:
        """The picker value the --weights generator is under: its domain, or OWN_GENERATOR."""
        return None if self.weights is None else (self.plugin or OWN_GENERATOR)

    def used(self, spec) -> "store.WeightsStatus":
        """The generator of ``spec`` the app translates with: --variant's, or what auto picks on this device."""
        return store.in_use(spec, self.device_type) if self.variant == "auto" else store.status(spec, self.variant)


def domain_choices(served: Served | None = None) -> list[tuple[str, str]]:
    """Dropdown entries grouped by family: "Family · Title (name) — weights status"; a generator served with
    --weights alone comes first."""
    served = served or Served()
    registry = get_registry()
    rows = []
    for name, spec in registry.domains.items():
        if name == served.own_key:
            status = f"your {served.loaded.source.name}"
        elif served.variant == "auto":
            status = store.status_text(spec, served.device_type)
        else:  # what the app uses is the variant asked for, or nothing
            status = f"{served.used(spec).state} ({served.variant})"
        rows.append((spec.family_title, spec.title, f"{spec.family_title} · {spec.title} ({name}) — {status}", name))
    own = [(f"Your generator · {served.loaded.source.name} (--weights)", OWN_GENERATOR)] \
        if served.own_key == OWN_GENERATOR else []
    return own + [(label, name) for _, _, label, name in sorted(rows)]


def default_domain(served: Served | None = None) -> str | None:
    """--plugin's domain or the --weights generator, else horse2zebra where a generator of it is here, else the
    first domain that has one."""
    served = served or Served()
    if served.plugin or served.own_key:
        return served.plugin or served.own_key
    registry = get_registry()
    usable = [name for name, spec in registry.domains.items() if store.usable(spec)]
    return "horse2zebra" if "horse2zebra" in usable else (sorted(usable) or [None])[0]


def describe(name: str | None, served: Served | None = None) -> str:
    served = served or Served()
    if not name:
        return ""
    if name == OWN_GENERATOR and served.own_key == OWN_GENERATOR:
        return f"**Your generator** `{served.loaded.source.name}` (served with --weights; no reverse direction)"
    registry = get_registry()
    spec = registry.domain(name)
    plugin = registry.domain_plugins[name]
    if name == served.own_key:
        weights = f"Weights: **your file** `{served.loaded.source.name}` (--weights)"
    else:
        used = served.used(spec)
        weights = f"Weights: **{used.state}**"  # where they are is the server's business
        if used.here:
            weights += ("" if used.state == used.variant else f" ({used.variant})") + \
                f" — {hide_paths(store.origin_text(spec, used))}"
        others = [f"{current.variant} **{current.state}**" for current in store.here(spec)
                  if current.variant != used.variant]
        if others:
            weights += "; also here: " + ", ".join(others)
    lines = [f"**{spec.title}** — {spec.description or spec.family_title}", weights + f" · plugin `{plugin.label}`"]
    if spec.reverse:
        lines.append(f"Reverse direction: `{spec.reverse}`")
    if not store.usable(spec) and name != served.own_key:
        lines.append("These weights are not here yet: fetch them in the Plugins tab.")
    return "  \n".join(lines)


DIRECTIONS = ("forward", "reverse")


def resolve_direction(name: str, direction: str) -> str:
    if direction not in DIRECTIONS:
        raise CycletoolsError(f"unknown direction {str(direction)[:40]!r}: choose forward or reverse")
    if direction == "reverse":
        if name == OWN_GENERATOR:
            raise CycletoolsError("a generator served with --weights alone has no reverse direction")
        spec = get_registry().domain(name)
        if not spec.reverse:
            raise CycletoolsError(f"{name} has no reverse direction")
        return spec.reverse
    return name


def example_images() -> list[str]:
    """The example photos that ship with cycletools (the package cycletools_plugins.examples)."""
    import importlib.util

    found = importlib.util.find_spec("cycletools_plugins.examples")
    folders = list(found.submodule_search_locations or []) if found else []
    return [str(path) for folder in folders for path in list_images(Path(folder)).files]


def make_workdir() -> Path:
    """The app's temp folder, removed at exit; Gradio keeps uploads and results in it too, so that nothing
    the app received (a refused upload's body included) outlives it. Under $GRADIO_TEMP_DIR when set."""
    base = _GRADIO_TEMP_DIR
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="cycletools-serve-", dir=base))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    os.environ["GRADIO_TEMP_DIR"] = str(workdir / "files")
    return workdir


def build_app(device: str | None = None, limits: ServeLimits | None = None,
              served: Served | None = None) -> tuple[gr.Blocks, Path]:
    """The Blocks app and its temp folder (removed at exit). ``served``: what to show first (--plugin), a
    generator file to serve (--weights), which generator of each domain (--variant); a file that does not
    load, or an unknown domain, is an error here, before anything listens."""
    from cycletools.resolver import get_generator
    from cycletools.utils.devices import resolve_device

    limits = limits or ServeLimits()
    served = served or Served()
    served.device_type = resolve_device(device).type
    if served.plugin is not None:
        get_registry().domain(served.plugin)  # an unknown name: one error line that lists the domains
    _stopping.clear()  # a stopped app's cancellation does not reach a new one
    cache = TranslatorCache(device=device, variant=served.variant)  # one translator per domain, shared
    if served.weights is not None:
        served.loaded = get_generator(served.plugin, weights=served.weights, device=device)
        cache.seed(served.own_key, Translator.from_loaded(served.loaded))
    workdir = make_workdir()

    def job_folder() -> Path:
        """A fresh folder for one job's files, in Gradio's cache: served as they are, never rewritten
        (a result shared by identical jobs was rewritten while other clients downloaded it)."""
        results = workdir / "files" / "results"
        results.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=results))

    def translator_for(domain: str) -> Translator:
        """The generator of a domain (or the one given with --weights), as ``direction_for`` named it."""
        if domain != served.own_key and not store.usable(get_registry().domain(domain)):
            raise CycletoolsError(f"there are no weights for {domain} yet: fetch them in the Plugins tab")
        translator = cache.get(domain)
        # What the model works on stays within the app's pixel limit too (the translator scales it down).
        translator.max_working_pixels = min(translator.max_working_pixels, limits.max_image_pixels)
        return cancellable(translator)

    def direction_for(name: str, direction: str) -> str:
        """The generator a request names: a domain or its reverse, or the one this server was given."""
        if name == OWN_GENERATOR and served.own_key != OWN_GENERATOR:
            raise CycletoolsError("this server has no generator of its own: pick a domain")
        return resolve_direction(name, direction)

    uploads = workdir / "files"  # Gradio's upload cache (GRADIO_TEMP_DIR)
    gradio_guards.keep_gradio_files_in(uploads)  # before Gradio builds its routes (at the end of the Blocks)

    def received(value: dict | str | None, what: str) -> str:
        path = upload_path(value)
        if not path:
            raise refusal(f"Upload {what} first.")
        return received_file(path, app.temp_file_sets, uploads)

    @clear_errors
    def translate_image(upload: dict | None, name: str | None, direction: str):
        if not upload_path(upload):
            raise refusal("Upload or paste an image first.")
        if not name:
            raise refusal("Pick a domain first.")
        image = open_image(received(upload, "an image"), limits)
        with Job("image") as job:
            translator = translator_for(direction_for(name, direction))
            job.check()
            result = translator(image)
        folder = job_folder()
        before, after = folder / "input.png", folder / "translated.png"
        ImageOps.exif_transpose(image).convert("RGBA" if result.mode == "RGBA" else "RGB").save(before)
        result.save(after)
        return (str(before), str(after)), str(after), f"Output: {result.width}×{result.height} ({result.mode})"

    @clear_errors
    def translate_video_file(upload: dict | None, name: str | None, direction: str, stabilize: bool,
                             side_by_side: bool, progress=gr.Progress(track_tqdm=True)):
        from cycletools.media.video import FormatRefused, probe
        from cycletools.pipelines.video import translate_video

        if not upload_path(upload):
            raise refusal("Upload a video first.")
        if not name:
            raise refusal("Pick a domain first.")
        path = received(upload, "a video")
        try:
            info = probe(path, formats=ACCEPTED_VIDEO_FORMATS)
        except FormatRefused as exc:
            raise refusal(f"This file is not a readable video in a format the app takes ({ACCEPTED_VIDEO_TEXT}).",
                          exc) from None
        except CycletoolsError as exc:
            raise refusal("This file is not a readable video.", exc) from None
        if info.duration and info.duration > limits.max_video_seconds:
            raise refusal(f"The clip lasts {info.duration:.0f} s; the limit is {limits.max_video_seconds:.0f} s.")
        budget = DecodeBudget.for_clip(info, limits)
        budget.check_size(info.width, info.height)  # from the stream's header, before anything is decoded
        with Job("video") as job:
            def watch(frame) -> None:  # in the decoding thread: the limit, and a client gone
                budget(frame)
                job.check()

            domain = direction_for(name, direction)
            translator = translator_for(domain)
            target = job_folder() / f"{Path(path).stem[:100]}_{domain}.mp4"
            result = translate_video(translator, path, target, stabilize=0.6 if stabilize else None,
                                     side_by_side=side_by_side, on_frame=watch,
                                     max_frame_pixels=limits.max_image_pixels)
        summary = (f"{result.frames} frames, {result.width}×{result.height} at {info.fps} fps, "
                   f"{result.frames_per_second:.1f} frames/s" + (f", audio {result.audio}" if result.audio else ""))
        return str(result.output), summary

    def preview_note(upload: str | None) -> str:
        """Why the browser cannot show a clip's preview, when its codec is one browsers do not play."""
        from cycletools.media.video import FormatRefused, probe

        if not upload:
            return ""
        try:
            codec = probe(upload, formats=ACCEPTED_VIDEO_FORMATS).codec
        except FormatRefused:
            return f"This file is not a readable video in a format the app takes ({ACCEPTED_VIDEO_TEXT})."
        except CycletoolsError:
            return "This file is not a readable video."
        if codec in BROWSER_CODECS:
            return ""
        return (f"Browsers cannot play {CODEC_NAMES.get(codec, codec)} video, so the clip has no preview here; "
                "it translates all the same, and the result (H.264) plays on this page.")

    @clear_errors
    def translate_camera(frame: dict | None, name: str | None, direction: str):
        """One frame of the browser's camera, unprocessed like an Image upload: its size is read from the file's
        header and held to the Image tab's limits before anything is decoded."""
        url = data_url(frame)
        if not name or not (url or upload_path(frame)):
            return None
        source = camera_bytes(url) if url else received(frame, "a camera frame")
        image = open_image(source, limits)
        rgb = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        return translator_for(direction_for(name, direction)).translate_frames(rgb[None])[0]

    def plugin_table() -> list[list[Any]]:
        registry = get_registry()
        rows = []
        for name, spec in sorted(registry.domains.items()):
            info = registry.domain_plugins[name]
            dist = f"{info.distribution} {info.version}" if info.distribution else "-"
            rows.append([name, spec.family_title, spec.title, f"{info.name} ({dist})",
                         store.architecture_text(spec), store.status_text(spec, served.device_type)])
        for problem in registry.problems:
            rows.append([problem.plugin.name, "—", f"failed: {problem.error}", problem.plugin.label, "—", "—"])
        return rows

    def model_card(name: str | None) -> str:
        """The cards of the generators here, the one in use first: a bundled file's own card, else what the file
        here is (an imported file's architecture and origin, not the official download's), else the official
        source; a generator served with --weights gets its file's card."""
        if not name:
            return ""
        if name == served.own_key:
            return file_card(served)
        spec = get_registry().domain(name)
        used = served.used(spec)
        sections = []
        for current in sorted(store.here(spec), key=lambda current: current.variant != used.variant):
            card = current.path.with_suffix(".md")
            if current.state == "bundled" and card.is_file():
                sections.append(card.read_text(encoding="utf-8"))
            else:
                sections.append(weights_card(spec, current))
        if sections:
            return "\n\n---\n\n".join(sections)
        source = spec.sources[0].url if spec.sources else "none"
        return (f"### {spec.title}\n{spec.description}\n\n- family: {spec.family_title}\n- architecture: "
                f"{spec.architecture_summary()}\n- download source: {source}\n- dataset: {spec.dataset or '—'}\n\n"
                "No weights are here yet.")

    def fetch(name: str | None):
        if not limits.allow_downloads:  # a client may not make this server reach out (the button is off too)
            log(f"refused: a client asked to fetch weights for {str(name)[:64]!r}; downloads are off")
            raise gr.Error("Fetching weights is turned off on this server: its operator can run 'cycletools "
                           "weights fetch NAME', or start it with --allow-downloads.", print_exception=False)
        if not name:
            raise gr.Error("Pick a domain first.")
        registry = get_registry()
        try:
            path = store.fetch(registry.domain(name), registry=registry)
        except CycletoolsError as exc:
            log(f"fetch {name}: {exc}")
            return plugin_table(), f"⚠️ {hide_paths(str(exc))}", gr.Dropdown(choices=domain_choices(served))
        log(f"fetch {name}: saved {path}")
        return plugin_table(), f"✅ {name}: weights saved", gr.Dropdown(choices=domain_choices(served))

    choices, initial = domain_choices(served), default_domain(served)
    if initial is not None:
        try:  # the first domain is loaded before the page opens: its first translation need not wait
            translator_for(initial)
        except CycletoolsError as exc:
            log(f"{initial} is not ready: {exc}")
    with gr.Blocks(title="cycletools", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(f"# cycletools {__version__}\nUnpaired image-to-image translation with CycleGAN: pick a "
                    "domain, give it an image, a video or your camera.")
        with gr.Row():
            domain = gr.Dropdown(choices=choices, value=initial, label="Domain", scale=3, elem_id="domain")
            direction = gr.Radio(["forward", "reverse"], value="forward", label="Direction", scale=1,
                                 elem_id="direction")
        about = gr.Markdown(describe(initial, served), elem_id="about")
        domain.change(functools.partial(describe, served=served), domain, about)
        with gr.Tab("Image", id="image"):
            with gr.Row():
                source = gr.Image(type="pil", image_mode=None, label="Input", sources=["upload", "clipboard"],
                                  elem_id="image-input")
                slider = gr.ImageSlider(type="pil", label="Before / after", format="png", elem_id="compare")
            examples = example_images()
            if examples:  # one click from a fresh install to a translation
                gr.Examples(examples, inputs=source, label="Examples: click one, then Translate")
            with gr.Row():
                run_image = gr.Button("Translate", variant="primary", elem_id="translate-image")
                size_note = gr.Markdown(elem_id="image-info")
            output = gr.Image(type="pil", format="png", label="Result (download)", buttons=["download"],
                              interactive=False, elem_id="image-output")
            # Unprocessed (preprocess=False): the app opens the upload itself, checking its size first.
            run_image.click(translate_image, [source, domain, direction], [slider, output, size_note],
                            api_name="translate_image", concurrency_id="translate", preprocess=False)
        with gr.Tab("Video", id="video"):
            with gr.Row():
                video_in = gr.Video(label="Clip", sources=["upload"], elem_id="video-input")
                video_out = gr.Video(label="Translated", interactive=False, elem_id="video-output")
            with gr.Row():
                stabilize = gr.Checkbox(label="Stabilize (less flicker)", value=False)
                side = gr.Checkbox(label="Side by side", value=False)
                run_video = gr.Button("Translate video", variant="primary", elem_id="translate-video")
            video_note = gr.Markdown(elem_id="video-info")
            video_in.upload(preview_note, video_in, video_note, api_name=False, queue=False)
            # Unprocessed too: the app checks that the clip was uploaded here before it opens it.
            run_video.click(translate_video_file, [video_in, domain, direction, stabilize, side],
                            [video_out, video_note], api_name="translate_video", concurrency_id="translate",
                            preprocess=False)
        with gr.Tab("Webcam", id="webcam"):
            with gr.Row():
                camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera",
                                  elem_id="webcam-input")
                live = gr.Image(label="Translated", streaming=True, interactive=False, elem_id="webcam-output")
            camera.stream(translate_camera, [camera, domain, direction], live, stream_every=0.2,
                          concurrency_limit=limits.concurrency, api_name=False, preprocess=False)
        with gr.Tab("Plugins", id="plugins"):
            table = gr.Dataframe(plugin_table(), headers=["name", "family", "what it does", "plugin",
                                                          "architecture", "weights"],
                                 interactive=False, elem_id="plugin-table", wrap=True,
                                 column_widths=["15%", "14%", "15%", "20%", "21%", "15%"])
            with gr.Row():
                card_domain = gr.Dropdown(choices=choices, value=initial, label="Domain", scale=3,
                                          elem_id="card-domain")
                fetch_button = gr.Button("Fetch missing weights" if limits.allow_downloads else
                                         "Fetching is off on this server", scale=1, elem_id="fetch",
                                         interactive=limits.allow_downloads)
            fetch_note = gr.Markdown(elem_id="fetch-note")
            card = gr.Markdown(model_card(initial))
            card_domain.change(model_card, card_domain, card)
            fetch_button.click(fetch, card_domain, [table, fetch_note, domain], api_name=False)
    app.queue(max_size=limits.queue_size, default_concurrency_limit=limits.concurrency)
    gradio_guards.remove_refused_uploads(app.upload_file_set)
    gradio_guards.refuse_foreign_files(app.temp_file_sets, uploads)
    gradio_guards.check_example_choices(app, refusal)
    gradio_guards.check_payload_shapes(app, refusal)
    return app, workdir


def launch_options() -> dict[str, Any]:
    """What ``Blocks.launch`` needs besides the address: the HTTP guards in front of Gradio's routes."""
    from starlette.middleware import Middleware

    return {"app_kwargs": {"middleware": [Middleware(gradio_guards.RefuseOddRequests)]}}


def theme() -> gr.themes.Base:
    return gr.themes.Default(font=LOCAL_FONTS, font_mono=["ui-monospace", "monospace"])
