"""Weights from and to the Hugging Face Hub, against a fake Hub on 127.0.0.1 (tests/fake_hub.py): hf:// downloads,
the cache offline, revisions, push with its model card, and one clear line for each bad input."""

from __future__ import annotations

import io
import os
import pickle
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import run_cli, run_cli_here
from fake_hub import FakeHub
from PIL import Image

from cycletools import get_generator, hub, store
from cycletools.app.served import served_file
from cycletools.domains import DomainSpec, WeightsSource
from cycletools.errors import CycletoolsError
from cycletools.models import ResnetGenerator, init_weights
from cycletools.registry import get_registry, reset_registry

SAFETENSORS = "hf://alice/h2z/g.safetensors"
OFFICIAL = "hf://bob/cyclegan/latest_net_G.pth"


def official_pth_bytes(seed: int = 4) -> bytes:
    """An official-layout CycleGAN state_dict (ResNet, here ngf=4 with 2 blocks) in torch's legacy format."""
    torch.manual_seed(seed)
    buffer = io.BytesIO()
    torch.save(init_weights(ResnetGenerator(ngf=4, n_blocks=2), gain=0.5).state_dict(), buffer,
               _use_new_zipfile_serialization=False)
    return buffer.getvalue()


class Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def fake_hub(tiny_generator_file: Path):
    server = FakeHub().start()
    server.add("alice/h2z", {"g.safetensors": tiny_generator_file.read_bytes()})
    server.add("bob/cyclegan", {"latest_net_G.pth": official_pth_bytes()})
    yield server
    server.stop()


def point_hub_at(monkeypatch, endpoint: str, offline: bool = False) -> None:
    """What HF_ENDPOINT / HF_HUB_OFFLINE do: huggingface_hub reads them once, when it is imported, into
    ``constants.ENDPOINT`` (and the download URL template built from it) and ``constants.HF_HUB_OFFLINE``, so a test
    in this process sets those; the tests in a fresh interpreter (run_cli) set the variables themselves."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)


@pytest.fixture
def home(fake_hub: FakeHub, tmp_path: Path, monkeypatch) -> Path:
    """cycletools' home in tmp, huggingface_hub pointed at the fake Hub, and no token (nor a token file)."""
    from huggingface_hub import constants

    monkeypatch.setenv("CYCLETOOLS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CYCLETOOLS_PLUGINS", "")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf" / "stored_tokens"))
    point_hub_at(monkeypatch, fake_hub.endpoint)
    reset_registry()
    yield tmp_path / "home"
    reset_registry()


@pytest.fixture
def no_retry_waits(monkeypatch):
    """huggingface_hub waits between its retries of a failed transfer (1 s each, up to 8 s for a connection): not
    what these tests measure."""
    monkeypatch.setattr(time, "sleep", lambda seconds: None)


def photo(tmp_path: Path) -> Path:
    path = tmp_path / "horse.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(path)
    return path


def cached_files(home: Path) -> list[str]:
    """Every file in the Hub cache but huggingface_hub's lock files and its CACHEDIR.TAG, relative to it."""
    root = home / "hub"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if (p.is_file() or p.is_symlink()) and ".locks" not in p.parts and p.name != "CACHEDIR.TAG")


def one_error_line(result, expected: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr == f"cycletools: error: {expected}\n"


# ----------------------------------------------------------------- names
@pytest.mark.parametrize("name, parsed", [
    ("hf://alice/h2z/g.safetensors", ("alice/h2z", "g.safetensors", None)),
    ("hf://alice/h2z/sub/g.pth@v1.0", ("alice/h2z", "sub/g.pth", "v1.0")),
    ("hf://alice/h2z@dev/sub/g.pth", ("alice/h2z", "sub/g.pth", "dev")),
    ("hf://alice/h2z/g.pth@feat/x", ("alice/h2z", "g.pth", "feat/x")),          # a branch may hold "/"
    ("hf://alice/h2z/sub/g.pth@refs/pr/1", ("alice/h2z", "sub/g.pth", "refs/pr/1")),
    ("hf://alice/h2z@v1/a@b.pth", ("alice/h2z", "a@b.pth", "v1")),
])
def test_hub_names_are_parsed(name: str, parsed):
    ref = hub.parse(name)
    assert (ref.repo_id, ref.filename, ref.revision) == parsed


@pytest.mark.parametrize("name", ["hf://alice", "hf://alice/h2z", "hf://alice/h2z/", "hf://alice/h2z/g.pth@",
                                  "hf://alice/h2z/../g.pth", "hf:///h2z/g.pth",
                                  # names the Hub refuses: a final ".", "..", "--", longer than 96 characters
                                  "hf://alice/h2z./g.pth", "hf://a..b/c/g.pth", "hf://alice/a--b/g.pth",
                                  "hf://alice/" + "x" * 97 + "/g.pth"])
def test_a_malformed_hub_name_gets_one_line(name: str):
    with pytest.raises(CycletoolsError, match=r"is not a Hub file name: write hf://OWNER/REPO/PATH or "
                                              r"hf://OWNER/REPO/PATH@REVISION \(a branch, tag or commit; a file "
                                              r"whose name holds '@': hf://OWNER/REPO@REVISION/PATH\)$"):
        hub.parse(name)


def test_a_name_the_hub_refuses_gets_one_line_from_the_command_line(home: Path, tmp_path: Path):
    result = run_cli_here("translate", str(photo(tmp_path)), "--weights", "hf://alice/h2z./g.safetensors",
                          "-o", str(tmp_path / "o.png"))
    one_error_line(result, "'hf://alice/h2z./g.safetensors' is not a Hub file name: write hf://OWNER/REPO/PATH or "
                           "hf://OWNER/REPO/PATH@REVISION (a branch, tag or commit; a file whose name holds '@': "
                           "hf://OWNER/REPO@REVISION/PATH)")


# ----------------------------------------------------------------- downloads
@pytest.mark.parametrize("name, architecture", [(SAFETENSORS, (4, 1)), (OFFICIAL, (4, 2))])
def test_translate_downloads_a_hub_generator_once_then_uses_the_cache(home: Path, fake_hub: FakeHub, tmp_path: Path,
                                                                    name: str, architecture):
    image, out = photo(tmp_path), tmp_path / "out.png"
    result = run_cli_here("translate", str(image), "--weights", name, "--download", "-o", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as written:
        assert written.size == (40, 24)
    ref = hub.parse(name)
    commit = fake_hub.repos[ref.repo_id].branches["main"]
    cached = home / "hub" / f"models--{ref.repo_id.replace('/', '--')}" / "snapshots" / commit / ref.filename
    assert cached.read_bytes() == fake_hub.repos[ref.repo_id].commits[commit][ref.filename]
    downloads = [r for r in fake_hub.requests if r[0] == "GET" and r[1].endswith(ref.filename)]
    assert len(downloads) == 1

    seen = len(fake_hub.requests)
    again = run_cli_here("translate", str(image), "--weights", name, "-o", str(tmp_path / "again.png"))
    assert again.returncode == 0, again.stderr
    assert len(fake_hub.requests) == seen  # from the cache, without asking the Hub
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(tmp_path / "again.png")))
    loaded = get_generator(weights=name, device="cpu")
    assert (loaded.config["ngf"], loaded.config["n_blocks"]) == architecture
    assert (loaded.origin, loaded.source, loaded.downloaded_from) == ("hub", cached, ref.at(commit))


def test_without_download_nothing_is_fetched_and_the_line_says_how(home: Path, fake_hub: FakeHub, tmp_path: Path):
    result = run_cli_here("translate", str(photo(tmp_path)), "--weights", SAFETENSORS, "-o", str(tmp_path / "o.png"))
    one_error_line(result, f"{SAFETENSORS} is not downloaded yet: fetch it first with 'cycletools weights fetch "
                           f"{SAFETENSORS}' (or add --download, where the command has it)")
    assert fake_hub.requests == [] and not (tmp_path / "o.png").exists()


@pytest.mark.slow
def test_hf_endpoint_then_offline_from_the_cache_in_fresh_processes(home: Path, fake_hub: FakeHub, tmp_path: Path):
    """The environment variables themselves: HF_ENDPOINT names the Hub; with HF_HUB_OFFLINE=1 and the Hub gone,
    both generators translate from the cache, and a file not in it gets one line naming what to fetch."""
    env = {"CYCLETOOLS_HOME": str(home), "HF_ENDPOINT": fake_hub.endpoint, "HF_HOME": str(tmp_path / "hf")}
    fetched = run_cli("weights", "fetch", SAFETENSORS, OFFICIAL, env=env)
    assert fetched.returncode == 0, fetched.stderr
    for name in (SAFETENSORS, OFFICIAL):
        commit = fake_hub.repos[hub.parse(name).repo_id].branches["main"]
        assert f"{name}: {home / 'hub'}" in fetched.stdout and f"(commit {commit})" in fetched.stdout
    fake_hub.stop()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    offline = {**env, "HF_ENDPOINT": dead, "HF_HUB_OFFLINE": "1"}
    image = photo(tmp_path)
    for index, name in enumerate((SAFETENSORS, OFFICIAL)):
        out = tmp_path / f"offline{index}.png"
        result = run_cli("translate", str(image), "--weights", name, "-o", str(out), env=offline)
        assert result.returncode == 0, result.stderr
        assert Image.open(out).size == (40, 24)
    missing = "hf://alice/h2z/other.safetensors"
    result = run_cli("weights", "fetch", missing, env=offline)
    one_error_line(result, f"{missing} is not in the cache and HF_HUB_OFFLINE is set: fetch it later with "
                           f"'cycletools weights fetch {missing}' with the network on")


def test_a_revision_pins_the_file(home: Path, fake_hub: FakeHub, tiny_generator_file: Path):
    first = fake_hub.repos["alice/h2z"].branches["main"]  # the tiny generator, ngf=4
    second = fake_hub.add("alice/h2z", {"g.safetensors": _safetensors(ResnetGenerator(ngf=8, n_blocks=1))})
    stable = fake_hub.add("alice/h2z", {"g.safetensors": tiny_generator_file.read_bytes()}, branch="stable")
    assert stable == first  # the same tree from no parent: the fake Hub's commit is a hash of both
    assert get_generator(weights=SAFETENSORS, download=True, device="cpu").config["ngf"] == 8  # main: the newest
    pinned = get_generator(weights=f"{SAFETENSORS}@{first}", download=True, device="cpu")
    assert pinned.config["ngf"] == 4 and pinned.downloaded_from == f"{SAFETENSORS}@{first}"
    assert served_file(pinned) == f"{SAFETENSORS}@{first}"  # what the web app calls a --weights generator
    stable = get_generator(weights=f"{SAFETENSORS}@stable", download=True, device="cpu")
    assert stable.config["ngf"] == 4 and stable.downloaded_from == f"{SAFETENSORS}@{first}"
    info = run_cli_here("weights", "info", f"{SAFETENSORS}@{first}")
    assert info.returncode == 0, info.stderr
    assert f"downloaded:    from {SAFETENSORS}@{first}\n" in info.stdout
    assert store.weights_file(SAFETENSORS).source == f"{SAFETENSORS}@{second}"


def _safetensors(generator) -> bytes:
    import tempfile

    from cycletools.weights import save_generator

    with tempfile.TemporaryDirectory() as folder:
        return save_generator(generator, Path(folder) / "g.safetensors").read_bytes()


def test_a_domain_may_name_an_hf_source_and_list_shows_its_commit(home: Path, fake_hub: FakeHub):
    spec = DomainSpec(name="test2hub", title="t", family="object", source="a", target="b",
                      sources=(WeightsSource(OFFICIAL),))
    assert store.status(spec).state == "downloadable"
    with pytest.raises(CycletoolsError, match=r"fetch them with 'cycletools weights fetch test2hub' \(or add "
                                              rf"--download\), which downloads {OFFICIAL} into {home / 'hub'}$"):
        store.obtain(spec)
    resolved = store.obtain(spec, download=True, progress=False)
    commit = fake_hub.repos["bob/cyclegan"].branches["main"]
    assert (resolved.origin, resolved.source, resolved.commit) == ("downloaded", f"{OFFICIAL}@{commit}", commit)
    current = store.status(spec)
    assert (current.state, current.path) == ("cached", resolved.path)
    assert store.origin_text(spec, current) == f"downloaded from {OFFICIAL}@{commit}"
    seen = len(fake_hub.requests)
    assert store.obtain(spec, download=True).path == resolved.path and len(fake_hub.requests) == seen


def test_import_and_list_record_the_commit(home: Path, fake_hub: FakeHub):
    commit = fake_hub.repos["alice/h2z"].branches["main"]
    result = run_cli_here("weights", "import", SAFETENSORS, "--plugin", "horse2zebra", "--download")
    assert result.returncode == 0, result.stderr
    listing = run_cli_here("weights", "list")
    assert f"imported from {SAFETENSORS}@{commit}" in listing.stdout
    spec = get_registry().domain("horse2zebra")
    assert store.origin_text(spec, store.status(spec, "full")) == f"imported from {SAFETENSORS}@{commit}"


def test_a_private_repository_needs_the_token(home: Path, fake_hub: FakeHub, tiny_generator_file: Path, monkeypatch):
    fake_hub.add("carol/secret", {"g.safetensors": tiny_generator_file.read_bytes()}, private=True)
    name = "hf://carol/secret/g.safetensors"
    with pytest.raises(CycletoolsError, match=rf"^{name}: no repository carol/secret on {fake_hub.endpoint} \(a "
                                              r"private one needs a token: 'hf auth login' or HF_TOKEN\)$"):
        store.weights_file(name, download=True)
    monkeypatch.setenv("HF_TOKEN", fake_hub.token)
    assert store.weights_file(name, download=True).path.read_bytes() == tiny_generator_file.read_bytes()
    assert fake_hub.requests[-1][2]  # the download carried the token


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize("name, expected", [
    ("hf://nobody/none/g.safetensors", "hf://nobody/none/g.safetensors: no repository nobody/none on {endpoint} (a "
                                       "private one needs a token: 'hf auth login' or HF_TOKEN)"),
    ("hf://alice/h2z/missing.pth", "hf://alice/h2z/missing.pth: alice/h2z has no file missing.pth at revision main"),
    ("hf://alice/h2z/g.safetensors@v9", "hf://alice/h2z/g.safetensors@v9: alice/h2z has no revision 'v9' (a branch, "
                                        "tag or commit)"),
    ("hf://alice", "'hf://alice' is not a Hub file name: write hf://OWNER/REPO/PATH or hf://OWNER/REPO/PATH@REVISION "
                   "(a branch, tag or commit; a file whose name holds '@': hf://OWNER/REPO@REVISION/PATH)"),
])
def test_what_does_not_exist_gets_one_line(home: Path, fake_hub: FakeHub, name: str, expected: str):
    result = run_cli_here("weights", "fetch", name)
    one_error_line(result, expected.format(endpoint=fake_hub.endpoint))
    assert cached_files(home) == []


def test_a_file_that_is_not_a_generator_is_refused_and_not_kept(home: Path, fake_hub: FakeHub):
    from cycletools.models import NLayerDiscriminator

    buffer = io.BytesIO()
    torch.save(NLayerDiscriminator().state_dict(), buffer)
    fake_hub.add("alice/h2z", {"D.pth": buffer.getvalue()})
    result = run_cli_here("weights", "fetch", "hf://alice/h2z/D.pth")
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("cycletools: error: hf://alice/h2z/D.pth did not give a usable generator (no "
                                    "weights adapter recognises this file")
    assert cached_files(home) == ["models--alice--h2z/refs/main"]  # neither its snapshot entry nor its blob


def test_a_pickle_that_weights_only_refuses_never_runs(home: Path, fake_hub: FakeHub, tmp_path: Path):
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({"model.1.weight": Exploit(marker)}, buffer)
    raw = pickle.dumps({"model.1.weight": Exploit(marker)})
    fake_hub.add("mallory/evil", {"objects.pth": buffer.getvalue(), "raw.pth": raw})
    result = run_cli_here("translate", str(photo(tmp_path)), "--weights", "hf://mallory/evil/objects.pth",
                          "--download", "-o", str(tmp_path / "o.png"))
    one_error_line(result, "hf://mallory/evil/objects.pth did not give a usable generator (holds Python objects "
                           "(posix.system), not only tensors; cycletools never unpickles code: save the generator's "
                           "state_dict (or safetensors) instead)")
    result = run_cli_here("weights", "fetch", "hf://mallory/evil/raw.pth")
    one_error_line(result, "hf://mallory/evil/raw.pth did not give a usable generator (not a weights file (a "
                           ".safetensors file or a PyTorch .pth/.pt state_dict))")
    assert not marker.exists() and cached_files(home) == ["models--mallory--evil/refs/main"]


def test_a_cut_transfer_leaves_nothing(home: Path, fake_hub: FakeHub, tiny_generator_file: Path, no_retry_waits):
    fake_hub.add("alice/h2z", {"cut.safetensors": tiny_generator_file.read_bytes()})
    fake_hub.truncate.add("alice/h2z/cut.safetensors")
    result = run_cli_here("weights", "fetch", "hf://alice/h2z/cut.safetensors")
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("cycletools: error: download of hf://alice/h2z/cut.safetensors was interrupted (")
    assert result.stderr.endswith("); nothing was saved; try again, or fetch it later with 'cycletools weights fetch "
                                  "hf://alice/h2z/cut.safetensors'\n")
    assert cached_files(home) == ["models--alice--h2z/refs/main"]  # no blob, no .incomplete part, no snapshot


def test_a_hub_that_answers_500_is_named_not_called_offline(home: Path, fake_hub: FakeHub, no_retry_waits):
    fake_hub.failing["alice/h2z"] = 500
    result = run_cli_here("weights", "fetch", SAFETENSORS)
    one_error_line(result, f"cannot download {SAFETENSORS}: the Hub ({fake_hub.endpoint}) answered 500; try again, "
                           f"or fetch it later with 'cycletools weights fetch {SAFETENSORS}'")
    assert cached_files(home) == []


def test_no_network_names_the_file_to_fetch_later(home: Path, monkeypatch, no_retry_waits):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    point_hub_at(monkeypatch, dead)
    result = run_cli_here("weights", "fetch", SAFETENSORS)
    one_error_line(result, f"cannot reach the Hub ({dead}) to download {SAFETENSORS} (offline?); fetch it later "
                           f"with 'cycletools weights fetch {SAFETENSORS}'")
    assert cached_files(home) == []


# ----------------------------------------------------------------- push
@pytest.fixture
def trained_run(tmp_path: Path, shapes_dataset: Path) -> Path:
    result = run_cli_here("train", "--data", str(shapes_dataset), "--name", "shapes", "--out", str(tmp_path / "runs"),
                          "--max-steps", "2", "--crop-size", "32", "--load-size", "36", "--ngf", "4", "--ndf", "4",
                          "--blocks", "1", "--log-every", "1")
    assert result.returncode == 0, result.stderr
    return tmp_path / "runs" / "shapes"


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n", 2)[1])


def test_push_a_run_then_read_it_back(home: Path, fake_hub: FakeHub, trained_run: Path, tmp_path: Path,
                                      monkeypatch):
    import json

    monkeypatch.setenv("HF_TOKEN", fake_hub.token)
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"split": "test", "results": [
        {"direction": "a2b", "plugin": "horse2zebra", "fid": 71.234, "kid": 0.0123, "classifier": {"share": 0.5}}]}))
    result = run_cli_here("weights", "push", str(trained_run), "--repo", "dave/zebras", "--plugin", "horse2zebra",
                          "--eval", str(report), "--license", "mit", "--hardware", "2-core AMD EPYC")
    assert result.returncode == 0, result.stderr
    repo = fake_hub.repos["dave/zebras"]
    commit = repo.branches["main"]
    assert f"(main, commit {commit})" in result.stdout
    name = "hf://dave/zebras/horse2zebra.safetensors"
    assert f"use it: cycletools translate IMG --weights {name} --download -o OUT.png" in result.stdout
    files = repo.commits[commit]
    assert sorted(files) == ["README.md", "horse2zebra.safetensors"]

    card = files["README.md"].decode()
    meta = front_matter(card)
    assert meta["library_name"] == "cycletools" and meta["license"] == "mit"
    assert {"cyclegan", "image-to-image", "unpaired-image-translation"} <= set(meta["tags"])
    metrics = meta["model-index"][0]["results"][0]["metrics"]
    assert [(m["type"], m["value"]) for m in metrics] == [("fid", 71.234), ("kid", 0.0123)]
    assert f"cycletools translate photo.jpg --weights {name} --download -o translated.png" in card
    assert "- Steps: 2\n" in card and "- Hardware: 2-core AMD EPYC\n" in card and "recipe official" in card
    assert "| a2b | test | 71.23 | 12.30 | 50.0% |" in card

    pushed = get_generator(weights=name, download=True, device="cpu")
    local = get_generator(run=trained_run, device="cpu")
    assert pushed.config == local.config
    for key, value in local.module.state_dict().items():
        assert torch.equal(pushed.module.state_dict()[key], value), key
    assert pushed.metadata.get("cycletools.domain") == "horse2zebra"
    assert not any(str(trained_run) in value for value in pushed.metadata.values())  # no paths of this machine


def test_push_to_a_branch_and_read_it_at_that_revision(home: Path, fake_hub: FakeHub, tiny_generator_file: Path,
                                                       monkeypatch):
    monkeypatch.setenv("HF_TOKEN", fake_hub.token)
    result = run_cli_here("weights", "push", str(tiny_generator_file), "--repo", "dave/tiny", "--revision", "dev",
                          "--private")
    assert result.returncode == 0, result.stderr
    repo = fake_hub.repos["dave/tiny"]
    assert repo.private and "generator.safetensors" in repo.commits[repo.branches["dev"]]
    assert "Not measured yet" in repo.commits[repo.branches["dev"]]["README.md"].decode()
    assert get_generator(weights="hf://dave/tiny/generator.safetensors@dev", download=True).config["ngf"] == 4
    # Again, to the existing repository, on a branch whose name holds "/": the printed command reads it back.
    result = run_cli_here("weights", "push", str(tiny_generator_file), "--repo", "dave/tiny", "--revision", "feat/x")
    assert result.returncode == 0, result.stderr
    name = "hf://dave/tiny/generator.safetensors@feat/x"
    assert f"use it: cycletools translate IMG --weights {name} --download -o OUT.png" in result.stdout
    assert get_generator(weights=name, download=True).config["ngf"] == 4


def test_private_push_to_an_existing_public_repository_is_refused(home: Path, fake_hub: FakeHub,
                                                                   tiny_generator_file: Path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", fake_hub.token)
    before = fake_hub.add("dave/public", {"notes.txt": b"hello"})
    result = run_cli_here("weights", "push", str(tiny_generator_file), "--repo", "dave/public", "--private")
    one_error_line(result, "dave/public already exists and is public, so --private cannot keep this upload private: "
                           "make the repository private on the Hub first, or push without --private; nothing was "
                           "published")
    assert fake_hub.repos["dave/public"].branches["main"] == before  # no commit


def test_push_refuses_a_report_of_another_generator(home: Path, fake_hub: FakeHub, tiny_generator_file: Path,
                                                   tmp_path: Path, monkeypatch):
    import json

    from cycletools.utils.files import file_sha256

    monkeypatch.setenv("HF_TOKEN", fake_hub.token)
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"results": [{"direction": "a2b", "fid": 60.0, "weights_sha256": "ab" * 32}]}))
    result = run_cli_here("weights", "push", str(tiny_generator_file), "--repo", "dave/tiny", "--eval", str(report))
    digest = file_sha256(tiny_generator_file)
    one_error_line(result, f"{report} measured another generator (SHA-256 abababababab…) than {tiny_generator_file} "
                           f"({digest[:12]}…): evaluate the generator you push, with 'cycletools eval --weights "
                           f"{tiny_generator_file} ... --out REPORT'")
    assert "dave/tiny" not in fake_hub.repos
    report.write_text(json.dumps({"results": [{"direction": "a2b", "fid": 60.0, "weights_sha256": digest}]}))
    result = run_cli_here("weights", "push", str(tiny_generator_file), "--repo", "dave/tiny", "--eval", str(report))
    assert result.returncode == 0, result.stderr
    card = fake_hub.repos["dave/tiny"].commits[fake_hub.repos["dave/tiny"].branches["main"]]["README.md"].decode()
    assert "| a2b | test | 60.00 |" in card


def test_push_of_a_runs_b2a_generator_names_its_direction(home: Path, fake_hub: FakeHub, trained_run: Path,
                                                          monkeypatch):
    monkeypatch.setenv("HF_TOKEN", fake_hub.token)
    result = run_cli_here("weights", "push", str(trained_run), "--repo", "dave/horses", "--plugin", "horse2zebra",
                          "--direction", "b2a")
    assert result.returncode == 0, result.stderr
    files = fake_hub.repos["dave/horses"].commits[fake_hub.repos["dave/horses"].branches["main"]]
    assert sorted(files) == ["README.md", "horse2zebra-b2a.safetensors"]
    spec = get_registry().domain("horse2zebra")
    card = files["README.md"].decode()
    assert f"- Domain: horse2zebra: {spec.target} → {spec.source} (the run's b2a generator)\n" in card
    assert ("`cycletools eval --weights hf://dave/horses/horse2zebra-b2a.safetensors --download --plugin horse2zebra "
            "--data DATASET --out report.json`") in card


def test_push_without_a_token_says_how_to_log_in(home: Path, fake_hub: FakeHub, tiny_generator_file: Path):
    result = run_cli_here("weights", "push", str(tiny_generator_file), "--repo", "dave/zebras")
    one_error_line(result, "pushing to the Hugging Face Hub needs a write token: log in with 'hf auth login' (or set "
                           "HF_TOKEN to a token from https://huggingface.co/settings/tokens)")
    assert fake_hub.requests == []
