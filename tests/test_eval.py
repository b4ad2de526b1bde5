"""cycletools eval: metric sanity, an end-to-end run on a tiny generated set, the reference figures."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import needs_shared, run_cli_here, shared_root
from cycletools.data.toy import make_shapes_dataset
from cycletools.evaluation import metrics
from cycletools.utils.files import file_sha256

pytest.importorskip("torchmetrics", reason="the eval extras are not installed")


def run_eval(*args: str, home: Path) -> subprocess.CompletedProcess:
    return run_cli_here(*args, env={"CYCLETOOLS_HOME": str(home)})


def test_fid_kid_and_reconstruction_sanity():
    torch.manual_seed(0)
    a = torch.randn(200, 16)
    b = torch.randn(200, 16)
    assert metrics.fid(a, a) == pytest.approx(0.0, abs=1e-6)
    assert metrics.fid(a, b) < 1.0 < metrics.fid(a, b + 3.0)
    far = metrics.kid(a, b + 3.0)[0]
    assert far > 1.0 and abs(metrics.kid(a, a)[0]) < 0.1 * far
    x = torch.zeros(1, 3, 4, 4)
    l1, psnr = metrics.reconstruction_error(x, x + 0.2)  # 0.1 on the [0, 1] scale
    assert l1 == pytest.approx(0.2) and psnr == pytest.approx(20.0)


def test_eval_end_to_end_on_a_tiny_generated_set(tmp_path: Path, tiny_generator_file: Path):
    data = make_shapes_dataset(tmp_path / "shapes", count=2, size=48, test_count=5)
    home = tmp_path / "home"
    imported = run_eval("weights", "import", str(tiny_generator_file), "--plugin", "zebra2horse", home=home)
    assert imported.returncode == 0, imported.stderr
    report_path = tmp_path / "report.json"
    result = run_eval("eval", "--plugin", "horse2zebra", "--weights", str(tiny_generator_file), "--data", str(data),
                      "--direction", "both", "--out", str(report_path), "--save-images", str(tmp_path / "fakes"),
                      home=home)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(report_path.read_text())
    assert json.loads(result.stdout) == report
    assert {"features", "fid_kid", "classifier", "torch"} <= set(report["protocol"])
    a2b, b2a = report["results"]
    assert (a2b["direction"], a2b["plugin"], b2a["direction"], b2a["plugin"]) == ("a2b", "horse2zebra", "b2a", "zebra2horse")
    assert (a2b["source_count"], a2b["real_count"]) == (5, 5)
    assert a2b["weights_sha256"] == file_sha256(tiny_generator_file)
    assert a2b["fid"] > 0 and 0 < a2b["kid"] < 10 and a2b["kid_std"] >= 0 and a2b["seconds"]["ms_per_image"] > 0
    assert a2b["classifier"]["class"] == 340 and 0.0 <= a2b["classifier"]["share"] <= 1.0
    assert b2a["classifier"]["class"] == 339
    assert a2b["cycle"]["l1"] > 0 and a2b["cycle"]["psnr"] > 0  # the reverse (zebra2horse) is cached
    # horse2zebra has only its bundled generator in this home: the b2a cycle goes back through it
    assert Path(b2a["cycle"]["reverse_weights"]).parts[-2:] == ("weights", "horse2zebra.safetensors")
    assert sorted(p.name for p in (tmp_path / "fakes" / "horse2zebra").iterdir())[0] == "square_000.png"
    assert "a2b: FID" in result.stderr and "% classified zebra" in result.stderr
    cache = list((home / "eval-cache").iterdir())
    assert len(cache) == 2  # real features of testA and testB

    folders = run_eval("eval", "--fake", str(tmp_path / "fakes" / "horse2zebra"), "--real", str(data / "testB"),
                       "--classify", "340", home=home)
    assert folders.returncode == 0, folders.stderr
    entry = json.loads(folders.stdout)["results"][0]
    assert entry["fid"] == pytest.approx(a2b["fid"], abs=0.5)  # PNG round trip of the same images
    assert entry["classifier"]["share"] == a2b["classifier"]["share"]
    assert len(list((home / "eval-cache").iterdir())) == 2  # testB came from the cache


@pytest.mark.parametrize("args,message", [
    (["--fake", "nowhere", "--real", "nowhere"], "image folder not found: nowhere"),
    (["--fake", "x"], "--fake and --real go together"),
    (["--plugin", "horse2zebra"], "give --plugin NAME --data DIR"),
])
def test_eval_refusals(tmp_path: Path, args, message):
    result = run_eval("eval", *args, home=tmp_path)
    assert result.returncode in (1, 2)
    assert message in result.stderr and "Traceback" not in result.stderr


HORSE2ZEBRA = shared_root() / "datasets" / "horse2zebra"


@pytest.mark.shared
@needs_shared("datasets/horse2zebra")
def test_the_bundled_generator_reproduces_the_published_protocol_figures(tmp_path: Path):
    untranslated = run_eval("eval", "--fake", str(HORSE2ZEBRA / "testA"), "--real", str(HORSE2ZEBRA / "testB"),
                            "--classify", "340", home=tmp_path)
    assert untranslated.returncode == 0, untranslated.stderr
    horses = json.loads(untranslated.stdout)["results"][0]
    assert horses["fid"] == pytest.approx(235.7, abs=1.0)
    assert horses["classifier"]["share"] == 0.0

    # No --weights: horse2zebra's bundled generator, the reference file converted, on a fresh install.
    result = run_eval("eval", "--plugin", "horse2zebra", "--data", str(HORSE2ZEBRA), "--device", "cpu", home=tmp_path)
    assert result.returncode == 0, result.stderr
    entry = json.loads(result.stdout)["results"][0]
    assert (entry["variant"], Path(entry["weights"]).name) == ("bundled", "horse2zebra.safetensors")
    assert entry["architecture"]["arch"] == "mobile_resnet"
    assert entry["fid"] <= 66
    assert (entry["source_count"], entry["real_count"]) == (120, 140)
    assert entry["fid"] == pytest.approx(63.7, abs=1.0)
    assert 1000 * entry["kid"] == pytest.approx(24.0, abs=1.5)
    assert entry["classifier"]["share"] == pytest.approx(0.875, abs=0.025)
