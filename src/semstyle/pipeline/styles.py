"""Style inputs: one painting, a weighted blend of several, or a ready style vector.

A style is reduced to one style vector; a blend is the weighted mean of its
images' vectors (weights normalised to sum to 1), so every mix happens in
feature space, never as a pixel blend.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from PIL import Image

from ..errors import OptionError
from ..gallery import find_style

if TYPE_CHECKING:
    import torch

ImageLike = Union[str, Path, Image.Image]
StyleLike = Union[ImageLike, Sequence, "torch.Tensor"]
"""An image, a list of images or ``(image, weight)`` pairs, or a (1, D) style vector."""


def is_vector(style: Any) -> bool:
    """A torch tensor (a ready style vector). Without torch imported nothing is one, so
    this module works in the torch-free ONNX runtime too."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.is_tensor(style)


@dataclass(frozen=True)
class WeightedStyle:
    image: ImageLike
    weight: float = 1.0


def weighted_styles(style: ImageLike | Sequence) -> list[WeightedStyle]:
    """A style or blend as a checked list: weights finite, 0 or more, not all 0. A name that is
    no file but a gallery id (``"starry_night"``) means that painting of :mod:`semstyle.gallery`."""
    if isinstance(style, (str, Path, Image.Image)):
        return [WeightedStyle(from_gallery(style), 1.0)]
    if style is None or is_vector(style):
        raise OptionError("style", "must be a style image or a list of (image, weight) pairs here")
    styles = [s if isinstance(s, WeightedStyle) else WeightedStyle(*s) if isinstance(s, tuple) else WeightedStyle(s)
              for s in style]
    if not styles:
        raise OptionError("style", "needs at least one style image")
    for s in styles:
        if isinstance(s.weight, bool) or not isinstance(s.weight, (int, float)) or not math.isfinite(s.weight) \
                or s.weight < 0:
            raise OptionError("style weight", f"must be a finite number, 0 or more, got {s.weight!r}")
    if sum(s.weight for s in styles) <= 0:
        raise OptionError("style weight", "must not be 0 for every style image")
    return [WeightedStyle(from_gallery(s.image), s.weight) for s in styles]


def is_collection(image: ImageLike) -> bool:
    """A folder of paintings given as one style (an artist collection)."""
    return isinstance(image, (str, Path)) and Path(image).is_dir()


def from_gallery(image: ImageLike) -> ImageLike:
    """``image`` itself, unless it is a bare name that no file has and the gallery has."""
    if isinstance(image, str) and not Path(image).exists():
        return find_style(image) or image
    return image


def style_names(style: Any) -> list[str]:
    """File names of a style or blend, for provenance metadata (none for a
    precomputed vector; "image" for an in-memory one)."""
    if style is None or is_vector(style):
        return []
    return [Path(str(s.image)).name if not isinstance(s.image, Image.Image) else "image"
            for s in weighted_styles(style)]


def single_style_image(style: Any, purpose: str = "label-matched transfer") -> ImageLike:
    """The one style image that label-matched transfer reads regions from (or refinement its statistics)."""
    if is_vector(style) or style is None:
        raise OptionError("style", f"must be the style image itself for {purpose}, not a style vector")
    styles = weighted_styles(style)
    if len(styles) != 1:
        raise OptionError("style", f"must be one image for {purpose}, not a blend")
    return styles[0].image
