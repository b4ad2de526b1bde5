"""Multi-process training through torchrun with the gloo backend (two CPU processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


def launch(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*TORCHRUN, *args], capture_output=True, text=True, timeout=300, env=env)


def test_ddp_ranks_stay_in_sync(tmp_path: Path, shapes_dataset: Path):
    result = launch(str(Path(__file__).with_name("ddp_worker.py")), str(shapes_dataset), str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2] and [r["step"] for r in ranks] == [5, 5]
    initial_seed_model = ranks[0]["state"]
    for key, value in initial_seed_model.items():
        assert torch.equal(value, ranks[1]["state"][key]), key
    checkpoints = tmp_path / "ddp" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == ["latest.pt", "latest.rank1.pt"]
    assert torch.load(checkpoints / "latest.rank1.pt", weights_only=True)["global_step"] == 5


def test_same_command_line_under_torchrun(tmp_path: Path, shapes_dataset: Path):
    result = launch("-m", "cycletools", "train", "--data", str(shapes_dataset), "--name", "cli", "--out",
                    str(tmp_path), "--size", "32", "--load-size", "36", "--ngf", "4", "--ndf", "4",
                    "--blocks", "1", "--max-steps", "3", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(2 process(es))" in result.stderr
    assert result.stdout.count("stopped at step 3 (--max-steps reached)") == 1
    assert (tmp_path / "cli" / "weights" / "a2b.safetensors").is_file()
