"""Video-only options, importable without PyTorch (the command line's parser reads their defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import OptionError
from ..pipeline.options import check_fraction


@dataclass(frozen=True)
class VideoOptions:
    """What only video has. ``smooth_stats``: the decay of the statistics' moving average
    (0 turns it off); ``flow_blend``: how much of the warped previous frame consistent pixels
    keep (0 turns it off); ``audio``: copy the audio stream."""

    smooth_stats: float = 0.9
    flow_blend: float = 0.6
    audio: bool = True

    def validate(self) -> VideoOptions:
        check_fraction("smooth_stats", self.smooth_stats)
        check_fraction("flow_blend", self.flow_blend)
        if self.smooth_stats >= 1.0:
            raise OptionError("smooth_stats", "must be below 1 (1 would never follow the video)")
        if not isinstance(self.audio, bool):
            raise OptionError("audio", f"must be true or false, got {self.audio!r}")
        return self
