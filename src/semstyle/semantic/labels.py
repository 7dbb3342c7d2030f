"""Label maps: palettes, snapping colour-coded maps to label indices, per-label masks.

Colour-coded label maps for the content and the style (the DPST /
neural-doodle format) are snapped to a palette; anti-aliased edge colours go
to their nearest label and never become labels themselves.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import ConfigError
from ..pipeline.palette import DPST_PALETTE, parse_palette
from .masks import SemanticWarning

MIN_LABEL_FRACTION = 0.005
"""A colour is a palette entry (a label) when it covers more than this share of a label map."""

MERGE_DISTANCE = 40.0
"""Dominant colours closer than this (RGB Euclidean) are one label (e.g. (255,1,1) and (253,3,2))."""

CANONICAL_DISTANCE = 12.0
"""A palette entry this close to a DPST colour becomes that colour, e.g. (1,1,1) -> black."""

MIN_STYLE_FRACTION = 0.001
"""A label counts as present in the style only if it covers at least this share of
the style map; fewer pixels are stray anti-aliased edge pixels, not a region."""

def _colour_codes(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]

def _decode_codes(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.int64)
    return np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=-1).astype(np.uint8)

def find_palette(*maps: np.ndarray, min_fraction: float = MIN_LABEL_FRACTION,
                 merge_distance: float = MERGE_DISTANCE) -> np.ndarray:
    """The label colours (K, 3) shared by one or more (H, W, 3) label maps.

    A colour is a candidate when it covers more than ``min_fraction`` of any
    one map; candidates are taken by coverage, and one within
    ``merge_distance`` of an earlier entry is the same label (near-palette
    strays such as (254,0,0)). Entries within ``CANONICAL_DISTANCE`` of a
    DPST colour become that colour. Anti-aliased edge colours are each far
    below the threshold, so they never become labels.
    """
    coverage: dict[int, float] = {}
    for rgb in maps:
        codes, counts = np.unique(_colour_codes(rgb).ravel(), return_counts=True)
        fractions = counts / max(1, counts.sum())
        for code, fraction in zip(codes[fractions > min_fraction], fractions[fractions > min_fraction]):
            coverage[int(code)] = max(coverage.get(int(code), 0.0), float(fraction))
    palette: list[np.ndarray] = []
    for code, _ in sorted(coverage.items(), key=lambda kv: (-kv[1], kv[0])):
        colour = _decode_codes(code).astype(np.float64)
        if all(np.linalg.norm(colour - p) > merge_distance for p in palette):
            palette.append(colour)
    if not palette:
        raise ConfigError("the label maps have no dominant colours (no colour covers more than "
                          f"{min_fraction:.1%} of a map); give an explicit palette")
    out = []
    for colour in palette:
        distances = np.linalg.norm(DPST_PALETTE.astype(np.float64) - colour, axis=1)
        out.append(DPST_PALETTE[distances.argmin()] if distances.min() <= CANONICAL_DISTANCE
                   else colour.astype(np.uint8))
    return np.stack(out).astype(np.uint8)

def used_palette(palette: np.ndarray, *maps: np.ndarray, near: float = MERGE_DISTANCE / 2,
                 min_fraction: float = MIN_STYLE_FRACTION) -> np.ndarray:
    """The entries of an explicit palette that the maps really use: pixels within
    ``near`` of the entry cover more than ``min_fraction`` of some map. Without
    this, anti-aliased edge pixels would invent labels (a red/green edge pixel
    (128,128,0) is nearest to DPST grey)."""
    colours = palette.astype(np.float64)
    used = np.zeros(len(palette), dtype=bool)
    for rgb in maps:
        codes, counts = np.unique(_colour_codes(rgb).ravel(), return_counts=True)
        distances = np.linalg.norm(_decode_codes(codes).astype(np.float64)[:, None] - colours[None], axis=-1)
        covered = ((distances <= near) * counts[:, None]).sum(axis=0) / max(1, counts.sum())
        used |= covered > min_fraction
    if not used.any():
        raise ConfigError("no colour of the given palette occurs in the label maps")
    return palette[used]

def snap_to_palette(rgb: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Label index (H, W) of the nearest palette colour (RGB Euclidean) for every
    pixel: anti-aliased edges and strays go to their nearest label."""
    codes, inverse = np.unique(_colour_codes(rgb).ravel(), return_inverse=True)
    colours = _decode_codes(codes).astype(np.float64)
    distances = ((colours[:, None, :] - palette[None].astype(np.float64)) ** 2).sum(-1)
    return distances.argmin(axis=1)[inverse.ravel()].reshape(rgb.shape[:2])

def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an (H, W) label index map to ``size`` (width, height) with NEAREST."""
    if labels.shape[::-1] == tuple(size):
        return labels
    img = Image.fromarray(labels.astype(np.uint8))
    return np.asarray(img.resize(tuple(size), Image.NEAREST)).astype(np.int64)

def choose_palette(palette: Any, *maps: np.ndarray) -> np.ndarray:
    """The label colours for ``maps`` from a ``palette`` argument: ``"auto"``
    finds the dominant colours, ``"dpst"`` or an explicit list keeps the
    entries the maps use (see :func:`parse_palette`)."""
    chosen = parse_palette(palette)
    return find_palette(*maps) if isinstance(chosen, str) else used_palette(chosen, *maps)

def label_indices(rgb: np.ndarray, palette: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A colour-coded label map as an (H, W) palette index map at ``size``
    (width, height): snapped to the palette, then resized with NEAREST."""
    return resize_labels(snap_to_palette(rgb, palette), size)

def colour_name(colour: Sequence[int]) -> str:
    return "#" + "".join(f"{int(c):02x}" for c in colour)

def one_hot(labels: np.ndarray, indices: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """(1, len(indices), H, W) float masks, one per label index."""
    lab = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
    return torch.stack([(lab == int(i)).float() for i in indices])[None]

def present_labels(style_labels: np.ndarray, count: int, min_fraction: float = MIN_STYLE_FRACTION) -> np.ndarray:
    """(count,) bool: which labels have a region in the style label index map
    (at least ``min_fraction`` of it; fewer pixels are stray edge pixels)."""
    counts = np.bincount(style_labels.ravel(), minlength=count)[:count]
    return counts >= max(1.0, min_fraction * style_labels.size)

def warn_missing_labels(labels: np.ndarray, present: np.ndarray, palette: np.ndarray, what: str,
                        fallback: str, stacklevel: int = 3) -> None:
    """A :class:`SemanticWarning` for every label of ``labels`` (an index map of
    ``what``, e.g. "the content") that the style lacks, saying what it takes instead."""
    for k in np.unique(labels):
        if not present[k]:
            share = float((labels == k).mean())
            warnings.warn(f"label {colour_name(palette[k])} ({share:.1%} of {what}) has no region in the style "
                          f"label map; it takes {fallback}", SemanticWarning, stacklevel=stacklevel + 1)
