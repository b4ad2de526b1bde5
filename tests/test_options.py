"""Every numeric option is checked where it is parsed: one error line naming it, exit status 2."""

from __future__ import annotations

import argparse
import os

import pytest

from conftest import run_cli_here
from cycletools.cli.main import build_parser
from cycletools.cli.options import Number

BAD = ["nan", "inf", "-inf", "1e308", "-1e308", "99999999999999999999999", "-99999999999999999999999", "x",
       "1_0", "١٠"]  # Python reads both as 10


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


def test_an_option_whose_help_gives_0_a_meaning_takes_0():
    import re

    documented = {(command, option): action for command, option, action in numeric_options()
                  if action.help and re.search(r"(?<![\d.])0(:| means| turns| leaves| =)", action.help)}
    assert ("train", "--save-every") in documented and len(documented) >= 3
    for (command, option), action in documented.items():
        assert action.type("0") == 0, (command, option)


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


@pytest.mark.parametrize("value", ["2.5", "0", "NaN", "-1", "200", "1e9mb", ""])
def test_serve_refuses_an_upload_limit_it_cannot_read(value: str, capsys):
    """Parsed only (a value taken would start a server): Gradio's own reading of it ended in a traceback."""
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["serve", "--max-upload", value])
    lines = capsys.readouterr().err.strip().splitlines()
    assert stopped.value.code == 2 and len(lines) == 1
    assert "argument --max-upload: takes a size such as 200mb" in lines[0]
    assert build_parser().parse_args(["serve", "--max-upload", " 5 GB"]).max_upload == "5gb"


def test_training_crops_too_small_for_the_discriminator_are_refused(tmp_path):
    from cycletools.data.toy import make_shapes_dataset

    data = make_shapes_dataset(tmp_path / "shapes", count=2, size=32)
    result = run_cli_here("train", "--data", str(data), "--name", "x", "--out", str(tmp_path), "--crop-size", "16",
                          "--load-size", "20", "--max-steps", "1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "size (--crop-size) must be a multiple of 4, at least 24 for a 3-layer discriminator, not 16" in result.stderr


def test_one_image_to_a_file_of_no_image_format_is_refused(tmp_path, tiny_generator_file):
    from PIL import Image

    Image.new("RGB", (20, 10)).save(tmp_path / "in.png")
    result = run_cli_here("translate", str(tmp_path / "in.png"), "--weights", str(tiny_generator_file), "-o",
                          str(tmp_path / "out.txt"))
    assert result.returncode == 2 and "-o " in result.stderr and "not an image format" in result.stderr
    assert not (tmp_path / "out.txt").exists()
    folder = run_cli_here("translate", str(tmp_path / "in.png"), "--weights", str(tiny_generator_file), "-o",
                          str(tmp_path / "out.v2") + "/")
    assert folder.returncode == 0 and (tmp_path / "out.v2" / "in.png").is_file()
    Image.new("RGB", (20, 10)).save(tmp_path / "second.png")
    several = run_cli_here("translate", str(tmp_path / "in.png"), str(tmp_path / "second.png"), "--weights",
                           str(tiny_generator_file), "-o", str(tmp_path / "one.png"))
    assert several.returncode == 2 and "names a file, but there are 2 inputs" in several.stderr
    assert len(several.stderr.strip().splitlines()) == 1 and not (tmp_path / "one.png").exists()


def test_a_bad_working_size_is_refused_where_it_is_parsed(cli_here):
    """--working-size 0/1/nan: one usage line, exit 2, before any generator is looked for (issue 25, item 9)."""
    for value in ("0", "1", "nan", "1_0", "-8"):
        result = cli_here("translate", "missing.png", "--weights", "missing.pth", "--working-size", value)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip() == (f"cycletools translate: error: argument --working-size: takes a number of "
                                         f"pixels (at least 8) or 'native', not '{value}' (see 'cycletools translate "
                                         "--help')")
