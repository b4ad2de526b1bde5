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
