"""Pick the device, the precision and the number of threads to run on, by what the hardware does."""

from __future__ import annotations

import os
import warnings
from functools import lru_cache

import torch

from cycletools.errors import CycletoolsError, UsageError

PRECISIONS = ("fp32", "bf16", "fp16")


def mps_available() -> bool:
    """Apple-silicon GPUs (Metal Performance Shaders)."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str | None = None) -> torch.device:
    """``None``/``"auto"`` → CUDA when available, else Apple's MPS, else CPU; otherwise the named device, checked."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise CycletoolsError(f"unknown device {name!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CycletoolsError(f"device {name!r} asked for, but CUDA is not available on this machine")
    if device.type == "mps" and not mps_available():
        raise CycletoolsError(f"device {name!r} asked for, but this machine has no Apple GPU that PyTorch can use")
    return device


def cpu_bf16_is_native() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX) and PyTorch may use it.

    Elsewhere (AVX2 laptops, ``ATEN_CPU_CAPABILITY=avx2``) bf16 is emulated and slower than fp32.
    """
    if os.environ.get("ATEN_CPU_CAPABILITY", "").lower() in ("avx2", "default", "avx", "sse"):
        return False  # PyTorch was told to leave AVX-512 alone
    return _cpu_has_bf16()


@lru_cache(maxsize=1)
def _cpu_has_bf16() -> bool:
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(probe()) for probe in probes if probe is not None)


BF16_IS_SLOW = ("this CPU has no native bf16 (AVX512-BF16 or AMX), so bf16 is emulated and runs slower than fp32")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → fp16 on CUDA, fp32 elsewhere; fp16 needs a GPU; bf16 on a CPU without it in hardware warns."""
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if precision not in PRECISIONS:
        raise CycletoolsError(f"precision must be auto, {', '.join(PRECISIONS)} (or int8 with the onnxruntime backend), "
                              f"not {precision!r}")
    if precision == "fp16" and device.type not in ("cuda", "mps"):
        raise CycletoolsError("fp16 precision needs a CUDA device (or Apple's MPS); use bf16 or fp32 on the CPU")
    if precision == "bf16" and device.type == "cpu" and not cpu_bf16_is_native():
        warnings.warn(f"--precision bf16: {BF16_IS_SLOW}; fp32 is faster here", stacklevel=2)
    return precision


def physical_cores() -> int:
    """Physical CPU cores (hyper-threads not counted) this process may use."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            text = handle.read()
    except OSError:
        return usable
    cores, physical = set(), None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "physical id":
            physical = value.strip()
        elif key.strip() == "core id":
            cores.add((physical, value.strip()))
    return max(1, min(usable, len(cores))) if cores else usable


def set_threads(threads: int | None) -> int:
    """Use ``threads`` CPU threads for PyTorch (default: the physical cores); returns the number set."""
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be at least 1, not {threads}")
    logical = os.cpu_count() or 1
    if threads is not None and threads > logical:
        raise UsageError(f"--threads {threads} is more than this computer's {logical} logical CPUs")
    count = threads or physical_cores()
    torch.set_num_threads(count)
    return count


def describe_cpu() -> str:
    """For benchmark reports: ``AMD EPYC, 2 cores, AVX2 kernels, no native bf16``."""
    model = "x86-64" if os.uname().machine == "x86_64" else os.uname().machine
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), model)
    except OSError:
        pass
    kernels = torch.backends.cpu.get_cpu_capability()
    bf16 = "native bf16" if cpu_bf16_is_native() else "no native bf16"
    return f"{model}, {physical_cores()} cores, {kernels} kernels, {bf16}"
