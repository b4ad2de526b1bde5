"""Speed of each generator family on this machine: MACs, parameters, CPU frames/s (PyTorch, torch.compile, ONNX Runtime).

    python benchmarks/generators.py [--size 256] [--frames 120] [--reference ../shared/reference/gan-compression-horse2zebra-G.pth]
                                    [--calibrate ../shared/datasets/horse2zebra/trainA] [--student runs/NAME/student.safetensors]

For ResNet-9 ngf=64, the GAN Compression "small" configuration (the published compressed
horse→zebra generator when --reference is given), the "wide" student (the small configuration's
inner widths, residual stream 96), the "lean" student (stream 112, up 24/12), the "medium" and the
"tiny" students (each student size the bundled weights/horse2zebra.fast.safetensors when it is of that
size, with trained weights instead of random ones; a row "mobile-fast" of its own when its layout is no
named size; with --student, a row "student-NAME" for each file given): model-only frames/s at
size² with PyTorch fp32, with torch.compile (timed after the compiling call) and with ONNX
Runtime (same process, batch 1), with --calibrate also the int8 ONNX Runtime export, and with the
openvino package installed OpenVINO's CPU runtime on the same export; then `translate_video` end to
end (batches of 4, as the CLI) on a FRAMES-frame clip of real footage (see video_profile.py) with the
fastest of PyTorch, torch.compile, ONNX Runtime and OpenVINO (run once at the batch of 4 first, so a
compiled model is not compiled again inside the timing). One JSON line
per generator, naming the CPU and the kernels PyTorch uses (ATEN_CPU_CAPABILITY=avx2 forces AVX2;
ONNX Runtime and OpenVINO pick their own).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
import time
from pathlib import Path

import torch
from video_profile import shared_footage, square_frames, write_clip

from cycletools.export import OnnxGenerator, OpenVinoGenerator, export_generator
from cycletools.models import ResnetGenerator, init_weights
from cycletools.models.complexity import count_macs, count_parameters
from cycletools.models.mobile import MobileResnetGenerator
from cycletools.pipelines.translator import Translator
from cycletools.pipelines.video import translate_video
from cycletools.quantize import calibration_inputs, quantize_onnx
from cycletools.registry import get_registry
from cycletools.training.distill import STUDENTS
from cycletools.utils.devices import describe_cpu
from cycletools.weights import load_generator


def frames_per_second(fn, x: torch.Tensor, repeats: int) -> float:
    fn(x)
    start = time.perf_counter()
    for _ in range(repeats):
        fn(x)
    return repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--reference", type=Path)
    parser.add_argument("--student", type=Path, action="append", default=[], metavar="FILE",
                        help="a distilled student's file (repeatable): a row of its own, named after its folder")
    parser.add_argument("--calibrate", type=Path, help="images of the input side: adds the int8 ONNX Runtime column")
    args = parser.parse_args()
    torch.manual_seed(0)
    generators = {"resnet9-ngf64": init_weights(ResnetGenerator()),
                  "mobile-small": init_weights(MobileResnetGenerator(**STUDENTS["small"])),
                  **{f"mobile-{size}": init_weights(MobileResnetGenerator(**STUDENTS[size]))
                     for size in ("wide", "lean", "medium", "tiny")}}
    if args.reference and args.reference.is_file():
        generators["mobile-small"] = load_generator(args.reference, get_registry())[0]
    fast = Path(__file__).resolve().parent.parent / "weights" / "horse2zebra.fast.safetensors"
    if fast.is_file():
        student, config = load_generator(fast, get_registry())
        sizes = [size for size, widths in STUDENTS.items()
                 if size != "small" and all(config.get(key) == value for key, value in widths.items())]
        generators[f"mobile-{sizes[0]}" if sizes else "mobile-fast"] = student  # a layout of its own: a row of its own
    for missing in [path for path in args.student if not path.is_file()]:
        parser.error(f"--student: no such file: {missing}")
    for student_file in args.student:
        generators[f"student-{student_file.resolve().parent.name}"] = load_generator(student_file, get_registry())[0]
    machine = describe_cpu()
    x = torch.rand(1, 3, args.size, args.size) * 2 - 1
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"  # real footage where ../shared has it (noise costs the encoder far more)
        write_clip(clip, square_frames(shared_footage(), args.size, args.frames))
        for name, generator in generators.items():
            generator.eval()
            repeats = 3 if name.startswith("resnet9") else 20
            torch_translator = Translator(generator, device="cpu", precision="fp32")
            onnx_path = export_generator(generator, Path(tmp) / f"{name}.onnx", "onnx", args.size, dynamic=True)
            onnx_translator = Translator(OnnxGenerator(onnx_path), device="cpu", config={}, precision="fp32")
            compiled_translator = Translator(generator, device="cpu", precision="fp32", compile=True)
            extra = {}
            with torch.inference_mode():
                torch_fps = frames_per_second(torch_translator.translate_tensor, x, repeats)
                compiled_fps = frames_per_second(compiled_translator.translate_tensor, x, repeats)
                onnx_fps = frames_per_second(onnx_translator.translate_tensor, x, repeats)
                if args.calibrate:
                    int8 = quantize_onnx(onnx_path, Path(tmp) / f"{name}.int8.onnx",
                                         calibration_inputs(args.calibrate, args.size))
                    int8_translator = Translator(OnnxGenerator(int8), device="cpu", config={}, precision="fp32")
                    extra["onnxruntime_int8_fps"] = round(frames_per_second(int8_translator.translate_tensor, x,
                                                                            repeats), 2)
                speeds = {"torch": (torch_fps, torch_translator), "compile": (compiled_fps, compiled_translator),
                          "onnxruntime": (onnx_fps, onnx_translator)}
                if importlib.util.find_spec("openvino"):
                    openvino_translator = Translator(OpenVinoGenerator(onnx_path), device="cpu", config={},
                                                     precision="fp32")
                    openvino_fps = frames_per_second(openvino_translator.translate_tensor, x, repeats)
                    extra["openvino_fps"] = round(openvino_fps, 2)
                    speeds["openvino"] = (openvino_fps, openvino_translator)
            best_name = max(speeds, key=lambda key: speeds[key][0])
            best = speeds[best_name][1]
            with torch.inference_mode():  # a compiled model meets the video's batch of 4 here, not in the timing
                best.translate_tensor(x.expand(4, -1, -1, -1).contiguous())
            frames = args.frames if not name.startswith("resnet9") else min(args.frames, 12)
            video = translate_video(best, clip, Path(tmp) / f"{name}.mp4", progress=False, batch_size=4,
                                    duration=frames / 30)  # the CLI's batch
            print(json.dumps({"generator": name, "machine": machine, "size": args.size,
                              "gmacs": round(count_macs(generator, args.size) / 1e9, 2),
                              "params": count_parameters(generator),
                              "torch_fps": round(torch_fps, 2), "compile_fps": round(compiled_fps, 2),
                              "onnxruntime_fps": round(onnx_fps, 2), **extra,
                              "video_fps": round(video.frames_per_second, 2), "video_backend": best_name}),
                  flush=True)


if __name__ == "__main__":
    main()
