"""What the page's buttons run. Each handler checks what its client sent (``client_input``), runs one job
(``jobs``) within the disk bound (``disk``), and answers one sentence when it fails (``messages``)."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import gradio as gr
import numpy as np
from PIL import ImageOps

from cycletools import store
from cycletools.app import cards
from cycletools.app.client_input import (
    camera_bytes,
    data_url,
    open_clip,
    open_image,
    probe_clip,
    received_file,
    upload_path,
)
from cycletools.app.disk import DiskBudget, size_text
from cycletools.app.jobs import Job, cancellable
from cycletools.app.limits import ServeLimits
from cycletools.app.messages import clear_errors, hide_paths, log, refusal
from cycletools.app.served import (
    OWN_GENERATOR,
    Served,
    domain_choices,
    resolve_direction,
)
from cycletools.errors import CycletoolsError
from cycletools.pipelines.translator import Translator, TranslatorCache
from cycletools.registry import get_registry

BROWSER_CODECS = {"h264", "vp8", "vp9", "av1"}  # what browsers' <video> plays everywhere
CODEC_NAMES = {"mpeg4": "MPEG-4 Part 2", "hevc": "H.265", "mpeg2video": "MPEG-2", "mpeg1video": "MPEG-1",
               "mjpeg": "Motion JPEG", "prores": "ProRes", "theora": "Theora", "wmv2": "Windows Media"}
DISK_CHECK_FRAMES = 30  # a video job checks its own folder every frame, the whole disk bound every this many


class Handlers:
    """The app's handlers over one translator cache, its limits, what it serves and its upload folder."""

    def __init__(self, cache: TranslatorCache, limits: ServeLimits, served: Served, uploads: Path,
                 disk: DiskBudget, largest_upload: int):
        self.cache, self.limits, self.served, self.uploads, self.disk = cache, limits, served, uploads, disk
        self.largest_upload = largest_upload  # bytes: --max-upload, which a camera frame is held to too
        self.received_sets: list[set] = []  # the Blocks' temp_file_sets (uploads first), once the page is built

    # --- helpers -------------------------------------------------------------------------------------------

    @contextmanager
    def job_folder(self) -> Iterator[Path]:
        """A fresh folder for one job's files, in Gradio's cache: served as they are, never rewritten (a
        result shared by identical jobs was rewritten while other clients downloaded it). Removed when the
        job fails or is cancelled; kept (within the disk bound) when it succeeds."""
        results = self.uploads / "results"
        results.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(dir=results))
        try:
            with self.disk.using(folder):
                yield folder
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def translator_for(self, domain: str) -> Translator:
        """The generator of a domain (or the one given with --weights), as ``direction_for`` named it."""
        if domain != self.served.own_key and not store.usable(get_registry().domain(domain)):
            raise CycletoolsError(f"there are no weights for {domain} yet: fetch them in the Plugins tab")
        translator = self.cache.get(domain)
        # What the model works on stays within the app's pixel limit too (the translator scales it down).
        translator.max_working_pixels = min(translator.max_working_pixels, self.limits.max_image_pixels)
        return cancellable(translator)

    def direction_for(self, name: str, direction: str) -> str:
        """The generator a request names: a domain or its reverse, or the one this server was given."""
        if name == OWN_GENERATOR and self.served.own_key != OWN_GENERATOR:
            raise CycletoolsError("this server has no generator of its own: pick a domain")
        return resolve_direction(name, direction)

    def received(self, value: dict | str | None, what: str) -> str:
        path = upload_path(value)
        if not path:
            raise refusal(f"Upload {what} first.")
        return received_file(path, self.received_sets, self.uploads, self.disk.removed)

    # --- the page's handlers -------------------------------------------------------------------------------

    @clear_errors
    def translate_image(self, upload: dict | None, name: str | None, direction: str):
        if not upload_path(upload):
            raise refusal("Upload or paste an image first.")
        if not name:
            raise refusal("Pick a domain first.")
        path = self.received(upload, "an image")
        image = open_image(path, self.limits)
        with Job("image") as job, self.disk.using(path):
            translator = self.translator_for(self.direction_for(name, direction))
            job.check()
            result = translator(image)
        # The two PNGs written below, at most 4 bytes a pixel each (PNG adds little to raw pixels).
        self.disk.make_room(4 * (image.width * image.height + result.width * result.height), "this result")
        with self.job_folder() as folder:
            before, after = folder / "input.png", folder / "translated.png"
            ImageOps.exif_transpose(image).convert("RGBA" if result.mode == "RGBA" else "RGB").save(before)
            result.save(after)
        return (str(before), str(after)), str(after), f"Output: {result.width}×{result.height} ({result.mode})"

    @clear_errors
    def translate_video(self, upload: dict | None, name: str | None, direction: str, stabilize: bool,
                        side_by_side: bool, progress=gr.Progress(track_tqdm=True)):
        from cycletools.pipelines.video import translate_video

        if not upload_path(upload):
            raise refusal("Upload a video first.")
        if not name:
            raise refusal("Pick a domain first.")
        if type(stabilize) is not bool or type(side_by_side) is not bool:
            raise refusal("The request's Stabilize and Side by side must each be true or false.")
        path = self.received(upload, "a video")
        info, budget = open_clip(path, self.limits)
        self.disk.make_room(0, "this video job")
        with Job("video") as job, self.disk.using(path), self.job_folder() as folder:
            room = self.disk.watcher(folder, "the translated clip", refresh_every=DISK_CHECK_FRAMES)

            def watch(frame) -> None:  # in the decoding thread: the limits, a client gone, the disk bound
                budget(frame)
                job.check()
                room()  # what the encoder has written so far, frame by frame

            domain = self.direction_for(name, direction)
            translator = self.translator_for(domain)
            target = folder / f"{Path(path).stem[:100]}_{domain}.mp4"
            result = translate_video(translator, path, target, stabilize=0.6 if stabilize else None,
                                     side_by_side=side_by_side, on_frame=watch,
                                     max_frame_pixels=self.limits.max_image_pixels)
        summary = (f"{result.frames} frames, {result.width}×{result.height} at {info.fps} fps, "
                   f"{result.frames_per_second:.1f} frames/s" + (f", audio {result.audio}" if result.audio else ""))
        return str(result.output), summary

    def preview_note(self, upload: str | None) -> str:
        """Why the browser cannot show a clip's preview, when its codec is one browsers do not play."""
        if not upload:
            return ""
        try:
            codec = probe_clip(upload).codec
        except gr.Error as exc:
            return exc.message
        if codec in BROWSER_CODECS:
            return ""
        return (f"Browsers cannot play {CODEC_NAMES.get(codec, codec)} video, so the clip has no preview here; "
                "it translates all the same, and the result (H.264) plays on this page.")

    @clear_errors
    def translate_camera(self, frame: dict | None, name: str | None, direction: str):
        """One frame of the browser's camera, unprocessed like an Image upload: its size is read from the file's
        header and held to the Image tab's limits before anything is decoded."""
        url = data_url(frame)
        if not name or not (url or upload_path(frame)):
            return None
        if url and len(url) > self.largest_upload * 4 // 3 + 64:
            raise refusal(f"The camera frame is larger than this server takes ({size_text(self.largest_upload)}).")
        source = camera_bytes(url) if url else self.received(frame, "a camera frame")
        image = open_image(source, self.limits)
        rgb = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        translated = self.translator_for(self.direction_for(name, direction)).translate_frames(rgb[None])[0]
        self.disk.make_room(translated.size, "this camera frame")  # Gradio writes it into the upload folder
        return translated

    def fetch(self, name: str | None):
        """The Plugins tab's button: download a domain's official weights, where the operator allows it."""
        if not self.limits.allow_downloads:  # a client may not make this server reach out (the button is off too)
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
            note = f"⚠️ {hide_paths(str(exc))}"
        else:
            log(f"fetch {name}: saved {path}")
            note = f"✅ {name}: weights saved"
        return cards.plugin_table(self.served), note, gr.Dropdown(choices=domain_choices(self.served))
