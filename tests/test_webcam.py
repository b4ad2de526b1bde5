"""The webcam's recording: never over the clip it reads, checked before the camera opens, modes kept."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from conftest import refuse_writes_in, run_cli_here
from media_fixtures import frame_times, make_clip

pytest.importorskip("av", reason="the media extras are not installed")
pytest.importorskip("cv2", reason="the media extras are not installed")


def webcam(generator: Path, *args: str, cwd: Path | None = None):
    return run_cli_here("webcam", "--weights", str(generator), "--no-window", "--max-frames", "3", *args, cwd=cwd)


@pytest.mark.parametrize("record", ["clip.mp4", "sub/../clip.mp4", "link.mp4", "hard.mp4"])
def test_a_recording_never_replaces_the_clip_it_reads(tmp_path: Path, tiny_generator_file: Path, record: str):
    clip = make_clip(tmp_path / "clip.mp4", frames=6)
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.mp4").symlink_to(clip)
    os.link(clip, tmp_path / "hard.mp4")
    before = clip.read_bytes()
    result = webcam(tiny_generator_file, "--camera", str(clip), "--record", record, cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert result.stderr.strip() == f"cycletools: error: {record}: refusing to overwrite the input video"
    assert clip.read_bytes() == before and len(frame_times(clip)) == 6


def test_the_recording_target_is_checked_before_the_camera_opens(tmp_path: Path, tiny_generator_file: Path,
                                                                 monkeypatch):
    clip = make_clip(tmp_path / "clip.mp4", frames=4)
    locked = tmp_path / "locked"
    locked.mkdir()
    refuse_writes_in(locked, monkeypatch, errno.EROFS)
    opened: list[str] = []
    import cycletools.pipelines.live as live

    real_open = live.open_camera
    monkeypatch.setattr(live, "open_camera", lambda camera: opened.append(camera) or real_open(camera))
    read_only = webcam(tiny_generator_file, "--camera", str(clip), "--record", str(locked / "out.mp4"))
    assert read_only.returncode == 1 and "Traceback" not in read_only.stderr
    assert read_only.stderr.strip() == f"cycletools: error: {locked / 'out.mp4'}: cannot write here (read-only file system)"
    avi = webcam(tiny_generator_file, "--camera", str(clip), "--record", str(tmp_path / "out.avi"))
    assert avi.returncode == 1
    assert avi.stderr.strip() == (f"cycletools: error: {tmp_path / 'out.avi'}: output must be one of "
                                  ".m4v, .mkv, .mov, .mp4, .webm")
    assert opened == [] and not (tmp_path / "out.avi").exists()


def test_a_replaced_recording_keeps_its_permissions(tmp_path: Path, tiny_generator_file: Path):
    clip = make_clip(tmp_path / "clip.mp4", frames=4)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an older recording")
    out.chmod(0o640)
    result = webcam(tiny_generator_file, "--camera", str(clip), "--record", str(out))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o640 and len(frame_times(out)) == 3


def test_a_camera_index_beyond_any_device_is_one_line(tmp_path: Path, tiny_generator_file: Path):
    result = webcam(tiny_generator_file, "--camera", "99999999999999999999999", "--record", str(tmp_path / "x.mp4"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("cycletools: error: cannot open camera 99999999999999999999999")


def test_a_recording_that_cannot_be_finished_leaves_nothing_behind(tmp_path: Path, tiny_generator_file: Path,
                                                                   monkeypatch):
    """A full disk: the recording fails with one line, and no half-written file stays."""
    import cycletools.pipelines.live as live

    clip = make_clip(tmp_path / "clip.mp4", frames=6)

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(live.VideoWriter, "write", full)
    result = webcam(tiny_generator_file, "--camera", str(clip), "--record", str(tmp_path / "out.mp4"))
    assert result.returncode == 1 and "recording failed" in result.stderr and "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*out*")) and not list(tmp_path.glob(".*"))


def test_a_clip_that_ends_early_is_kept_with_a_warning(tmp_path: Path, tiny_generator_file: Path):
    whole = make_clip(tmp_path / "whole.mkv", frames=60)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 6 // 10])  # the header says 60 frames; the data stops early
    faststart = make_clip(tmp_path / "index-first.mp4", frames=60, container_options={"movflags": "faststart"})
    empty = tmp_path / "empty.mp4"  # OpenCV opens it (its index is whole) and decodes none of its frames
    empty.write_bytes(faststart.read_bytes()[: faststart.stat().st_size * 4 // 10])
    complete = run_cli_here("webcam", "--weights", str(tiny_generator_file), "--no-window", "--camera", str(whole),
                            "--record", str(tmp_path / "whole-out.mp4"))
    assert complete.returncode == 0, complete.stderr
    assert "warning" not in complete.stderr and len(frame_times(tmp_path / "whole-out.mp4")) == 60
    result = run_cli_here("webcam", "--weights", str(tiny_generator_file), "--no-window", "--camera", str(cut),
                          "--record", str(tmp_path / "out.mp4"))
    assert result.returncode == 3, result.stderr
    frames = len(frame_times(tmp_path / "out.mp4"))
    assert 5 < frames < 57 and result.stdout.startswith(f"{frames} frames in ")
    assert result.stderr.splitlines() == [f"cycletools: warning: {cut} ends early: the container promises 60 "
                                          f"frames, {frames} could be decoded"]  # and no FFmpeg lines
    nothing = run_cli_here("webcam", "--weights", str(tiny_generator_file), "--no-window", "--camera", str(empty),
                           "--record", str(tmp_path / "none.mp4"))
    assert nothing.returncode == 1 and not (tmp_path / "none.mp4").exists()
    assert nothing.stderr.splitlines() == [f"cycletools: error: {empty}: no frames could be decoded"]
