"""Time-boxed training: durations, the step plan, and runs that end inside their budget."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from conftest import run_cli, run_cli_here
from cycletools.data.toy import make_shapes_dataset
from cycletools.errors import CycletoolsError
from cycletools.training import budget as budget_module
from cycletools.training.budget import TimeBudget, parse_duration
from cycletools.training.config import resolve_config
from cycletools.training.trainer import CycleGANTrainer
from cycletools.weights import load_generator

TINY = {"size": 32, "load_size": 36, "ngf": 4, "ndf": 4, "blocks": 1, "log_every": 10, "save_every": 0}


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400),
                                           ("1.5h", 5400), ("45", 45), (20, 20), ("2m 30s", 150)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "30x", "-5m", "0", "m30", "30mm", "366d", "1e12"])
def test_bad_durations_are_refused(text):
    with pytest.raises(CycletoolsError, match="duration|positive|more than a year"):
        parse_duration(text)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def run_plan(budget: TimeBudget, clock: FakeClock, seconds_per_step, start_step: int = 0, limit: int = 10_000):
    """Drive the plan as the trainer does; returns the factor used at each step."""
    factors, step = {}, start_step
    budget.start(step)
    while not budget.finished(step) and step < limit:
        factors[step + 1] = budget.factor(step + 1)
        clock.now += seconds_per_step(step + 1)
        step += 1
        budget.after_step(step)
    return factors, step


def test_plan_is_half_constant_then_linear_to_zero_inside_the_budget(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(budget_module.time, "monotonic", clock)
    budget = TimeBudget(100.0)
    factors, last = run_plan(budget, clock, lambda step: 5.0 if step <= 2 else 0.1)  # slow warm-up steps
    assert budget.finished(last) and last == budget.total_steps
    assert clock.now - 1000.0 <= 100.0  # the planned steps fit in the budget (with the 2% reserve)
    assert last >= 0.9 * (100 - 10 - 2) / 0.1  # and use most of it
    assert factors[last] == 0.0  # zero at the last step
    constant = [k for k, f in factors.items() if f == 1.0]
    assert abs(len(constant) - last / 2) <= 2  # the first half at the full rate
    decay = [factors[k] for k in range(len(constant) + 1, last + 1)]
    steps = [a - b for a, b in zip(decay, decay[1:])]
    assert max(steps) == pytest.approx(min(steps))  # a straight line down


def test_plan_shortens_the_decay_when_the_run_falls_behind(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(budget_module.time, "monotonic", clock)
    budget = TimeBudget(100.0)
    factors, last = run_plan(budget, clock, lambda step: 0.1 if step < 600 else 0.3)  # slows down 3x
    assert clock.now - 1000.0 <= 101.0
    assert factors[last] == 0.0
    values = [factors[k] for k in sorted(factors)]
    assert all(a >= b for a, b in zip(values, values[1:]))  # never rises again


def test_decay_begins_by_half_the_time_even_when_the_run_slows_down(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(budget_module.time, "monotonic", clock)
    budget = TimeBudget(100.0)
    began = []
    budget.start(0)
    step = 0
    while not budget.finished(step) and step < 10_000:
        clock.now += 0.05 if step < 300 else 2.0  # fast, then 40x slower: the average speed lags behind
        step += 1
        budget.after_step(step)
        if budget.decaying and not began:
            began.append(clock.now - 1000.0)
    assert began and began[0] <= 50.0 + 2.0  # the second half of the time is the decay
    assert budget.summary(step).startswith(f"{step} steps in ")


def test_summary_says_when_a_run_went_over_its_budget(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(budget_module.time, "monotonic", clock)
    budget = TimeBudget(20.0)
    budget.start(0)
    clock.now += 19.4
    assert budget.summary(50) == "50 steps in 19s of the 20s time budget"
    clock.now += 3.6
    assert budget.summary(60) == "60 steps in 23s, over the 20s time budget by 3s"
    short = TimeBudget(1.6)
    short.start(0)
    clock.now += 1.62  # within what the summary shows: not "over by 0s"
    assert short.summary(5) == "5 steps in 1.6s of the 1.6s time budget"
    clock.now += 0.4
    assert short.summary(6) == "6 steps in 2s, over the 1.6s time budget by 0.4s"


def test_plan_survives_a_resume(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(budget_module.time, "monotonic", clock)
    budget = TimeBudget(60.0)
    _, step = run_plan(budget, clock, lambda step: 0.1, limit=400)  # stopped in the decay phase
    assert budget.decaying and step == 400
    state = budget.state_dict()
    assert state["used"] == pytest.approx(40.0)
    clock.now += 3600  # an hour passes before the resume: only training time counts
    resumed = TimeBudget.from_state(state)
    _, last = run_plan(resumed, clock, lambda step: 0.1, start_step=step)
    assert last == budget.total_steps == resumed.total_steps
    assert resumed.elapsed() <= 60.0


def lrs(run: Path) -> list[tuple[int, float]]:
    with open(run / "losses.csv", newline="") as handle:
        return [(int(row["step"]), float(row["lr"])) for row in csv.DictReader(handle)]


@pytest.mark.slow
def test_cli_run_ends_inside_its_budget_with_the_lr_at_zero(tmp_path: Path):
    data = make_shapes_dataset(tmp_path / "shapes", count=6, size=40)
    result = run_cli("train", "--data", str(data), "--name", "run", "--out", str(tmp_path), "--time-budget", "20s",
                     "--crop-size", "32", "--load-size", "36", "--ngf", "4", "--ndf", "4", "--blocks", "1",
                     "--log-every", "10", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "time budget 20s" in result.stderr and "falls linearly to zero at step" in result.stderr
    run = tmp_path / "run"
    state = torch.load(run / "checkpoints" / "latest.pt", weights_only=True)
    steps = state["global_step"]
    assert f"finished {steps} steps in " in result.stdout and "20s time budget" in result.stdout
    # Inside the budget, give or take what the run itself measured: on a loaded machine a step can take
    # far longer than the ones the plan was made from, and the plan can only react after it.
    slack = 3 * state["budget"]["slowest_step"]
    assert state["budget"]["total_steps"] == steps and state["budget"]["used"] <= 20 * 1.25 + slack
    # The budget counts training; starting Python and importing torch come on top and are not held to it
    # (on a loaded machine they alone took more than 10 s).
    logged = lrs(run)
    assert logged[-1] == (steps, 0.0)  # the learning rate reaches zero at the last step
    rates = [lr for _, lr in logged]
    assert rates == sorted(rates, reverse=True) and rates[0] <= 2e-4 * (1 + 1e-6)  # it only ever falls
    plan = state["budget"]
    if plan["decay_from"] == 1.0:  # one plan from start to end (no slow-down re-planned it): its exact schedule
        start, total = plan["decay_start"], plan["total_steps"]
        # A machine loaded enough can start the decay before the first log step; the schedule holds all the same.
        expected = [2e-4 if s <= start else 2e-4 * (total - s) / (total - start) for s, _ in logged]
        assert rates == pytest.approx(expected, rel=1e-4, abs=1e-9)
    assert all(s % 10 == 0 or s % 6 == 0 for s, _ in logged[:-1])  # --log-every steps and epoch ends (6 pairs)
    generator, config = load_generator(run / "weights" / "a2b.safetensors")  # complete and loadable
    assert config["ngf"] == 4 and generator(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)


@pytest.mark.slow
def test_interrupted_budgeted_run_resumes_the_same_plan(tmp_path: Path, monkeypatch):
    """On the budget's own fake clock, where every step takes 0.1 s however loaded the machine is (on the real
    clock a slow machine shortened the decay to one step, the run's last, and nothing could be interrupted)."""
    clock = FakeClock()
    monkeypatch.setattr(budget_module, "time", SimpleNamespace(monotonic=clock))
    data = make_shapes_dataset(tmp_path / "shapes", count=6, size=40)
    config = resolve_config({"data": str(data), "name": "run", "out": str(tmp_path), "time_budget": "12s",
                             **TINY})
    trainer = CycleGANTrainer(config, progress=False)
    step = trainer.train_step

    def step_then_stop_once_decaying(*args, **kwargs):
        """Ctrl-C sent from inside a step: three steps into the decay."""
        losses = step(*args, **kwargs)
        clock.now += 0.1
        budget, done = trainer.budget, trainer.global_step + 1  # the step that just ran
        if budget.decaying and done == budget.decay_start + 3:
            os.kill(os.getpid(), signal.SIGINT)  # handled by the run's StopRequest before its next step
        return losses

    trainer.train_step = step_then_stop_once_decaying
    first = trainer.train()
    assert not first.finished and trainer.budget.decaying
    planned = trainer.budget.total_steps
    assert 100 <= planned <= 120  # 12 s of 0.1-s steps, less the reserve for saving
    assert first.global_step == trainer.budget.decay_start + 3 < planned
    resumed = CycleGANTrainer.resume(tmp_path / "run", progress=False)
    assert resumed.budget.total_steps == planned
    resumed_step = resumed.train_step

    def step_on_the_clock(*args, **kwargs):
        losses = resumed_step(*args, **kwargs)
        clock.now += 0.1
        return losses

    resumed.train_step = step_on_the_clock
    second = resumed.train()
    # The same plan, finished where it was planned to.
    assert second.finished and second.global_step == resumed.budget.total_steps == planned
    assert resumed.budget.elapsed() <= 12 * 1.01
    logged = lrs(tmp_path / "run")
    assert logged[-1] == (second.global_step, 0.0)
    assert resumed.opt_G.param_groups[0]["lr"] == 0.0


def test_budget_cannot_change_on_resume_and_must_be_positive(tmp_path: Path):
    data = make_shapes_dataset(tmp_path / "shapes", count=2, size=40, test_count=0)
    CycleGANTrainer(resolve_config({"data": str(data), "name": "run", "out": str(tmp_path), "time_budget": 60,
                                    "max_steps": 1, **TINY}), progress=False).train()
    with pytest.raises(CycletoolsError, match="cannot change time_budget when resuming"):
        CycleGANTrainer.resume(tmp_path / "run", {"time_budget": 30.0})
    # The same command line again with --resume: the same budget, written as it was (issue 25, item 8).
    same = run_cli_here("train", "--data", str(data), "--name", "run", "--out", str(tmp_path), "--time-budget", "1m",
                        "--max-steps", "1", "--resume")
    assert same.returncode == 0 and "cannot change" not in same.stderr, same.stderr
    changed = run_cli_here("train", "--data", str(data), "--name", "run", "--out", str(tmp_path), "--time-budget",
                           "2m", "--resume")
    assert changed.returncode == 1
    assert "cannot change time_budget when resuming (the run has time_budget=60.0)" in changed.stderr
    result = run_cli_here("train", "--data", str(data), "--name", "x", "--out", str(tmp_path), "--time-budget", "soon")
    assert result.returncode == 1 and "not a duration: 'soon'" in result.stderr and "Traceback" not in result.stderr



@pytest.mark.parametrize("command", ["train", "distill"])
def test_a_bad_budget_is_refused_before_torch_loads(tmp_path: Path, command: str):
    argv = [command, "--data", str(tmp_path), "--time-budget", "abc"] + (["--plugin", "horse2zebra"]
                                                                         if command == "distill" else [])
    probe = ("import sys; from cycletools.cli.main import main; "
             f"code = main({argv!r}); print(code, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["1", "False"], result.stderr  # refused, and torch was never imported
    assert result.stderr.strip() == "cycletools: error: not a duration: 'abc' (examples: 90s, 30m, 2h, 1h30m)"
