"""Training: the recipe's pieces, loss going down, exact resume (also after kill -9), bad datasets."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import cycle_error, run_cli, run_cli_here
from cycletools.data.toy import make_shapes_dataset
from cycletools.data.unpaired import EpochPlan, UnpairedImages
from cycletools.errors import CycletoolsError
from cycletools.training.config import TrainConfig, resolve_config
from cycletools.training.losses import linear_decay
from cycletools.training.pool import ImagePool
from cycletools.training.trainer import CycleGANTrainer
from cycletools.weights import load_generator

TINY = {"size": 32, "load_size": 36, "ngf": 4, "ndf": 4, "blocks": 1, "log_every": 2}


def tiny_config(data: Path, out: Path, name: str = "run", **overrides) -> TrainConfig:
    return resolve_config({"data": str(data), "name": name, "out": str(out), **TINY, **overrides})


def model_tensors(trainer: CycleGANTrainer) -> dict[str, torch.Tensor]:
    tensors = {}
    for name in ("G_A", "G_B", "D_A", "D_B"):
        tensors.update({f"{name}.{k}": v for k, v in getattr(trainer, name).state_dict().items()})
    for name in ("opt_G", "opt_D"):
        for index, state in getattr(trainer, name).state_dict()["state"].items():
            tensors.update({f"{name}.{index}.{k}": v for k, v in state.items() if torch.is_tensor(v)})
    return tensors


# ---------------------------------------------------------------- recipe pieces
def test_official_recipe_defaults():
    config = resolve_config({"data": "d", "name": "n"}, cuda_available=False)
    assert (config.recipe, config.batch_size, config.effective_lr, config.amp) == ("official", 1, 2e-4, "none")
    assert (config.epochs, config.epochs_decay, config.lambda_cycle, config.lambda_identity) == (100, 100, 10.0, 0.5)
    assert (config.size, config.effective_load_size, config.pool_size, config.beta1) == (256, 286, 50, 0.5)
    fast = resolve_config({"data": "d", "name": "n"}, cuda_available=True)
    assert (fast.recipe, fast.batch_size, fast.amp, fast.channels_last) == ("fast", 8, "bf16", True)
    assert fast.effective_lr == pytest.approx(2e-4 * 8**0.5)


def test_linear_decay_matches_official_rule():
    factor = linear_decay(100, 100)
    assert [factor(e) for e in (0, 98, 99)] == [1.0, 1.0, 1.0 - 0 / 101]
    assert factor(100) == pytest.approx(1 - 1 / 101)
    assert factor(199) == pytest.approx(1 - 100 / 101)


def test_config_file_toml_and_yaml_with_flags_on_top(tmp_path: Path):
    toml = tmp_path / "run.toml"
    toml.write_text('data = "x"\nname = "from-file"\nbatch-size = 4\nngf = 32\nrecipe = "fast"\n')
    config = resolve_config({"ngf": 16}, toml, cuda_available=True)  # the fast recipe's bf16 is kept on a GPU
    assert (config.name, config.batch_size, config.ngf, config.recipe, config.amp) == ("from-file", 4, 16, "fast", "bf16")
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("data: x\nname: y\nlambda_identity: 0\nepochs: 3\n")
    config = resolve_config({"epochs": 5}, yaml_file)
    assert (config.lambda_identity, config.epochs) == (0.0, 5)
    bad = tmp_path / "bad.toml"
    bad.write_text('data = "x"\nname = "y"\nlearning_rate = 1\n')
    with pytest.raises(CycletoolsError, match="unknown settings: learning_rate"):
        resolve_config({}, bad)
    with pytest.raises(CycletoolsError, match="must be a multiple of 4, at least 24"):
        resolve_config({"data": "x", "name": "y", "size": 30})


def test_image_pool_follows_the_reference_semantics():
    pool = ImagePool(size=3, seed=0)
    first = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: fakes returned as they are
    later = torch.full((200, 1, 1, 1), 9.0)
    returned = pool.query(later)
    from_pool = int((returned != 9.0).sum())
    assert 0 < from_pool <= 3  # old fakes come back, each only once
    state = pool.state_dict()
    again = ImagePool(size=3, seed=123)
    again.load_state_dict(state)
    probe = torch.full((20, 1, 1, 1), 5.0)
    assert torch.equal(pool.query(probe), again.query(probe.clone()))
    assert torch.equal(ImagePool(size=0).query(first), first)


def test_epoch_plan_is_unaligned_deterministic_and_split_across_ranks():
    plan = EpochPlan.make(n_a=5, n_b=8, epoch=0, seed=0)
    assert len(plan.keys) == 8  # max(|A|, |B|) pairs
    assert {a for a, _, _ in plan.keys} == set(range(5))
    assert plan.keys == EpochPlan.make(5, 8, 0, 0).keys
    assert plan.keys != EpochPlan.make(5, 8, 1, 0).keys
    ranks = [EpochPlan.make(5, 9, 0, 0, rank=r, world_size=2).keys for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 4 and not set(ranks[0]) & set(ranks[1])
    assert plan.steps(3) == 3


def test_dataset_crops_flips_and_is_reproducible(shapes_dataset: Path):
    dataset = UnpairedImages(shapes_dataset, load_size=36, crop_size=32)
    sample = dataset[(1, 2, 42)]
    assert sample["A"].shape == sample["B"].shape == (3, 32, 32)
    assert -1.0 <= float(sample["A"].min()) and float(sample["A"].max()) <= 1.0
    assert torch.equal(dataset[(1, 2, 42)]["A"], sample["A"])
    assert any(not torch.equal(dataset[(1, 2, s)]["A"], sample["A"]) for s in range(5))


# ---------------------------------------------------------------- learning and resuming
@pytest.mark.learning
def test_a_few_steps_lower_the_cycle_loss(tmp_path: Path):
    data = make_shapes_dataset(tmp_path / "shapes", count=8, size=32)
    trainer = CycleGANTrainer(tiny_config(data, tmp_path / "runs", ngf=8, blocks=2, lr=1e-3, max_steps=40,
                                          load_size=32), progress=False)
    before = cycle_error(trainer, data / "trainA")
    result = trainer.train()
    after = cycle_error(trainer, data / "trainA")
    assert result.global_step == 40
    assert after < 0.6 * before, (before, after)
    rows = (tmp_path / "runs" / "run" / "losses.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,lr,pairs_per_s,D_A,G_A,cycle_A")
    assert len(rows) == 1 + 20


def test_run_folder_contents(tmp_path: Path, shapes_dataset: Path):
    trainer = CycleGANTrainer(tiny_config(shapes_dataset, tmp_path, epochs=1, epochs_decay=1), progress=False)
    result = trainer.train()
    run = tmp_path / "run"
    assert result.finished and result.epoch == 2 and result.global_step == 12
    assert json.loads((run / "config.json").read_text())["ngf"] == 4
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    with Image.open(run / "samples" / "epoch_002.png") as grid:  # 6 rows x 2 test images of 32 px
        assert grid.size == (2 * 34 + 2, 6 * 34 + 2)
    generator, config = load_generator(run / "weights" / "a2b.safetensors")
    assert config["ngf"] == 4
    assert torch.equal(generator.model[1].weight, trainer.G_A.model[1].weight)


def test_resume_continues_bit_exactly(tmp_path: Path, shapes_dataset: Path):
    straight = CycleGANTrainer(tiny_config(shapes_dataset, tmp_path / "a", max_steps=9, save_every=2, pool_size=2), progress=False)
    straight.train()
    # 6 pairs an epoch: stop mid-epoch (step 4), then in the next epoch (step 7), then finish.
    CycleGANTrainer(tiny_config(shapes_dataset, tmp_path / "b", max_steps=4, save_every=2, pool_size=2), progress=False).train()
    for limit in (7, 9):
        resumed = CycleGANTrainer.resume(tmp_path / "b" / "run", {"max_steps": limit}, progress=False)
        resumed.train()
    expected, actual = model_tensors(straight), model_tensors(resumed)
    assert expected.keys() == actual.keys() and len(expected) > 40
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
    assert [g["lr"] for g in straight.opt_G.param_groups] == [g["lr"] for g in resumed.opt_G.param_groups]


@pytest.mark.slow
def test_kill_minus_nine_then_resume_is_bit_exact(tmp_path: Path, shapes_dataset: Path):
    args = ["train", "--data", str(shapes_dataset), "--name", "run", "--size", "32", "--load-size", "36",
            "--ngf", "4", "--ndf", "4", "--blocks", "1", "--epochs", "4", "--epochs-decay", "4",
            "--save-every", "1", "--pool-size", "3", "--device", "cpu"]
    straight = run_cli(*args, "--out", str(tmp_path / "straight"))
    assert straight.returncode == 0, straight.stderr

    killed_out = tmp_path / "killed"
    checkpoint = killed_out / "run" / "checkpoints" / "latest.pt"
    process = subprocess.Popen([sys.executable, "-m", "cycletools", *args, "--out", str(killed_out)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if checkpoint.exists() and (killed_out / "run" / "weights" / "a2b.safetensors").exists():
            break  # at least one epoch done and checkpoints being written every step
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    step = torch.load(checkpoint, weights_only=True)["global_step"]
    assert 0 < step < 48, "the run was not killed part-way"
    resumed = run_cli("train", "--name", "run", "--out", str(killed_out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"step {step}" in resumed.stderr
    for direction in ("a2b", "b2a"):
        a, _ = load_generator(tmp_path / "straight" / "run" / "weights" / f"{direction}.safetensors")
        b, _ = load_generator(killed_out / "run" / "weights" / f"{direction}.safetensors")
        for key, value in a.state_dict().items():
            assert torch.equal(value, b.state_dict()[key]), (direction, key)
    leftovers = [p.name for p in checkpoint.parent.iterdir() if p.name != "latest.pt"]
    assert leftovers == []


# ---------------------------------------------------------------- bad input
def test_corrupt_checkpoint_gets_a_clear_error(tmp_path: Path, shapes_dataset: Path):
    CycleGANTrainer(tiny_config(shapes_dataset, tmp_path, max_steps=1), progress=False).train()
    checkpoint = tmp_path / "run" / "checkpoints" / "latest.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    result = run_cli_here("train", "--name", "run", "--out", str(tmp_path), "--resume")
    assert result.returncode == 1
    assert "corrupt or unreadable checkpoint" in result.stderr and "Traceback" not in result.stderr


def test_existing_run_needs_resume_and_resume_refuses_arch_changes(tmp_path: Path, shapes_dataset: Path):
    CycleGANTrainer(tiny_config(shapes_dataset, tmp_path, max_steps=1), progress=False).train()
    with pytest.raises(CycletoolsError, match="already has a checkpoint; add --resume"):
        CycleGANTrainer(tiny_config(shapes_dataset, tmp_path), progress=False)
    with pytest.raises(CycletoolsError, match=r"cannot change ngf when resuming \(the run has ngf=4\)"):
        CycleGANTrainer.resume(tmp_path / "run", {"ngf": 8})


@pytest.mark.parametrize("problem", ["missing_B", "empty_A", "missing_data"])
def test_unusable_datasets_are_refused(tmp_path: Path, problem: str):
    data = make_shapes_dataset(tmp_path / "d", count=2, test_count=0)
    if problem == "missing_B":
        for f in (data / "trainB").iterdir():
            f.unlink()
        (data / "trainB").rmdir()
    elif problem == "empty_A":
        for f in (data / "trainA").iterdir():
            f.unlink()
        (data / "trainA" / "readme.txt").write_text("no images here")
    else:
        data = tmp_path / "nowhere"
    result = run_cli_here("train", "--data", str(data), "--name", "x", "--out", str(tmp_path / "runs"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    expected = {"missing_B": "missing trainB", "empty_A": "no images found (1 non-image files skipped)",
                "missing_data": "dataset folder not found"}[problem]
    assert expected in result.stderr


def test_corrupt_training_images_are_skipped_with_a_warning(tmp_path: Path, recwarn):
    data = make_shapes_dataset(tmp_path / "d", count=4, test_count=0)
    (data / "trainA" / "square_001.png").write_bytes(b"garbage")
    (data / "trainB" / "notes.txt").write_text("not an image")
    trainer = CycleGANTrainer(tiny_config(data, tmp_path / "runs", max_steps=8), progress=False)
    assert trainer.dataset.skipped_files == 1
    result = trainer.train()
    assert result.global_step == 8
    messages = [str(w.message) for w in recwarn]
    assert any("square_001.png" in m and "skipping unreadable training image" in m for m in messages)


@pytest.mark.slow
def test_ctrl_c_stops_after_the_step_saves_and_resumes(tmp_path: Path, shapes_dataset: Path):
    args = ["train", "--data", str(shapes_dataset), "--name", "run", "--out", str(tmp_path), "--size", "32",
            "--load-size", "36", "--ngf", "4", "--ndf", "4", "--blocks", "1", "--epochs", "30",
            "--epochs-decay", "0", "--workers", "1", "--device", "cpu"]
    process = subprocess.Popen([sys.executable, "-m", "cycletools", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    weights = tmp_path / "run" / "weights" / "a2b.safetensors"
    deadline = time.time() + 120
    while time.time() < deadline and not weights.exists():
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert "(interrupted); checkpoint saved" in stdout and "--resume" in stdout
    state = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=True)
    assert 6 <= state["global_step"] < 180
    assert f"stopped at step {state['global_step']} " in stdout
    resumed = run_cli("train", "--name", "run", "--out", str(tmp_path), "--resume", "--max-steps",
                      str(state["global_step"] + 2))
    assert resumed.returncode == 0, resumed.stderr
    assert f"stopped at step {state['global_step'] + 2} (--max-steps reached)" in resumed.stdout


def test_losses_are_logged_at_multiples_of_log_every_after_a_resume(tmp_path: Path):
    data = make_shapes_dataset(tmp_path / "shapes", count=20, size=40, test_count=0)
    CycleGANTrainer(tiny_config(data, tmp_path, max_steps=3, log_every=5), progress=False).train()
    CycleGANTrainer.resume(tmp_path / "run", {"max_steps": 16}, progress=False).train()
    with open(tmp_path / "run" / "losses.csv", newline="") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert steps == [5, 10, 15]  # not 8 and 13: the interval does not restart at the resume point
