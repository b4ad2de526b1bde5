"""The generators shipped in weights/: used by default, offline, on a fresh install; and the rule that decides
between them and what a user fetched or imported."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from PIL import Image

from conftest import run_cli, run_cli_here

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "weights"
BUNDLED = WEIGHTS / "horse2zebra.safetensors"
EXAMPLE = ROOT / "examples" / "photos" / "horse.jpg"
RELEASED_SHA256 = "0ab6b7a4312a94187078a631608d89f2d5ab8036e4469b4a56508cf27faf3e78"  # GAN Compression's .pth
STUDENT = WEIGHTS / "horse2zebra.fast.safetensors"
needs_student = pytest.mark.skipif(not STUDENT.is_file(), reason=f"{STUDENT} is not in this checkout")
SORREL, ZEBRA = 339, 340  # ImageNet classes


def classify(*images: Image.Image) -> list[int]:
    from cycletools.evaluation.classifier import ImageNetClassifier

    return ImageNetClassifier().top1(images).tolist()


def readme_main_job() -> list[str]:
    """The arguments of the cycletools command in README's main job (the line after ``# main job``)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    line = text.split("# main job", 1)[1].splitlines()[1]
    command = line.split("&&", 1)[1].strip()
    words = shlex.split(command)
    assert words[0] == "cycletools", line
    return words[1:]


def test_everything_under_weights_fits_the_budget():
    total = sum(path.stat().st_size for path in WEIGHTS.rglob("*") if path.is_file())
    assert total <= 16 * 2**20, f"weights/ holds {total / 2**20:.1f} MiB; the budget is 16 MiB"
    for generator in WEIGHTS.glob("*.safetensors"):
        card = generator.with_suffix(".md")
        assert card.is_file(), f"{generator.name} has no model card ({card.name})"


def test_the_bundled_generator_says_where_it_came_from():
    info = json.loads(run_cli_here("weights", "info", str(BUNDLED), "--json").stdout)
    assert info["architecture"]["arch"] == "mobile_resnet" and info["parameters"] == 356_867
    metadata = info["metadata"]
    assert metadata["cycletools.imported_sha256"] == RELEASED_SHA256
    assert metadata["cycletools.imported_from"] == "gan-compression-horse2zebra-G.pth"  # a name, no local path
    assert (metadata["cycletools.domain"], metadata["cycletools.variant"]) == ("horse2zebra", "bundled")
    assert "not trained by cycletools" in metadata["cycletools.origin"]
    card = BUNDLED.with_suffix(".md").read_text(encoding="utf-8")
    assert "cycletools did not train this generator" in card
    assert RELEASED_SHA256 in card and info["sha256"] in card
    # The BSD-2-Clause notices in full: both copyrights, each with its conditions and disclaimer.
    assert "Copyright (c) 2020, Muyang Li and Ji Lin" in card
    assert "Copyright (c) 2017, Jun-Yan Zhu and Taesung Park" in card
    for notice in ("Redistributions of source code must retain the above copyright notice",
                   "Redistributions in binary form must reproduce the above copyright notice",
                   "OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE."):
        assert card.count(notice) == 2, notice
    assert "| 63.88 | 24.33" in card and "87.5%" in card


def test_the_example_photo_has_its_credits_where_it_ships():
    with Image.open(EXAMPLE) as photo:
        assert photo.size == (960, 540) and photo.format == "JPEG"
    for credits in (ROOT / "examples" / "README.md", EXAMPLE.with_name("README.md")):
        text = credits.read_text(encoding="utf-8")
        assert "https://commons.wikimedia.org/wiki/File:Zaniskari_Horse_in_Ladakh.jpg" in text, credits
        assert "Eatcha" in text and "CC BY-SA 4.0" in text, credits


@pytest.mark.slow
def test_readmes_main_job_turns_the_example_horse_into_a_zebra_offline(tmp_path: Path):
    """README's first command, as written there, in a fresh interpreter with an empty cache (nothing fetched)."""
    args = readme_main_job()
    assert "--plugin" in args and "horse2zebra" in args and "--weights" not in args
    env = {"CYCLETOOLS_HOME": str(tmp_path / "empty-home")}
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    result = run_cli(*args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    output = tmp_path / args[args.index("-o") + 1]
    assert result.stdout.strip() == f"translated 1 of 1 image(s) → {output.name}"
    assert "using" not in result.stderr  # one generator here: nothing to choose, nothing to say
    with Image.open(output) as pair:
        assert pair.size == (1920, 540)
        before, after = pair.crop((0, 0, 960, 540)), pair.crop((960, 0, 1920, 540))
    assert classify(before, after) == [SORREL, ZEBRA]
    assert not (tmp_path / "empty-home" / "weights").exists()  # nothing was downloaded or cached


def test_a_fresh_install_lists_the_bundled_generator_in_use(tmp_path: Path):
    env = {"CYCLETOOLS_HOME": str(tmp_path / "empty-home")}
    listed = run_cli_here("weights", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    first = lines.index(next(line for line in lines if line.startswith("horse2zebra ")))
    assert lines[first].split() == ["horse2zebra", "bundled", str(BUNDLED)]
    assert "GAN Compression" in lines[first + 1] and "not trained by cycletools" in lines[first + 1]
    assert lines[first + 2].split()[:3] == ["horse2zebra", "(full)", "downloadable"]
    rows = json.loads(run_cli_here("plugins", "--json", env=env).stdout)
    horse2zebra = next(row for row in rows if row["name"] == "horse2zebra")
    assert (horse2zebra["weights"], horse2zebra["weights_variant"], horse2zebra["full_weights"],
            horse2zebra["status"]) == ("bundled", "bundled", "downloadable", "bundled")
    assert "GAN Compression" in horse2zebra["weights_origin"]
    zebra2horse = next(row for row in rows if row["name"] == "zebra2horse")
    assert (zebra2horse["weights"], zebra2horse["weights_variant"]) == ("downloadable", None)

    photo = tmp_path / "horse.png"
    Image.new("RGB", (45, 31), (150, 100, 50)).save(photo)
    full = run_cli_here("translate", str(photo), "--plugin", "horse2zebra", "--variant", "full", "-o",
                        str(tmp_path / "full.png"), env=env)
    assert full.returncode == 1
    assert ("no full weights for horse2zebra yet: fetch them with 'cycletools weights fetch horse2zebra'"
            in full.stderr)
    assert not (tmp_path / "full.png").exists()


def test_every_front_end_uses_the_bundled_generator_on_a_fresh_install(tmp_path: Path, monkeypatch):
    """The Python API, video and the webcam (a clip as its camera) on an empty cache; translate, eval and
    serve have tests of their own (above, test_eval.py, test_app.py)."""
    pytest.importorskip("av", reason="the media extras are not installed")
    pytest.importorskip("cv2", reason="the media extras are not installed")
    from cycletools import get_generator
    from media_fixtures import frame_times, make_clip

    monkeypatch.setenv("CYCLETOOLS_HOME", str(tmp_path / "empty-home"))
    loaded = get_generator("horse2zebra", device="cpu")
    assert (loaded.variant, loaded.origin, loaded.source, loaded.notice) == ("bundled", "bundled", BUNDLED, None)
    assert loaded.provenance()["cycletools.imported_sha256"] == RELEASED_SHA256
    clip = make_clip(tmp_path / "clip.mp4", frames=6)
    video = run_cli_here("video", str(clip), "--plugin", "horse2zebra", "-o", str(tmp_path / "zebra.mp4"))
    assert video.returncode == 0, video.stderr
    assert len(frame_times(tmp_path / "zebra.mp4")) == 6
    webcam = run_cli_here("webcam", "--plugin", "horse2zebra", "--camera", str(clip), "--no-window",
                          "--record", str(tmp_path / "live.mp4"))
    assert webcam.returncode == 0, webcam.stderr
    assert len(frame_times(tmp_path / "live.mp4")) == 6
    assert not (tmp_path / "empty-home" / "weights").exists()  # nothing fetched


def test_what_you_fetch_or_import_wins_over_the_bundled_generator(tmp_path: Path, tiny_generator_file: Path,
                                                                  monkeypatch):
    from cycletools import get_generator, store
    from cycletools.registry import get_registry

    env = {"CYCLETOOLS_HOME": str(tmp_path / "home")}
    imported = run_cli_here("weights", "import", str(tiny_generator_file), "--plugin", "horse2zebra", env=env)
    assert imported.returncode == 0, imported.stderr
    assert ("note: horse2zebra also has a bundled generator; these weights come before it from now on "
            "(--variant bundled uses the bundled one)") in imported.stdout
    photo = tmp_path / "horse.png"
    Image.new("RGB", (45, 31), (150, 100, 50)).save(photo)
    chosen = run_cli_here("translate", str(photo), "--plugin", "horse2zebra", "-o", str(tmp_path / "a.png"), env=env)
    assert chosen.returncode == 0, chosen.stderr
    assert chosen.stderr.splitlines()[0] == ("using the full horse2zebra generator you fetched or imported "
                                             "(--variant bundled for the other)")
    back = run_cli_here("translate", str(photo), "--plugin", "horse2zebra", "--variant", "bundled", "-o",
                        str(tmp_path / "b.png"), env=env)
    assert back.returncode == 0 and "using" not in back.stderr, back.stderr
    listed = run_cli_here("weights", "list", env=env).stdout.splitlines()
    rows = [line.split()[:3] for line in listed if line.startswith("horse2zebra ")]
    assert rows == [["horse2zebra", "cached", str(tmp_path / "home" / "weights" / "horse2zebra.safetensors")],
                    ["horse2zebra", "(bundled)", "bundled"]]

    monkeypatch.setenv("CYCLETOOLS_HOME", env["CYCLETOOLS_HOME"])
    spec = get_registry().domain("horse2zebra")
    assert get_generator("horse2zebra", device="cpu").config == store.file_architecture(tiny_generator_file)
    assert get_generator("horse2zebra", device="cpu", variant="bundled").source == BUNDLED
    assert store.status_text(spec) == "cached, also bundled"
    assert store.choose(spec, "cuda").variant == store.choose(spec, "cpu").variant == "full"


def test_evaluate_and_distill_default_to_the_generator_here(tmp_path: Path, monkeypatch):
    """eval --plugin takes what --plugin means elsewhere; distill's teacher and export start from the most
    faithful generator here, the bundled one on a fresh install (not an error asking for a download)."""
    from cycletools.cli.options import faithful_variant
    from cycletools.cli.main import build_parser

    args = build_parser().parse_args(["eval", "--plugin", "horse2zebra", "--data", str(tmp_path)])
    assert args.variant == "auto"
    monkeypatch.setenv("CYCLETOOLS_HOME", str(tmp_path / "empty-home"))
    assert faithful_variant("horse2zebra", None) == "bundled"
    assert faithful_variant("zebra2horse", None) == "full"
    assert faithful_variant("horse2zebra", "some.pth") == "auto"  # the file is the teacher


def test_a_mismatched_torchvision_is_one_line_with_the_fix():
    from cycletools.errors import torchvision_mismatch

    advice = torchvision_mismatch(RuntimeError("operator torchvision::nms does not exist"))
    assert advice is not None and advice.startswith("torchvision ") and "does not fit torch" in advice
    assert re.search(r"torchvision==0\.\d+\.\* --index-url", advice) and "\n" not in advice
    assert torchvision_mismatch(RuntimeError("CUDA out of memory")) is None
    assert torchvision_mismatch(ValueError("operator torchvision::nms does not exist")) is None


@needs_student
def test_the_student_records_where_it_came_from():
    info = json.loads(run_cli("weights", "info", str(STUDENT), "--json").stdout)
    assert info["architecture"]["arch"] == "mobile_resnet"
    assert "gan-compression-horse2zebra-G.pth" in info["metadata"]["cycletools.distilled_from"]
    assert (info["metadata"]["cycletools.domain"], info["metadata"]["cycletools.variant"]) == ("horse2zebra", "fast")
    card = STUDENT.with_suffix(".md").read_text(encoding="utf-8")
    assert info["sha256"] in card


def test_weights_import_and_variant_mistakes_are_one_line(tmp_path: Path, tiny_generator_file: Path):
    env = {"CYCLETOOLS_HOME": str(tmp_path / "home")}

    def refused(*args: str, code: int = 1) -> str:
        result = run_cli_here(*args, env=env)
        assert result.returncode == code and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        return result.stderr.strip()

    source = str(tiny_generator_file)
    assert refused("weights", "import", source, "--plugin", "horse2zebra", "-o", str(tmp_path)) == (
        f"cycletools: error: {tmp_path} is a folder; give the converted file's name (NAME.safetensors)")
    assert refused("weights", "import", source, "--plugin", "horse2zebra", "-o", str(tmp_path / "no" / "x.safetensors")
                   ) == f"cycletools: error: output folder does not exist: {tmp_path / 'no'}"
    assert refused("weights", "import", source, "--plugin", "horse2zebra", "--origin", "x" * 301) == (
        "cycletools: error: --origin takes one line of at most 300 characters (who made the weights, the licence), "
        "not 301")
    assert refused("weights", "import", source, "--plugin", "horse2zebra", "--variant", "bundled") == (
        "cycletools: error: a bundled generator is written into a plugin's weights folder: give --output FILE")
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    result = run_cli_here("weights", "import", source, "--plugin", "horse2zebra",
                          env={"CYCLETOOLS_HOME": str(blocked / "home")})
    assert result.returncode == 1 and result.stderr.startswith(f"cycletools: error: cannot create {blocked / 'home'}")
    assert not (tmp_path / "home").exists()  # nothing written by any of these

    kept = run_cli_here("weights", "import", source, "--plugin", "horse2zebra", "--origin",
                        "line one\nline two\x1b[31m red", env=env)
    assert kept.returncode == 0, kept.stderr
    info = json.loads(run_cli_here("weights", "info", str(tmp_path / "home" / "weights" / "horse2zebra.safetensors"),
                                   "--json").stdout)
    assert info["metadata"]["cycletools.origin"] == "line one line two [31m red"  # no terminal escape kept
    again = run_cli_here("weights", "import", source, "--plugin", "horse2zebra", env=env)
    assert again.stdout.splitlines()[0].endswith("(it replaces the file that was there)")

    photo = tmp_path / "horse.png"
    Image.new("RGB", (20, 12), (150, 100, 50)).save(photo)
    assert refused("translate", str(photo), "--plugin", "horse2zebra", "--weights", source, "--variant", "bundled",
                   "-o", str(tmp_path / "z.png"), code=2) == (
        "cycletools translate: error: --variant bundled picks one of a domain's generators; with --weights FILE the "
        "file is the generator (leave one of them out)")
    assert not (tmp_path / "z.png").exists()
