"""benchmarks/gpu_suite.py --smoke: every stage of the GPU run at toy size on the CPU, so it keeps working."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from cycletools.weights import load_generator

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_smoke_run_reports_every_stage_and_brings_back_weights(tmp_path: Path):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), "--out", str(out), "--smoke",
                           "--part-bytes", "20000"], capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()]
    assert [line["stage"] for line in lines] == ["environment", "cuda_tests", "speed", "distill", "train"]
    assert all(line["status"] == "ok" for line in lines), lines
    environment, cuda_tests, speed, distill, train = lines
    assert environment["torch"] == torch.__version__ and environment["commit"]
    assert cuda_tests["failed"] == 0 and cuda_tests["passed"] + cuda_tests["skipped"] >= 7
    cases = {case["case"] for case in speed["cases"]}
    assert {"train official", "train fast"} <= cases and any(c.startswith("translate") for c in cases)
    assert speed["fast_over_official"] > 0
    assert distill["log"]["lr"] == "0"  # the time-boxed student's learning rate ended at zero
    student, config = load_generator(out / "horse2zebra.fast.safetensors")
    assert config["arch"] == "mobile_resnet"
    assert train["log"]["lr"] == "0"

    parts = train["parts"]
    assert len(parts) >= 2 and all((out / name).stat().st_size <= 20000 for name in parts)
    joined = tmp_path / "generators.tar"
    joined.write_bytes(b"".join((out / name).read_bytes() for name in parts))
    with tarfile.open(joined) as tar:
        assert sorted(tar.getnames()) == ["a2b.safetensors", "b2a.safetensors"]
        tar.extractall(tmp_path / "generators", filter="data")
    for direction in ("a2b", "b2a"):
        generator, config = load_generator(tmp_path / "generators" / f"{direction}.safetensors")
        assert config["ngf"] == 4
        assert generator(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    with Image.open(out / "samples.jpg") as grid:
        assert grid.format == "JPEG" and grid.width > 32
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["report.jsonl", "cuda-tests.log", "horse2zebra.fast.safetensors", "samples.jpg", *parts])


def test_unknown_stage_is_refused(tmp_path: Path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), "--out", str(tmp_path),
                           "--stages", "environment,warp"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "unknown stages: warp" in done.stderr
