"""The colours a stylization is moved to: a painting's RGB moments, read once per process.

Colour matching (:mod:`semstyle.colour`) needs the painting's mean and spread beside its
style vector. Both runtimes (the PyTorch engine and the torch-free ONNX one) resolve a style
the same way here: a blend's moments are its paintings' mixture by weight, a collection's its
paintings' mixture by equal weights, a style vector has none. Each runtime only says how to
read one painting's moments; this module decides which paintings and caches what was read.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..colour import ColourMoments, blend_moments
from ..io.read import list_images
from .lru import LruMemo
from .style_store import image_key
from .styles import ImageLike, StyleLike, is_collection, is_vector, weighted_styles


class MomentCache(LruMemo[ColourMoments]):
    """Colour moments by the painting's content key (:func:`image_key`), newest ``size`` kept:
    a folder run would otherwise decode the painting again for every photo."""

    def __init__(self, size: int = 64):
        super().__init__(size)

    def get(self, key: str | None, read: Callable[[], ColourMoments]) -> ColourMoments:
        """The moments under ``key``; ``read()`` only the first time (``None``: every time)."""
        known = self.lookup(key)
        if known is None:
            known = read()
            self.remember(key, known)
        return known


def painting_moments(style: StyleLike, style_size: int, read: Callable[[ImageLike], ColourMoments],
                     cache: MomentCache) -> ColourMoments | None:
    """The moments colour matching moves an output to, for any style input; ``read(painting)``
    gives one painting's moments as that runtime reads it for its vector (at ``style_size``)."""
    if is_vector(style) or isinstance(style, np.ndarray):  # a vector (torch or numpy) carries no colours
        return None
    parts = []
    for entry in weighted_styles(style):
        files = list_images(entry.image) if is_collection(entry.image) else [entry.image]
        moments = [cache.get(image_key(f, style_size), lambda f=f: read(f)) for f in files]
        parts.append((blend_moments([(m, 1.0) for m in moments]), entry.weight))
    return blend_moments(parts)
