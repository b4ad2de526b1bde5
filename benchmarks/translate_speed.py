"""Translation speed of the 9-block, ngf=64 ResNet generator.

    python benchmarks/translate_speed.py [--device cpu|cuda] [--repeats 5] [--batch 32] [--compile]

CPU: milliseconds per 256x256 image through Translator.translate_tensor (fp32, batch 1),
plus the bf16-autocast figure on CPUs that support it. CUDA: images/s at 256x256
(batched) and frames/s at 1920x1080 (batch 1), fp32 and fp16. With --compile, each case is
measured again through torch.compile (``--backend compile``: CUDA graphs on CUDA), timed after
its compiling call. One JSON line per case.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from cycletools.models import ResnetGenerator, init_weights
from cycletools.pipelines.translator import Translator
from cycletools.utils.devices import describe_cpu


def timed(fn, repeats: int, device: torch.device) -> float:
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    fn()
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32, help="batch for the CUDA 256x256 figure")
    parser.add_argument("--compile", action="store_true", help="also measure the torch.compile backend")
    args = parser.parse_args()
    torch.manual_seed(0)
    generator = init_weights(ResnetGenerator(ngf=64, n_blocks=9))
    device = Translator(generator, device=args.device).device
    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        describe_cpu()
    base = {"machine": machine, "torch": torch.__version__, "generator": "resnet9 ngf64"}

    backends = (False, True) if args.compile else (False,)
    if device.type == "cpu":
        x = torch.rand(1, 3, 256, 256) * 2 - 1
        for precision in ("fp32", "bf16"):
            for compiled in backends:
                translator = Translator(generator, device=device, precision=precision, compile=compiled)
                seconds = timed(lambda: translator.translate_tensor(x), args.repeats, device)
                print(json.dumps({**base, "case": f"256x256 {precision} batch 1{' compiled' * compiled}",
                                  "ms_per_image": round(seconds * 1000, 1)}), flush=True)
        return

    for precision in ("fp32", "fp16"):
        for compiled in backends:
            translator = Translator(generator, device=device, precision=precision, compile=compiled)
            suffix = " compiled" * compiled
            x = torch.rand(args.batch, 3, 256, 256, device=device) * 2 - 1
            seconds = timed(lambda: translator.translate_tensor(x), args.repeats, device)
            print(json.dumps({**base, "case": f"256x256 {precision} batch {args.batch}{suffix}",
                              "images_per_s": round(args.batch / seconds, 1)}), flush=True)
            x = torch.rand(1, 3, 1080, 1920, device=device) * 2 - 1
            seconds = timed(lambda: translator.translate_tensor(x), args.repeats, device)
            print(json.dumps({**base, "case": f"1920x1080 {precision} batch 1{suffix}",
                              "frames_per_s": round(1 / seconds, 2)}), flush=True)


if __name__ == "__main__":
    main()
