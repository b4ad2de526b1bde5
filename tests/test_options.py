"""Every numeric option is checked where it is parsed: one error line naming it, exit status 2."""

from __future__ import annotations

import argparse
import os

import pytest

from conftest import run_cli_here
from cycletools.cli.main import build_parser
from cycletools.cli.options import Number

BAD = ["nan", "inf", "-inf", "1e308", "-1e308", "99999999999999999999999", "-99999999999999999999999", "x"]


def numeric_options() -> list[tuple[str, str, argparse.Action]]:
    """(command, option, action) for every option of every command that takes a number."""
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    found = []
    for name, parser in commands.choices.items():
        for action in parser._actions:
            if action.option_strings and (isinstance(action.type, Number) or action.type in (int, float)):
                found.append((name, action.option_strings[0], action))
    return found


def test_no_numeric_option_takes_a_bare_int_or_float():
    options = numeric_options()
    assert len(options) > 40
    bare = [f"{command} {option}" for command, option, action in options if not isinstance(action.type, Number)]
    assert bare == []  # each says its range; a bare float takes nan and inf


def test_every_numeric_option_refuses_what_is_not_a_number_in_range():
    """Each value through the CLI's own parser (as ``cycletools COMMAND --option=value`` parses it)."""
    import contextlib
    import io

    parser = build_parser()
    for command, option, action in numeric_options():
        for value in BAD + ["0", "-1"]:
            if value in ("0", "-1") and _accepts(action.type, value):
                continue  # a value the option takes: the command goes on to other checks
            err = io.StringIO()
            with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stopped:
                parser.parse_args([command, f"{option}={value}"])
            lines = err.getvalue().strip().splitlines()
            assert stopped.value.code == 2, (command, option, value, lines)
            assert len(lines) == 1 and lines[0].startswith(f"cycletools {command}: error: argument {option}"), lines
            assert repr(value) in lines[0] and "Traceback" not in lines[0]


def test_a_numeric_usage_error_through_the_command_line_is_one_line():
    result = run_cli_here("train", "--lr", "nan")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "cycletools train: error: argument --lr: takes a number greater than 0 and at most 10, not 'nan' "
        "(see 'cycletools train --help')"]


def _accepts(number: Number, value: str) -> bool:
    try:
        number(value)
    except argparse.ArgumentTypeError:
        return False
    return True


@pytest.mark.parametrize("args, words", [
    (["--scale", "1e308"], "argument --scale: takes a number greater than 0 and at most 64"),
    (["--scale", "0"], "argument --scale"),
    (["--scale", "0.001"], "--scale 0.001 gives 1x1 frames; frames need at least 2 pixels a side"),
    (["--start", "nan"], "argument --start"),
    (["--duration", "nan"], "argument --duration"),
    (["--duration", "inf"], "argument --duration"),
    (["--threads", "0"], "argument --threads: takes a whole number at least 1"),
    (["--threads", str((os.cpu_count() or 1) + 1)], "is more than this computer's"),
    (["--stabilize", "1.5"], "argument --stabilize: takes a number at least 0 and less than 1, not '1.5'"),
])
def test_video_usage_errors_exit_2_in_one_line(tmp_path, tiny_generator_file, args, words):
    from media_fixtures import make_clip

    clip = make_clip(tmp_path / "in.mp4", frames=2)
    result = run_cli_here("video", str(clip), "--weights", str(tiny_generator_file), *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and words in lines[0], result.stderr
    assert not list(tmp_path.glob("in_*"))
