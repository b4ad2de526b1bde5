"""The generators shipped in weights/: used by default, offline, on a fresh install."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
STUDENT = WEIGHTS / "horse2zebra.fast.safetensors"
needs_student = pytest.mark.skipif(not STUDENT.is_file(), reason=f"{STUDENT} is not in this checkout")


def test_everything_under_weights_fits_the_budget():
    total = sum(path.stat().st_size for path in WEIGHTS.rglob("*") if path.is_file())
    assert total <= 16 * 2**20, f"weights/ holds {total / 2**20:.1f} MiB; the budget is 16 MiB"
    for generator in WEIGHTS.glob("*.safetensors"):
        card = generator.with_suffix(".md")
        assert card.is_file(), f"{generator.name} has no model card ({card.name})"


@needs_student
def test_horse2zebra_translates_offline_on_a_fresh_install(tmp_path: Path):
    env = {"CYCLETOOLS_HOME": str(tmp_path / "empty-home")}  # nothing cached, nothing downloaded
    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(photo)
    out = tmp_path / "zebra.png"
    result = run_cli("translate", str(photo), "--plugin", "horse2zebra", "-o", str(out), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == ("using the fast variant of horse2zebra on the CPU "
                                             "(--variant full for the full generator)")
    with Image.open(out) as translated, Image.open(photo) as original:
        assert translated.size == (300, 200)
        difference = np.abs(np.asarray(translated, dtype=np.int16) - np.asarray(original, dtype=np.int16))
        assert difference.mean() > 5

    full = run_cli("translate", str(photo), "--plugin", "horse2zebra", "--variant", "full", "-o",
                   str(tmp_path / "full.png"), env=env)
    assert full.returncode == 1
    assert "no weights for horse2zebra yet: fetch them with 'cycletools weights fetch horse2zebra'" in full.stderr
    assert not (tmp_path / "full.png").exists()

    listed = run_cli("weights", "list", env=env)
    fast_rows = [line.split() for line in listed.stdout.splitlines() if line.startswith("horse2zebra (fast) ")]
    assert fast_rows == [["horse2zebra", "(fast)", "bundled", str(STUDENT)]]
    plugins = json.loads(run_cli("plugins", "--json", env=env).stdout)
    horse2zebra = next(row for row in plugins if row["name"] == "horse2zebra")
    assert (horse2zebra["weights"], horse2zebra["fast_weights"]) == ("downloadable", "bundled")
    zebra2horse = next(row for row in plugins if row["name"] == "zebra2horse")
    assert zebra2horse["fast_weights"] == "missing"


@needs_student
def test_the_student_records_where_it_came_from():
    info = json.loads(run_cli("weights", "info", str(STUDENT), "--json").stdout)
    assert info["architecture"]["arch"] == "mobile_resnet"
    assert "gan-compression-horse2zebra-G.pth" in info["metadata"]["cycletools.distilled_from"]
    assert (info["metadata"]["cycletools.domain"], info["metadata"]["cycletools.variant"]) == ("horse2zebra", "fast")
    card = STUDENT.with_suffix(".md").read_text(encoding="utf-8")
    assert info["sha256"] in card
