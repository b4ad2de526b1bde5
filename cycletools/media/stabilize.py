"""Temporal stabilisation of per-frame translations, and the flicker measure it is judged by.

Per-frame translation flickers: each frame is translated on its own. The stabiliser
warps the previous *output* onto the current frame with the optical flow of the *input*
(OpenCV DIS), and blends it with the current translation wherever that flow is reliable
(the warped previous input matches the current input). Flicker is the mean absolute
difference between an output frame and the previous output warped by the input's flow,
over the reliable pixels, in grey levels (0–255).
"""

from __future__ import annotations

import numpy as np

from cycletools.errors import CycletoolsError
from cycletools.utils.optional import require

RELIABLE_ERROR = 12.0  # grey levels: a flow vector counts as reliable when it predicts the input this well


def _cv2():
    return require("cv2", "media", "stabilisation")


class FlowWarper:
    """Backward optical flow between consecutive input frames, and warping along it."""

    def __init__(self):
        cv2 = _cv2()
        self.cv2 = cv2
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)

    def flow(self, current_grey: np.ndarray, previous_grey: np.ndarray) -> np.ndarray:
        """For each pixel of the current frame, where it was in the previous one (H×W×2)."""
        return self.dis.calc(current_grey, previous_grey, None)

    def warp(self, image: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """Sample ``image`` (the previous frame) at the flow targets: it lines up with the current frame."""
        height, width = flow.shape[:2]
        grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        return self.cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], self.cv2.INTER_LINEAR,
                              borderMode=self.cv2.BORDER_REPLICATE)

    def grey(self, rgb: np.ndarray) -> np.ndarray:
        return self.cv2.cvtColor(rgb, self.cv2.COLOR_RGB2GRAY)

    def reliable(self, current: np.ndarray, previous: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """Pixels where the warped previous input predicts the current input (H×W bool)."""
        predicted = self.warp(previous, flow).astype(np.float32)
        error = np.abs(predicted - current.astype(np.float32)).mean(axis=-1)
        height, width = flow.shape[:2]
        inside = ((flow[..., 0] + np.arange(width)[None, :] >= 0) & (flow[..., 0] + np.arange(width)[None, :] <= width - 1)
                  & (flow[..., 1] + np.arange(height)[:, None] >= 0) & (flow[..., 1] + np.arange(height)[:, None] <= height - 1))
        return (error < RELIABLE_ERROR) & inside


class TemporalStabilizer:
    """Blends each translated frame with the previous output carried along the input's motion."""

    def __init__(self, strength: float = 0.6):
        if not 0.0 <= strength < 1.0:
            raise CycletoolsError("stabilisation strength must be in [0, 1)")
        self.strength = strength
        self.warper = FlowWarper()
        self._previous_input: np.ndarray | None = None
        self._previous_output: np.ndarray | None = None

    def __call__(self, source: np.ndarray, translated: np.ndarray) -> np.ndarray:
        """``source`` and ``translated`` are H×W×3 uint8 RGB; returns the stabilised frame."""
        if self._previous_input is None or self._previous_input.shape != source.shape:
            result = translated
        else:
            flow = self.warper.flow(self.warper.grey(source), self.warper.grey(self._previous_input))
            carried = self.warper.warp(self._previous_output, flow).astype(np.float32)
            weight = self.strength * self.warper.reliable(source, self._previous_input, flow)[..., None]
            result = (weight * carried + (1 - weight) * translated.astype(np.float32)).round().astype(np.uint8)
        self._previous_input, self._previous_output = source, result
        return result


def flicker(inputs: list[np.ndarray], outputs: list[np.ndarray]) -> float:
    """Mean warping error between consecutive outputs, along the inputs' flow, over reliable pixels."""
    warper = FlowWarper()
    errors, weights = 0.0, 0
    for t in range(1, len(inputs)):
        flow = warper.flow(warper.grey(inputs[t]), warper.grey(inputs[t - 1]))
        mask = warper.reliable(inputs[t], inputs[t - 1], flow)
        if not mask.any():
            continue
        carried = warper.warp(outputs[t - 1], flow).astype(np.float32)
        difference = np.abs(carried - outputs[t].astype(np.float32)).mean(axis=-1)
        errors += float(difference[mask].sum())
        weights += int(mask.sum())
    return errors / weights if weights else 0.0
