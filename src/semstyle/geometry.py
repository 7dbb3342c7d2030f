"""Image geometry shared by the torch pipeline and the torch-free ONNX runtime: size caps and
the network's padding. Plain Python, so both sides compute exactly the same numbers."""

from __future__ import annotations

import math

from .errors import OptionError

MIN_SIDE = 32
"""The shorter side of any image the networks see, after size caps (three VGG poolings and a margin)."""

DEFAULT_MAX_SIDE = 1024
"""The longer side a content image is capped at when ``size`` is not given."""

NETWORK_MULTIPLE = 8
"""Sides are padded to a multiple of this: three VGG poolings up to relu4_1."""


def fit_size(width: int, height: int, max_side: int | None, option: str = "size") -> tuple[int, int]:
    """(width, height) scaled down so the longer side is at most ``max_side``
    (``None``: :data:`DEFAULT_MAX_SIDE`). An image so thin that its shorter side
    would fall under :data:`MIN_SIDE` is an error naming the cap to raise."""
    cap = DEFAULT_MAX_SIDE if max_side is None else max_side
    original, longer, shorter = f"{width}x{height}", max(width, height), min(width, height)
    if longer > cap:
        scale = cap / longer
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    if min(width, height) < MIN_SIDE:
        needed = math.ceil(MIN_SIDE * longer / shorter)
        raise OptionError(option, f"of {cap} px would shrink this {original} image to {width}x{height}, "
                                  f"under the {MIN_SIDE} px minimum of the shorter side; use at least {needed}")
    return width, height


def network_padding(height: int, width: int, margin: int,
                    multiple: int = NETWORK_MULTIPLE) -> tuple[tuple[int, int, int, int], tuple[slice, slice], str]:
    """How to pad an image for the networks: (left, right, top, bottom), the (rows, columns)
    slices that crop a same-size output back, and the padding mode. The margin shrinks for
    small images; where a reflection would be longer than the image, edge pixels repeat."""
    margin = max(0, min(margin, min(height, width) - multiple))  # reflection needs padding < size
    pad_h, pad_w = (-(height + 2 * margin)) % multiple, (-(width + 2 * margin)) % multiple
    pads = (margin, margin + pad_w, margin, margin + pad_h)
    mode = "reflect" if margin + pad_h < height and margin + pad_w < width else "replicate"
    return pads, (slice(margin, margin + height), slice(margin, margin + width)), mode
