"""The web app, served for real: a browser (Playwright + Debian's chromium), gradio_client, refusals."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media_fixtures import frame_times, make_clip

pytest.importorskip("gradio", reason="the app extras are not installed")
pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]  # a synthetic camera
SCREENSHOT_COPY = os.environ.get("CYCLETOOLS_SCREENSHOT")  # set to a path to keep the README screenshot


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(home: Path, *args: str, plugins: str = "", pythonpath: str | None = None,
          env: dict[str, str] | None = None):
    """Start ``cycletools serve`` on a free port; its output goes to ``process.log`` (a file)."""
    port = free_port()
    extra = {"PYTHONPATH": pythonpath} if pythonpath else {}
    env = {**os.environ, **extra, "CYCLETOOLS_HOME": str(home), "CYCLETOOLS_PLUGINS": plugins,
           "GRADIO_ANALYTICS_ENABLED": "False",
           "CYCLETOOLS_SHARED": str(home / "no-shared-data"), **(env or {})}  # no dataset images on the page
    log = Path(tempfile.mkdtemp(prefix="cycletools-serve-log-")) / "serve.log"
    with log.open("w") as output:  # a file, not a pipe: a long log never blocks the server
        process = subprocess.Popen([sys.executable, "-m", "cycletools", "serve", "--port", str(port), *args],
                                   stdout=output, stderr=subprocess.STDOUT, text=True, env=env)
    process.log = log
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 90
    while time.time() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise AssertionError("the app did not come up within 90 s")


def stop(process) -> str:
    """Stop a served app like Ctrl-C; its log."""
    process.terminate()
    process.wait(timeout=60)
    return process.log.read_text()


@pytest.fixture(scope="module")
def app_home(tmp_path_factory, tiny_generator_module_file, medium_generator_module_file,
             full_generator_module_file) -> Path:
    """Domains that translate at a working size of 256 (the shorter side scaled to it): horse2zebra with a
    tiny generator (fast); summer2winter_yosemite with a medium one and zebra2horse with one of the
    official size, slow enough on large inputs to show what a limit or a cancellation saves."""
    home = tmp_path_factory.mktemp("home")
    weights = {"horse2zebra": tiny_generator_module_file, "zebra2horse": full_generator_module_file,
               "summer2winter_yosemite": medium_generator_module_file}
    for name, file in weights.items():
        result = subprocess.run([sys.executable, "-m", "cycletools", "weights", "import", str(file),
                                 "--plugin", name], capture_output=True, text=True,
                                env={**os.environ, "CYCLETOOLS_HOME": str(home)}, timeout=120)
        assert result.returncode == 0, result.stderr
    return home


def generator_file(folder: Path, ngf: int, n_blocks: int) -> Path:
    import torch

    from cycletools.models import ResnetGenerator, init_weights
    from cycletools.weights import save_generator

    torch.manual_seed(0)
    return save_generator(init_weights(ResnetGenerator(ngf=ngf, n_blocks=n_blocks), gain=0.5),
                          folder / f"resnet-{ngf}-{n_blocks}.safetensors")


@pytest.fixture(scope="module")
def tiny_generator_module_file(tmp_path_factory) -> Path:
    return generator_file(tmp_path_factory.mktemp("weights"), ngf=4, n_blocks=1)


@pytest.fixture(scope="module")
def medium_generator_module_file(tmp_path_factory) -> Path:
    return generator_file(tmp_path_factory.mktemp("weights"), ngf=16, n_blocks=9)  # seconds per megapixel


@pytest.fixture(scope="module")
def full_generator_module_file(tmp_path_factory) -> Path:
    return generator_file(tmp_path_factory.mktemp("weights"), ngf=64, n_blocks=9)  # the official size


@pytest.fixture(scope="module")
def server_process(app_home):
    """One translation at a time, one more may wait."""
    process, url = serve(app_home, "--max-upload", "2mb", "--queue-size", "1")
    process.url = url
    yield process
    stop(process)


@pytest.fixture(scope="module")
def server(server_process) -> str:
    return server_process.url


@pytest.fixture(scope="module")
def roomy_server(app_home):
    """Two translations at a time, 40 may wait; clips may last 2 s."""
    process, url = serve(app_home, "--max-upload", "20mb", "--queue-size", "40", "--concurrency", "2",
                         "--max-video-seconds", "2")
    process.url = url
    yield process
    stop(process)


def random_image(width: int, height: int, path: Path, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode).save(path)
    return path


def translate_on_page(page, result: Path) -> list[int]:
    """Click Translate on the Image tab, wait for the result to load, save it to ``result``; its [width, height]."""
    page.click("#translate-image")
    size = page.wait_for_function(
        "() => { const i = document.querySelector('#image-output img');"
        " return i && i.complete && i.naturalWidth > 0 ? [i.naturalWidth, i.naturalHeight] : null; }",
        timeout=120_000).json_value()
    result.write_bytes(page.request.get(page.locator("#image-output img").first.get_attribute("src")).body())
    return size


def test_browser_translates_an_image_and_a_video(server, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    from media_fixtures import moving_square

    image = tmp_path / "generated.png"
    Image.fromarray(moving_square(20, 203, 141)).save(image)  # a generated picture, no dataset image
    clip = make_clip(tmp_path / "clip.mp4", width=96, height=64, frames=12, audio="aac")
    part2 = make_clip(tmp_path / "part2.mp4", width=96, height=64, frames=6, codec="mpeg4")
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("request", lambda r: None if r.url.startswith((server, "data:", "blob:")) else outside.append(r.url))
        page.goto(server, wait_until="load")
        page.wait_for_selector("#translate-image", timeout=60_000)
        assert "horse2zebra" in page.locator("#domain input").input_value()
        page.locator("#image-input input[type=file]").set_input_files(str(image))
        page.wait_for_selector("#image-input img", timeout=30_000)
        assert translate_on_page(page, tmp_path / "result.png") == [203, 141]
        with Image.open(tmp_path / "result.png") as result, Image.open(image) as original:
            assert result.size == original.size
            assert np.abs(np.asarray(result.convert("RGB"), int) - np.asarray(original, int)).mean() > 5
        page.get_by_role("tab", name="Video").click()
        page.locator("#video-input input[type=file]").set_input_files(str(part2))  # browsers cannot play it
        note = page.wait_for_selector("#video-info:has-text('MPEG-4 Part 2')", timeout=30_000).inner_text()
        assert "no preview here" in note and "translates all the same" in note, note
        page.locator("#video-input button[aria-label='Clear']").first.click()
        page.locator("#video-input input[type=file]").set_input_files(str(clip))
        page.wait_for_selector("#video-input video", timeout=30_000)
        page.wait_for_function("() => !document.querySelector('#video-info').innerText.includes('MPEG-4')",
                               timeout=30_000)
        page.click("#translate-video")
        page.wait_for_selector("#video-output video", timeout=180_000)
        video_src = page.locator("#video-output video").first.get_attribute("src")
        (tmp_path / "video.mp4").write_bytes(page.request.get(video_src).body())
        page.screenshot(path=str(tmp_path / "video-tab.png"), full_page=True)

        page.get_by_role("tab", name="Plugins").click()  # every column of the table fits a 1280 px window
        page.wait_for_selector("#plugin-table thead th", timeout=30_000)
        headers = page.eval_on_selector_all(
            "#plugin-table thead th", "cells => cells.map(c => [c.innerText.trim(), c.getBoundingClientRect().right])")
        shown = [name for name, right in headers if name and right <= 1280]
        assert shown == ["name", "family", "what it does", "plugin", "architecture", "weights"], headers
        browser.close()
    from cycletools.media.video import probe

    info = probe(tmp_path / "video.mp4")
    assert (info.width, info.height, info.fps, info.audio_codecs) == (96, 64, 24, ["aac"])
    assert len(frame_times(tmp_path / "video.mp4")) == 12
    assert outside == [], f"the page fetched from outside: {outside}"


def test_browser_webcam_streams_translated_frames(server, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"])
        page = context.new_page()
        page.goto(server, wait_until="load")
        page.wait_for_selector("#translate-image", timeout=60_000)
        page.get_by_role("tab", name="Webcam").click()
        page.locator("#webcam-input").get_by_text("Click to Access Webcam").click()
        page.locator("#webcam-input button", has_text="Record").click()
        page.wait_for_selector("#webcam-output img", timeout=120_000)
        first = page.locator("#webcam-output img").first.get_attribute("src")
        # A stream: a newer translated frame replaces the first one; wait until one has fully loaded.
        size = page.wait_for_function(
            "src => { const i = document.querySelector('#webcam-output img');"
            " return i && i.src !== src && i.complete && i.naturalWidth > 0 ? [i.naturalWidth, i.naturalHeight] : null; }",
            arg=first, timeout=60_000).json_value()
        page.screenshot(path=str(tmp_path / "webcam.png"))
        browser.close()
    assert size[0] > 0 and size[1] > 0


def test_gradio_client_translates_an_image(server, tmp_path: Path):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    image = random_image(57, 31, tmp_path / "rgba.png", mode="RGBA")
    slider, output, note = client.predict(handle_file(str(image)), "horse2zebra", "forward", api_name="/translate_image")
    with Image.open(output) as result:
        assert result.size == (57, 31) and result.mode == "RGBA"
    assert note == "Output: 57×31 (RGBA)"
    reverse = client.predict(handle_file(str(image)), "horse2zebra", "reverse", api_name="/translate_image")
    assert Image.open(reverse[1]).size == (57, 31)


def test_a_fresh_install_opens_on_horse2zebra_and_turns_the_example_photo_into_a_zebra(tmp_path: Path):
    """Nothing imported, cached or downloaded: the page opens with horse2zebra selected and its bundled generator
    described; the example photo is one click away and comes back as a zebra. This test makes docs/web-app.png
    (CYCLETOOLS_SCREENSHOT=docs/web-app.png)."""
    from gradio_client import Client, handle_file
    from playwright.sync_api import sync_playwright

    from cycletools.evaluation.classifier import ImageNetClassifier

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    process, url = serve(tmp_path / "empty-home")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url, wait_until="load")
            page.wait_for_selector("#translate-image", timeout=60_000)
            assert page.locator("#domain input").input_value().endswith("(horse2zebra) — bundled")
            about = page.locator("#about").inner_text()
            assert "Weights: bundled — GAN Compression's horse→zebra generator" in about, about
            assert "not trained by cycletools" in about
            page.locator("#image-input ~ * .gallery-item, .gallery-item").first.click()  # the example photo
            page.wait_for_selector("#image-input img", timeout=30_000)
            assert translate_on_page(page, tmp_path / "zebra.png") == [960, 540]
            page.wait_for_timeout(1000)  # the before/after slider settles
            page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
            if SCREENSHOT_COPY:  # 256 colours: a third of the bytes, for the repository
                with Image.open(tmp_path / "app.png") as shot:
                    shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(SCREENSHOT_COPY,
                                                                                          optimize=True)
            browser.close()
        with Image.open(tmp_path / "zebra.png") as zebra:
            assert ImageNetClassifier().top1([zebra]).tolist() == [340]  # ImageNet's zebra
        client = Client(url, verbose=False)
        with pytest.raises(Exception, match="There are no weights for zebra2horse yet: fetch them in the Plugins tab"):
            client.predict(handle_file(str(random_image(90, 64, tmp_path / "photo.png"))), "horse2zebra", "reverse",
                           api_name="/translate_image")
    finally:
        log = stop(process)
    assert "not ready" not in log  # horse2zebra was loaded before the page opened


def test_serve_takes_a_generator_file_of_your_own(tmp_path: Path, tiny_generator_module_file: Path):
    """--weights FILE alone: "Your generator" is selected and translates; it has no reverse direction."""
    from gradio_client import Client, handle_file

    process, url = serve(tmp_path / "home", "--weights", str(tiny_generator_module_file))
    try:
        with urllib.request.urlopen(url + "config", timeout=30) as response:
            config = response.read().decode()
        assert "Your generator · resnet-4-1.safetensors (--weights)" in config
        assert str(tiny_generator_module_file.parent) not in config  # its name, not where it lies
        client = Client(url, verbose=False)
        image = random_image(57, 31, tmp_path / "photo.png")
        _, output, note = client.predict(handle_file(str(image)), "--weights", "forward", api_name="/translate_image")
        assert note == "Output: 57×31 (RGB)" and Image.open(output).size == (57, 31)
        message = error_of(client, handle_file(str(image)), "--weights", "reverse", api_name="/translate_image")
        assert message == "A generator served with --weights alone has no reverse direction."
    finally:
        stop(process)


@pytest.mark.parametrize("args, message", [
    (("--weights", "missing.pth"), "missing.pth"),
    (("--plugin", "horse2zebrah"), "no domain plugin called 'horse2zebrah'"),
])
def test_serve_refuses_what_it_cannot_serve_before_listening(tmp_path: Path, args, message):
    result = subprocess.run([sys.executable, "-m", "cycletools", "serve", "--port", str(free_port()), *args],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "CYCLETOOLS_HOME": str(tmp_path), "CYCLETOOLS_PLUGINS": ""})
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert "web app on" not in result.stdout


def test_the_app_serves_a_file_as_a_domain_and_says_so(tmp_path: Path, monkeypatch, tiny_generator_module_file):
    """--plugin NAME --weights FILE: the domain is selected and translated with the file, which its description
    and model card name; the other domains keep their own generators."""
    from cycletools import app
    from cycletools.app.served import default_domain, domain_choices

    monkeypatch.setenv("CYCLETOOLS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    served = app.Served(plugin="summer2winter_yosemite", weights=str(tiny_generator_module_file))
    built = app.build_app("cpu", served=served)
    try:
        config = json.dumps(built.demo.get_config_file(), ensure_ascii=False)
        assert "Summer → winter (summer2winter_yosemite) — your resnet-4-1.safetensors" in config
        assert "Weights: **your file** `resnet-4-1.safetensors` (--weights)" in config
        assert ("### Summer → winter: your generator `resnet-4-1.safetensors`\\nServed with --weights as "
                "summer2winter_yosemite; the reverse direction is the domain's own (winter2summer_yosemite).") in config
        labels = dict((name, label) for label, name in domain_choices(served))
        assert labels["horse2zebra"].endswith("(horse2zebra) — bundled") and "--weights" not in labels
        assert default_domain(served) == "summer2winter_yosemite"
    finally:
        shutil.rmtree(built.workdir, ignore_errors=True)


def test_bad_requests_get_messages_and_the_app_keeps_serving(server, tmp_path: Path):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    fake = tmp_path / "fake.png"
    fake.write_text("not an image at all")
    with pytest.raises(Exception) as bad_file:
        client.predict(handle_file(str(fake)), "horse2zebra", "forward", api_name="/translate_image")
    assert "Traceback" not in str(bad_file.value)
    with pytest.raises(Exception, match="no weights for monet2photo yet"):
        client.predict(handle_file(str(random_image(16, 16, tmp_path / "a.png"))), "monet2photo", "forward",
                       api_name="/translate_image")
    with pytest.raises(Exception, match="not a readable video"):
        client.predict(handle_file(str(fake)), "horse2zebra", "forward", False, False, api_name="/translate_video")
    with pytest.raises(Exception, match="Unknown direction 'sideways': choose forward or reverse"):
        client.predict(handle_file(str(random_image(16, 16, tmp_path / "c.png"))), "horse2zebra", "sideways",
                       api_name="/translate_image")
    ok = client.predict(handle_file(str(random_image(20, 20, tmp_path / "b.png"))), "horse2zebra", "forward",
                        api_name="/translate_image")
    assert Image.open(ok[1]).size == (20, 20)


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize("path, expected", [("gradio_api/file=/etc/passwd", 403),
                                            ("gradio_api/file=../../../../etc/passwd", 403),
                                            ("gradio_api/file=%2Fetc%2Fpasswd", 403),
                                            ("file=/etc/passwd", 404),  # no such route (README says so)
                                            ("gradio_api/proxy=x%00.png", 400),  # Gradio answered 500
                                            ("gradio_api/proxy=https://a%00.hf.space/x.png", 400),
                                            ("gradio_api/file=a%00.png", 400),
                                            ("gradio_api/proxy=https://huggingface.co/x.png", 403)])
def test_files_outside_the_app_are_refused(server, path: str, expected: int):
    assert status_of(server + path) == expected


def test_oversized_uploads_are_refused(server, tmp_path: Path):
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (1200, 1200, 3), dtype=np.uint8)).save(big)
    assert big.stat().st_size > 2 * 1024 * 1024
    boundary = "cycletoolsboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.png\"\r\n"
            "Content-Type: image/png\r\n\r\n").encode() + big.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(server + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        urllib.request.urlopen(request, timeout=30)
        code = 200
    except urllib.error.HTTPError as exc:
        code = exc.code
    assert code == 413


def test_a_full_queue_answers_busy(server, tmp_path: Path):
    from gradio_client import Client, handle_file

    clip = make_clip(tmp_path / "long.mp4", width=160, height=120, frames=240)
    client = Client(server, verbose=False)
    jobs = [client.submit(handle_file(str(clip)), "horse2zebra", "forward", True, False, api_name="/translate_video")
            for _ in range(4)]
    outcomes = []
    for job in jobs:
        try:
            job.result(timeout=300)
            outcomes.append("done")
        except Exception as exc:  # the queue (1 running + 1 waiting) is full
            outcomes.append(str(exc))
    assert outcomes.count("done") >= 1
    assert any("full" in outcome.lower() for outcome in outcomes if outcome != "done"), outcomes


OFFLINE_PLUGIN = """
from cycletools import DomainSpec, WeightsSource, hookimpl

@hookimpl
def register_domains(register):
    register(DomainSpec(name="local2test", title="Local test domain", family="object", source="a", target="b",
                        sources=(WeightsSource("URL"),)))
"""


def test_fetch_button_says_clearly_when_the_download_fails_and_stop_removes_temp_files(tmp_path: Path):
    from playwright.sync_api import sync_playwright

    from plugin_fixtures import install_fake_distribution

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    closed = f"http://127.0.0.1:{free_port()}/local2test.pth"  # nothing listens there: a download that fails
    site = install_fake_distribution(tmp_path / "site", "cycletools-local", "1.0", {"local": "local_plugin"},
                                     {"local_plugin": OFFLINE_PLUGIN.replace("URL", closed)})
    process, url = serve(tmp_path / "home", plugins="local", pythonpath=str(site))
    first_line = next(line for line in process.log.read_text().splitlines() if "temp folder " in line)
    workdir = Path(first_line.rsplit("temp folder ", 1)[1].strip())
    assert workdir.is_dir()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(url, wait_until="load")
            page.wait_for_selector("#translate-image", timeout=60_000)
            page.get_by_role("tab", name="Plugins").click()
            page.locator("#card-domain input").click()
            page.locator("#card-domain input").fill("local2test")
            page.get_by_role("option", name=re.compile("local2test")).click()
            page.click("#fetch")
            page.wait_for_function("u => document.querySelector('#fetch-note').innerText.includes(u)", arg=closed,
                                   timeout=60_000)
            note = page.locator("#fetch-note").inner_text()
            browser.close()
        assert "cannot download" in note and "place it at" in note
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert not workdir.exists()


def test_the_picker_and_description_show_a_fast_variant(tmp_path: Path, monkeypatch, tiny_generator_module_file):
    from cycletools import store
    from cycletools.app.cards import describe
    from cycletools.app.served import domain_choices
    from cycletools.registry import get_registry

    monkeypatch.setenv("CYCLETOOLS_HOME", str(tmp_path))
    labels = {name: label for label, name in domain_choices()}
    assert labels["apple2orange"].endswith("(apple2orange) — downloadable")
    assert "not here yet" in describe("apple2orange")
    store.import_weights(get_registry().domain("apple2orange"), tiny_generator_module_file, variant="fast")
    labels = {name: label for label, name in domain_choices()}
    assert labels["apple2orange"].endswith("(apple2orange) — fast cached, full downloadable")
    description = describe("apple2orange")
    assert "Weights: **cached** (fast)" in description and "not here yet" not in description
    assert "also here" not in description
    store.import_weights(get_registry().domain("apple2orange"), tiny_generator_module_file)  # and a full one
    assert "; also here: full **cached** ·" in describe("apple2orange")
    store.import_weights(get_registry().domain("horse2zebra"), tiny_generator_module_file)
    assert "; also here: **bundled** ·" in describe("horse2zebra")


# ---------------------------------------------------------------- the probe of issue 13, section 2


def one_sentence(message: str) -> bool:
    """A short single-line message naming no server path, with none of Gradio's internal wording."""
    return ("\n" not in message and len(message) < 200 and "/" not in message and "Traceback" not in message
            and "component" not in message and "preprocess" not in message)


def error_of(client, *args, api_name: str, timeout: float = 60) -> str:
    """The message a request fails with (it must fail, within ``timeout`` seconds)."""
    job = client.submit(*args, api_name=api_name)
    with pytest.raises(Exception) as failure:
        job.result(timeout=timeout)
    assert not isinstance(failure.value, TimeoutError), f"no answer within {timeout} s"
    return str(failure.value)


def undeclared_clip(path: Path, frames: int, fps: int = 24, width: int = 64, height: int = 48) -> Path:
    """A clip whose file says nothing of its length: a live WebM (no duration, no cues) or a raw H.264 stream."""
    import av

    from media_fixtures import moving_square

    webm = path.suffix == ".webm"
    with av.open(str(path), mode="w", format="webm" if webm else "h264",
                 options={"live": "1"} if webm else {}) as container:
        stream = container.add_stream("libvpx-vp9" if webm else "libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(moving_square(index, width, height), format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize("suffix", [".webm", ".h264"])
def test_clips_that_do_not_declare_their_length_stop_at_the_limit(roomy_server, tmp_path: Path, suffix: str):
    from gradio_client import Client, handle_file

    from cycletools.media.video import probe

    clip = undeclared_clip(tmp_path / f"five-seconds{suffix}", frames=120)  # 5 s at 24 fps (4.8 s at raw's 25)
    assert probe(clip).duration is None
    client = Client(roomy_server.url, verbose=False)
    started = time.time()
    message = error_of(client, handle_file(str(clip)), "horse2zebra", "forward", False, False,
                       api_name="/translate_video")
    assert "2 s" in message and "limit" in message and one_sentence(message), message
    assert time.time() - started < 30
    short = undeclared_clip(tmp_path / f"one-second{suffix}", frames=24)
    output, note = client.predict(handle_file(str(short)), "horse2zebra", "forward", False, False,
                                  api_name="/translate_video")
    assert note.startswith("24 frames, 64×48")

GOES_AWAY = """
import os, sys, time
from gradio_client import Client, handle_file
from gradio_client.utils import Status

url, file, domain, direction, api_name = sys.argv[1:]
client = Client(url, verbose=False)
extra = (False, False) if api_name == "/translate_video" else ()
job = client.submit(handle_file(file), domain, direction, *extra, api_name=api_name)
deadline = time.time() + 60
while job.status().code not in (Status.PROCESSING, Status.PROGRESS):
    if job.done() or time.time() > deadline:
        sys.exit(f"the job did not start: {job.status()}, {job.result() if job.done() else ''}")
    time.sleep(0.05)
print("started", flush=True)
time.sleep(1)
os._exit(0)  # like a closed tab: the connections drop, nothing is cancelled politely
"""


def peak_memory(pid: int) -> int:
    """The most memory a process has held so far, in bytes (Linux's VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


def raw_h264(path: Path, parts: list[tuple[int, int, int]]) -> Path:
    """A raw H.264 stream (no timestamps, no length) of ``(frames, width, height)`` parts: the picture
    size changes between them, as a decoder accepts mid-stream."""
    data = b""
    for index, (frames, width, height) in enumerate(parts):
        data += undeclared_clip(path.with_name(f"{path.stem}-{index}.h264"), frames, width=width,
                                height=height).read_bytes()
    path.write_bytes(data)
    return path


def grey_png(width: int, height: int) -> bytes:
    """A black 8-bit grey PNG of any size, compressed row by row (12000×12000 is about 140 KB)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row = zlib.compressobj(9), b"\0" * (width + 1)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def png_stream_clip(path: Path, sizes: list[tuple[int, int]]) -> Path:
    """A MOV whose PNG stream declares 64×64 in its header while each frame is the size given."""
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("png", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "gray"
        for index, (width, height) in enumerate(sizes):
            packet = av.Packet(grey_png(width, height))
            packet.pts = packet.dts = index
            packet.stream, packet.time_base = stream, Fraction(1, 25)
            container.mux(packet)
    return path


def test_video_frames_obey_the_image_limits(roomy_server, tmp_path: Path):
    """Frames over the megapixel or aspect-ratio limits are refused from the stream's header, before
    decoding (two 8192×8192 frames took the server from 1.1 to 8 GB); a stream that shrinks its frames
    after the first one stops at the clip limit's frame count (2 s × 60 frames a second)."""
    from gradio_client import Client, handle_file

    client = Client(roomy_server.url, verbose=False)
    huge = make_clip(tmp_path / "huge.mp4", width=8192, height=8192, frames=2, options={"preset": "ultrafast"})
    thin = make_clip(tmp_path / "thin.mp4", width=4096, height=16, frames=2)
    assert huge.stat().st_size < 20 * 1024 * 1024
    message = error_of(client, handle_file(str(thin)), "horse2zebra", "forward", False, False,
                       api_name="/translate_video")
    assert "4096×16" in message and "16 times" in message and one_sentence(message), message
    before = peak_memory(roomy_server.pid)  # PyAV loaded by now; reading the header decodes one frame
    message = error_of(client, handle_file(str(huge)), "horse2zebra", "forward", False, False,
                       api_name="/translate_video")
    assert "8192×8192" in message and "40 megapixels" in message and one_sentence(message), message
    grown = peak_memory(roomy_server.pid) - before
    assert grown < 400 * 1024 * 1024, f"the server's peak memory grew by {grown / 2**20:.0f} MiB"
    shrinking = raw_h264(tmp_path / "shrinking.h264", [(1, 720, 720), (400, 16, 16)])
    started = time.time()
    message = error_of(client, handle_file(str(shrinking)), "horse2zebra", "forward", False, False,
                       api_name="/translate_video")
    assert "runs past the 2 s limit" in message and one_sentence(message), message
    assert time.time() - started < 60
    # The header says 64×48; the H.264 decoder, bound to the app's limit, refuses the 8192×8192 frame as
    # undecodable (and its threads lose the two frames before it): refused, nothing allocated for it.
    growing = raw_h264(tmp_path / "growing.h264", [(2, 64, 48), (1, 8192, 8192)])
    before = peak_memory(roomy_server.pid)
    message = error_of(client, handle_file(str(growing)), "horse2zebra", "forward", False, False,
                       api_name="/translate_video")
    assert ("no frames could be decoded" in message or "8192×8192" in message) and one_sentence(message), message
    assert peak_memory(roomy_server.pid) - before < 100 * 1024 * 1024
    # Frames far larger than their header says are refused by the decoder before it allocates them
    # (three 12000×12000 frames took the server from 1.4 to 2.2 GB, 16-bit ones to 8 GB).
    bombs = png_stream_clip(tmp_path / "bombs.mov", [(64, 64)] + [(12000, 12000)] * 3)
    assert bombs.stat().st_size < 2 * 1024 * 1024
    before = peak_memory(roomy_server.pid)
    message = error_of(client, handle_file(str(bombs)), "horse2zebra", "forward", False, False,
                       api_name="/translate_video")
    assert "frames over the limit of 40 megapixels" in message and one_sentence(message), message
    grown = peak_memory(roomy_server.pid) - before
    assert grown < 100 * 1024 * 1024, f"the server's peak memory grew by {grown / 2**20:.0f} MiB"


def test_a_stop_during_a_video_job_cancels_it_and_exits_cleanly(tmp_path: Path, app_home):
    """SIGTERM while a clip is being translated: the job is cancelled, its threads end, the temp folder
    goes and the server exits 0 (it aborted with 'terminate called without an active exception')."""
    from gradio_client import Client, handle_file
    from gradio_client.utils import Status

    gradio_temp = tmp_path / "gradio-temp"
    process, url = serve(app_home, env={"GRADIO_TEMP_DIR": str(gradio_temp)})
    try:
        clip = make_clip(tmp_path / "long.mp4", width=320, height=240, frames=600)
        job = Client(url, verbose=False).submit(handle_file(str(clip)), "horse2zebra", "forward", False, False,
                                                api_name="/translate_video")
        deadline = time.time() + 60
        while job.status().code not in (Status.PROCESSING, Status.PROGRESS) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1)
        assert not job.done(), "the job ended before the stop"
        process.send_signal(signal.SIGTERM)
        process.send_signal(signal.SIGTERM)  # a second one, as a supervisor or a process group may send
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    log = process.log.read_text()
    assert code == 0, log
    assert "terminate called" not in log and "Traceback" not in log, log
    assert "cancelled" in log and "the server is stopping" in log
    assert list(gradio_temp.iterdir()) == []


def cpu_seconds(pid: int) -> float:
    """The processor time a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("kind", ["video", "image"])
def test_a_job_whose_client_went_away_is_cancelled(server_process, tmp_path: Path, kind: str):
    """Left running, the video (600 frames) or the image (4096×256, the longest shape allowed, through a
    generator of the official size: about 20 s) keeps the server busy for a good while after its client
    has gone."""
    from gradio_client import Client, handle_file

    from media_fixtures import moving_square

    if kind == "video":
        source = make_clip(tmp_path / "long.mp4", width=320, height=240, frames=600)
        request = [str(source), "horse2zebra", "forward", "/translate_video"]
    else:
        source = tmp_path / "long.png"
        Image.fromarray(moving_square(0, 4096, 256)).save(source)
        request = [str(source), "horse2zebra", "reverse", "/translate_image"]
    assert source.stat().st_size < 2 * 1024 * 1024
    script = tmp_path / "goes_away.py"
    script.write_text(GOES_AWAY)
    gone = subprocess.run([sys.executable, str(script), server_process.url, *request], capture_output=True,
                          text=True, timeout=120)
    assert gone.returncode == 0 and "started" in gone.stdout, gone.stderr
    left = time.time()
    time.sleep(2)
    before = cpu_seconds(server_process.pid)
    time.sleep(3)
    busy = cpu_seconds(server_process.pid) - before
    assert busy < 1, f"the server worked {busy:.1f} s of the 3 s after its client left"
    client = Client(server_process.url, verbose=False)
    _, output, _ = client.predict(handle_file(str(random_image(24, 24, tmp_path / "next.png"))), "horse2zebra",
                                  "forward", api_name="/translate_image")
    assert Image.open(output).size == (24, 24)
    waited = time.time() - left
    assert waited < 25, f"the next request waited {waited:.0f} s"
    assert "cancelled" in server_process.log.read_text()

def test_identical_concurrent_jobs_each_get_complete_files_of_their_own(roomy_server, tmp_path: Path):
    """24 clients send the same image at once; each fetches its result files again and again while the
    others' jobs finish: every fetch must be complete, and no two jobs share a file."""
    from gradio_client import Client, handle_file

    image = random_image(600, 400, tmp_path / "same.png")
    clients, done = 24, threading.Event()
    barrier = threading.Barrier(clients)
    finished: list[int] = []
    urls: dict[int, list[str]] = {}
    problems: list[str] = []

    def fetch_all(index: int, file_urls: list[str]) -> None:
        for url in file_urls:
            with urllib.request.urlopen(url, timeout=60) as response:
                body = response.read()  # raises IncompleteRead when fewer bytes come than declared
            path = tmp_path / f"client{index}.png"
            path.write_bytes(body)
            with Image.open(path) as result:
                result.load()
                if result.size != (600, 400):
                    problems.append(f"client {index}: {result.size}")

    def one_client(index: int) -> None:
        try:
            client = Client(roomy_server.url, verbose=False, download_files=False)
            barrier.wait(timeout=120)
            slider, output, note = client.predict(handle_file(str(image)), "horse2zebra", "forward",
                                                  api_name="/translate_image")
            urls[index] = [slider[0]["url"], slider[1]["url"], output["url"]]
            finished.append(index)
            while not done.is_set():
                fetch_all(index, urls[index])
            fetch_all(index, urls[index])
        except Exception as exc:  # noqa: BLE001 - every failure is reported below
            problems.append(f"client {index}: {type(exc).__name__}: {exc}")
            finished.append(index)

    threads = [threading.Thread(target=one_client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    deadline = time.time() + 300
    while len(finished) < clients and time.time() < deadline:
        time.sleep(0.2)
    done.set()
    for thread in threads:
        thread.join(timeout=120)
    assert not problems, problems[:5]
    assert len(urls) == clients
    owners: dict[str, set[int]] = {}
    for index, client_urls in urls.items():
        for url in client_urls:
            owners.setdefault(url, set()).add(index)
    shared = [url for url, indices in owners.items() if len(indices) > 1]
    assert shared == [], f"{len(shared)} files are shared between jobs"


def test_a_refused_upload_leaves_nothing_behind(tmp_path: Path, app_home):
    """An upload named '..' is refused; its body must not outlive the app."""
    gradio_temp = tmp_path / "gradio-temp"
    process, url = serve(app_home, env={"GRADIO_TEMP_DIR": str(gradio_temp)})
    marker = f"cycletools-leftover-{os.getpid()}-{time.time()}".encode()
    boundary = "cycletoolsboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"..\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + marker + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        for _ in range(3):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.code == 400
        left = [path for path in gradio_temp.rglob("*") if path.is_file() and marker in path.read_bytes()]
        assert left == [], "a refused upload's body stays while the app runs"
    finally:
        stop(process)
    assert list(gradio_temp.iterdir()) == []  # nothing of the app's outlives it (Gradio's own folders too)

def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width``×``height`` and holds almost nothing: a decompression bomb's header."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def test_bad_uploads_get_one_clear_sentence_and_the_details_stay_in_the_log(server_process, tmp_path: Path):
    from gradio_client import Client, handle_file

    client = Client(server_process.url, verbose=False)
    fake = tmp_path / "fake.png"
    fake.write_text("not an image at all")
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(60_000, 60_000))    # beyond Pillow's own bomb limit
    large = tmp_path / "large.png"
    large.write_bytes(png_header(10_000, 8_000))    # 80 megapixels: over the app's 40
    truncated = tmp_path / "truncated.png"
    random_image(300, 200, truncated)
    truncated.write_bytes(truncated.read_bytes()[:20_000])
    expected = {fake: "not an image", bomb: "megapixels", large: "10000×8000", truncated: "damaged"}
    for file, words in expected.items():
        message = error_of(client, handle_file(str(file)), "horse2zebra", "forward", api_name="/translate_image")
        assert words in message and one_sentence(message), message
    message = error_of(client, handle_file(str(fake)), "horse2zebra", "forward", False, False,
                       api_name="/translate_video")
    assert "not a readable video" in message and one_sentence(message), message
    message = error_of(client, handle_file(str(random_image(16, 16, tmp_path / "a.png"))), "monet2photo", "forward",
                       api_name="/translate_image")
    assert "no weights for monet2photo yet" in message and one_sentence(message), message
    outside = call_api(server_process.url, "translate_image",
                       [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, "horse2zebra", "forward"])
    assert "event: error" in outside and "root:" not in outside  # the app opens uploads, never other files
    log = server_process.log.read_text()
    assert "fake.png" in log and "UnidentifiedImageError" in log  # the details, for whoever runs the server


def call_api(url: str, api_name: str, data: list) -> str:
    """A request through Gradio's plain HTTP API (no upload step); the text of its event stream."""
    request = urllib.request.Request(f"{url}gradio_api/call/{api_name}", data=json.dumps({"data": data}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{api_name}/{event_id}", timeout=60) as response:
        return response.read().decode()


SECRET_PIXELS = (201, 7, 99)


def upload(url: str, file: Path) -> str:
    """Upload ``file`` through Gradio's upload route; the server's path of its copy."""
    boundary = "cycletoolsboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{file.name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + file.read_bytes() + \
        f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(url + "gradio_api/upload", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)[0]


def test_only_files_this_server_received_are_opened(server, tmp_path: Path):
    """A request naming a server file that was never uploaded (with or without Gradio's FileData marker),
    a URL, a device or an uploaded file swapped for a link pointing out is refused in one sentence; the
    secret's pixels never come back and the server connects nowhere."""
    import http.server

    secret = tmp_path / "secret.png"
    Image.new("RGB", (40, 30), SECRET_PIXELS).save(secret)
    clip = make_clip(tmp_path / "secret.mp4", frames=3)
    visits: list[str] = []

    class Listener(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server name
            visits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    listener = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Listener)
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    url_file = f"http://127.0.0.1:{listener.server_address[1]}/secret.png"
    swapped = Path(upload(server, random_image(8, 8, tmp_path / "innocent.png")))
    swapped.unlink()
    swapped.symlink_to(secret)  # a link inside the upload folder that points out
    marker = {"_type": "gradio.FileData"}
    requests = {
        "translate_image": [{"path": str(secret)}, {"path": str(secret), "meta": {"_type": "x"}},
                            {"path": str(secret), "meta": marker}, str(secret), {"path": url_file, "meta": marker},
                            {"path": "x.png", "url": url_file, "meta": marker}, {"path": "/dev/zero"},
                            {"path": f"/proc/{os.getpid()}/environ", "meta": marker},
                            {"path": str(swapped), "meta": marker}, {"path": str(swapped)}],
        "translate_video": [{"path": str(clip)}, {"path": str(clip), "meta": marker}, {"path": url_file, "meta": marker}],
    }
    try:
        for api_name, files in requests.items():
            extra = [False, False] if api_name == "translate_video" else []
            for file in files:
                answer = call_api(server, api_name, [file, "horse2zebra", "forward", *extra])
                assert "event: error" in answer and "was not uploaded to this server" in answer, (file, answer)
                assert "event: complete" not in answer, file
    finally:
        listener.shutdown()
    assert visits == [], f"the server fetched {visits}"


HLS = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n{clip}\n#EXT-X-ENDLIST\n"
REFUSED_FORMAT = ("This file is not a readable video in a format the app takes (MP4, MOV, WebM, MKV, AVI, MPEG-TS, "
                  "Ogg, FLV, raw H.264 and more; no playlists).")
UNREADABLE = "This file is not a readable video."


@pytest.mark.parametrize("name, playlist, message", [
    ("list.m3u8", HLS, REFUSED_FORMAT),                                     # HLS: FFmpeg would open the clip
    ("list.ffconcat", "ffconcat version 1.0\nfile '{clip}'\n", REFUSED_FORMAT),  # concat: the same
    ("innocent.mp4", HLS, UNREADABLE),  # by its name FFmpeg never takes it for a playlist
    ("list.mpd", '<?xml version="1.0"?><MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
                 'mediaPresentationDuration="PT1S"><Period><AdaptationSet><Representation id="1" '
                 'bandwidth="1"><BaseURL>file://{clip}</BaseURL></Representation></AdaptationSet></Period></MPD>',
     UNREADABLE),
])
def test_an_uploaded_playlist_reads_no_server_video(server, tmp_path: Path, name: str, playlist: str, message: str):
    """A 100-byte playlist naming a video on the server is refused before FFmpeg follows it (issue 25, item 1):
    the answer is one sentence, never the server clip's frames."""
    clip = make_clip(tmp_path / "server-secret.mp4", frames=6)
    tmp_path.joinpath(name).write_text(playlist.format(clip=clip))
    path = upload(server, tmp_path / name)
    answer = call_api(server, "translate_video", [{"path": path, "meta": {"_type": "gradio.FileData"}},
                                                  "horse2zebra", "forward", False, False])
    assert "event: error" in answer and "event: complete" not in answer, answer
    assert message in answer and one_sentence(message), answer


def call_hidden(url: str, trigger: str, data: list) -> dict:
    """Call the handler that ``trigger`` (an event such as "stream", or an api_name) starts, by its index, as
    any client can (no api_name needed); the queue's last message for it."""
    import uuid

    with urllib.request.urlopen(url + "config", timeout=30) as response:
        dependencies = json.load(response)["dependencies"]
    index = next(i for i, d in enumerate(dependencies)
                 if d.get("api_name") == trigger or any(t[1] == trigger for t in d["targets"]))
    session = uuid.uuid4().hex
    body = json.dumps({"data": data, "fn_index": index, "session_hash": session, "trigger_id": None}).encode()
    request = urllib.request.Request(url + "gradio_api/queue/join", data=body,
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=30).read()
    with urllib.request.urlopen(f"{url}gradio_api/queue/data?session_hash={session}", timeout=120) as response:
        for line in response:
            message = json.loads(line.decode()[5:]) if line.startswith(b"data:") else {}
            if message.get("msg") == "process_completed":
                return message
    raise AssertionError("the queue closed without an answer")


def test_the_webcam_handler_checks_a_frames_size_before_decoding_it(server_process, tmp_path: Path):
    """A 160 KB PNG declaring 13000×13000 sent to the camera's stream handler, as a browser sends frames (a data
    URL) and as an upload: refused from its header, in the Image tab's words, with the server's memory
    unchanged; a long thin frame is held to the aspect-ratio limit (issue 25, item 2)."""
    import base64

    bomb = grey_png(13000, 13000)
    before = peak_memory(server_process.pid)
    as_url = {"url": "data:image/png;base64," + base64.b64encode(bomb).decode(), "meta": {"_type": "gradio.FileData"}}
    (tmp_path / "bomb.png").write_bytes(bomb)
    as_upload = {"path": upload(server_process.url, tmp_path / "bomb.png"), "meta": {"_type": "gradio.FileData"}}
    for frame in (as_url, as_upload):
        answer = call_hidden(server_process.url, "stream", [frame, "horse2zebra", "forward"])
        assert answer["output"]["error"] == "The image is 13000×13000; the limit is 40 megapixels.", answer
    assert peak_memory(server_process.pid) - before < 100 * 1024 * 1024  # decoded, it would be 507 MB
    thin = {"url": "data:image/png;base64," + base64.b64encode(grey_png(4000, 10)).decode()}
    answer = call_hidden(server_process.url, "stream", [thin, "horse2zebra", "forward"])
    assert answer["output"]["error"] == ("The image is 4000×10; its longer side may be at most 16 times its "
                                         "shorter side."), answer
    broken = {"url": "data:image/png;base64,@@@"}
    answer = call_hidden(server_process.url, "stream", [broken, "horse2zebra", "forward"])
    assert answer["output"]["error"] == "The camera frame is not an image that can be read.", answer
    # A frame is held to --max-upload (2mb here) like an upload: a small PNG padded past it is refused unread,
    # and a body past it in base64 is refused before Gradio reads it (an outside probe sent 100 MB: +800 MB).
    padded = base64.b64encode(grey_png(64, 64) + b"\0" * (2 * 1024 * 1024 + 30_000)).decode()
    answer = call_hidden(server_process.url, "stream", [{"url": "data:image/png;base64," + padded},
                                                        "horse2zebra", "forward"])
    assert answer["output"]["error"] == "The camera frame is larger than this server takes (2 MB).", answer
    with pytest.raises(urllib.error.HTTPError) as refused:
        call_hidden(server_process.url, "stream", [{"url": "data:image/png;base64," + padded + "A" * 900_000},
                                                   "horse2zebra", "forward"])
    assert refused.value.code == 413


def test_an_example_that_does_not_exist_is_one_sentence(server):
    """Examples load by index; an index the table does not have gets a sentence, not an empty 500 (item 4)."""
    assert "error" not in call_hidden(server, "load_example", [0])["output"]
    for index in (999, -1, "x", None, True):
        answer = call_hidden(server, "load_example", [index])
        assert answer["output"]["error"] == "There is no such example.", (index, answer)


def test_downloads_are_off_unless_the_operator_allows_them(tmp_path: Path, monkeypatch):
    """A client cannot make a server that listens beyond loopback (or has --no-allow-downloads) reach out: the
    fetch handler refuses before any request, the button says so (issue 25, item 4)."""
    import gradio as gr

    from cycletools import app, store
    from cycletools.cli.serve import loopback

    assert [loopback(host) for host in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost", "0.0.0.0",
                                        "192.168.1.5", "example.org")] == [True] * 5 + [False] * 3
    monkeypatch.setenv("CYCLETOOLS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    fetched = []
    monkeypatch.setattr(store, "fetch", lambda *args, **kwargs: fetched.append(args))
    built = app.build_app("cpu", app.ServeLimits(allow_downloads=False))
    try:
        fetch = next(block_fn.fn for block_fn in built.demo.fns.values()
                     if getattr(block_fn.fn, "__name__", "") == "fetch")
        with pytest.raises(gr.Error, match="Fetching weights is turned off on this server"):
            fetch("zebra2horse")
        config = json.dumps(built.demo.get_config_file())
        assert "Fetching is off on this server" in config and fetched == []
    finally:
        shutil.rmtree(built.workdir, ignore_errors=True)


def test_the_page_shows_no_server_paths(server, app_home):
    with urllib.request.urlopen(server + "config", timeout=30) as response:
        config = response.read().decode()
    assert "horse2zebra" in config
    assert str(app_home) not in config and str(Path(__file__).resolve().parents[1]) not in config
    assert not re.search(r"/[\w./-]*/horse2zebra\.safetensors", config)  # no server path to a weights file
    # The Plugins tab's card (horse2zebra's, shown first) describes the imported weights, not the official ones.
    assert "weights: imported from `resnet-4-1.safetensors`" in config
    assert "architecture: resnet ngf=4 blocks=1 (the domain declares resnet ngf=64 blocks=9)" in config
    assert "download source" not in config

@pytest.mark.parametrize("width, height", [(256, 1), (1, 256), (1, 1)])
def test_extreme_image_shapes_answer_within_seconds(server, tmp_path: Path, width: int, height: int):
    """summer2winter_yosemite translates at a working size of 256: a 256×1 image would be worked on at
    256×65536 (a minute and gigabytes with the medium generator) without the app's limit."""
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    image = random_image(width, height, tmp_path / f"{width}x{height}.png")
    started = time.time()
    job = client.submit(handle_file(str(image)), "summer2winter_yosemite", "forward", api_name="/translate_image")
    try:
        _, output, note = job.result(timeout=15)
    except TimeoutError:
        pytest.fail(f"no answer within 15 s for a {width}×{height} image")
    except Exception as exc:  # a refusal: it must say why, in one sentence
        assert f"{width}×{height}" in str(exc) and one_sentence(str(exc)), str(exc)
        assert (width, height) != (1, 1), "a 1×1 image is harmless and must be translated"
    else:
        assert Image.open(output).size == (width, height)
    assert time.time() - started < 15


def test_cheap_limits_in_process():
    """The checks made before any work: the size a model works at, and a clip's decoded budget."""
    from types import SimpleNamespace

    from cycletools.app.limits import DecodeBudget, ServeLimits
    from cycletools.errors import CycletoolsError
    from cycletools.utils.sizes import working_resolution

    # What the model works on is bounded (the app passes its pixel limit to the translator).
    assert working_resolution(4000, 3000, 256, max_pixels=1_000_000) == (341, 256)
    width, height = working_resolution(16, 1, 256, max_pixels=1_000_000)
    assert width * height <= 1_000_000 and (width, height) == (4000, 250)
    limits = ServeLimits(max_video_seconds=2, max_image_pixels=1_000_000, max_aspect_ratio=16)
    budget = DecodeBudget.for_clip(SimpleNamespace(fps=1000, width=10, height=10), limits)
    frame = SimpleNamespace(time=0.0, image=np.zeros((10, 10, 3), np.uint8))  # no timestamps, as in raw H.264
    for _ in range(120):                          # 2 s at the 60 frames a second a budget allows at most
        budget(frame)
    with pytest.raises(CycletoolsError, match="runs past the 2 s limit"):
        budget(frame)
    with pytest.raises(CycletoolsError, match="runs past the 2 s limit"):
        DecodeBudget.for_clip(SimpleNamespace(fps=24, width=10, height=10), limits)(
            SimpleNamespace(time=2.5, image=frame.image))
    # A large first frame buys no more frames: the count is bounded too, whatever the pixels allow.
    shrinking = DecodeBudget.for_clip(SimpleNamespace(fps=25, width=720, height=720), limits)
    tiny = SimpleNamespace(time=0.0, image=np.zeros((16, 16, 3), np.uint8))
    for _ in range(120):
        shrinking(tiny)
    with pytest.raises(CycletoolsError, match="runs past the 2 s limit"):
        shrinking(tiny)
    # Every decoded frame is held to the image limits, whatever the header said.
    with pytest.raises(CycletoolsError, match="frames are 1001×1000; the limit is 1 megapixels"):
        budget.check_size(1001, 1000)
    with pytest.raises(CycletoolsError, match="frames are 340×20; their longer side may be at most 16 times"):
        DecodeBudget.for_clip(SimpleNamespace(fps=24, width=10, height=10), limits)(
            SimpleNamespace(time=0.0, image=np.zeros((20, 340, 3), np.uint8)))


def test_an_error_on_the_page_is_cut_at_a_word_after_its_paths_are_hidden():
    """Paths are hidden before the length limit applies, and a long message ends at a word with "…" (it was
    cut mid-word: "nothing wa."; issue 25, item 5)."""
    from cycletools.app.messages import PUBLIC_MESSAGE_LIMIT, public_message
    from cycletools.errors import CycletoolsError

    long_path = "/" + "deep/" * 60 + "clip.mp4"
    text = public_message(CycletoolsError(f"{long_path}: nothing was decoded from this file " + "and more " * 30))
    assert text.startswith("Clip.mp4: nothing was decoded from this file and more")
    assert text.endswith(" more …") and len(text) <= PUBLIC_MESSAGE_LIMIT + 2 and "deep/" not in text
    assert public_message(CycletoolsError("a short problem")) == "A short problem."


def test_a_value_no_page_sends_gets_a_sentence(server, tmp_path: Path):
    """A list where an image belongs, a number for a clip: Gradio's own validation used to answer
    {"error": null}; each is one sentence naming the input (issue 25, item 5)."""
    image = call_api(server, "translate_image", [[1, 2], "horse2zebra", "forward"])
    assert '"error": "The request\'s Input is not a value this page sends."' in image, image
    clip = call_api(server, "translate_video", [7, "horse2zebra", "forward", False, False])
    assert "event: error" in clip and '"error": null' not in clip, clip
    # A checkbox is true or false: the string "false" was taken as true (an outside probe).
    (tmp_path / "clip.mp4").write_bytes(b"not even a clip")
    some_clip = {"path": upload(server, tmp_path / "clip.mp4"), "meta": {"_type": "gradio.FileData"}}
    for stabilize, side in (("false", False), (False, 1), (None, False)):
        clip = call_api(server, "translate_video", [some_clip, "horse2zebra", "forward", stabilize, side])
        assert "The request's Stabilize and Side by side must each be true or false." in clip, clip
    # Too few values, and a domain that is no choice (Gradio's own messages: empty, or the value echoed whole).
    short = call_api(server, "translate_image", [])
    assert '"error": "The request has 0 values; this action takes 3."' in short, short
    answer = call_hidden(server, "change", ["x" * 5000])
    assert answer["output"]["error"] == "The request's Domain is not one of its choices.", answer


def test_a_domain_that_is_not_a_name_is_refused_in_a_sentence(server, tmp_path: Path):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    image = handle_file(str(random_image(20, 20, tmp_path / "a.png")))
    message = error_of(client, image, ["horse2zebra"], "forward", api_name="/translate_image")
    assert message == "A domain is named by a string, not a list.", message


# ---------------------------------------------------------------- issue 25, item 3: the disk bound

def test_the_disk_bound_removes_the_oldest_unused_files_first_then_refuses(tmp_path: Path, monkeypatch):
    """On a fake clock: room is made by removing the oldest files that no job uses and that are past
    KEEP_SECONDS; files in use, young files and reservations are kept, and what cannot fit is refused. A
    file counts at least one block and so does each folder (tiny uploads filled 405 MB on disk while 0.8 MB
    were counted), and the number of files and folders is bounded too."""
    from cycletools.app import disk
    from cycletools.app.disk import DiskBudget, DiskFull

    K = disk.ENTRY_BYTES
    now = [time.time()]
    root = tmp_path / "files"
    budget = DiskBudget(root, limit=15 * K, keep_seconds=300, clock=lambda: now[0])

    def write(name: str, blocks: int, age: float) -> Path:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * (blocks * K - 100))  # a partly filled last block counts whole
        os.utime(path, (now[0] - age, now[0] - age))
        return path

    oldest, in_use, older = write("a/oldest.png", 3, 900), write("b/clip.mp4", 3, 1000), write("c/old.png", 2, 600)
    young = write("d/young.png", 1, 10)
    assert budget.used() == 14 * K  # 9 blocks of files, 4 folders and the root
    budget.make_room(1 * K, "this upload")  # fits as it is: nothing removed
    assert all(path.exists() for path in (oldest, in_use, older, young))
    with budget.using(in_use.parent):
        budget.make_room(3 * K, "this upload")  # 2 blocks too many: the oldest unused file goes (and its folder)
        assert not oldest.exists() and not oldest.parent.exists() and in_use.exists() and older.exists()
        assert budget.removed == {str(oldest)}
        with pytest.raises(DiskFull) as full:
            budget.make_room(9 * K, "this upload")  # old.png goes, still 1 short: young and in-use stay
    assert str(full.value) == ("the server's space for uploads and results is full (60 KB): this upload must wait "
                               "until older files are removed; try again in a few minutes")
    assert not older.exists() and in_use.exists() and young.exists()
    reserved = budget.take(9 * K, "this upload")  # the job is over: its clip may go now
    assert not in_use.exists() and budget.used() == 12 * K
    with pytest.raises(DiskFull):
        budget.take(5 * K, "another upload")  # the reservation counts until it is given back
    budget.give(reserved)
    now[0] += 300
    budget.make_room(13 * K, "this upload")  # young.png is old enough now
    assert not young.exists() and budget.used() == K

    # A job's folder is watched piece by piece (a video's output grew 11 MB past the bound between checks).
    job = root / "results" / "job"
    job.mkdir(parents=True)
    room = budget.watcher(job, "the translated clip")
    with budget.using(job):
        (job / "out.mp4").write_bytes(b"x" * (11 * K))
        room()  # 11 blocks and three folders of 15: fits
        with open(job / "out.mp4", "ab") as output:
            output.write(b"x" * (2 * K))
        with pytest.raises(DiskFull, match="the translated clip must wait"):
            room()
    shutil.rmtree(root / "results")

    monkeypatch.setattr(disk, "MAX_ENTRIES", 6)  # three files in three folders: the seventh entry needs room
    for index in range(3):
        write(f"e{index}/tiny.txt", 1, 1000 - index)
    budget.make_room(0, "this upload")
    assert not (root / "e0").exists() and (root / "e1" / "tiny.txt").exists()


def disk_serve(app_home: Path, *args: str):
    process, url = serve(app_home, "--max-upload", "1mb", "--max-disk", "3mb", *args)
    first_line = next(line for line in process.log.read_text().splitlines() if "temp folder " in line)
    return process, url, Path(first_line.rsplit("temp folder ", 1)[1].strip()) / "files"


def raw_post(address: str, body: bytes, content_type: str, chunked: bool = False) -> tuple[int, str]:
    """POST ``body`` (chunked when asked: no Content-Length); the status and the answer's text."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(address)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        if chunked:
            connection.request("POST", parts.path, body=iter([body]), headers={"Content-Type": content_type},
                               encode_chunked=True)
        else:
            connection.request("POST", parts.path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def raw_upload(url: str, files: list[tuple[str, bytes]], chunked: bool = False) -> tuple[int, str]:
    """Several files in one request to Gradio's upload route."""
    boundary = "cycletoolsboundary"
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                    f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n" for name, data in files)
    return raw_post(url + "gradio_api/upload", body + f"--{boundary}--\r\n".encode(),
                    f"multipart/form-data; boundary={boundary}", chunked)


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def test_uploads_and_results_stay_within_max_disk_with_a_clear_error(tmp_path: Path, app_home):
    """20 uploads of ~0.9 MB against --max-disk 3mb: the app keeps what fits (their bytes counted before they
    are read) and answers the rest 507 with one sentence; a result that would not fit is refused the same way,
    and the refused job leaves no files (issue 25, item 3)."""
    from gradio_client import Client, handle_file

    process, url, files = disk_serve(app_home)
    try:
        at_start = folder_bytes(files)  # the example photo, cached for the page
        rng = np.random.default_rng(7)
        noise = [rng.integers(0, 256, 900_000, dtype=np.uint8).tobytes() for _ in range(4)]
        # One request with four files of 0.9 MB (3.6 MB): a request carries at most --max-upload, whatever it
        # holds, and is refused before anything is removed to make room (issue 25 probes).
        assert raw_upload(url, [(f"part-{index}.bin", data) for index, data in enumerate(noise)]) == \
            (413, "The upload is larger than this server takes (1 MB).")
        # Gradio takes up to 1,000 files in one request; the app, 16.
        assert raw_upload(url, [(f"tiny-{index}.bin", b"x") for index in range(17)])[0] == 400
        # A body without a length (chunked) cannot be counted before it arrives.
        assert raw_upload(url, [("chunked.bin", noise[0])], chunked=True) == \
            (411, "A request must declare its length (Content-Length).")
        # Other requests are held to what the largest upload takes in base64 (a camera frame comes inside one).
        status, text = raw_post(url + "gradio_api/queue/join", b"{" + b" " * 1_500_000 + b"}", "application/json")
        assert (status, text) == (413, "The request is larger than this server takes (1.4 MB).")
        assert raw_post(url + "gradio_api/process_recording", b"x", "text/plain")[0] == 404
        assert folder_bytes(files) == at_start, "a refused request left files"
        kept, refused = [], []
        for index in range(20):
            image = tmp_path / f"noise-{index}.png"
            Image.fromarray(rng.integers(0, 256, (550, 550, 3), dtype=np.uint8)).save(image)
            try:
                kept.append(upload(url, image))
            except urllib.error.HTTPError as error:
                refused.append((error.code, error.read().decode()))
            assert folder_bytes(files) <= 3 * 1024**2
        assert len(kept) == 3 and len(refused) == 17
        assert refused[0] == (507, "The server's space for uploads and results is full (3 MB): this upload must "
                                   "wait until older files are removed; try again in a few minutes.")
        with pytest.raises(Exception, match="507 Insufficient Storage"):  # gradio_client shows the status alone
            Client(url, verbose=False).predict(handle_file(str(tmp_path / "noise-0.png")), "horse2zebra", "forward",
                                               api_name="/translate_image")
        result = call_api(url, "translate_image", [{"path": kept[0], "meta": {"_type": "gradio.FileData"}},
                                                   "horse2zebra", "forward"])
        assert "event: error" in result and "this result must wait until older files are removed" in result
        assert not [path for path in (files / "results").rglob("*") if path.is_file()], "a refused job left files"
        assert folder_bytes(files) <= 3 * 1024**2
    finally:
        log = stop(process)
    assert "uploads and results may take 3 MB (--max-disk)" in log


def test_max_disk_must_hold_one_upload(tmp_path: Path):
    result = subprocess.run([sys.executable, "-m", "cycletools", "serve", "--max-upload", "50mb", "--max-disk",
                             "10mb"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "CYCLETOOLS_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(
        "--max-disk 10mb is smaller than --max-upload 50mb: the app could not keep even one upload")
