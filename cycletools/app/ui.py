"""The page: its tabs and controls, wired to the handlers, and what ``Blocks.launch`` needs besides."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from cycletools import __version__
from cycletools.app import cards, gradio_guards
from cycletools.app.disk import DiskBudget, RequestBounds
from cycletools.app.handlers import Handlers
from cycletools.app.jobs import start_serving
from cycletools.app.limits import ServeLimits
from cycletools.app.messages import log, refusal
from cycletools.app.served import Served, default_domain, domain_choices
from cycletools.data.images import list_images
from cycletools.errors import CycletoolsError
from cycletools.pipelines.translator import Translator, TranslatorCache
from cycletools.registry import get_registry
from cycletools.utils.sizes import parse_size

LOCAL_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]  # no web fonts: the page must work offline
_GRADIO_TEMP_DIR = os.environ.get("GRADIO_TEMP_DIR")  # where the operator wants temp files, if anywhere


@dataclass
class BuiltApp:
    """The page, its temp folder (removed at exit) and the disk bound on its upload folder."""

    demo: gr.Blocks
    workdir: Path
    disk: DiskBudget


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
              served: Served | None = None) -> BuiltApp:
    """The Blocks app, its temp folder and disk bound. ``served``: what to show first (--plugin), a generator
    file to serve (--weights), which generator of each domain (--variant); a file that does not load, or an
    unknown domain, is an error here, before anything listens."""
    from cycletools.resolver import get_generator
    from cycletools.utils.devices import resolve_device

    limits = limits or ServeLimits()
    served = served or Served()
    served.device_type = resolve_device(device).type
    if served.plugin is not None:
        get_registry().domain(served.plugin)  # an unknown name: one error line that lists the domains
    start_serving()
    cache = TranslatorCache(device=device, variant=served.variant)  # one translator per domain, shared
    if served.weights is not None:
        served.loaded = get_generator(served.plugin, weights=served.weights, device=device)
        cache.seed(served.own_key, Translator.from_loaded(served.loaded))
    workdir = make_workdir()
    uploads = workdir / "files"  # Gradio's upload cache (GRADIO_TEMP_DIR)
    uploads.mkdir(parents=True, exist_ok=True)
    gradio_guards.keep_gradio_files_in(uploads)  # before Gradio builds its routes (at the end of the Blocks)
    disk = DiskBudget(uploads, limits.max_disk)
    handlers = Handlers(cache, limits, served, uploads, disk, largest_upload=parse_size(limits.max_upload))

    choices, initial = domain_choices(served), default_domain(served)
    if initial is not None:
        try:  # the first domain is loaded before the page opens: its first translation need not wait
            handlers.translator_for(initial)
        except CycletoolsError as exc:
            log(f"{initial} is not ready: {exc}")
    with gr.Blocks(title="cycletools", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(f"# cycletools {__version__}\nUnpaired image-to-image translation with CycleGAN: pick a "
                    "domain, give it an image, a video or your camera.")
        with gr.Row():
            domain = gr.Dropdown(choices=choices, value=initial, label="Domain", scale=3, elem_id="domain")
            direction = gr.Radio(["forward", "reverse"], value="forward", label="Direction", scale=1,
                                 elem_id="direction")
        about = gr.Markdown(cards.describe(initial, served), elem_id="about")
        domain.change(functools.partial(cards.describe, served=served), domain, about)
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
            run_image.click(handlers.translate_image, [source, domain, direction], [slider, output, size_note],
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
            video_in.upload(handlers.preview_note, video_in, video_note, api_name=False, queue=False)
            # Unprocessed too: the app checks that the clip was uploaded here before it opens it.
            run_video.click(handlers.translate_video, [video_in, domain, direction, stabilize, side],
                            [video_out, video_note], api_name="translate_video", concurrency_id="translate",
                            preprocess=False)
        with gr.Tab("Webcam", id="webcam"):
            with gr.Row():
                camera = gr.Image(sources=["webcam"], streaming=True, type="numpy", label="Camera",
                                  elem_id="webcam-input")
                live = gr.Image(label="Translated", streaming=True, interactive=False, elem_id="webcam-output")
            camera.stream(handlers.translate_camera, [camera, domain, direction], live, stream_every=0.2,
                          concurrency_limit=limits.concurrency, api_name=False, preprocess=False)
        with gr.Tab("Plugins", id="plugins"):
            table = gr.Dataframe(cards.plugin_table(served), headers=["name", "family", "what it does", "plugin",
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
            card = gr.Markdown(cards.model_card(initial, served))
            card_domain.change(functools.partial(cards.model_card, served=served), card_domain, card)
            fetch_button.click(handlers.fetch, card_domain, [table, fetch_note, domain], api_name=False)
    demo.queue(max_size=limits.queue_size, default_concurrency_limit=limits.concurrency)
    handlers.received_sets = demo.temp_file_sets
    gradio_guards.remove_refused_uploads(demo.upload_file_set)
    gradio_guards.refuse_foreign_files(demo.temp_file_sets, uploads)
    gradio_guards.check_example_choices(demo, refusal)
    gradio_guards.check_payload_shapes(demo, refusal)
    gradio_guards.check_value_counts(demo, refusal)
    gradio_guards.check_choices(demo, refusal)
    return BuiltApp(demo, workdir, disk)


def launch_options(built: BuiltApp, limits: ServeLimits) -> dict[str, Any]:
    """What ``Blocks.launch`` needs besides the address: the HTTP guards in front of Gradio's routes."""
    from starlette.middleware import Middleware

    from cycletools.app.disk import size_text

    largest = parse_size(limits.max_upload)
    log(f"uploads and results may take {size_text(limits.max_disk)} (--max-disk)")
    return {"max_file_size": limits.max_upload, "allowed_paths": [],
            "app_kwargs": {"middleware": [Middleware(gradio_guards.RefuseOddRequests),
                                          Middleware(RequestBounds, budget=built.disk, largest=largest, log=log)]}}


def theme() -> gr.themes.Base:
    return gr.themes.Default(font=LOCAL_FONTS, font_mono=["ui-monospace", "monospace"])
