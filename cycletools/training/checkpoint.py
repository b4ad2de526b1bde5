"""Full training state on disk: written atomically, read back with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cycletools.errors import CycletoolsError, first_line
from cycletools.utils.atomic import atomic_path

CHECKPOINT_FORMAT = "cycletools-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` via a temporary file and a rename (never a partial file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint; a missing, truncated, foreign or corrupt file gets one clear error."""
    path = Path(path)
    if not path.is_file():
        raise CycletoolsError(f"no checkpoint to resume from: {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CycletoolsError(f"{path}: corrupt or unreadable checkpoint ({first_line(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CycletoolsError(f"{path}: not a cycletools training checkpoint")
    if state.get("version") != CHECKPOINT_VERSION:
        raise CycletoolsError(f"{path}: checkpoint version {state.get('version')} is not supported "
                              f"(this cycletools reads version {CHECKPOINT_VERSION})")
    return state
