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

import functools

import numpy as np
import torch

from ..nn.generator import NormStats
from .options import VideoOptions

Motion = tuple[np.ndarray, np.ndarray]
"""How a frame moved from the previous one: the backward flow (H, W, 2) and where it holds (H, W)."""

FLOW_SIZE = VideoOptions.flow_size
"""Flow and its consistency check are computed at most this large, then scaled up: DIS is accurate
enough there, and the check's per-pixel arithmetic is as costly as the flow itself."""


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
    stylization of a still pixel settles over a few frames instead of being redrawn each time).
    ``flow_size`` caps the longer side at which the flows and their check run (live uses less than
    files do: at 320 px a 640x360 frame's flow work takes a quarter of the time)."""

    def __init__(self, weight: float = VideoOptions.flow_blend, flow_size: int = FLOW_SIZE,
                 preset: str = VideoOptions.flow_preset):
        import cv2

        self.cv2 = cv2
        self.weight, self.flow_size = weight, flow_size
        self.dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset.upper()}"))
        self.previous_gray: np.ndarray | None = None
        self.previous_output: np.ndarray | None = None

    def __call__(self, frame: np.ndarray, output: np.ndarray) -> np.ndarray:
        """``frame`` the input (H, W, 3) uint8, ``output`` its fresh stylization; returns the blend."""
        return self.blend(self.motion(frame), output)

    def motion(self, frame: np.ndarray) -> Motion | None:
        """How the scene moved since the previous frame (None for the first, or after a change of
        size). It reads only the input frames, so it can run while the frame is being stylized
        (:class:`~semstyle.video.frames.FrameStylizer` does, in a second thread)."""
        gray = flow_input(frame, self.flow_size)
        moved = None
        if self.previous_gray is not None and self.previous_gray.shape == gray.shape:
            moved = motion_between(self.dis, self.previous_gray, gray, frame.shape[:2])
        self.previous_gray = gray
        return moved

    def blend(self, motion: Motion | None, output: np.ndarray) -> np.ndarray:
        """The fresh stylization with the previous one, moved by ``motion``, blended in where the
        flow holds; remembered for the next frame."""
        blended = output
        if motion is not None and self.previous_output is not None \
                and self.previous_output.shape == output.shape:
            back, consistent = motion
            alpha = self.weight * consistent
            # one multithreaded pass in uint8 (rounded), a third of numpy's float arithmetic
            blended = self.cv2.blendLinear(warp(self.previous_output, back), np.ascontiguousarray(output),
                                           alpha, 1.0 - alpha)
        self.previous_output = blended
        return blended


def flow_input(frame: np.ndarray, flow_size: int = FLOW_SIZE) -> np.ndarray:
    """An RGB frame as the grey image flow is computed on, its longer side at most ``flow_size``."""
    import cv2

    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    scale = min(1.0, flow_size / max(height, width))
    if scale < 1.0:
        gray = cv2.resize(gray, (max(8, round(width * scale)), max(8, round(height * scale))),
                          interpolation=cv2.INTER_AREA)
    return gray


def optical_flow(dis, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Flow (H, W, 2) such that ``target[y, x] ~ source[y + f_y, x + f_x]``."""
    return dis.calc(target, source, None)


@functools.lru_cache(maxsize=4)
def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (x, y) of an image, made once per size (read-only: callers add to them)."""
    grid = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    for axis in grid:
        axis.flags.writeable = False
    return grid[0], grid[1]


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at (x + f_x, y + f_y): the source frame moved onto the target's pixels."""
    import cv2

    grid_x, grid_y = _grid(*flow.shape[:2])
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
    grid_x, grid_y = _grid(height, width)
    inside = ((grid_x + back[..., 0] >= 0) & (grid_x + back[..., 0] <= width - 1) &
              (grid_y + back[..., 1] >= 0) & (grid_y + back[..., 1] <= height - 1))
    return (ok & inside).astype(np.float32)


def motion_between(dis, previous_gray: np.ndarray, gray: np.ndarray, size: tuple[int, int]) -> Motion:
    """The backward flow between two grey frames and where it holds (float32, 0..1), at ``size``
    (height, width): the frames may be smaller (:func:`flow_input`), and the flow and the check's
    mask are then scaled up (the mask bilinearly, a soft edge)."""
    import cv2

    back = optical_flow(dis, previous_gray, gray)     # current pixel -> where it was before
    forward = optical_flow(dis, gray, previous_gray)  # previous pixel -> where it went
    consistent = consistency(back, forward)
    height, width = size
    if (height, width) != gray.shape:
        back = cv2.resize(back, (width, height), interpolation=cv2.INTER_LINEAR)
        back[..., 0] *= width / gray.shape[1]
        back[..., 1] *= height / gray.shape[0]
        consistent = cv2.resize(consistent, (width, height), interpolation=cv2.INTER_LINEAR)
    return back, consistent

