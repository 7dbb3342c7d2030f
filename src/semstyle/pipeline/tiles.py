"""Any resolution in bounded memory: overlapping tiles, shared statistics, blended seams.

The networks' memory grows with the pixels (about 520 MiB per megapixel), so a large image is
stylized tile by tile:

1. a thumbnail (longer side :data:`THUMBNAIL_SIDE`) gives the content's normalisation statistics
   and, below full strength, its own style vector; every tile uses these (``stats=``), because
   per-tile statistics make each tile's look drift and the seams show;
2. each tile is run with real context around it (:data:`CONTEXT` px of its neighbours, where
   there are any), and the context is cropped off again;
3. neighbouring tiles overlap by ``overlap`` px and are blended there with linear ramps.

Peak memory is the networks' for one tile plus the float32 image and its output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..geometry import NETWORK_MULTIPLE
from .engine import StyleEngine
from .options import BORDER_MARGIN

THUMBNAIL_SIDE = 1024
"""Longer side of the image the shared statistics are computed on."""

CONTEXT = 32
"""Pixels of neighbouring image each tile sees on every side (cropped off after); a multiple of 8."""

AUTO_TILE = 1024
"""Tile side chosen by ``tile="auto"``; images whose longer side is at most :data:`AUTO_LIMIT` are not tiled."""

AUTO_LIMIT = 2048

DEFAULT_OVERLAP = 64


def tile_side(tile: int | str | None, height: int, width: int) -> int | None:
    """The tile side to use, or None to run the image whole."""
    if tile is None:
        return None
    if tile == "auto":
        return AUTO_TILE if max(height, width) > AUTO_LIMIT else None
    return int(tile) if max(height, width) > int(tile) else None


def tile_ranges(length: int, tile: int, overlap: int, align: int = NETWORK_MULTIPLE) -> list[tuple[int, int]]:
    """(start, end) of tiles covering ``length``, about ``tile`` px each, overlapping by at least
    ``overlap``. Starts are multiples of ``align``, so that VGG's pooling grid in a tile is the
    whole image's: tiles then compute the very features the whole image would."""
    if length <= tile:
        return [(0, length)]
    count = math.ceil((length - overlap) / (tile - overlap))
    step = (length - tile) / (count - 1)
    starts = [round(i * step) // align * align for i in range(count)]
    ends = [min(length, s + tile) for s in starts[:-1]] + [length]
    return list(zip(starts, ends))


def ramp(length: int, start: int, end: int, overlap: int, total: int) -> torch.Tensor:
    """Blend weights along one axis of a tile spanning [start, end) of ``total``: rising over the
    first ``overlap`` px unless the tile starts at the image edge, falling over the last likewise."""
    w = torch.ones(length)
    if start > 0:
        w[:overlap] = torch.linspace(0, 1, overlap + 2)[1:-1]
    if end < total:
        w[-overlap:] = torch.minimum(w[-overlap:], torch.linspace(1, 0, overlap + 2)[1:-1])
    return w


def thumbnail(content: torch.Tensor, side: int = THUMBNAIL_SIDE) -> torch.Tensor:
    height, width = content.shape[-2:]
    scale = min(1.0, side / max(height, width))
    if scale == 1.0:
        return content
    size = (max(32, round(height * scale)), max(32, round(width * scale)))
    return F.interpolate(content, size=size, mode="bilinear", antialias=True, align_corners=False)


@torch.no_grad()
def stylize_tiled(engine: StyleEngine, content: torch.Tensor, style: torch.Tensor, tile: int, *,
                  strength: float = 1.0, overlap: int = DEFAULT_OVERLAP,
                  border_margin: int = BORDER_MARGIN) -> torch.Tensor:
    """``engine.stylize`` of a (1, 3, H, W) image computed in ``tile`` px tiles; same output shape."""
    overlap = max(0, min(overlap, tile // 4))
    small = thumbnail(content)
    stats = engine.content_stats(small, border_margin=border_margin)
    vector = style.to(engine.device)
    if strength < 1.0:
        vector = strength * vector + (1.0 - strength) * engine.own_vector(small, border_margin)
    height, width = content.shape[-2:]
    output = torch.zeros(1, 3, height, width)
    weight = torch.zeros(1, 1, height, width)
    for y0, y1 in tile_ranges(height, tile, overlap):
        for x0, x1 in tile_ranges(width, tile, overlap):
            cy0, cx0 = max(0, y0 - CONTEXT), max(0, x0 - CONTEXT)
            cy1, cx1 = min(height, y1 + CONTEXT), min(width, x1 + CONTEXT)
            piece = engine.stylize(content[..., cy0:cy1, cx0:cx1], vector, stats=stats,
                                   border_margin=border_margin).cpu()
            piece = piece[..., y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0]
            w = ramp(y1 - y0, y0, y1, overlap, height)[:, None] * ramp(x1 - x0, x0, x1, overlap, width)[None, :]
            output[..., y0:y1, x0:x1] += piece * w
            weight[..., y0:y1, x0:x1] += w
    return output / weight.clamp_min(1e-8)
