"""A style schedule: different styles at different times, interpolated in style-vector space.

``--style a.jpg@0s --style b.jpg@5s`` holds a's vector up to 0 s, moves smoothly
(smoothstep, so there is no kink at a keyframe) to b's by 5 s, and holds b's after.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..colour import ColourMoments, blend_moments
from ..errors import OptionError


@dataclass(frozen=True)
class Keyframe:
    time: float           # seconds
    vector: torch.Tensor  # (1, D)
    colours: ColourMoments | None = None  # the painting's, for colour matching (None: a vector, no colours)


class StyleSchedule:
    """Style vectors at keyframe times; :meth:`at` gives the vector for any time."""

    def __init__(self, keyframes: Sequence[Keyframe]):
        if not keyframes:
            raise OptionError("style", "needs at least one style image")
        times = [k.time for k in keyframes]
        if any(not math.isfinite(t) or t < 0 for t in times):
            raise OptionError("style time", f"must be a finite number of seconds, 0 or more, got {times}")
        if len(set(times)) != len(times):
            raise OptionError("style time", f"must differ for every style, got {times}")
        self.keyframes = sorted(keyframes, key=lambda k: k.time)

    @classmethod
    def constant(cls, vector: torch.Tensor, colours: ColourMoments | None = None) -> StyleSchedule:
        return cls([Keyframe(0.0, vector, colours)])

    def at(self, time: float) -> torch.Tensor:
        """The style vector at ``time`` (seconds)."""
        return sum(weight * frame.vector for frame, weight in self._weights(time))

    def colours_at(self, time: float) -> ColourMoments | None:
        """The colour moments at ``time``, mixed as the vectors are; None if a keyframe has none."""
        parts = [(frame.colours, weight) for frame, weight in self._weights(time)]
        return None if any(c is None for c, _ in parts) else blend_moments(parts)

    def _weights(self, time: float) -> list[tuple[Keyframe, float]]:
        """The keyframes that make the style at ``time``, with their weights (summing to 1)."""
        frames = self.keyframes
        if time <= frames[0].time or len(frames) == 1:
            return [(frames[0], 1.0)]
        for before, after in zip(frames, frames[1:]):
            if time < after.time:
                t = (time - before.time) / (after.time - before.time)
                t = t * t * (3 - 2 * t)
                return [(before, 1 - t), (after, t)]
        return [(frames[-1], 1.0)]


def parse_time(text: str) -> float:
    """``5``, ``5s``, ``1.5s``, ``1:05`` or ``0:01:05.5`` -> seconds."""
    value = text.strip().lower().removesuffix("s")
    try:
        parts = [float(p) for p in value.split(":")]
    except ValueError:
        raise OptionError("style time", f"must be seconds (5s, 1.5) or m:ss, got {text!r}") from None
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    if not math.isfinite(seconds) or seconds < 0 or any(p < 0 for p in parts):
        raise OptionError("style time", f"must be a finite number of seconds, 0 or more, got {text!r}")
    return seconds
