"""Downloads of weights against a local HTTP server on 127.0.0.1: success and every failure."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
from pathlib import Path

import pytest

from cycletools import store
from cycletools.domains import DomainSpec, WeightsSource
from cycletools.errors import CycletoolsError


class WeightsServer(http.server.ThreadingHTTPServer):
    """Serves ``routes`` (path → (status, body, declared length or None)); counts requests."""

    def __init__(self, routes: dict):
        self.routes, self.hits = routes, []
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hits.append(self.path)
        status, body, declared = self.server.routes.get(self.path, (404, b"not found", None))
        self.send_response(status)
        self.send_header("Content-Length", str(declared if declared is not None else len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if declared is not None:
            self.close_connection = True  # promised more than was sent: an interrupted transfer

    def log_message(self, *args):
        pass


@pytest.fixture
def server(tiny_generator_file: Path):
    weights = tiny_generator_file.read_bytes()
    routes = {
        "/good.safetensors": (200, weights, None),
        "/html.pth": (200, b"<html>maintenance</html>", None),
        "/broken.pth": (500, b"internal error", None),
        "/short.safetensors": (200, weights[: len(weights) // 2], len(weights)),
    }
    httpd = WeightsServer(routes)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("CYCLETOOLS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # huggingface_hub's waits between retries (1 s each)
    return tmp_path / "home"


def domain(url: str, sha256: str | None = None, bundled: Path | None = None) -> DomainSpec:
    return DomainSpec(name="test2domain", title="t", family="object", source="a", target="b",
                      sources=(WeightsSource(url, sha256),), bundled=bundled)


def cache_files(home: Path) -> list[str]:
    folder = home / "weights"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_records_checksum_then_verifies_it(server, home: Path, tiny_generator_file: Path):
    spec = domain(server.base + "/good.safetensors")
    assert store.status(spec).state == "downloadable"
    path = store.obtain(spec, download=True, progress=False).path
    assert path == home / "weights" / "test2domain.safetensors"
    assert path.read_bytes() == tiny_generator_file.read_bytes()
    assert cache_files(home) == ["checksums.json", "test2domain.safetensors"]
    assert store.status(spec).state == "cached"
    assert store.obtain(spec, download=True).path == path and server.hits == ["/good.safetensors"]  # no second download
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    with pytest.raises(CycletoolsError, match="does not match its checksum .*weights fetch test2domain"):
        store.obtain(spec).path


def test_pinned_checksum_must_match(server, home: Path, tiny_generator_file: Path):
    good = hashlib.sha256(tiny_generator_file.read_bytes()).hexdigest()
    assert store.fetch(domain(server.base + "/good.safetensors", sha256=good), progress=False).is_file()
    wrong = domain(server.base + "/good.safetensors", sha256="0" * 64)
    with pytest.raises(CycletoolsError, match="does not match its checksum"):
        store.fetch(wrong, force=True, progress=False)


@pytest.mark.parametrize("route,message", [
    ("/broken.pth", "the server answered 500"),
    ("/missing.pth", "the server answered 404"),
    ("/short.safetensors", "was interrupted"),
    ("/html.pth", "did not give a usable generator"),
])
def test_failed_downloads_leave_nothing_in_the_cache(server, home: Path, route: str, message: str):
    spec = domain(server.base + route)
    with pytest.raises(CycletoolsError, match=message) as error:
        store.fetch(spec, progress=False)
    assert server.base + route in str(error.value)
    assert cache_files(home) == []


def test_pinned_mismatch_leaves_nothing(server, home: Path):
    with pytest.raises(CycletoolsError, match="does not match its checksum"):
        store.fetch(domain(server.base + "/good.safetensors", sha256="f" * 64), progress=False)
    assert cache_files(home) == []


def test_offline_error_names_the_url_and_where_to_put_the_file(home: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again on exit: nothing listens there
    url = f"http://127.0.0.1:{port}/horse2zebra.pth"
    with pytest.raises(CycletoolsError) as error:
        store.obtain(domain(url), download=True, progress=False).path
    text = str(error.value)
    assert f"cannot download {url}" in text and "offline?" in text
    assert f"place it at {home / 'weights' / 'test2domain.pth'}" in text
    assert cache_files(home) == []


def test_without_download_the_error_says_how_to_fetch(home: Path):
    with pytest.raises(CycletoolsError, match=r"fetch them with 'cycletools weights fetch test2domain' \(or add "
                                             r"--download\), which downloads http://example\.invalid/w\.pth"):
        store.obtain(domain("http://example.invalid/w.pth")).path


def test_resolution_order_with_and_without_a_fetched_full_generator(server, home: Path, tmp_path: Path,
                                                                    tiny_generator_file: Path):
    """auto: on the CPU fast, full, bundled; elsewhere full, bundled, fast. What the user fetched or imported
    (full) comes before what the plugin ships (bundled); each variant can still be asked for by name."""
    bundled = tmp_path / "plugin" / "test2domain.safetensors"
    spec = domain(server.base + "/good.safetensors", bundled=bundled)
    assert store.choose(spec) is None and store.in_use(spec).state == "downloadable"
    assert store.status_text(spec) == "downloadable" and not store.usable(spec)
    with pytest.raises(CycletoolsError, match="no full weights for test2domain yet: fetch them"):
        store.obtain(spec, variant="full").path
    with pytest.raises(CycletoolsError, match="test2domain has no bundled generator"):
        store.obtain(spec, variant="bundled").path

    bundled.parent.mkdir()
    bundled.write_bytes(tiny_generator_file.read_bytes())  # the plugin ships one: a fresh install
    for device in ("cpu", "cuda"):
        assert store.choose(spec, device).variant == "bundled"
    assert store.status_text(spec) == "bundled" and store.best_variant(spec) == "bundled"
    assert store.obtain(spec, variant="bundled").path == bundled

    fetched = store.fetch(spec, progress=False)  # the user fetches the full generator
    assert fetched == home / "weights" / "test2domain.safetensors"
    for device in ("cpu", "cuda"):
        chosen = store.choose(spec, device)
        assert (chosen.variant, chosen.state, chosen.path) == ("full", "cached", fetched)
    assert store.status_text(spec) == "cached, also bundled"
    assert store.obtain(spec, variant="bundled").path == bundled and store.obtain(spec, variant="full").path == fetched

    student = store.import_weights(spec, tiny_generator_file, variant="fast")  # a compact student
    assert store.choose(spec, "cpu").path == student and store.choose(spec, "cuda").path == fetched
    assert store.status_text(spec) == "fast cached, full cached, also bundled"
    assert store.status_text(spec, "cuda") == "cached, also bundled, fast cached"
    assert store.best_variant(spec) == "full"
    fetched.unlink()
    assert store.choose(spec, "cuda").variant == "bundled"
    bundled.unlink()
    assert store.choose(spec, "cuda").variant == "fast"  # the only one here


def test_a_bundled_fast_student_stands_in_for_the_bundled_generator_only(server, home: Path, tmp_path: Path,
                                                                         tiny_generator_file: Path):
    """A plugin that ships a fast student beside its generator: on the CPU the student comes first, until the
    user fetches or imports a full generator (the student learnt the bundled one, not theirs) or imports a
    fast student of their own."""
    bundled = tmp_path / "plugin" / "test2domain.safetensors"
    shipped_student = bundled.with_name("test2domain.fast.safetensors")
    spec = domain(server.base + "/good.safetensors", bundled=bundled)
    bundled.parent.mkdir()
    bundled.write_bytes(tiny_generator_file.read_bytes())
    shipped_student.write_bytes(tiny_generator_file.read_bytes())
    assert (store.choose(spec, "cpu").path, store.choose(spec, "cuda").path) == (shipped_student, bundled)
    assert store.status_text(spec) == "fast bundled, also bundled, full downloadable"

    fetched = store.fetch(spec, progress=False)
    for device in ("cpu", "cuda"):
        assert store.choose(spec, device).path == fetched
    assert store.status_text(spec) == "cached, fast bundled, also bundled"
    assert store.obtain(spec, variant="fast").path == shipped_student  # still there by name

    own = store.import_weights(spec, tiny_generator_file, variant="fast")  # a student of the user's own
    assert own == home / "weights" / "test2domain.fast.safetensors"
    assert store.status(spec, "fast").path == own and store.obtain(spec, variant="fast").path == own
    assert store.choose(spec, "cpu").path == own and store.choose(spec, "cuda").path == fetched
    fetched.unlink()
    assert store.choose(spec, "cpu").path == own


def test_a_file_written_to_ship_names_its_teacher_not_a_path_here(home: Path, tmp_path: Path):
    from cycletools.models import init_weights
    from cycletools.models.mobile import MobileResnetGenerator
    from cycletools.training.distill import STUDENTS
    from cycletools.weights import read_metadata, save_generator

    student = save_generator(init_weights(MobileResnetGenerator(**STUDENTS["tiny"])), tmp_path / "student.safetensors",
                             metadata={"cycletools.distilled_from": "/machine/only/teacher-G.pth"})
    spec = domain("https://example.invalid/x.safetensors")
    shipped = store.import_weights(spec, student, variant="fast", output=tmp_path / "plugin.fast.safetensors")
    assert read_metadata(shipped)["cycletools.distilled_from"] == "teacher-G.pth"
    cached = store.import_weights(spec, student, variant="fast")  # the user's own cache keeps where it came from
    assert read_metadata(cached)["cycletools.distilled_from"] == "/machine/only/teacher-G.pth"
