"""The command line's surface: help, version, usage errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

import cycletools
from conftest import run_cli as run
from cycletools.cli.main import main


def test_version_and_help():
    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"cycletools {cycletools.__version__}"
    top = run("--help")
    assert top.returncode == 0
    for command in ("train", "translate", "plugins", "weights"):
        assert command in top.stdout
    train = run("train", "--help")
    assert train.returncode == 0
    for option in ("--data", "--epochs-decay", "--lambda-identity", "--recipe", "--resume", "--config", "torchrun"):
        assert option in train.stdout
    translate = run("translate", "--help")
    assert translate.returncode == 0 and "alpha is carried over" in translate.stdout


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage: cycletools" in capsys.readouterr().out


def test_translate_needs_a_generator(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")  # inputs are checked first: give a real one
    result = run("translate", "x.png", cwd=tmp_path)
    assert result.returncode == 2
    assert "name the generator by one of: a domain (--plugin NAME), a weights file (--weights FILE) or a training run (--run DIR)" in result.stderr
    both = run("translate", "x.png", "--run", "r", "--weights", "w.pth", cwd=tmp_path)
    assert both.returncode == 2


def test_cli_parser_with_plugins_does_not_load_torch():
    code = "import sys, cycletools.cli.main as m; m.build_parser(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False"


def test_fast_recipe_runs_on_cpu(tmp_path, shapes_dataset):
    result = run("train", "--data", str(shapes_dataset), "--name", "fast", "--out", str(tmp_path), "--recipe",
                 "fast", "--batch-size", "2", "--size", "32", "--load-size", "36", "--ngf", "4", "--ndf", "4",
                 "--blocks", "1", "--max-steps", "2", "--log-every", "1")
    assert result.returncode == 0, result.stderr
    assert "recipe fast" in result.stderr and "batch 2" in result.stderr
    rows = (tmp_path / "fast" / "losses.csv").read_text().splitlines()[1:]
    assert len(rows) == 2
    assert all(float(v) == float(v) for row in rows for v in row.split(",")[4:])  # no NaN


def _into_closed_pipe(*args: str) -> tuple[int, str]:
    """Run ``cycletools ARGS`` with its stdout a pipe whose reading end is already closed."""
    process = subprocess.Popen([sys.executable, "-m", "cycletools", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    process.stdout.close()  # like `| head -1` after its line, before cycletools has written anything
    stderr = process.stderr.read()
    return process.wait(timeout=60), stderr


@pytest.mark.parametrize("args", [("plugins",), ("plugins", "--json"), ("--help",), ("weights", "list")])
def test_output_into_a_closed_pipe_exits_quietly(args):
    status, stderr = _into_closed_pipe(*args)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    # 128 + SIGPIPE, what a shell reports for tools killed by the pipe (argparse's help ignores the error: 0)
    assert status == (0 if args == ("--help",) else 141), stderr


def test_piped_into_head():
    result = subprocess.run(f"'{sys.executable}' -m cycletools plugins | head -1", shell=True, capture_output=True,
                            text=True, timeout=60)
    assert result.stdout.startswith("NAME") and len(result.stdout.splitlines()) == 1
    assert "Traceback" not in result.stderr and result.stderr == ""
