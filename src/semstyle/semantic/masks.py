"""Masks: reading them, feathering their edges, compositing stylized layers over the photo.

Mask files: any image Pillow reads. If it has an alpha channel that is not
fully opaque, the alpha is the mask; otherwise the grey level (ITU-R 601 luma
of RGB). Either is thresholded at 128 (``>= 128`` is selected) and resized to
the image with NEAREST. A mask whose aspect ratio differs from the image's by
more than 2% is stretched anyway, with a :class:`SemanticWarning` (maps drawn
at another resolution are common; a stretched one is usually a mistake, but a
usable one). Label maps use RGB only (alpha ignored).

Each stylized area is composited over the exact input pixels with a feathered
alpha: 1 inside the mask, falling smoothly (smoothstep of the Euclidean
distance) to 0 at ``feather`` px outside it. Any pixel at ``feather`` px or more
from every stylized area (or inside a protected area) is bit-identical to the input.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import SemstyleWarning
from ..io.read import expand_mode, read_raw_image
from ..pipeline.options import MaskLike, check_pixels

MASK_THRESHOLD = 128
"""Grey (or alpha) level from which a mask pixel counts as selected."""

ASPECT_TOLERANCE = 0.02
"""Relative aspect-ratio difference above which a stretched mask gives a warning."""

class SemanticWarning(SemstyleWarning):
    """Something in a mask or label map is odd but usable (stretched mask, missing label).

    The CLI prints each as one ``semstyle: warning: ...`` line on stderr.
    """

def mask_name(source: Any) -> str:
    return str(source) if isinstance(source, (str, Path)) else "(in-memory image)"

def read_mask_image(source: MaskLike, what: str = "mask") -> Image.Image:
    """A mask or label map as a PIL image in mode L, LA, RGB, RGBA or CMYK,
    its values as stored (:func:`semstyle.io.read_raw_image` for files).
    Errors are one-line :class:`ImageError` s saying ``cannot read <what> <path>: ...``."""
    if isinstance(source, Image.Image):
        return expand_mode(source)
    if isinstance(source, np.ndarray):
        return Image.fromarray(_array_to_uint8(source))
    return read_raw_image(source, what=what)

def _array_to_uint8(array: np.ndarray) -> np.ndarray:
    """bool -> 0/255; floats are 0..1; integers are 0..255."""
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        return np.clip(np.rint(np.nan_to_num(array) * 255.0), 0, 255).astype(np.uint8)
    return np.clip(array, 0, 255).astype(np.uint8)

def check_aspect(size: tuple[int, int], target: tuple[int, int], name: str, what: str) -> None:
    (w, h), (tw, th) = size, target
    if abs(math.log((w / h) / (tw / th))) > ASPECT_TOLERANCE:
        warnings.warn(f"{what} {name} is {w}x{h} but the image is {tw}x{th}: aspect ratios differ, "
                      f"the {what} is stretched to fit", SemanticWarning, stacklevel=3)

def binary_mask(source: MaskLike, size: tuple[int, int], what: str = "mask") -> np.ndarray:
    """A mask as a bool array of shape (height, width) for an image of ``size``
    (width, height): alpha (if not fully opaque) or grey level >= 128, resized
    with NEAREST."""
    if isinstance(source, np.ndarray) and source.dtype == bool and source.ndim == 2:
        img = Image.fromarray(source.astype(np.uint8) * 255)
    else:
        img = read_mask_image(source, what)
    if img.mode in ("RGBA", "LA") and img.getchannel("A").getextrema()[0] < 255:
        gray = img.getchannel("A")
    else:
        gray = img.convert("L")
    check_aspect(gray.size, size, mask_name(source), what)
    if gray.size != tuple(size):
        gray = gray.resize(tuple(size), Image.NEAREST)
    return np.asarray(gray) >= MASK_THRESHOLD

def label_colours(source: MaskLike, what: str = "label map") -> np.ndarray:
    """A colour-coded label map as an (H, W, 3) uint8 array (palette PNGs and
    grey maps converted to RGB, alpha ignored)."""
    if isinstance(source, np.ndarray) and source.ndim == 3 and source.shape[2] >= 3:
        return _array_to_uint8(source[..., :3])
    img = read_mask_image(source, what)
    return np.asarray(img.convert("RGB"))

def distance_to_mask(mask: np.ndarray, limit: float) -> np.ndarray:
    """Euclidean distance (px) from every pixel to the nearest selected pixel
    (0 inside), exact up to ``limit``; farther pixels get ``inf``.

    Separable exact EDT (column distance, then min over row offsets of
    dx^2 + g^2), truncated to ``limit``: O(limit) whole-image numpy steps.
    """
    radius = int(math.ceil(limit))
    height, width = mask.shape
    big = np.float64(np.inf)
    column = np.where(mask, 0.0, big)  # distance along the column to the mask
    for dy in range(1, radius + 1):
        if dy >= height:
            break
        hit = np.zeros_like(mask)
        hit[:-dy] |= mask[dy:]
        hit[dy:] |= mask[:-dy]
        column = np.where(hit & (column > dy), float(dy), column)
    squared = column ** 2
    best = squared.copy()
    for dx in range(1, radius + 1):
        if dx >= width:
            break
        shifted = np.full_like(squared, big)
        shifted[:, :-dx] = squared[:, dx:]
        best = np.minimum(best, shifted + dx * dx)
        shifted = np.full_like(squared, big)
        shifted[:, dx:] = squared[:, :-dx]
        best = np.minimum(best, shifted + dx * dx)
    distance = np.sqrt(best)
    distance[distance > radius] = big
    return distance

def feather_alpha(mask: np.ndarray, feather: float) -> np.ndarray:
    """Alpha (H, W) in 0..1: 1 inside ``mask``, smoothstep down to 0 at
    ``feather`` px outside it, exactly 0 from there on."""
    feather = check_pixels("feather", feather)
    if feather == 0:
        return mask.astype(np.float64)
    distance = distance_to_mask(mask, feather)
    t = np.clip(1.0 - distance / feather, 0.0, 1.0)
    alpha = t * t * (3.0 - 2.0 * t)
    alpha[mask] = 1.0
    alpha[distance >= feather] = 0.0
    return alpha

def composite(base: np.ndarray, layers: Sequence[tuple[np.ndarray, np.ndarray]],
              keep: np.ndarray | None = None) -> np.ndarray:
    """Paint uint8 (H, W, 3) ``layers`` [(alpha, image), ...] over ``base`` in
    order, then put ``base`` back where ``keep`` (protect alpha) is 1.

    Where every alpha is 0 (or keep is 1) the result is ``base``, bit for bit;
    elsewhere it is a convex blend, rounded to nearest.
    """
    result = base.astype(np.float64)
    touched = np.zeros(base.shape[:2], dtype=bool)
    for alpha, image in layers:
        result += alpha[..., None] * (image.astype(np.float64) - result)
        touched |= alpha > 0
    if keep is not None:
        result += keep[..., None] * (base.astype(np.float64) - result)
        touched &= keep < 1
    out = np.clip(np.rint(result), 0, 255).astype(np.uint8)
    out[~touched] = base[~touched]
    return out
