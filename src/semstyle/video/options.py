"""Video-only options, importable without PyTorch (the command line's parser reads their defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import OptionError
from ..pipeline.options import check_fraction


@dataclass(frozen=True)
class VideoOptions:
    """What only video has. ``smooth_stats``: the decay of the statistics' moving average
    (0 turns it off); ``flow_blend``: how much of the warped previous frame consistent pixels
    keep (0 turns it off); ``flow_size``: the longer side in px at which optical flow runs (frames
    are scaled down to it, the flow up); ``audio``: copy the audio stream."""

    smooth_stats: float = 0.9
    flow_blend: float = 0.6
    flow_size: int = 640
    audio: bool = True

    def validate(self) -> VideoOptions:
        check_fraction("smooth_stats", self.smooth_stats)
        check_fraction("flow_blend", self.flow_blend)
        if self.smooth_stats >= 1.0:
            raise OptionError("smooth_stats", "must be below 1 (1 would never follow the video)")
        if isinstance(self.flow_size, bool) or not isinstance(self.flow_size, int) or self.flow_size < 32:
            raise OptionError("flow_size", f"must be a whole number of pixels, at least 32, got {self.flow_size!r}")
        if not isinstance(self.audio, bool):
            raise OptionError("audio", f"must be true or false, got {self.audio!r}")
        return self


LIVE_FLOW_SIZE = 320
"""``semstyle live`` and the web app's live tab compute flow at this size: a camera frame must be
done in a fifteenth of a second, and blending needs far less flow detail than a file's warping
error does."""
