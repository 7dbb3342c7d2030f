"""Temporal consistency: steady normalisation statistics and flow-guided blending.

Stylizing frame by frame makes two kinds of flicker. The content's instance
statistics change a little from frame to frame, and AdaIN turns that into
global brightness and colour pumping: :class:`StatsSmoother` feeds the one
forward pass (``stats=``) an exponential moving average of them instead.
Still and slowly moving texture shimmers, because the decoder redraws strokes
from scratch each frame: :class:`FlowBlender` warps the previous stylized
frame onto the current one with optical flow between the *input* frames
(OpenCV's DIS flow; no weights) and blends it in only where a forward-backward
check says the flow is right, so occluded and newly visible pixels take the
fresh frame and moving edges leave no ghost trails.
"""

from __future__ import annotations

import numpy as np
import torch

from ..nn.generator import NormStats

FLOW_MAX_SIDE = 640
"""Flow is computed at most this large (then scaled up): DIS is accurate enough there and fast."""


class StatsSmoother:
    """Exponential moving average of the content's normalisation statistics.

    ``decay`` 0.9 averages over about ten frames: the slow changes of a scene
    (a pan into a darker room) come through, frame-to-frame noise does not.
    A scene cut (statistics far from the average) restarts the average."""

    def __init__(self, decay: float = 0.9, cut_threshold: float = 0.5):
        self.decay, self.cut_threshold = decay, cut_threshold
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None

    def __call__(self, own: NormStats) -> NormStats:
        mean, std = own
        if self.mean is None or self._is_cut(mean, std):
            self.mean, self.std = mean.clone(), std.clone()
        else:
            self.mean = self.decay * self.mean + (1 - self.decay) * mean
            self.std = self.decay * self.std + (1 - self.decay) * std
        return self.mean, self.std

    def _is_cut(self, mean: torch.Tensor, std: torch.Tensor) -> bool:
        change = (mean - self.mean).abs().mean() / (self.std.mean() + 1e-6)
        return bool(change > self.cut_threshold)


class FlowBlender:
    """Blend the previous stylized frame, warped by optical flow, into the current one.

    ``weight`` is how much of the warped previous frame a consistent pixel keeps (0.6: the
    stylization of a still pixel settles over a few frames instead of being redrawn each time)."""

    def __init__(self, weight: float = 0.6):
        import cv2

        self.cv2 = cv2
        self.weight = weight
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        self.previous_gray: np.ndarray | None = None
        self.previous_output: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, output: np.ndarray) -> np.ndarray:
        """``frame`` the input (H, W, 3) uint8, ``output`` its fresh stylization; returns the blend."""
        gray = self.cv2.cvtColor(frame, self.cv2.COLOR_RGB2GRAY)
        blended = output
        if self.previous_gray is not None and self.previous_gray.shape == gray.shape:
            warped, consistent = warp_previous(self.dis, self.previous_gray, gray, self.previous_output)
            alpha = (self.weight * consistent)[..., None]
            blended = np.clip(np.rint(alpha * warped + (1 - alpha) * output), 0, 255).astype(np.uint8)
        self.previous_gray, self.previous_output = gray, blended
        return blended


def optical_flow(dis, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Flow (H, W, 2) such that ``target[y, x] ~ source[y + f_y, x + f_x]``, at most
    :data:`FLOW_MAX_SIDE` px internally."""
    import cv2

    height, width = target.shape
    scale = min(1.0, FLOW_MAX_SIDE / max(height, width))
    if scale < 1.0:
        small = (max(8, round(width * scale)), max(8, round(height * scale)))
        flow = dis.calc(cv2.resize(target, small, interpolation=cv2.INTER_AREA),
                        cv2.resize(source, small, interpolation=cv2.INTER_AREA), None)
        return cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) / scale
    return dis.calc(target, source, None)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at (x + f_x, y + f_y): the source frame moved onto the target's pixels."""
    import cv2

    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def consistency(back: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """(H, W) float 1 where the flow holds both ways, 0 at occlusions, disocclusions and
    pixels that came from outside the frame (Sundaram et al. 2010's check)."""
    height, width = back.shape[:2]
    forward_at = warp(forward, back)  # the forward flow where each target pixel came from
    round_trip = back + forward_at
    magnitude = (back ** 2).sum(-1) + (forward_at ** 2).sum(-1)
    ok = (round_trip ** 2).sum(-1) <= 0.01 * magnitude + 0.5
    grid_x, grid_y = np.meshgrid(np.arange(width), np.arange(height))
    inside = ((grid_x + back[..., 0] >= 0) & (grid_x + back[..., 0] <= width - 1) &
              (grid_y + back[..., 1] >= 0) & (grid_y + back[..., 1] <= height - 1))
    return (ok & inside).astype(np.float32)


def warp_previous(dis, previous_gray: np.ndarray, gray: np.ndarray,
                  previous: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The previous frame's ``previous`` image warped onto the current frame, and where that holds."""
    back = optical_flow(dis, previous_gray, gray)     # current pixel -> where it was before
    forward = optical_flow(dis, gray, previous_gray)  # previous pixel -> where it went
    return warp(previous, back).astype(np.float32), consistency(back, forward)
