"""The one command a lent GPU runs: environment, CUDA checks, speed, a fast student, a time-boxed run.

    python benchmarks/gpu_suite.py --out DIR [--minutes 8] [--data DIR] [--teacher FILE] [--smoke]

Stages, in this order, each in a process of its own with its own time box; each appends one JSON
line to DIR/report.jsonl the moment it ends, so a run killed part-way still returns what it did:

1. environment: GPU, memory, torch/CUDA/cuDNN versions, the cycletools commit.
2. cuda_tests: ``pytest -m cuda`` (tests/test_cuda.py); the log is DIR/cuda-tests.log.
3. speed: training pairs/s, official vs fast recipe (ResNet-9 ngf64, 256²; goal fast ≥ 8× official),
   translation images/s at 256² batched (goal ≥ 3,000), frames/s at 720p and 1080p (goal ≥ 60),
   and ``translate_video`` end to end at 1080p where PyAV is installed.
4. distill: ``cycletools distill`` of a medium student from --teacher on --data (whole 256² images,
   L1 to the teacher + LSGAN), time-boxed; the student comes back as DIR/horse2zebra.fast.safetensors.
5. train: ``cycletools train --plugin horse2zebra --recipe fast --time-budget <the rest>`` on --data;
   both generators come back as fp16 in DIR/generators.tar.partN (each under 15 MiB; join them
   with ``cat generators.tar.part* > generators.tar``), with the last sample grid as DIR/samples.jpg.

``--smoke`` runs every stage at toy size on the CPU in well under a minute (a generated toy
dataset and a random teacher): the test suite runs it, so the script keeps working between draws.
On a GPU machine, ``bash benchmarks/gpu_run.sh`` installs cycletools and runs this with the carried
data (see that file).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PART_BYTES = 15 * 1024 * 1024  # files that come back from the GPU machine must stay under 16 MiB
STAGES = ("environment", "cuda_tests", "speed", "distill", "train")


# ----------------------------------------------------------------- the report
class Report:
    """Appends one JSON line per stage to DIR/report.jsonl, flushed to disk at once."""

    def __init__(self, out: Path):
        self.path = out / "report.jsonl"
        self.started = time.monotonic()

    def add(self, stage: str, status: str, seconds: float, **fields) -> dict:
        line = {"stage": stage, "status": status, "seconds": round(seconds, 1),
                "suite_seconds": round(time.monotonic() - self.started, 1), **fields}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        print(json.dumps(line), flush=True)
        return line


def run_child(command: list[str], box: float, log: Path | None = None, env: dict | None = None) -> tuple[int, str]:
    """Run a command with a time box; returns (exit status, output). 124 when the box ran out."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=box, cwd=ROOT,
                              env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        code, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code = 124
        output = "".join(part.decode(errors="replace") if isinstance(part, bytes) else (part or "")
                         for part in (exc.stdout, exc.stderr)) + f"\n[time box of {box:.0f} s reached]"
    if log is not None:
        log.write_text(output, encoding="utf-8")
    return code, output


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# ----------------------------------------------------------------- stages
def stage_environment(args: argparse.Namespace) -> dict:
    import torch

    import cycletools
    from cycletools.utils.devices import describe_cpu

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
            "cycletools": cycletools.__version__, "commit": commit(), "cpu_count": os.cpu_count(),
            "cpu": describe_cpu(),
            "device": "cuda" if torch.cuda.is_available() else "cpu"}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}", multiprocessors=props.multi_processor_count)
    for module in ("av", "gradio", "onnxruntime", "torchmetrics"):
        info[f"has_{module}"] = _importable(module)
    return info


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT, timeout=10)
        if done.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                   text=True, cwd=ROOT, timeout=10).stdout.strip()
            return done.stdout.strip() + ("+changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return os.environ.get("CYCLETOOLS_COMMIT", "unknown")


def stage_cuda_tests(args: argparse.Namespace, box: float) -> tuple[str, dict]:
    junit = args.scratch / "cuda-tests.xml"
    code, output = run_child([sys.executable, "-m", "pytest", "-m", "cuda", "-v", "-p", "no:cacheprovider",
                              "-o", "addopts=-ra", f"--junitxml={junit}", "tests/test_cuda.py"],
                             box, log=args.out / "cuda-tests.log")
    counts, failures = {"passed": 0, "failed": 0, "skipped": 0}, []
    if junit.is_file():
        for case in ElementTree.parse(junit).getroot().iter("testcase"):
            problem = case.find("failure") if case.find("failure") is not None else case.find("error")
            if problem is not None:
                counts["failed"] += 1
                message = (problem.get("message") or problem.text or "").strip().splitlines()
                failures.append(f"{case.get('name')}: {message[0][:300] if message else '(no message)'}")
            elif case.find("skipped") is not None:
                counts["skipped"] += 1
            else:
                counts["passed"] += 1
    status = "timeout" if code == 124 else "ok" if code in (0, 5) and not failures else "failed"
    return status, {**counts, "failures": failures, "exit": code, "tail": tail(output, 5)}


def stage_speed(args: argparse.Namespace, box: float) -> tuple[str, dict]:
    results = args.scratch / "speed.jsonl"
    results.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__)), "--speed-child", str(results)] + (["--smoke"] if args.smoke else [])
    code, output = run_child(command, box, log=args.scratch / "speed.log")
    cases = [json.loads(line) for line in results.read_text().splitlines()] if results.is_file() else []
    summary = {}
    by_case = {case["case"]: case for case in cases}
    if "train official" in by_case:
        official = by_case["train official"]["pairs_per_s"]
        best = max((c["pairs_per_s"] for name, c in by_case.items() if name.startswith("train fast")), default=None)
        if best:
            summary["fast_over_official"] = round(best / official, 2)
            summary["fast_goal_8x_met"] = best / official >= 8
    status = "timeout" if code == 124 else "ok" if code == 0 else "failed"
    return status, {"cases": cases, **summary, **({} if code == 0 else {"tail": tail(output)})}


def speed_child(results: Path, smoke: bool) -> None:
    """Measure in this process; one JSON line per case as soon as it is measured."""
    import torch

    sys.path.insert(0, str(Path(__file__).parent))
    from train_throughput import measure
    from translate_speed import timed

    from cycletools.data.toy import make_shapes_dataset
    from cycletools.models import ResnetGenerator, init_weights
    from cycletools.pipelines.translator import Translator

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    size, ngf, blocks = (32, 4, 1) if smoke else (256, 64, 9)

    def emit(case: str, **fields) -> None:
        with open(results, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"case": case, **fields}) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        data = str(make_shapes_dataset(f"{tmp}/data", count=2, size=16, test_count=0))
        for recipe, compiled in (("official", False), ("fast", False), ("fast", True)):
            if compiled and smoke:
                continue
            # (smoke: fp32, since bf16 is emulated, and slow, on CPUs without native bf16)
            run = argparse.Namespace(device=device, size=size, ngf=ngf, blocks=blocks, steps=2 if smoke else 20,
                                     warmup=1 if smoke else 5, fast_batch=2 if smoke else 8, compile=compiled,
                                     amp="none" if smoke else None)
            result = measure(recipe, run, data, f"{tmp}/runs-{recipe}-{compiled}")
            emit(f"train {recipe}{' compiled' * compiled}", **result)

    torch.manual_seed(0)
    generator = init_weights(ResnetGenerator(ngf=ngf, n_blocks=blocks))
    cases = [("256x256 batch 64", 64, 256, 256), ("1280x720 batch 1", 1, 720, 1280),
             ("1920x1080 batch 1", 1, 1080, 1920), ("1920x1080 batch 4", 4, 1080, 1920)]
    if smoke:
        cases = [("32x32 batch 4", 4, 32, 32)]
    repeats = 2 if smoke else 10
    for compiled in (False, True):
        if compiled and smoke:
            continue
        translator = Translator(generator, device=device, precision="fp16" if cuda else "fp32", compile=compiled)
        for label, batch, height, width in cases:
            x = torch.rand(batch, 3, height, width, device=translator.device) * 2 - 1
            seconds = timed(lambda: translator.translate_tensor(x), repeats, translator.device)
            emit(f"translate {label} {translator.precision}{' compiled' * compiled}",
                 images_per_s=round(batch / seconds, 1))
    if _importable("av"):
        import numpy as np
        from fractions import Fraction

        from cycletools.media.video import VideoWriter
        from cycletools.pipelines.video import translate_video

        height, width, count = (32, 32, 8) if smoke else (1080, 1920, 120)
        translator = Translator(generator, device=device, precision="fp16" if cuda else "fp32")
        with tempfile.TemporaryDirectory() as tmp:
            clip = Path(tmp) / "clip.mp4"
            writer = VideoWriter(clip, width, height, Fraction(30))
            rng = np.random.default_rng(0)
            frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            for i in range(count):
                writer.write(np.roll(frame, i, axis=1), i / 30)
            writer.close()
            result = translate_video(translator, clip, Path(tmp) / "out.mp4", batch_size=4, progress=False)
        emit(f"video {width}x{height} end to end", frames=result.frames,
             frames_per_s=round(result.frames_per_second, 2))
    else:
        emit("video end to end", skipped="PyAV is not installed here")


def stage_distill(args: argparse.Namespace, box: float) -> tuple[str, dict]:
    if not args.teacher or not Path(args.teacher).is_file():
        return "skipped", {"reason": f"no teacher file at {args.teacher}"}
    if not (Path(args.data) / "trainA").is_dir():
        return "skipped", {"reason": f"no dataset at {args.data}"}
    seconds = 4 if args.smoke else max(5, box - 35)  # start-up, loading and saving fit in the rest
    run_dir = args.scratch / "runs"
    options = (["--student", "tiny", "--crop-size", "32", "--load-size", "32", "--batch-size", "2", "--ndf", "8",
                "--device", "cpu"] if args.smoke else
               ["--student", "medium", "--crop-size", "256", "--load-size", "256", "--batch-size", "16", "--lr", "4e-4"])
    code, output = run_child([sys.executable, "-m", "cycletools", "distill", "--plugin", "horse2zebra",
                              "--weights", str(args.teacher), "--data", str(args.data), "--name", "student",
                              "--out", str(run_dir), "--time-budget", f"{seconds:.0f}s", *options], box,
                             log=args.scratch / "distill.log")
    student = run_dir / "student" / "student.safetensors"
    fields = {"time_budget_s": round(seconds), "tail": tail(output, 4)}
    if student.is_file():
        target = args.out / "horse2zebra.fast.safetensors"
        shutil.copyfile(student, target)
        fields.update(student=target.name, bytes=target.stat().st_size, log=_last_csv_row(run_dir / "student" /
                                                                                           "distill.csv"))
    status = "timeout" if code == 124 else "ok" if code == 0 and student.is_file() else "failed"
    return status, fields


def stage_train(args: argparse.Namespace, box: float) -> tuple[str, dict]:
    if not (Path(args.data) / "trainA").is_dir():
        return "skipped", {"reason": f"no dataset at {args.data}"}
    seconds = 4 if args.smoke else max(5, box - 40)  # start-up, the final save and packing fit in the rest
    run_dir = args.scratch / "runs"
    options = (["--crop-size", "32", "--load-size", "36", "--ngf", "4", "--ndf", "4", "--blocks", "1", "--device", "cpu",
                "--batch-size", "2", "--amp", "none"] if args.smoke else [])
    code, output = run_child([sys.executable, "-m", "cycletools", "train", "--plugin", "horse2zebra", "--data",
                              str(args.data), "--name", "h2z", "--out", str(run_dir), "--recipe", "fast",
                              "--time-budget", f"{seconds:.0f}s", "--log-every", "25", *options], box,
                             log=args.scratch / "train.log")
    run = run_dir / "h2z"
    fields = {"time_budget_s": round(seconds), "tail": tail(output, 4)}
    weights = [run / "weights" / f"{direction}.safetensors" for direction in ("a2b", "b2a")]
    if all(path.is_file() for path in weights):
        fields["parts"] = pack_generators(weights, args.out, args.part_bytes)
        fields["log"] = _last_csv_row(run / "losses.csv")
        grids = sorted((run / "samples").glob("*.png"), key=lambda p: p.stat().st_mtime)
        if grids:
            from PIL import Image

            with Image.open(grids[-1]) as grid:
                grid.convert("RGB").save(args.out / "samples.jpg", quality=85)
            fields["samples"] = grids[-1].name
    status = "timeout" if code == 124 else "ok" if code == 0 and "parts" in fields else "failed"
    return status, fields


def pack_generators(paths: list[Path], out: Path, part_bytes: int) -> list[str]:
    """fp16 copies of the generators in one tar, split into parts of at most ``part_bytes``."""
    from cycletools.weights import load_generator, read_metadata, save_generator

    with tempfile.TemporaryDirectory() as tmp:
        tar_path = Path(tmp) / "generators.tar"
        with tarfile.open(tar_path, "w") as tar:
            for path in paths:
                generator, config = load_generator(path)
                half = save_generator(generator, Path(tmp) / path.name, config, half=True,
                                      metadata={k: v for k, v in read_metadata(path).items()
                                                if k != "cycletools.generator"})
                tar.add(half, arcname=path.name)
        names = []
        with open(tar_path, "rb") as whole:
            index = 0
            while chunk := whole.read(part_bytes):
                name = f"generators.tar.part{index}"
                (out / name).write_bytes(chunk)
                names.append(name)
                index += 1
    return names


def _last_csv_row(path: Path) -> dict | None:
    import csv

    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return rows[-1] if rows else None


# ----------------------------------------------------------------- smoke fixtures
def smoke_inputs(scratch: Path) -> tuple[Path, Path]:
    """A toy dataset and a random tiny sub-mobile teacher, for --smoke."""
    import torch

    from cycletools.data.toy import make_shapes_dataset
    from cycletools.models import init_weights
    from cycletools.models.mobile import MobileResnetGenerator
    from cycletools.training.distill import STUDENTS
    from cycletools.weights import save_generator

    data = make_shapes_dataset(scratch / "toy", count=4, size=40)
    torch.manual_seed(0)
    teacher = init_weights(MobileResnetGenerator(**STUDENTS["small"]))
    return data, save_generator(teacher, scratch / "teacher.safetensors")


# ----------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="folder for report.jsonl and what comes back")
    parser.add_argument("--minutes", type=float, default=8.0, help="the whole suite's time (default: 8)")
    parser.add_argument("--data", default=str(ROOT / ".gpu" / "horse2zebra"),
                        help="horse2zebra in the CycleGAN layout, trainA and trainB (default: .gpu/horse2zebra)")
    parser.add_argument("--teacher", default=str(ROOT / ".gpu" / "gan-compression-horse2zebra-G.pth"),
                        help="the compressed horse→zebra generator the student learns from")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"which stages (default: {','.join(STAGES)})")
    parser.add_argument("--smoke", action="store_true", help="every stage at toy size on the CPU (under a minute)")
    parser.add_argument("--part-bytes", type=int, default=PART_BYTES, help=argparse.SUPPRESS)
    parser.add_argument("--speed-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.speed_child:
        speed_child(args.speed_child, args.smoke)
        return 0
    if args.out is None:
        parser.error("--out DIR is required")
    stages = [name.strip() for name in args.stages.split(",") if name.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stages: {', '.join(unknown)} (known: {', '.join(STAGES)})")
    args.out.mkdir(parents=True, exist_ok=True)
    args.scratch = Path(tempfile.mkdtemp(prefix="cycletools-gpu-suite-"))
    if args.smoke:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # toy size on the CPU, also on a GPU machine
        args.data, args.teacher = smoke_inputs(args.scratch)
    report = Report(args.out)
    total = args.minutes * 60
    # Time boxes: capped shares for the checks; what is left goes half to the student, half to the run.
    boxes = {"cuda_tests": min(100.0, 0.25 * total), "speed": min(75.0, 0.2 * total)}
    exit_status = 0
    try:
        for name in stages:
            started = time.monotonic()
            left = total - (time.monotonic() - report.started)
            if name == "environment":
                status, fields = "ok", stage_environment(args)
            else:
                if name in boxes:
                    box = min(boxes[name], left)
                else:
                    later = [s for s in ("distill", "train") if s in stages and STAGES.index(s) > STAGES.index(name)]
                    box = left * (0.5 if later else 1.0)
                if box < 10:
                    report.add(name, "skipped", 0.0, reason="no time left in the suite")
                    continue
                status, fields = globals()[f"stage_{name}"](args, box)
            report.add(name, status, time.monotonic() - started, **fields)
            exit_status |= status in ("failed", "timeout")
    finally:
        shutil.rmtree(args.scratch, ignore_errors=True)
    return exit_status


if __name__ == "__main__":
    sys.exit(main())
