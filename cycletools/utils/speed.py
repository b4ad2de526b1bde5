"""How fast a run went, in words that stay meaningful for slow runs."""

from __future__ import annotations


def speed_text(frames: int, seconds: float) -> str:
    """'25.0 frames/s', or '20.4 s/frame' under one frame a second (never a rounded-down '0.0 frames/s')."""
    if frames <= 0:
        return "0 frames/s"
    if seconds <= 0:
        return "instant"
    rate = frames / seconds
    return f"{rate:.1f} frames/s" if rate >= 1 else f"{seconds / frames:.1f} s/frame"
