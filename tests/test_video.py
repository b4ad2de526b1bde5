"""cycletools video: frame count, frame rate, size, audio and timing kept; bad input handled."""

from __future__ import annotations

import math
import re
import os
import signal
import stat
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest

from conftest import needs_shared, refuse_writes_in, run_cli_here, shared_root
from media_fixtures import frame_times, make_clip, stream_spans, undecodable_audio_packets

pytest.importorskip("av", reason="the media extras are not installed")
from cycletools.media.video import FrameReader, probe  # noqa: E402

MEDIA = shared_root() / "media"


def video(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run_cli_here("video", *args, cwd=cwd)


def test_frames_rate_size_and_copied_audio_are_kept(tmp_path: Path, tiny_generator_file: Path):
    clip = make_clip(tmp_path / "ntsc.mp4", fps=Fraction(30000, 1001), frames=15, audio="aac")
    result = video(str(clip), "--weights", str(tiny_generator_file), "--batch-size", "4")
    assert result.returncode == 0, result.stderr
    output = tmp_path / "ntsc_tiny.mp4"  # default name beside the input
    info = probe(output)
    assert (info.width, info.height, info.fps, info.codec) == (64, 48, Fraction(30000, 1001), "h264")
    assert len(frame_times(output)) == 15
    assert info.audio_codecs == ["aac"]
    assert "audio copied (aac)" in result.stdout and "15 frames in" in result.stdout
    assert info.duration == pytest.approx(probe(clip).duration, abs=1 / 29.97)
    import av

    with av.open(str(output)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"


def test_variable_frame_rate_keeps_every_timestamp(tmp_path: Path, tiny_generator_file: Path):
    times = [0.0, 0.1, 0.15, 0.4, 0.45, 0.9, 0.95]
    clip = make_clip(tmp_path / "vfr.mkv", frames=len(times), times=times)
    out = tmp_path / "vfr_out.mp4"
    result = video(str(clip), "--weights", str(tiny_generator_file), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert frame_times(out) == pytest.approx(times, abs=1e-3)


def test_odd_sizes_are_padded_for_h264_and_kept_in_webm(tmp_path: Path, tiny_generator_file: Path):
    clip = make_clip(tmp_path / "odd.mkv", width=65, height=49, codec="ffv1", frames=6)
    mp4 = video(str(clip), "--weights", str(tiny_generator_file), "-o", str(tmp_path / "odd.mp4"))
    assert mp4.returncode == 0, mp4.stderr
    assert "odd size padded by one pixel" in mp4.stdout
    assert (probe(tmp_path / "odd.mp4").width, probe(tmp_path / "odd.mp4").height) == (66, 50)
    webm = video(str(clip), "--weights", str(tiny_generator_file), "-o", str(tmp_path / "odd.webm"))
    assert webm.returncode == 0, webm.stderr
    info = probe(tmp_path / "odd.webm")
    assert (info.width, info.height, info.fps, info.codec) == (65, 49, Fraction(24), "vp9")
    assert len(frame_times(tmp_path / "odd.webm")) == 6
    resized = video(str(clip), "--weights", str(tiny_generator_file), "--frame-size", "25", "-o",
                    str(tmp_path / "small.webm"))
    assert resized.returncode == 0, resized.stderr
    assert (probe(tmp_path / "small.webm").width, probe(tmp_path / "small.webm").height) == (33, 25)  # asked, not evened


def test_resize_trim_and_side_by_side(tmp_path: Path, tiny_generator_file: Path):
    clip = make_clip(tmp_path / "clip.mp4", width=96, height=64, fps=Fraction(25), frames=25, audio="aac")
    weights = str(tiny_generator_file)
    sized = video(str(clip), "--weights", weights, "--size", "32", "-o", str(tmp_path / "sized.mp4"))
    assert sized.returncode == 0, sized.stderr
    assert (probe(tmp_path / "sized.mp4").width, probe(tmp_path / "sized.mp4").height) == (48, 32)
    scaled = video(str(clip), "--weights", weights, "--scale", "0.5", "--side-by-side", "-o", str(tmp_path / "sbs.mp4"))
    assert scaled.returncode == 0, scaled.stderr
    assert (probe(tmp_path / "sbs.mp4").width, probe(tmp_path / "sbs.mp4").height) == (96, 32)
    assert "96x32 → " in scaled.stdout  # the summary gives the size written, both halves
    trimmed = video(str(clip), "--weights", weights, "--start", "0.2", "--duration", "0.4",
                    "-o", str(tmp_path / "trim.mp4"))
    assert trimmed.returncode == 0, trimmed.stderr
    times = frame_times(tmp_path / "trim.mp4")
    assert len(times) == 10
    info = probe(tmp_path / "trim.mp4")
    assert info.audio_codecs == ["aac"] and "re-encoded" in trimmed.stdout
    assert info.duration == pytest.approx(0.4, abs=0.05)


@pytest.mark.parametrize("option, message, code", [
    (["--scale", "nan"], "argument --scale: takes a number greater than 0 and at most 64, not 'nan'", 2),
    (["--scale", "inf"], "argument --scale: takes a number greater than 0 and at most 64, not 'inf'", 2),
    (["--scale", "0"], "argument --scale: takes a number greater than 0 and at most 64, not '0'", 2),
    (["--frame-size", "0"], "argument --frame-size: takes a whole number at least 2 and at most 16384, not '0'", 2),
    (["--scale", "1e30"], "argument --scale: takes a number greater than 0 and at most 64, not '1e30'", 2),
    (["--scale", "0.001"], "--scale 0.001 gives 1x1 frames; frames need at least 2 pixels a side", 2),
    (["--frame-size", "100000"], "argument --frame-size: takes a whole number at least 2 and at most 16384", 2),
])
def test_resize_options_out_of_range_get_one_line_before_any_work(tmp_path: Path, option, message, code):
    clip = make_clip(tmp_path / "clip.mp4", width=64, height=48, frames=3)
    result = video(str(clip), "--weights", str(tmp_path / "never-loaded.safetensors"), *option,
                   "-o", str(tmp_path / "out.mp4"))
    assert result.returncode == code and message in result.stderr, result.stderr
    assert result.stderr.strip().count("\n") == 0 and "never-loaded" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_truncated_files(tmp_path: Path, tiny_generator_file: Path):
    mkv = make_clip(tmp_path / "long.mkv", frames=40, codec="libx264")
    data = mkv.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 2 // 3])
    result = video(str(cut), "--weights", str(tiny_generator_file), "-o", str(tmp_path / "cut_out.mp4"))
    assert result.returncode == 3, result.stderr  # partial: kept, with a warning
    frames = len(frame_times(tmp_path / "cut_out.mp4"))
    assert 5 < frames < 40 and frames == len(list(FrameReader(cut)))
    assert (f"cycletools: warning: {cut} ends early: the container promises 1.67 s (about 40 frames), {frames} "
            f"could be decoded; the output has those {frames}") in result.stderr.splitlines()

    mp4 = make_clip(tmp_path / "whole.mp4", frames=20)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(mp4.read_bytes()[:400])  # the index (moov) is lost
    result = video(str(broken), "--weights", str(tiny_generator_file), "-o", str(tmp_path / "never.mp4"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "broken.mp4" in result.stderr
    assert not (tmp_path / "never.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("case", ["missing", "not_video", "audio_only", "zero_frames", "unwritable", "same_as_input",
                                  "bad_suffix"])
def test_bad_input_gets_one_line(tmp_path: Path, tiny_generator_file: Path, case: str):
    good = make_clip(tmp_path / "good.mp4", frames=3)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    audio_only = tmp_path / "tone.m4a"
    if case == "audio_only":
        import av
        import numpy as np

        with av.open(str(audio_only), "w") as container:
            stream = container.add_stream("aac", rate=48000)
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 48000
            for packet in [*stream.encode(frame), *stream.encode()]:
                container.mux(packet)
    zero = tmp_path / "zero.mkv"
    if case == "zero_frames":
        import av

        container = av.open(str(zero), "w")
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
        container.close()  # a header and no frames
    source, output, message = {
        "missing": (tmp_path / "nope.mp4", tmp_path / "o.mp4", "video not found"),
        "not_video": (text, tmp_path / "o.mp4", "not a readable video"),
        "audio_only": (audio_only, tmp_path / "o.mp4", "no video stream"),
        "zero_frames": (zero, tmp_path / "o.mp4", "zero.mkv: not a readable video"),
        "unwritable": (good, blocker / "o.mp4", "output folder does not exist"),
        "same_as_input": (good, good, "refusing to overwrite the input video"),
        "bad_suffix": (good, tmp_path / "o.gif", "output must be one of"),
    }[case]
    never_loaded = tmp_path / "never-loaded.safetensors"  # found out only if the generator were loaded first
    result = video(str(source), "--weights", str(never_loaded), "-o", str(output))
    assert result.returncode == 1, result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr and "never-loaded" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_ctrl_c_keeps_a_playable_partial_file(tmp_path: Path, tiny_generator_file: Path):
    """The partial file never takes the input's name (here the input is called out.partial.mp4) nor an
    existing file's (out.partial-2.mp4 is someone's): it becomes out.partial-3.mp4."""
    clip = make_clip(tmp_path / "out.partial.mp4", width=128, height=96, frames=600, fps=Fraction(30))
    before = clip.read_bytes()
    (tmp_path / "out.partial-2.mp4").write_bytes(b"kept")
    target = tmp_path / "out.mp4"
    process = subprocess.Popen([sys.executable, "-m", "cycletools", "video", str(clip), "--weights",
                                str(tiny_generator_file), "-o", str(target), "--batch-size", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    def frames_written() -> bool:  # the temporary file may be renamed between glob and stat
        for tmp in tmp_path.glob(".out.*.tmp.mp4"):
            try:
                if tmp.stat().st_size > 2000:
                    return True
            except FileNotFoundError:
                pass
        return False

    deadline = time.time() + 60
    while time.time() < deadline and not frames_written():
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-2000:]
    partial = tmp_path / "out.partial-3.mp4"
    assert "interrupted: kept" in stderr and "(partial)" in stderr and "Traceback" not in stderr
    assert str(partial) in stderr
    assert not target.exists() and not list(tmp_path.glob(".out.*"))
    assert clip.read_bytes() == before and (tmp_path / "out.partial-2.mp4").read_bytes() == b"kept"
    frames = len(frame_times(partial))
    assert 0 < frames < 600
    assert probe(partial).fps == 30


def test_an_input_named_like_a_temporary_file_is_left_alone(tmp_path: Path, tiny_generator_file: Path):
    """Temporary files get fresh names: an input called .out.tmp.mp4 was truncated, then deleted."""
    clip = make_clip(tmp_path / ".out.tmp.mp4", frames=6)
    before = clip.read_bytes()
    result = run_cli_here("video", str(clip), "--weights", str(tiny_generator_file), "-o", str(tmp_path / "out.mp4"))
    assert result.returncode == 0, result.stderr
    assert clip.read_bytes() == before and len(frame_times(tmp_path / "out.mp4")) == 6
    recorded = run_cli_here("webcam", "--weights", str(tiny_generator_file), "--camera", str(clip), "--record",
                            str(tmp_path / "out.mp4"), "--no-window")
    assert recorded.returncode == 0, recorded.stderr
    assert clip.read_bytes() == before and len(frame_times(tmp_path / "out.mp4")) == 6


@pytest.mark.shared
@needs_shared("media/horse-gallop.mp4")
@pytest.mark.parametrize("name,frames,fps,size,audio", [
    ("horse-gallop.mp4", 133, Fraction(30), (288, 216), []),
    ("alpine-meadow.mp4", 80, Fraction(30), (854, 480), []),
    ("forest-animation-audio.webm", 24, Fraction(24), (1280, 720), ["aac"]),
])
def test_real_clips(tmp_path: Path, tiny_generator_file: Path, name, frames, fps, size, audio):
    out = tmp_path / f"{Path(name).stem}.mp4"
    result = video(str(MEDIA / name), "--weights", str(tiny_generator_file), "-o", str(out), "--batch-size", "8")
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert (info.width, info.height) == size and info.fps == fps and info.audio_codecs == audio
    assert len(frame_times(out)) == frames


@pytest.mark.shared
@pytest.mark.slow
@needs_shared("media/horse-gallop.mp4")
def test_the_bundled_generator_turns_the_galloping_horse_into_a_zebra(tmp_path: Path, monkeypatch):
    """`cycletools video horse-gallop.mp4 --plugin horse2zebra` on a fresh install (nothing fetched): every
    frame kept, and an ImageNet classifier calls most sampled frames "zebra" (none of the input's)."""
    import av

    from cycletools.evaluation.classifier import ImageNetClassifier

    monkeypatch.setenv("CYCLETOOLS_HOME", str(tmp_path / "empty-home"))
    out = tmp_path / "zebra.mp4"
    result = video(str(MEDIA / "horse-gallop.mp4"), "--plugin", "horse2zebra", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert len(frame_times(out)) == 133 and (probe(out).width, probe(out).height) == (288, 216)

    def sampled(path: Path) -> list:
        with av.open(str(path)) as container:
            return [frame.to_image() for frame in container.decode(video=0)][::10]

    classifier = ImageNetClassifier()
    zebra = 340
    assert (classifier.top1(sampled(MEDIA / "horse-gallop.mp4")) == zebra).sum() == 0
    assert (classifier.top1(sampled(out)) == zebra).sum() >= 10  # of 14 (13 measured)


def test_stabilizer_reduces_flicker_and_flicker_measure_is_sane():
    import numpy as np

    from cycletools.media.stabilize import TemporalStabilizer, flicker
    from media_fixtures import moving_square

    inputs = [moving_square(i, 96, 64) for i in range(12)]
    rng = np.random.default_rng(0)
    # A flickery "translation": the input with a different colour cast on every frame.
    outputs = [np.clip(f.astype(int) + rng.integers(-40, 40, 3), 0, 255).astype(np.uint8) for f in inputs]
    assert flicker(inputs, inputs) < 3.0  # only the warp's interpolation error
    noisy = flicker(inputs, outputs)
    assert noisy > 10.0
    stabilizer = TemporalStabilizer(0.6)
    steady = [stabilizer(src, out) for src, out in zip(inputs, outputs)]
    assert flicker(inputs, steady) < 0.6 * noisy
    assert steady[0].shape == outputs[0].shape and steady[0].dtype == np.uint8


def test_video_stabilize_keeps_frames(tmp_path: Path, tiny_generator_file: Path):
    clip = make_clip(tmp_path / "clip.mp4", frames=10)
    result = video(str(clip), "--weights", str(tiny_generator_file), "--stabilize", "-o", str(tmp_path / "s.mp4"))
    assert result.returncode == 0, result.stderr
    assert len(frame_times(tmp_path / "s.mp4")) == 10
    bad = video(str(clip), "--weights", str(tiny_generator_file), "--stabilize", "1.5", "-o", str(tmp_path / "b.mp4"))
    assert bad.returncode == 2 and "argument --stabilize: takes a number at least 0 and less than 1" in bad.stderr
    assert not (tmp_path / "b.mp4").exists()


def test_webcam_with_a_file_as_camera_records_every_frame(tmp_path: Path, tiny_generator_file: Path):
    clip = make_clip(tmp_path / "cam.mp4", frames=14, fps=Fraction(30000, 1001))
    out = tmp_path / "rec.mp4"
    result = run_cli_here("webcam", "--weights", str(tiny_generator_file), "--camera", str(clip), "--record", str(out),
                     "--no-window", "--side-by-side")
    assert result.returncode == 0, result.stderr
    assert "14 frames in" in result.stdout and str(out) in result.stdout
    info = probe(out)
    assert (info.width, info.height, info.fps) == (128, 48, Fraction(30000, 1001))
    assert len(frame_times(out)) == 14
    limited = run_cli_here("webcam", "--weights", str(tiny_generator_file), "--camera", str(clip), "--record",
                      str(tmp_path / "five.mp4"), "--no-window", "--max-frames", "5")
    assert limited.returncode == 0 and len(frame_times(tmp_path / "five.mp4")) == 5


@pytest.mark.parametrize("args,message,code", [
    (["--camera", "7", "--no-window", "--record", "x.mp4"], "cannot open camera 7", 1),
    (["--camera", "missing.mp4", "--no-window", "--record", "x.mp4"], "camera not found: missing.mp4", 1),
    (["--camera", "0", "--no-window"], "--no-window without --record", 2),
])
def test_webcam_refusals(tmp_path: Path, tiny_generator_file: Path, args, message, code):
    result = run_cli_here("webcam", "--weights", str(tiny_generator_file), *args, cwd=tmp_path)
    assert result.returncode == code
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_webcam_without_a_display_says_so(tmp_path: Path, tiny_generator_file: Path, monkeypatch):
    clip = make_clip(tmp_path / "cam.mp4", frames=3)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run([sys.executable, "-m", "cycletools", "webcam", "--weights", str(tiny_generator_file),
                             "--camera", str(clip)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1 and "no display for the preview window; add --no-window" in result.stderr


def test_undecodable_frames_are_replaced_by_the_previous_one_and_counted(tmp_path: Path, monkeypatch):
    import types

    import av

    from cycletools.media import video as video_module

    clip = make_clip(tmp_path / "clip.mkv", frames=10, codec="ffv1")  # intra-only: one packet per frame
    real_open = av.open

    class Packet:
        def __init__(self, packet, broken):
            self._packet, self.broken = packet, broken
            self.size, self.pts = packet.size, packet.pts

        def decode(self):
            if self.broken:
                raise av.FFmpegError(1094995529, "Invalid data found when processing input")
            return self._packet.decode()

    class Container:
        def __init__(self, container):
            self._container = container
            self.streams = container.streams

        def demux(self, stream):
            for number, packet in enumerate(self._container.demux(stream)):
                yield Packet(packet, number in (3, 4))

        def seek(self, *args, **kwargs):
            return self._container.seek(*args, **kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._container.close()

    monkeypatch.setattr(video_module, "_av", lambda: types.SimpleNamespace(
        open=lambda path: Container(real_open(path)), FFmpegError=av.FFmpegError))
    reader = FrameReader(clip)
    frames = list(reader)
    assert len(frames) == 10 and reader.corrupt == 2
    assert [f.index for f in frames if f.repeated] == [3, 4]
    assert (frames[3].image == frames[2].image).all() and frames[5].repeated is False


def test_a_model_failure_mid_video_leaves_no_files(tmp_path: Path, tiny_generator_file: Path):
    from cycletools.errors import CycletoolsError
    from cycletools.pipelines.translator import Translator
    from cycletools.pipelines.video import translate_video

    class FailingTranslator:
        """Translates two batches, then fails as a model out of memory would."""

        def __init__(self):
            self.inner, self.calls = Translator.from_file(tiny_generator_file), 0

        def translate_frames(self, frames):
            self.calls += 1
            if self.calls > 2:
                raise RuntimeError("CUDA out of memory (simulated)")
            return self.inner.translate_frames(frames)

    clip = make_clip(tmp_path / "clip.mp4", frames=40)
    target = tmp_path / "out.mp4"
    with pytest.raises(CycletoolsError, match=r"clip.mp4: video processing failed \(RuntimeError: CUDA out of memory"):
        translate_video(FailingTranslator(), clip, target, batch_size=4, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "tiny.safetensors"]


def test_summary_of_a_slow_run_never_says_zero_frames_per_second(tmp_path: Path, tiny_generator_file: Path,
                                                                  monkeypatch, capsys):
    from cycletools.cli.main import main
    from cycletools.pipelines import video as pipeline

    clip = make_clip(tmp_path / "clip.mp4", frames=24)
    out = tmp_path / "out.mp4"
    slow = pipeline.VideoResult(out, frames=24, corrupt=0, seconds=488.8, width=64, height=48, audio=None)
    monkeypatch.setattr(pipeline, "translate_video", lambda *args, **kwargs: slow)
    assert main(["video", str(clip), "--weights", str(tiny_generator_file), "-o", str(out)]) == 0
    assert "24 frames in 488.8 s (20.4 s/frame)" in capsys.readouterr().out


def test_summary_separates_the_start_up_from_the_pace_kept(tmp_path: Path, tiny_generator_file: Path,
                                                          monkeypatch, capsys):
    from cycletools.cli.main import main
    from cycletools.pipelines import video as pipeline

    clip = make_clip(tmp_path / "clip.mp4", frames=24)
    out = tmp_path / "out.mp4"
    # The first batch of 4 is done 100 s after the command starts; the other 20 frames take 1 s.
    first = time.perf_counter() + 100
    result = pipeline.VideoResult(out, frames=24, corrupt=0, seconds=101.0, width=64, height=48, audio=None,
                                  first_batch=4, first_batch_at=first, ended_at=first + 1.0)
    monkeypatch.setattr(pipeline, "translate_video", lambda *args, **kwargs: result)
    assert main(["video", str(clip), "--weights", str(tiny_generator_file), "-o", str(out)]) == 0
    summary = capsys.readouterr().out
    assert re.search(r"24 frames in 101\.0 s \(4\.2 s/frame\), 64x48 → .*out\.mp4; start-up 10\d\.\d s, "
                     r"then 20\.0 frames/s$", summary.strip()), summary


def test_the_result_times_the_first_batch_apart(tmp_path: Path, tiny_generator_file: Path):
    from cycletools.pipelines.translator import Translator
    from cycletools.pipelines.video import translate_video

    clip = make_clip(tmp_path / "clip.mp4", frames=10)
    before = time.perf_counter()
    result = translate_video(Translator.from_file(tiny_generator_file), clip, tmp_path / "out.mp4", batch_size=4,
                             progress=False)
    assert result.frames == 10 and result.first_batch == 4
    assert before < result.first_batch_at < result.ended_at < time.perf_counter()
    assert result.steady_frames_per_second == pytest.approx(6 / (result.ended_at - result.first_batch_at))
    one_batch = pipeline_result(frames=4, first_batch=4)
    assert one_batch.steady_frames_per_second is None  # nothing after the first batch to measure


def pipeline_result(**fields):
    from cycletools.pipelines.video import VideoResult

    return VideoResult(Path("out.mp4"), corrupt=0, seconds=1.0, width=8, height=8, audio=None, first_batch_at=1.0,
                       ended_at=2.0, **fields)


@pytest.mark.parametrize("frames,seconds,text", [(24, 488.8, "20.4 s/frame"), (3, 2.0, "1.5 frames/s"),
                                                 (100, 4.0, "25.0 frames/s"), (0, 0.0, "0 frames/s")])
def test_speed_text(frames: int, seconds: float, text: str):
    from cycletools.utils.speed import speed_text

    assert speed_text(frames, seconds) == text


def test_start_past_the_end_says_so_before_loading_the_generator(tmp_path: Path):
    clip = make_clip(tmp_path / "clip.mp4", frames=24)  # 1 s
    result = video(str(clip), "--weights", str(tmp_path / "never-loaded.safetensors"), "--start", "5",
                   "-o", str(tmp_path / "out.mp4"))
    assert result.returncode == 1
    assert result.stderr.strip() == f"cycletools: error: --start 5 s is past the end of {clip} (1.00 s long)"
    assert not (tmp_path / "out.mp4").exists()


def test_a_window_shorter_than_a_frame_says_so(tmp_path: Path, tiny_generator_file: Path):
    clip = make_clip(tmp_path / "clip.mp4", frames=24)  # 1 s at 24 fps
    result = video(str(clip), "--weights", str(tiny_generator_file), "--start", "0.5", "--duration", "1e-6",
                   "-o", str(tmp_path / "out.mp4"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"cycletools: error: {clip}: no frame starts between 0.5 s and 0.500001 s (--start, --duration); "
        "nothing was written")
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("code", ["EROFS", "EACCES"])
def test_unwritable_output_folder_is_refused_before_any_work(tmp_path: Path, monkeypatch, capsys, code: str):
    import errno

    from cycletools.cli.main import main

    clip = make_clip(tmp_path / "clip.mp4", frames=6, audio="aac")
    locked = tmp_path / "locked"
    locked.mkdir()
    refuse_writes_in(locked, monkeypatch, getattr(errno, code))
    target = locked / "out.mp4"
    status = main(["video", str(clip), "--weights", str(tmp_path / "never-loaded.safetensors"), "-o", str(target)])
    stderr = capsys.readouterr().err
    assert status == 1 and stderr.count("\n") == 1 and "Traceback" not in stderr
    reason = "read-only file system" if code == "EROFS" else "permission denied"
    assert stderr == f"cycletools: error: {target}: cannot write here ({reason})\n"
    assert list(locked.iterdir()) == []


def _read_only_mount_works() -> bool:
    probe_dir = Path("/tmp")
    try:
        return subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o ro tmpfs {probe_dir}"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.skipif(not _read_only_mount_works(), reason="needs unshare and mount (a private read-only tmpfs)")
@pytest.mark.parametrize("command", ["video", "translate"])
def test_read_only_filesystem_gets_one_line_naming_the_output(tmp_path: Path, tiny_generator_file: Path,
                                                             command: str):
    from PIL import Image

    clip = make_clip(tmp_path / "clip.mp4", frames=6, audio="aac")
    image = tmp_path / "in.png"
    Image.new("RGB", (16, 12), "teal").save(image)
    mounted = tmp_path / "ro"
    mounted.mkdir()
    target = mounted / ("out.mp4" if command == "video" else "out.png")
    source = clip if command == "video" else image
    script = 'mount -t tmpfs -o ro tmpfs "$1" && shift && exec "$@"'
    started = time.perf_counter()
    result = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(mounted), sys.executable, "-m",
                             "cycletools", command, str(source), "--weights", str(tiny_generator_file),
                             "-o", str(target)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"cycletools: error: {target}: cannot write here (read-only file system)\n"
    assert time.perf_counter() - started < 60


def test_a_write_failure_mid_video_names_the_output_and_leaves_no_files(tmp_path: Path, tiny_generator_file: Path,
                                                                          monkeypatch):
    import errno

    from cycletools.errors import CycletoolsError
    from cycletools.media import video as media
    from cycletools.pipelines.translator import Translator
    from cycletools.pipelines.video import translate_video

    real_write, real_unlink = media.VideoWriter.write, Path.unlink

    def write(self, image, time):
        if self.frames == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_write(self, image, time)

    def unlink(self, missing_ok=False):  # cleanup where removing fails too must not hide the error
        real_unlink(self, missing_ok=missing_ok)
        if self.name.startswith(".out"):
            raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(media.VideoWriter, "write", write)
    monkeypatch.setattr(Path, "unlink", unlink)
    clip = make_clip(tmp_path / "clip.mp4", frames=12)
    target = tmp_path / "out.mp4"
    with pytest.raises(CycletoolsError, match=rf"^{target}: could not write the video \(No space left on device\)$"):
        translate_video(Translator.from_file(tiny_generator_file), clip, target, batch_size=2, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "tiny.safetensors"]


AUDIO_FRAME = 1024 / 48000  # one AAC frame at 48 kHz: the granularity of audio cuts and of the encoder's priming


def assert_audio_matches_video(path: Path, video_span: tuple[float, float]) -> None:
    """The file's video covers ``video_span`` and its audio the same window, within one audio frame."""
    spans = stream_spans(path)
    assert spans["video"] == pytest.approx(video_span, abs=1e-3)
    assert spans["audio"][0] == pytest.approx(video_span[0], abs=AUDIO_FRAME + 1e-3), spans
    assert spans["audio"][1] == pytest.approx(video_span[1], abs=AUDIO_FRAME + 1e-3), spans


@pytest.mark.parametrize("start,duration", [(1.0, 2.0), (1.5, None), (0.52, 1.0)])
def test_trimmed_video_and_audio_both_start_at_zero(tmp_path: Path, tiny_generator_file: Path, start, duration):
    clip = make_clip(tmp_path / "clip.mp4", frames=96, audio="aac")  # 4 s at 24 frames/s
    out = tmp_path / "trim.mp4"
    window = ["--start", str(start)] + (["--duration", str(duration)] if duration else [])
    result = video(str(clip), "--weights", str(tiny_generator_file), "-o", str(out), *window)
    assert result.returncode == 0, result.stderr
    last = (start + duration) if duration else 4.0
    frames = len(frame_times(out))
    assert frames == math.ceil(last * 24 - 1e-6) - math.ceil(start * 24 - 1e-6)
    assert_audio_matches_video(out, (0.0, frames / 24))


class _InterruptedTranslator:
    """Translates ``batches`` batches, then presses Ctrl-C (SIGINT to this process)."""

    def __init__(self, weights: Path, batches: int):
        from cycletools.pipelines.translator import Translator

        self.inner, self.batches = Translator.from_file(weights), batches

    def translate_frames(self, frames):
        self.batches -= 1
        if self.batches == 0:
            signal.raise_signal(signal.SIGINT)
        return self.inner.translate_frames(frames)


@pytest.mark.parametrize("start", [None, 0.5], ids=["copied", "re-encoded"])
def test_ctrl_c_partial_file_keeps_only_the_audio_of_its_frames(tmp_path: Path, tiny_generator_file: Path, start):
    from cycletools.pipelines.video import translate_video

    clip = make_clip(tmp_path / "clip.mp4", frames=96, audio="aac")
    result = translate_video(_InterruptedTranslator(tiny_generator_file, 3), clip, tmp_path / "out.mp4",
                             batch_size=4, start=start, progress=False)
    assert result.partial and result.output == tmp_path / "out.partial.mp4"
    assert 8 <= result.frames < 40 and len(frame_times(result.output)) == result.frames
    assert ("copied" in result.audio) == (start is None)
    assert_audio_matches_video(result.output, (0.0, result.frames / 24))


def test_truncated_mp4_with_its_index_in_front_is_kept_with_a_warning(tmp_path: Path, tiny_generator_file: Path):
    whole = make_clip(tmp_path / "whole.mp4", frames=120, audio="aac", container_options={"movflags": "faststart"})
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 4 // 10])  # the index says 120 frames; the data stops early
    out = tmp_path / "out.mp4"
    result = video(str(cut), "--weights", str(tiny_generator_file), "-o", str(out))
    assert result.returncode == 3, result.stderr  # partial
    frames = len(frame_times(out))
    assert 10 < frames < 120
    warning = [line for line in result.stderr.splitlines() if line.startswith("cycletools:")]
    assert warning == [f"cycletools: warning: {cut} ends early: the container promises 120 frames, {frames} "
                       f"could be decoded; the output has those {frames}"]
    assert "Traceback" not in result.stderr and f"{frames} frames in" in result.stdout
    assert undecodable_audio_packets(out) == 0
    spans = stream_spans(out)
    assert spans["video"] == pytest.approx((0.0, frames / 24), abs=1e-3)
    assert spans["audio"][1] <= frames / 24 + AUDIO_FRAME + 1e-3


def test_inputs_that_are_no_video_say_what_they_are(tmp_path: Path, tiny_generator_file: Path):
    (tmp_path / "folder.mp4").mkdir()
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video")
    expected = {"folder.mp4": "folder.mp4 is a folder, not a video file",
                "empty.mp4": "empty.mp4: not a readable video (the file is empty)",
                "text.mp4": "text.mp4: not a readable video (Invalid data found when processing input)"}
    for name, message in expected.items():
        result = run_cli_here("video", str(tmp_path / name), "--weights", str(tiny_generator_file))
        assert result.returncode == 1 and result.stderr.strip() == f"cycletools: error: {tmp_path}/{message}"
    both = run_cli_here("video", str(make_clip(tmp_path / "in.mp4", frames=2)), "--weights",
                        str(tiny_generator_file), "--frame-size", "32", "--scale", "0.5")
    assert both.returncode == 2 and both.stderr.strip().endswith("give --frame-size or --scale, not both")


def test_an_output_folder_takes_the_default_name(tmp_path: Path, tiny_generator_file: Path):
    clip = make_clip(tmp_path / "in.mp4", frames=2)
    (tmp_path / "zebras").mkdir()
    for output in (f"{tmp_path}/zebras/", f"{tmp_path}/zebras"):
        result = run_cli_here("video", str(clip), "--weights", str(tiny_generator_file), "-o", output)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith(f"→ {tmp_path}/zebras/in_tiny.mp4")
        assert len(frame_times(tmp_path / "zebras" / "in_tiny.mp4")) == 2
    missing = run_cli_here("video", str(clip), "--weights", str(tiny_generator_file), "-o", f"{tmp_path}/none/")
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"cycletools: error: output folder does not exist: {tmp_path}/none/"
    assert not (tmp_path / "none").exists()


def test_a_replaced_video_keeps_its_permissions(tmp_path: Path, tiny_generator_file: Path):
    clip = make_clip(tmp_path / "in.mp4", frames=3)
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an older translation")
    out.chmod(0o640)
    result = run_cli_here("video", str(clip), "--weights", str(tiny_generator_file), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o640 and len(frame_times(out)) == 3


def test_a_stop_during_one_long_frame_does_not_wait_for_the_frame(tmp_path: Path):
    """SIGTERM while the generator works on a frame stops it at the next layer, not at the end of the batch
    (one oversized frame took over 3 minutes; issue 25, item 9). The generator here counts its layers and
    sends the signal itself, in the 5th of its 40 layers on the third frame: no layer may run after it, and
    the two frames done before are kept in a playable partial file."""
    import torch

    from cycletools.pipelines.translator import Translator
    from cycletools.pipelines.video import translate_video

    calls = {"layers": 0, "after_signal": 0, "signalled": False}

    class CountingLayer(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            calls["layers"] += 1
            if calls["signalled"]:
                calls["after_signal"] += 1
            if calls["layers"] == 2 * 40 + 5:
                calls["signalled"] = True
                os.kill(os.getpid(), signal.SIGTERM)
            return x

    generator = torch.nn.Sequential(*[CountingLayer() for _ in range(40)])
    clip = make_clip(tmp_path / "clip.mp4", frames=8)
    translator = Translator(generator, device="cpu", precision="fp32", working_size="native")
    result = translate_video(translator, clip, tmp_path / "out.mp4", batch_size=1, progress=False)
    assert calls["signalled"] and calls["after_signal"] == 0 and calls["layers"] == 2 * 40 + 5
    assert result.partial and result.output == tmp_path / "out.partial.mp4"
    assert len(frame_times(result.output)) == 2
