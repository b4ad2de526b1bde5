"""Options shared by the commands that translate: naming a generator, and renamed options.

A command only maps its flags onto ``cycletools.get_generator``; the loading itself lives there.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings


class Number:
    """An argparse type: a whole number (``kind=int``) or a finite number within [``low``, ``high``]
    (``above``: strictly greater than it; ``below``: strictly less), so that every numeric option is
    refused where it is parsed, in one line with exit status 2: nan, infinities, out-of-range values."""

    def __init__(self, kind: type = int, low: float | None = None, high: float | None = None,
                 above: float | None = None, below: float | None = None):
        self.kind, self.low, self.high, self.above, self.below = kind, low, high, above, below
        self.__name__ = "whole number" if kind is int else "number"  # argparse names the type by it

    def __call__(self, text: str):
        try:
            if "_" in text or not text.isascii():  # Python reads 1_0 as 10 and ١٠ as 10; a user means neither
                raise ValueError(text)
            value = int(text, 10) if self.kind is int else float(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"takes {self.describe()}, not {text!r}") from None
        if not math.isfinite(value) or (self.low is not None and value < self.low) or \
                (self.high is not None and value > self.high) or \
                (self.above is not None and value <= self.above) or (self.below is not None and value >= self.below):
            raise argparse.ArgumentTypeError(f"takes {self.describe()}, not {text!r}")
        return value

    def describe(self) -> str:
        what = "a whole number" if self.kind is int else "a number"
        bounds = []
        if self.low is not None:
            bounds.append(f"at least {self.low:g}")
        if self.above is not None:
            bounds.append(f"greater than {self.above:g}")
        if self.high is not None:
            bounds.append(f"at most {self.high:g}")
        if self.below is not None:
            bounds.append(f"less than {self.below:g}")
        return what + (" " + " and ".join(bounds) if bounds else "")


# The numeric options' ranges, named once and shared by the commands.
COUNT = Number(int, 1, 10**9)                 # steps, frames, intervals
COUNT_OR_ZERO = Number(int, 0, 10**9)
BATCH = Number(int, 1, 4096)
WORKERS = Number(int, 0, 256)
THREADS = Number(int, 1, 4096)                # and at most the CPU's logical cores, checked when they are set
PIXELS = Number(int, 2, 16384)                # a frame's shorter side
CROP = Number(int, 8, 16384)                  # training and export sizes (each command has its own minimum)
WIDTH = Number(int, 1, 4096)                  # channels
RATE = Number(float, above=0, high=10.0)      # learning rates
WEIGHT = Number(float, 0, 1e6)                # loss weights
SECONDS = Number(float, 0, 10**7)             # a position in a clip
LENGTH = Number(float, above=0, high=10**7)   # a duration
SEED = Number(int, 0, 2**63 - 1)
DECAY = Number(float, above=0, below=1)       # a moving average's decay per step


class DeprecatedAlias(argparse.Action):
    """An old option name that still works for one release, with a warning naming the new one."""

    def __init__(self, option_strings, dest, new_name: str, **kwargs):
        self.new_name = new_name
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        warnings.warn(f"{parser.prog}: {option_string} is deprecated and will be removed in the next release; "
                      f"use {self.new_name}", FutureWarning, stacklevel=2)
        setattr(namespace, self.dest, values)


def add_renamed(parser: argparse.ArgumentParser, old: str, new: str, dest: str, **kwargs) -> None:
    """Accept ``old`` as a hidden, deprecated spelling of ``new`` (same destination and type)."""
    parser.add_argument(old, dest=dest, action=DeprecatedAlias, new_name=new, help=argparse.SUPPRESS,
                        default=argparse.SUPPRESS, **kwargs)


WORKING_SIZE_TAKES = "takes a number of pixels (at least 8) or 'native'"


def working_size(value) -> int | None | str:
    """``native`` → None, ``auto`` (the default: the domain's size, else native), else pixels (at least 8).
    An argparse type too, so that a bad value is refused where it is parsed, before anything loads; a value
    it already parsed passes through."""
    from cycletools.errors import UsageError

    if value is None or isinstance(value, int):
        return value
    if value in ("native", "auto"):
        return None if value == "native" else value
    if not value.isascii() or not value.isdigit() or int(value) < 8:
        raise UsageError(f"--working-size {WORKING_SIZE_TAKES}, not {value!r}")
    return int(value)


def working_size_option(value: str) -> int | None | str:
    """``working_size`` for argparse: its complaint as argparse's one-line usage error (exit 2)."""
    from cycletools.errors import UsageError

    try:
        return working_size(value)
    except UsageError:
        raise argparse.ArgumentTypeError(f"{WORKING_SIZE_TAKES}, not {value!r}") from None


def add_generator_options(parser: argparse.ArgumentParser) -> None:
    """--plugin / --weights / --run and their companions, shared by the commands that translate."""
    parser.add_argument("--plugin", metavar="NAME", help="a registered domain, e.g. horse2zebra; its weights "
                        "come from --weights, else --variant's choice among those here, else --download")
    parser.add_argument("--weights", metavar="FILE", help="generator weights (.safetensors or .pth), or a file on "
                        "the Hugging Face Hub: hf://OWNER/REPO/PATH[@REVISION]")
    parser.add_argument("--run", metavar="DIR", help="training run folder (uses DIR/weights/)")
    parser.add_argument("--direction", choices=("a2b", "b2a"), default=None,
                        help="with --run: a2b (trainA→trainB style) or b2a (default: a2b)")
    parser.add_argument("--download", action="store_true",
                        help="download what is not here yet: the domain's weights (--plugin), an hf:// file "
                             "(--weights)")
    parser.add_argument("--working-size", metavar="N|native", default="auto", type=working_size_option,
                        help="translate with the shorter side scaled to N pixels, then scale back to the input's "
                             "size (default: the domain's recommended size with --plugin, else native); what the "
                             "generator is given is bounded (8192 pixels a side, 16.8 megapixels)")
    parser.add_argument("--device", metavar="DEV", default=None,
                        help="cpu, cuda, cuda:1, mps ... (default: CUDA, else Apple's GPU, else the CPU)")
    parser.add_argument("--threads", type=THREADS, metavar="N", default=None,
                        help="CPU threads for the generator, PyTorch's or ONNX Runtime's (default: the physical "
                             "cores)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16", "int8"), default="auto",
                        help="compute precision: auto is fp32 on the CPU, fp16 on CUDA; bf16 roughly halves "
                             "CPU time on CPUs with native bf16 (AVX512-BF16, AMX) and is slower elsewhere; int8 "
                             "(--backend onnxruntime --calibrate DIR) quantises the convolutions, calibrated on "
                             "DIR's images, cached")
    parser.add_argument("--calibrate", metavar="DIR", default=None,
                        help="with --precision int8: images of the domain's input side (e.g. DATA/trainA), "
                             "32 of them calibrate the quantisation")
    parser.add_argument("--variant", choices=("auto", "bundled", "full", "fast"), default="auto",
                        help="with --plugin, which of the domain's generators: bundled (shipped with cycletools), "
                             "full (the full-size one you fetched or imported), fast (a compact student). auto: "
                             "what you fetched or imported wins over the bundled one; on the CPU a fast student "
                             "comes first (default: auto)")
    parser.add_argument("--backend", choices=("torch", "compile", "onnxruntime", "openvino"), default="torch",
                        help="torch: plain PyTorch; compile: PyTorch with torch.compile, for videos, the webcam "
                             "and folders of same-sized images (the first call per frame size waits for "
                             "compilation, seconds, cached on disk for later runs); onnxruntime and openvino "
                             "(CPU): an ONNX export, made on first use and cached, run by ONNX Runtime or by "
                             "OpenVINO, the fastest for the compact generators on a CPU (default: torch)")


def generator_options(args: argparse.Namespace) -> dict:
    """``get_generator``'s keyword arguments from the parsed flags (a domain is given separately)."""
    return {"weights": args.weights, "run": args.run, "direction": args.direction or "a2b", "download": args.download,
            "device": args.device, "precision": args.precision, "variant": args.variant, "backend": args.backend,
            "calibrate": args.calibrate}


def faithful_variant(plugin: str | None, weights: str | None) -> str:
    """For a teacher or an export: the domain's most faithful generator here (full, else bundled, else fast);
    ``auto`` where --weights names the file or there is no domain."""
    from cycletools import store
    from cycletools.registry import get_registry

    return "auto" if plugin is None or weights is not None else store.best_variant(get_registry().domain(plugin))


def translator_from_args(args: argparse.Namespace):
    """The Translator that --plugin / --weights / --run name, through the one resolver."""
    from cycletools.errors import UsageError
    from cycletools.pipelines.translator import Translator
    from cycletools.resolver import get_generator
    from cycletools.utils.devices import set_threads

    if args.direction is not None and args.run is None:
        raise UsageError("--direction goes with --run DIR (a training run has two generators; a domain or a "
                         "weights file has one)")
    size = working_size(args.working_size)  # checked before anything loads: one line, not a usage dump
    set_threads(args.threads)
    if args.backend == "compile":
        print("compiling the generator with torch.compile: the first frames wait for it (cached for later runs)",
              file=sys.stderr)
    loaded = get_generator(args.plugin, **generator_options(args))
    if loaded.notice and args.variant == "auto":
        print(loaded.notice, file=sys.stderr)
    return Translator.from_loaded(loaded, size)
