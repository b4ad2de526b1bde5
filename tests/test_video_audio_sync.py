"""cycletools video: re-encoded audio starts where the video's window starts, to the sample.

An audio encoder puts priming samples in front (AAC 1024, Opus 312); kept as sound, they make the whole
track late by that much (23 ms for AAC at 48 kHz). The output must say where its audio really starts
(MP4's edit list, Matroska's codec delay), so that a player's first sample is the window's first.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import pytest

from conftest import run_cli_here
from media_fixtures import audio_lag, decoded_audio, make_clip

pytest.importorskip("av", reason="the media extras are not installed")

FPS = 24


def lag_of(source: Path, output: Path, start: float, duration: float | None) -> int:
    """How many samples late the output's audio is against the source's from its first frame at or after
    ``start`` (where a trimmed output starts), by cross-correlation at the window's start and near its end."""
    reference, rate = decoded_audio(source)
    heard, out_rate = decoded_audio(output)
    assert out_rate == rate
    first_frame = math.ceil(start * FPS - 1e-6) / FPS
    origin = round(first_frame * rate)
    length = rate // 4
    ends = round(((start + duration) if duration else len(reference) / rate) * rate) - origin
    lags = {audio_lag(reference, origin, heard, at, length) for at in (2048, ends - length - 4096)}
    assert len(lags) == 1, lags  # one shift all along: nothing dropped or stretched on the way
    return lags.pop()


@pytest.mark.parametrize("audio, target, window, mode", [
    ("aac", "out.mp4", [], "copied (aac)"),                                        # the control: copied as it is
    ("aac", "out.mp4", ["--start", "1.0", "--duration", "1.5"], "re-encoded (aac → aac)"),
    ("aac", "out.mp4", ["--start", "0.52"], "re-encoded (aac → aac)"),               # first frame at 0.5417 s
    ("pcm_s16le", "out.mp4", [], "re-encoded (pcm_s16le → aac)"),                     # whole clip, AAC by re-encoding
    ("pcm_s16le", "out.mov", ["--start", "0.52", "--duration", "2"], "re-encoded (pcm_s16le → aac)"),
], ids=["copied", "aac-start-duration", "aac-start", "pcm-to-aac", "pcm-to-aac-mov-trimmed"])
def test_reencoded_aac_starts_on_the_window_to_the_sample(tmp_path: Path, tiny_generator_file: Path, audio, target,
                                                         window, mode):
    source = make_clip(tmp_path / ("clip.mp4" if audio == "aac" else "clip.mov"), frames=96, fps=Fraction(FPS),
                       audio=audio, sound="noise")
    out = tmp_path / target
    result = run_cli_here("video", str(source), "--weights", str(tiny_generator_file), "-o", str(out), *window)
    assert result.returncode == 0, result.stderr
    assert f"audio {mode}" in result.stdout
    start = float(window[1]) if window else 0.0
    duration = float(window[3]) if len(window) > 2 else None
    assert abs(lag_of(source, out, start, duration)) <= 1


@pytest.mark.parametrize("window", [[], ["--start", "0.52"]], ids=["whole", "trimmed"])
def test_reencoded_opus_in_webm_starts_on_the_window(tmp_path: Path, tiny_generator_file: Path, window):
    """WebM counts time in milliseconds: its audio can start no closer than that (48 samples)."""
    source = make_clip(tmp_path / "clip.mp4", frames=96, fps=Fraction(FPS), audio="aac", sound="noise")
    out = tmp_path / "out.webm"
    result = run_cli_here("video", str(source), "--weights", str(tiny_generator_file), "-o", str(out), *window)
    assert result.returncode == 0, result.stderr
    assert "audio re-encoded (aac → opus)" in result.stdout
    assert abs(lag_of(source, out, float(window[1]) if window else 0.0, None)) <= 48
