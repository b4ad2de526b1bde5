"""cycletools video on damaged input: replaced frames keep the clock, damaged audio is left out.

A burst of overwritten bytes in the middle of an MP4 (a bad sector, a broken download) makes some
H.264 and AAC packets undecodable while the index still lists them all. Every frame the index lists
must come out, each at its own time on the frame-rate grid, and the audio packets that cannot decode
must not be carried into the output.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import pytest

from conftest import run_cli_here
from media_fixtures import (audio_lag, damage, decoded_audio, frame_times, make_clip,
                            undecodable_audio_packets)

pytest.importorskip("av", reason="the media extras are not installed")
from cycletools.media.video import FrameReader, probe  # noqa: E402

FPS = 30
FRAMES = 90  # 3 s


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """3 s of 160×120 H.264 (B-frames) + AAC with grain, about 480 KB: a camera's bitrate, not a cartoon's."""
    return make_clip(tmp_path_factory.mktemp("damaged") / "clip.mp4", width=160, height=120, fps=Fraction(FPS),
                     frames=FRAMES, audio="aac", grain=40, sound="noise")


def replaced(stdout: str) -> int:
    found = re.search(r"(\d+) undecodable frame\(s\) replaced by the previous one", stdout)
    return int(found[1]) if found else 0


@pytest.mark.parametrize("fill", ["ff", "zeros", "random"])
def test_damaged_mp4_keeps_every_frame_on_the_grid_and_drops_damaged_audio(tmp_path: Path, clip: Path,
                                                                          tiny_generator_file: Path, fill: str):
    damaged = damage(clip, tmp_path / "damaged.mp4", 20_000, fill)
    assert undecodable_audio_packets(damaged) > 0  # the burst hits both streams

    reader = FrameReader(damaged)
    frames = list(reader)
    assert [f.time for f in frames] == pytest.approx([i / FPS for i in range(FRAMES)], abs=1e-4)
    repeated = [f.index for f in frames if f.repeated]
    assert repeated and reader.corrupt == len(repeated)
    assert all(frames[i].image is frames[i - 1].image for i in repeated)  # the previous frame stands in

    out = tmp_path / "out.mp4"
    result = run_cli_here("video", str(damaged), "--weights", str(tiny_generator_file), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert replaced(result.stdout) == len(repeated) and f"{FRAMES} frames in" in result.stdout
    assert "audio re-encoded (aac → aac): damaged packets became silence" in result.stdout
    assert frame_times(out) == pytest.approx([i / FPS for i in range(FRAMES)], abs=1e-4)
    assert probe(out).fps == FPS
    assert undecodable_audio_packets(out) == 0
    # Played back to back, as players play audio, the sound past the damage is where it belongs: the
    # damaged packets' time is silence, not a hole that a player closes up (it was 279 ms ahead; issue 25).
    reference, rate = decoded_audio(clip)
    heard = back_to_back(out)
    length = rate // 4
    assert audio_lag(reference, 0, heard, rate // 2, length) == 0             # 0.5 s, before the damage
    assert abs(audio_lag(reference, 0, heard, int(rate * 2.5), length)) <= 2  # 2.5 s, past it (about 1.5 s)


def back_to_back(path: Path):
    """The first audio channel as a player that plays decoded samples one after another hears it (timestamps
    ignored)."""
    import av
    import numpy as np

    with av.open(str(path)) as container:
        pieces = []
        for frame in container.decode(audio=0):
            samples = frame.to_ndarray()
            pieces.append(samples[0] if frame.format.is_planar else samples[0, ::len(frame.layout.channels)])
    return np.concatenate(pieces).astype(np.float64)


def test_damaged_mp4_trimmed_keeps_its_audio_in_place_past_the_damage(tmp_path: Path, clip: Path,
                                                                     tiny_generator_file: Path):
    """Re-encoded (trimmed), the audio the damage took is silence of the same length: what follows stays in sync."""
    damaged = damage(clip, tmp_path / "damaged.mp4", 20_000)
    out = tmp_path / "out.mp4"
    result = run_cli_here("video", str(damaged), "--weights", str(tiny_generator_file), "-o", str(out),
                          "--start", "0.5", "--duration", "2.4")
    assert result.returncode == 0, result.stderr
    assert replaced(result.stdout) > 0 and "audio re-encoded (aac → aac)" in result.stdout
    assert frame_times(out) == pytest.approx([i / FPS for i in range(72)], abs=1e-4)
    assert undecodable_audio_packets(out) == 0
    reference, rate = decoded_audio(clip)  # the undamaged clip's sound
    heard, _ = decoded_audio(out)
    origin, length = rate // 2, rate // 4
    before = audio_lag(reference, origin, heard, 2048, length)       # 0.54 s in the clip
    after = audio_lag(reference, origin, heard, rate * 2, length)    # 2.5 s in the clip, past the damage (~1.5 s)
    assert (before, after) == (0, 0)


def test_a_stream_without_timestamps_gets_the_frame_rates_times(tmp_path: Path, tiny_generator_file: Path):
    """A raw H.264 stream has no timestamps at all: frames go on the grid of the rate it declares, not all at 0."""
    import av

    from media_fixtures import moving_square

    raw = tmp_path / "raw.h264"
    with av.open(str(raw), "w", format="h264") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(moving_square(i, 64, 48), format="rgb24")
            frame.pts = i
            for packet in [*stream.encode(frame), *([] if i < 9 else stream.encode())]:
                container.mux(packet)
    fps = probe(raw).fps
    assert frame_times(raw) == pytest.approx([i / fps for i in range(10)])
    out = tmp_path / "out.mp4"
    result = run_cli_here("video", str(raw), "--weights", str(tiny_generator_file), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert frame_times(out) == pytest.approx([i / fps for i in range(10)], abs=1e-4)


@pytest.mark.parametrize("fill", ["random", "ff"])
def test_frames_a_damaged_h264_stream_drops_without_a_word_are_stood_in_for(tmp_path: Path, tiny_generator_file: Path,
                                                                             fill: str):
    """Damage can make an H.264 decoder drop frames silently (no error for them), and hand later frames out
    before earlier ones: every packet is still a frame of the output, at its own time, in order."""
    clip = make_clip(tmp_path / "long.mp4", width=160, height=120, frames=600, fps=Fraction(30), grain=12)
    damaged = damage(clip, tmp_path / "damaged.mp4", 8 * 1024, fill)
    result = run_cli_here("video", str(damaged), "--weights", str(tiny_generator_file), "-o", str(tmp_path / "out.mp4"))
    assert result.returncode == 0, result.stderr
    times = frame_times(tmp_path / "out.mp4")
    assert len(times) == 600 and times == sorted(times)
    assert all(abs(t * 30 - round(t * 30)) < 1e-3 for t in times) and len({round(t * 30) for t in times}) == 600
