"""Pick the torch device to run on."""

from __future__ import annotations

import torch

from cycletools.errors import CycletoolsError


def resolve_device(name: str | None = None) -> torch.device:
    """``None``/``"auto"`` → CUDA when available, else CPU; otherwise the named device, checked."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise CycletoolsError(f"unknown device {name!r}: {exc}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CycletoolsError(f"device {name!r} asked for, but CUDA is not available on this machine")
    return device


PRECISIONS = ("fp32", "bf16", "fp16")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → fp16 on CUDA, fp32 elsewhere; fp16 needs CUDA (CPU kernels are slow or missing)."""
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if precision not in PRECISIONS:
        raise CycletoolsError(f"precision must be auto, {', '.join(PRECISIONS)}; not {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise CycletoolsError("fp16 precision needs a CUDA device; use bf16 or fp32 on the CPU")
    return precision
