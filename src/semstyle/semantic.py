"""Semantic style transfer: region masks, per-region styles, label-matched transfer,
automatic regions and region refinement (``semstyle paint`` for doodles is in
:mod:`semstyle.paint`).

Used by ``Stylizer.stylize(..., mask=, protect=, regions=, labels=, auto_regions=, refine=)``
and ``semstyle stylize --mask/--protect/--region/--content-labels/--style-labels/--auto-regions/--refine``:

* **Region masks** (pixel space). Each stylized area (the base style's area:
  the whole image, or ``mask``; then each ``regions`` entry, painted in order,
  later over earlier) is composited over the exact input pixels with a
  feathered alpha: 1 inside the mask, falling smoothly (smoothstep of the
  Euclidean distance) to 0 at ``feather`` px outside it. ``protect`` masks are
  kept exactly as the input, and their feather falls *outside* them, on the
  stylized side. Any pixel at ``feather`` px or more from every stylized area
  (or inside a protected area) is bit-identical to the (resized) input.
* **Label-matched transfer** (feature space). Colour-coded label maps for the
  content and the style (the DPST / neural-doodle format) are snapped to a
  palette; each label gets its own style vector from the style image's
  statistics *inside that label's region* (masks area-resized to every VGG
  tap), and the generator's injection (AdaIN at the content layer) and the
  decoder's FiLM modulations are applied per pixel, blended by the content's
  soft label masks at each feature resolution. The content-side instance
  normalisation is per region too (masked mean/std), so a dark sky and a
  bright road are each normalised against themselves. A content label with no
  region in the style takes the style's global vector, with a
  :class:`SemanticWarning`.
* **Automatic regions** (:func:`auto_label_maps`): without label maps, both
  images are clustered on deep features and the clusters paired across them;
  the pairs then act as labels.
* **Refinement** (:func:`refine_regions`): optional L-BFGS steps on the
  label-matched result that pull each region's VGG statistics onto its style
  region's. :func:`label_match` measures how well that holds.

Mask files: any image Pillow reads. If it has an alpha channel that is not
fully opaque, the alpha is the mask; otherwise the grey level (ITU-R 601 luma
of RGB). Either is thresholded at 128 (``>= 128`` is selected) and resized to
the image with NEAREST. A mask whose aspect ratio differs from the image's by
more than 2% is stretched anyway, with a :class:`SemanticWarning` (maps drawn
at another resolution are common; a stretched one is usually a mistake, but a
usable one). Label maps use RGB only (alpha ignored).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .errors import ConfigError
from .io import expand_mode, read_raw_image, tensor_to_image
from .models import Generator, channel_mean_std
from .optimize import lbfgs

from .stylize import (Stylizer, WeightedStyle, check_size, check_strength, pad_for_network, parse_style_arg,
                      preserve_color)

MaskLike = Union[str, Path, Image.Image, np.ndarray]

DEFAULT_FEATHER = 8.0
"""Width in px of the soft edge outside a mask (and outside a protected area)."""

MASK_THRESHOLD = 128
"""Grey (or alpha) level from which a mask pixel counts as selected."""

ASPECT_TOLERANCE = 0.02
"""Relative aspect-ratio difference above which a stretched mask gives a warning."""

MIN_LABEL_FRACTION = 0.005
"""A colour is a palette entry (a label) when it covers more than this share of a label map."""

MERGE_DISTANCE = 40.0
"""Dominant colours closer than this (RGB Euclidean) are one label (e.g. (255,1,1) and (253,3,2))."""

CANONICAL_DISTANCE = 12.0
"""A palette entry this close to a DPST colour becomes that colour, e.g. (1,1,1) -> black."""

MIN_STYLE_FRACTION = 0.001
"""A label counts as present in the style only if it covers at least this share of
the style map; fewer pixels are stray anti-aliased edge pixels, not a region."""

DPST_PALETTE = np.array([
    (0, 0, 255), (0, 255, 0), (0, 0, 0), (255, 255, 255), (255, 0, 0),
    (255, 255, 0), (128, 128, 128), (0, 255, 255), (255, 0, 255),
], dtype=np.uint8)
"""The label colours of Deep Photo Style Transfer (Luan et al. 2017) masks."""


class SemanticWarning(UserWarning):
    """Something in a mask or label map is odd but usable (stretched mask, missing label).

    The CLI prints each as one ``semstyle: warning: ...`` line on stderr.
    """


# --------------------------------------------------------------------------
# Reading masks and label maps
# --------------------------------------------------------------------------

def _name(source: Any) -> str:
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


def _check_aspect(size: tuple[int, int], target: tuple[int, int], name: str, what: str) -> None:
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
    _check_aspect(gray.size, size, _name(source), what)
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


# --------------------------------------------------------------------------
# Feathering
# --------------------------------------------------------------------------

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
    feather = check_feather(feather)
    if feather == 0:
        return mask.astype(np.float64)
    distance = distance_to_mask(mask, feather)
    t = np.clip(1.0 - distance / feather, 0.0, 1.0)
    alpha = t * t * (3.0 - 2.0 * t)
    alpha[mask] = 1.0
    alpha[distance >= feather] = 0.0
    return alpha


def check_feather(feather: float) -> float:
    feather = float(feather)
    if not (math.isfinite(feather) and feather >= 0):
        raise ConfigError(f"feather must be a number of pixels >= 0, got {feather}")
    return feather


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


# --------------------------------------------------------------------------
# Palettes and label maps
# --------------------------------------------------------------------------

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


def parse_palette(text: str | Sequence | np.ndarray | None) -> np.ndarray | str:
    """``"auto"``, ``"dpst"``, ``"ff0000,00ff00,#0000ff"`` or a sequence of RGB
    triples -> ``"auto"`` or a (K, 3) uint8 array."""
    if text is None:
        return "auto"
    if isinstance(text, str):
        name = text.strip().lower()
        if name in ("auto", ""):
            return "auto"
        if name == "dpst":
            return DPST_PALETTE.copy()
        colours = []
        for item in name.split(","):
            item = item.strip().lstrip("#")
            if len(item) != 6:
                raise ConfigError(f"bad palette colour {item!r}: use RRGGBB hex, e.g. ff0000,00ff00, or auto or dpst")
            try:
                colours.append(tuple(int(item[i:i + 2], 16) for i in (0, 2, 4)))
            except ValueError:
                raise ConfigError(f"bad palette colour {item!r}: use RRGGBB hex, e.g. ff0000") from None
        return np.array(colours, dtype=np.uint8)
    array = np.asarray(text)
    if array.ndim != 2 or array.shape[1] != 3 or len(array) == 0 or array.min() < 0 or array.max() > 255:
        raise ConfigError("a palette is a list of (R, G, B) triples in 0..255")
    return array.astype(np.uint8)


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


# --------------------------------------------------------------------------
# Masked statistics and per-label style vectors
# --------------------------------------------------------------------------

def resize_weights(weights: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Soft masks (N, K, H, W) at another resolution by area averaging, so
    one-hot masks stay a partition of unity (they sum to 1 per pixel)."""
    if tuple(weights.shape[-2:]) == tuple(size):
        return weights
    return F.interpolate(weights, size=tuple(size), mode="area")


def masked_mean_std(feat: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`semstyle.models.channel_mean_std` restricted to a (soft) region:
    the weighted per-channel mean and std of ``feat`` (N, C, h, w) under
    ``weight`` (N or 1, 1, h, w), shapes (N, C). A binary weight gives the plain
    mean/std of the selected positions; an all-ones weight gives channel_mean_std."""
    w = weight.to(feat.dtype)
    total = w.sum(dim=(2, 3)).clamp_min(1e-12)
    mean = (feat * w).sum(dim=(2, 3)) / total
    var = ((feat - mean[..., None, None]) ** 2 * w).sum(dim=(2, 3)) / total
    return mean, (var + eps).sqrt()


def masked_style_vector(generator: Generator, feats: dict[str, torch.Tensor], weight: torch.Tensor) -> torch.Tensor:
    """The style vector of one region: what ``generator.style_vector(feats)``
    computes, with each tap's mean/std taken under ``weight`` (1, 1, H, W at
    image resolution, area-resized to every tap)."""
    encoder = generator.style_encoder
    stats = [masked_mean_std(feats[tap].float(), resize_weights(weight, feats[tap].shape[-2:]))
             for tap in encoder.layers]
    return encoder.from_stats(stats)


def one_hot(labels: np.ndarray, indices: Sequence[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """(1, len(indices), H, W) float masks, one per label index."""
    lab = torch.from_numpy(np.asarray(labels, dtype=np.int64)).to(device)
    return torch.stack([(lab == int(i)).float() for i in indices])[None]


# --------------------------------------------------------------------------
# The region-wise generator forward pass
# --------------------------------------------------------------------------

def regionwise_inject(generator: Generator, content_feat: torch.Tensor, vectors: torch.Tensor,
                      weights: torch.Tensor, region_norm: bool = True) -> torch.Tensor:
    """``Generator.inject`` per region: content features (1, C, h, w), one
    style vector per region (K, D), soft region masks (1, K, h', w') that sum
    to 1 per pixel. Each region's AdaIN result is blended by its mask. With
    ``region_norm`` the content is normalised by each region's masked mean/std,
    else by the global mean/std (as ``Generator.inject``)."""
    w = resize_weights(weights, content_feat.shape[-2:]).to(content_feat.dtype)
    new_mean, new_std = generator.injection.target_stats(vectors)
    if not region_norm:
        g_mean, g_std = channel_mean_std(content_feat)
    out = torch.zeros_like(content_feat)
    for k in range(vectors.shape[0]):
        wk = w[:, k:k + 1]
        mean, std = masked_mean_std(content_feat, wk) if region_norm else (g_mean, g_std)
        normalized = (content_feat - mean[..., None, None]) / std[..., None, None]
        out = out + wk * (normalized * new_std[k, :, None, None] + new_mean[k, :, None, None])
    return out


def regionwise_decode(generator: Generator, feat: torch.Tensor, vectors: torch.Tensor,
                      weights: torch.Tensor) -> torch.Tensor:
    """``Decoder.forward`` with FiLM per pixel: at every modulated layer the
    scale and shift are the mask-weighted mix of each region's (a linear mix,
    so it equals blending the regions' modulated feature maps)."""
    decoder = generator.decoder

    def modulate(stage: int, x: torch.Tensor) -> torch.Tensor:
        scale, shift = decoder.modulations[stage].affine(vectors).chunk(2, dim=1)  # (K, C)
        w = resize_weights(weights, x.shape[-2:]).to(x.dtype)
        return x * (1 + torch.einsum("kc,nkhw->nchw", scale, w)) + torch.einsum("kc,nkhw->nchw", shift, w)

    return decoder(feat, vectors[:1], modulate=modulate)


def regionwise_forward(generator: Generator, content_feat: torch.Tensor, vectors: torch.Tensor,
                       weights: torch.Tensor, region_norm: bool = True) -> torch.Tensor:
    """``Generator.forward`` with one style vector per region: content features
    at the content layer, vectors (K, D), soft masks (1, K, H, W) at the output
    resolution (any resolution works; they are area-resized to each layer)."""
    return regionwise_decode(generator, regionwise_inject(generator, content_feat, vectors, weights, region_norm),
                             vectors, weights)


# --------------------------------------------------------------------------
# Label-matched transfer
# --------------------------------------------------------------------------

@dataclass
class LabelStyles:
    """Per-label style vectors of one style image and its label map."""

    palette: np.ndarray        # (K, 3) uint8, all labels
    vectors: torch.Tensor      # (K, D): the label's region vector, or the global vector if missing
    present: np.ndarray        # (K,) bool: the label has a region in the style
    global_vector: torch.Tensor  # (1, D)


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


def label_style_vectors(generator: Generator, style_feats: dict[str, torch.Tensor], style_labels: np.ndarray,
                        palette: np.ndarray, min_fraction: float = MIN_STYLE_FRACTION) -> LabelStyles:
    """One style vector per palette label from the style image's features and
    its label index map (at the style image's resolution)."""
    global_vector = generator.style_vector(style_feats)
    present = present_labels(style_labels, len(palette), min_fraction)
    device = global_vector.device
    vectors = []
    for k in range(len(palette)):
        if present[k]:
            vectors.append(masked_style_vector(generator, style_feats, one_hot(style_labels, [k], device)))
        else:
            vectors.append(global_vector)
    return LabelStyles(palette, torch.cat(vectors), present, global_vector)


def label_matched_tensor(stylizer: Stylizer, content: torch.Tensor, content_labels: np.ndarray,
                         styles: LabelStyles, strength: float = 1.0, region_norm: bool = True) -> torch.Tensor:
    """Stylize (1, 3, H, W) ``content`` label by label; ``content_labels`` is
    its (H, W) label index map. Missing style labels warn and use the global
    vector. Strength < 1 mixes each label's vector with the content region's own."""
    config = stylizer.config
    labels = [int(k) for k in np.unique(content_labels)]
    warn_missing_labels(content_labels, styles.present, styles.palette, "the content", "the style's global look")
    weights, _ = pad_for_network(one_hot(content_labels, labels, content.device), stylizer.border_margin)
    padded, (rows, cols) = pad_for_network(content, stylizer.border_margin)
    taps = stylizer._taps if strength < 1.0 else (config.content_layer,)
    with stylizer._autocast():
        feats = stylizer.encoder(padded, taps)
        vectors = styles.vectors[labels].to(content.device)
        if strength < 1.0:
            own = torch.cat([masked_style_vector(stylizer.generator, feats, weights[:, i:i + 1])
                             for i in range(len(labels))])
            vectors = strength * vectors + (1.0 - strength) * own
        output = regionwise_forward(stylizer.generator, feats[config.content_layer], vectors, weights, region_norm)
    return output[..., rows, cols].float().clamp(0, 1)


# --------------------------------------------------------------------------
# Automatic regions: cluster deep features, match clusters across images
# --------------------------------------------------------------------------

MAX_AUTO_REGIONS = 8
"""Most clusters ``auto_regions`` makes (matching tries every pairing, K! of them)."""

AUTO_REGION_LAYERS = ("relu3_1", "relu4_1")
"""Features clustered into regions: relu4_1 for what a region is, relu3_1 for
its texture, both at relu4_1's resolution (1/8 of the image)."""

AUTO_REGION_SMOOTHING = 2
"""3x3 box-filter passes over the features before clustering, so that regions
are spatially coherent rather than speckled."""

AUTO_PLACE_WEIGHT = 1.0
"""How much where a region sits counts against what it looks like when
pairing regions across images (see :func:`match_clusters`)."""


@dataclass
class AutoLabels:
    """Label maps found by :func:`auto_label_maps`, in the colour-coded format
    that ``labels=`` takes: content pixels of a colour take the style of the
    style pixels of that colour."""

    content_labels: np.ndarray  # (H, W) label indices, at the content's (resized) size
    style_labels: np.ndarray    # (H', W') label indices, at the style's (resized) size
    palette: np.ndarray         # (K, 3) uint8, one colour per matched pair of clusters
    similarity: np.ndarray      # (K,) cosine similarity of each matched pair's cluster centres

    @property
    def content(self) -> np.ndarray:
        """The content's label map, (H, W, 3) uint8 colours."""
        return self.palette[self.content_labels]

    @property
    def style(self) -> np.ndarray:
        """The style's label map, (H', W', 3) uint8 colours."""
        return self.palette[self.style_labels]


def region_features(encoder, image: torch.Tensor, smoothing: int = AUTO_REGION_SMOOTHING) -> torch.Tensor:
    """Per-position descriptors (C, h, w) of a (1, 3, H, W) image for
    clustering, at 1/8 resolution. Each channel is standardised over the
    image, which removes the image's global look (a painting's colour cast, a
    photo's exposure) so that clusters of a photo and of a painting are
    comparable; each layer then gets equal weight."""
    h, w = math.ceil(image.shape[-2] / 8), math.ceil(image.shape[-1] / 8)
    padded, _ = pad_for_network(image, margin=0)  # no margin: feature cell (i, j) stays over pixel (8i, 8j)
    feats = encoder(padded, AUTO_REGION_LAYERS)
    parts = []
    for tap in AUTO_REGION_LAYERS:
        x = F.adaptive_avg_pool2d(feats[tap].float(), (h, w))
        mean, std = channel_mean_std(x)
        parts.append((x - mean[..., None, None]) / std[..., None, None] / math.sqrt(x.shape[1]))
    x = torch.cat(parts, dim=1)
    for _ in range(smoothing):
        x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return x[0]


def kmeans(points: torch.Tensor, k: int, seed: int = 0, iterations: int = 30) -> torch.Tensor:
    """Cluster centres (k, C) of ``points`` (N, C): k-means++ seeding, then
    Lloyd iterations. Deterministic for a given seed."""
    rng = torch.Generator().manual_seed(seed)
    points = points.cpu()
    centres = points[torch.randint(len(points), (1,), generator=rng)]
    for _ in range(1, k):
        nearest = torch.cdist(points, centres).min(dim=1).values ** 2
        if nearest.sum() <= 0:  # fewer distinct points than clusters
            break
        centres = torch.cat([centres, points[torch.multinomial(nearest, 1, generator=rng)]])
    for _ in range(iterations):
        assignment = torch.cdist(points, centres).argmin(dim=1)
        updated = torch.stack([points[assignment == j].mean(0) if (assignment == j).any() else centres[j]
                               for j in range(len(centres))])
        if torch.allclose(updated, centres):
            break
        centres = updated
    return centres


def match_clusters(content_centres: torch.Tensor, style_centres: torch.Tensor, content_places: np.ndarray,
                   style_places: np.ndarray, place_weight: float = AUTO_PLACE_WEIGHT) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one pairing of content clusters with style clusters with the
    best summed score (all K! pairings are tried; K <= MAX_AUTO_REGIONS). The
    score of a pair is the cosine similarity of their feature centres minus
    ``place_weight`` times the distance between where they sit in their images
    (mean (x, y), as fractions of width and height): a photo and a painting
    differ too much in texture for features alone to pair sky with sky, but
    both keep their sky at the top. One-to-one, so every region of the style is
    used and no single one takes over. Returns (style cluster of each content
    cluster, the pairs' feature similarities)."""
    sim = (F.normalize(content_centres, dim=1) @ F.normalize(style_centres, dim=1).T).numpy()
    apart = np.linalg.norm(content_places[:, None, :] - style_places[None, :, :], axis=-1)
    score = sim - place_weight * apart
    k = sim.shape[0]
    orders = np.array(list(itertools.permutations(range(sim.shape[1]), k)))
    best = orders[score[np.arange(k), orders].sum(axis=1).argmax()]
    return best, sim[np.arange(k), best]


def _cluster_places(descriptors: torch.Tensor, centres: torch.Tensor) -> np.ndarray:
    """Mean (x, y) of each cluster's positions, as fractions of the image (K, 2)."""
    c, h, w = descriptors.shape
    assignment = torch.cdist(descriptors.reshape(c, -1).T, centres).argmin(dim=1).numpy()
    ys, xs = np.divmod(np.arange(h * w), w)
    places = np.full((len(centres), 2), 0.5)
    for j in range(len(centres)):
        if (assignment == j).any():
            places[j] = ((xs[assignment == j] + 0.5) / w).mean(), ((ys[assignment == j] + 0.5) / h).mean()
    return places


def _cluster_map(descriptors: torch.Tensor, centres: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(H, W) cluster index per pixel: the nearest centre, with the distances
    upsampled bilinearly from 1/8 resolution so region edges are smooth."""
    c, h, w = descriptors.shape
    dist = torch.cdist(descriptors.reshape(c, -1).T, centres).T.reshape(1, -1, h, w)
    full = F.interpolate(-dist, size=(math.ceil(size[1] / 8) * 8, math.ceil(size[0] / 8) * 8),
                         mode="bilinear", align_corners=False)
    return full[0, :, :size[1], :size[0]].argmax(dim=0).numpy()


def check_refine(steps: int, by_labels: bool = True) -> int:
    if int(steps) != steps or steps < 0:
        raise ConfigError(f"--refine must be a whole number of steps, 0 or more, got {steps}")
    if steps and not by_labels:
        raise ConfigError("--refine works on label-matched transfer; give label maps or --auto-regions")
    return int(steps)


def check_auto_regions(k: int) -> int:
    if not 2 <= int(k) <= MAX_AUTO_REGIONS or int(k) != k:
        raise ConfigError(f"--auto-regions must be a whole number from 2 to {MAX_AUTO_REGIONS}, got {k}")
    return int(k)


@torch.no_grad()
def auto_labels_of_tensors(encoder, content: torch.Tensor, style: torch.Tensor, k: int,
                           seed: int = 0) -> AutoLabels:
    """Segment (1, 3, H, W) ``content`` and ``style`` into ``k`` regions each
    by k-means over smoothed deep VGG features, and pair the regions across
    the two images by feature similarity (see :func:`match_clusters`)."""
    k = check_auto_regions(k)
    content_desc = region_features(encoder, content)
    style_desc = region_features(encoder, style)
    k = min(k, content_desc[0].numel(), style_desc[0].numel())
    content_centres = kmeans(content_desc.flatten(1).T, k, seed)
    style_centres = kmeans(style_desc.flatten(1).T, k, seed)
    content_centres = content_centres[:min(len(content_centres), len(style_centres))]
    pairing, similarity = match_clusters(content_centres, style_centres, _cluster_places(content_desc, content_centres),
                                         _cluster_places(style_desc, style_centres))
    palette = DPST_PALETTE[:len(style_centres)]
    content_clusters = _cluster_map(content_desc, content_centres, (content.shape[-1], content.shape[-2]))
    style_clusters = _cluster_map(style_desc, style_centres, (style.shape[-1], style.shape[-2]))
    return AutoLabels(pairing[content_clusters], style_clusters, palette, similarity)


def auto_label_maps(stylizer: Stylizer, content: Any, style: Any, k: int, *, size: int | None = None,
                    style_size: int = 512, seed: int = 0) -> AutoLabels:
    """:func:`auto_labels_of_tensors` on image files or PIL images, read as
    ``Stylizer.stylize`` reads them (``size`` and ``style_size`` cap the longer
    sides). Pass ``(labels.content, labels.style)`` as ``labels=`` to stylize
    with them, or save them with :meth:`save` to inspect or edit them."""
    check_size(size)
    content_t = stylizer._as_tensor(content, size)
    style_t = stylizer._as_tensor(_single_style_image(style), style_size)
    return auto_labels_of_tensors(stylizer.encoder, content_t, style_t, k, seed)


def label_map_paths(path: str | Path) -> tuple[Path, Path]:
    """Where ``--save-labels PATH`` writes the two maps: PATH's name with
    ``_content`` and ``_style`` added, always PNG (label colours must survive
    exactly, which JPEG's do not)."""
    path = Path(path)
    return path.with_name(f"{path.stem}_content.png"), path.with_name(f"{path.stem}_style.png")


# --------------------------------------------------------------------------
# The whole pipeline behind Stylizer.stylize(..., mask=, protect=, regions=, labels=)
# --------------------------------------------------------------------------

def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (str, Path, Image.Image, np.ndarray)):
        return [value]
    return list(value)


def _region_entries(regions: Any) -> list[tuple[Any, Any, float]]:
    entries = []
    for entry in _as_list(regions):
        if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3):
            raise ConfigError("each region is (mask, style) or (mask, style, strength)")
        strength = check_strength(entry[2]) if len(entry) == 3 else 1.0
        entries.append((entry[0], entry[1], strength))
    return entries


def _single_style_image(style: Any) -> Any:
    """The one style image that label-matched transfer reads regions from."""
    if torch.is_tensor(style) or style is None:
        raise ConfigError("label-matched transfer needs the style image itself, not a style vector")
    if isinstance(style, (str, Path, Image.Image)):
        return style
    items = list(style)
    if len(items) != 1:
        raise ConfigError("label-matched transfer takes one style image, not a blend")
    item = items[0]
    if isinstance(item, WeightedStyle):
        return item.image
    return item[0] if isinstance(item, tuple) else item


def stylize_semantic(stylizer: Stylizer, content: Any, style: Any, *, strength: float = 1.0,
                     size: int | None = None, preserve_colors: bool = False, style_size: int = 512,
                     mask: MaskLike | None = None, feather: float = DEFAULT_FEATHER,
                     protect: MaskLike | Sequence[MaskLike] | None = None, regions: Any = None,
                     labels: tuple[MaskLike, MaskLike] | None = None, palette: Any = "auto",
                     auto_regions: int | None = None, refine: int = 0, region_norm: bool = True) -> Image.Image:
    """The implementation of ``Stylizer.stylize`` with masks, regions, labels
    or automatic regions (see the module docstring). ``style=None`` with
    ``regions`` styles only the regions."""
    strength = check_strength(strength)
    feather = check_feather(feather)
    check_size(size)
    entries = _region_entries(regions)
    if style is None and not entries:
        raise ConfigError("give a style, or regions with their own styles")
    if labels is not None and (not isinstance(labels, (tuple, list)) or len(labels) != 2):
        raise ConfigError("labels is a pair (content label map, style label map)")
    if auto_regions is not None:
        if labels is not None:
            raise ConfigError("give label maps or auto_regions, not both")
        check_auto_regions(auto_regions)
    check_refine(refine, labels is not None or auto_regions is not None)
    content_t = stylizer._as_tensor(content, size)
    height, width = content_t.shape[-2:]
    image_size = (width, height)
    # read every mask before the expensive part, so a bad file fails fast
    base_mask = None if mask is None else binary_mask(mask, image_size)
    region_masks = [binary_mask(m, image_size, "region mask") for m, _, _ in entries]
    protect_masks = [binary_mask(m, image_size, "protect mask") for m in _as_list(protect)]
    label_maps = None
    if labels is not None:
        label_maps = (label_colours(labels[0], "content label map"), label_colours(labels[1], "style label map"),
                      _name(labels[0]), _name(labels[1]))
    for found, source, what in [(base_mask, mask, "mask"), *((m, e[0], "region mask") for m, e in
                                                             zip(region_masks, entries))]:
        if found is not None and not found.any():
            warnings.warn(f"{what} {_name(source)} selects no pixels (nothing >= {MASK_THRESHOLD}); "
                          f"that area stays unstyled", SemanticWarning, stacklevel=2)

    def finish(tensor: torch.Tensor) -> np.ndarray:
        if preserve_colors:
            tensor = preserve_color(tensor, content_t)
        return np.asarray(tensor_to_image(tensor))

    base = np.asarray(tensor_to_image(content_t))
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    if style is not None:
        alpha = np.ones((height, width)) if base_mask is None else feather_alpha(base_mask, feather)
        if alpha.any():
            if label_maps is not None:
                output = _label_matched(stylizer, content_t, style, label_maps, strength, style_size,
                                        palette, region_norm, refine)
            elif auto_regions is not None:
                output = _auto_matched(stylizer, content_t, style, auto_regions, strength, style_size,
                                       region_norm, refine)
            else:
                vector = style if torch.is_tensor(style) else stylizer.style_vector(style, style_size)
                output = stylizer.stylize_tensor(content_t, vector.to(stylizer.device), strength)
            layers.append((alpha, finish(output)))
    elif labels is not None or auto_regions is not None:
        raise ConfigError("label-matched transfer needs a style image")
    for region_mask, (_, region_style, region_strength) in zip(region_masks, entries):
        alpha = feather_alpha(region_mask, feather)
        if not alpha.any():
            continue
        vector = region_style if torch.is_tensor(region_style) else stylizer.style_vector(region_style, style_size)
        layers.append((alpha, finish(stylizer.stylize_tensor(content_t, vector.to(stylizer.device),
                                                             region_strength))))
    keep = None
    if protect_masks:
        keep = feather_alpha(np.logical_or.reduce(protect_masks), feather)
    if keep is None and len(layers) == 1 and (layers[0][0] == 1).all():
        return Image.fromarray(layers[0][1])
    return Image.fromarray(composite(base, layers, keep))


def _label_matched(stylizer: Stylizer, content_t: torch.Tensor, style: Any, label_maps: tuple,
                   strength: float, style_size: int, palette: Any, region_norm: bool, refine: int) -> torch.Tensor:
    content_rgb, style_rgb, content_name, style_name = label_maps
    colours = choose_palette(palette, content_rgb, style_rgb)
    content_size = (content_t.shape[-1], content_t.shape[-2])
    _check_aspect((content_rgb.shape[1], content_rgb.shape[0]), content_size, content_name, "content label map")
    content_labels = label_indices(content_rgb, colours, content_size)
    style_t = stylizer._as_tensor(_single_style_image(style), style_size)
    style_size_px = (style_t.shape[-1], style_t.shape[-2])
    _check_aspect((style_rgb.shape[1], style_rgb.shape[0]), style_size_px, style_name, "style label map")
    style_labels = label_indices(style_rgb, colours, style_size_px)
    return _transfer_by_labels(stylizer, content_t, content_labels, style_t, style_labels, colours, strength,
                               region_norm, refine)


def _auto_matched(stylizer: Stylizer, content_t: torch.Tensor, style: Any, k: int, strength: float,
                  style_size: int, region_norm: bool, refine: int) -> torch.Tensor:
    style_t = stylizer._as_tensor(_single_style_image(style), style_size)
    found = auto_labels_of_tensors(stylizer.encoder, content_t, style_t, k)
    return _transfer_by_labels(stylizer, content_t, found.content_labels, style_t, found.style_labels, found.palette,
                               strength, region_norm, refine)


def _transfer_by_labels(stylizer: Stylizer, content_t: torch.Tensor, content_labels: np.ndarray,
                        style_t: torch.Tensor, style_labels: np.ndarray, palette: np.ndarray, strength: float,
                        region_norm: bool, refine: int = 0) -> torch.Tensor:
    style_feats = stylizer.encoder(style_t, stylizer.config.style_layers)
    styles = label_style_vectors(stylizer.generator, style_feats, style_labels, palette)
    output = label_matched_tensor(stylizer, content_t, content_labels, styles, strength, region_norm)
    if refine:
        output = refine_regions(stylizer.encoder, stylizer.config.style_layers, output, content_labels, style_t,
                                style_labels, styles.present, refine, content=content_t, strength=strength)
    return output


# --------------------------------------------------------------------------
# Refinement: pull each region's statistics onto its style region's
# --------------------------------------------------------------------------

REFINE_ANCHOR_WEIGHT = 1.0
"""How strongly refinement keeps the feed-forward result's relu3_1 features
(its structure and strokes) while it moves the regions' statistics."""


class RegionStatsLoss:
    """Per-label distance of an image's VGG mean/std to its style region's
    (the measure of :func:`label_match`, averaged over labels), plus
    ``anchor_weight`` times the relative relu3_1 feature error to the draft
    being refined. ``weights`` (1, K, H, W) are the content's label masks,
    ``targets[k]`` the style statistics of label k per layer."""

    def __init__(self, encoder, layers: Sequence[str], weights: torch.Tensor,
                 targets: list[dict[str, tuple[torch.Tensor, torch.Tensor]]], scale: dict[str, float],
                 draft: torch.Tensor, anchor_weight: float = REFINE_ANCHOR_WEIGHT, anchor_layer: str = "relu3_1"):
        self.encoder, self.layers, self.weights = encoder, tuple(layers), weights
        self.targets, self.scale = targets, scale
        self.anchor_layer, self.anchor_weight = anchor_layer, anchor_weight
        self.taps = tuple(dict.fromkeys((*self.layers, anchor_layer)))
        with torch.no_grad():
            self.anchor = encoder(draft, (anchor_layer,))[anchor_layer]
        self.anchor_norm = self.anchor.pow(2).sum() + 1e-12

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(image, self.taps)
        terms = []
        for t in self.layers:
            w = resize_weights(self.weights, feats[t].shape[-2:])
            for k, target in enumerate(self.targets):
                terms.append(stats_distance(*masked_mean_std(feats[t], w[:, k:k + 1]), *target[t], self.scale[t]))
        stats = torch.stack(terms).sum() / len(self.targets)
        anchor = (feats[self.anchor_layer] - self.anchor).pow(2).sum() / self.anchor_norm
        return stats + self.anchor_weight * anchor


def refine_regions(encoder, layers: Sequence[str], draft: torch.Tensor, content_labels: np.ndarray,
                   style: torch.Tensor, style_labels: np.ndarray, present: np.ndarray, steps: int, *,
                   content: torch.Tensor | None = None, strength: float = 1.0, on_step=None) -> torch.Tensor:
    """A few L-BFGS steps on the pixels of ``draft`` (the feed-forward
    label-matched result, (1, 3, H, W)) so that each content label's VGG
    statistics move onto its style region's (the whole style's for a label
    the style lacks), while its relu3_1 features stay close to the draft's.
    With ``strength`` < 1 the targets are mixed with ``content``'s own region
    statistics in that proportion.

    Why: the generator predicts each region's look from a 512-number style
    vector and decodes through one shared network, so regions whose style
    statistics are close come out alike; the optimisation enforces what the
    user asked for -- this region in the style of that one -- exactly, and,
    starting from the draft, needs tens of steps rather than Gatys' hundreds.
    """
    labels = [int(k) for k in np.unique(content_labels)]
    weights = one_hot(content_labels, labels, draft.device)
    with torch.no_grad():
        whole = region_stats(encoder, layers, style, torch.ones(1, 1, *style_labels.shape, device=style.device))
        scale = layer_scales(whole)
        targets = [region_stats(encoder, layers, style, one_hot(style_labels, [k], style.device)) if present[k]
                   else whole for k in labels]
        if strength < 1.0 and content is not None:
            own = [region_stats(encoder, layers, content, weights[:, i:i + 1]) for i in range(len(labels))]
            targets = [{t: tuple(strength * a + (1 - strength) * b for a, b in zip(target[t], mine[t]))
                        for t in layers} for target, mine in zip(targets, own)]
    with torch.enable_grad():  # Stylizer.stylize runs under no_grad
        loss_fn = RegionStatsLoss(encoder, layers, weights, targets, scale, draft)
        image = draft.detach().clone().contiguous().requires_grad_(True)
        lbfgs(image, loss_fn, steps, on_step)
    return image.detach().clamp(0, 1)


# --------------------------------------------------------------------------
# Evaluation: does each label look like its own style region?
# --------------------------------------------------------------------------

@dataclass
class LabelMatch:
    """How one content label's output region compares with the style's regions."""

    colour: tuple[int, int, int]
    share: float                 # of the content
    own: float                   # distance to the same label's style region
    nearest: tuple[int, int, int]  # the label of the closest style region
    nearest_distance: float

    @property
    def matched(self) -> bool:
        return self.nearest == self.colour


def stats_distance(mean: torch.Tensor, std: torch.Tensor, ref_mean: torch.Tensor, ref_std: torch.Tensor,
                   scale: float) -> torch.Tensor:
    """One layer's distance between region statistics, as in
    :func:`semstyle.losses.mean_std_style_loss` (MSE of means + MSE of stds),
    divided by the layer's ``scale`` (:func:`layer_scales`)."""
    return (F.mse_loss(mean, ref_mean) + F.mse_loss(std, ref_std)) / scale


def layer_scales(whole: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, float]:
    """Per layer, the whole style image's mean squared std (``whole`` is its
    :func:`region_stats` under an all-ones mask): one yardstick for every label."""
    return {t: float(std.pow(2).mean()) for t, (_, std) in whole.items()}


def region_stats(encoder, layers: Sequence[str], image: torch.Tensor,
                 weight: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, the VGG mean/std of ``image`` (1, 3, H, W) under a mask (1, 1, H, W)."""
    feats = encoder(image, tuple(layers))
    return {t: masked_mean_std(feats[t].float(), resize_weights(weight, feats[t].shape[-2:])) for t in layers}


@torch.no_grad()
def label_match(encoder, layers: Sequence[str], output: torch.Tensor, content_labels: np.ndarray,
                style: torch.Tensor, style_labels: np.ndarray, palette: np.ndarray,
                min_share: float = MIN_LABEL_FRACTION) -> list[LabelMatch]:
    """The acceptance measure of label-matched transfer: for every content
    label covering more than ``min_share`` of ``output``, the distance of its
    output region's VGG statistics to each style region's, and which is nearest.

    Distance per layer as in :func:`semstyle.losses.mean_std_style_loss` (MSE
    of means + MSE of stds), divided by one scale per layer (the whole style
    image's mean squared std), so that every label is judged with the same
    yardstick; summed over ``layers``. Label maps are index maps at the sizes
    of ``output`` and ``style``.
    """
    scale = layer_scales(region_stats(encoder, layers, style, torch.ones(1, 1, *style_labels.shape)))
    style_regions = {k: region_stats(encoder, layers, style, one_hot(style_labels, [k]))
                     for k in range(len(palette)) if (style_labels == k).mean() > MIN_STYLE_FRACTION}
    results = []
    for k in range(len(palette)):
        share = float((content_labels == k).mean())
        if share <= min_share or k not in style_regions:
            continue
        ours = region_stats(encoder, layers, output, one_hot(content_labels, [k]))
        dist = {j: sum(float(stats_distance(*ours[t], *ref[t], scale[t])) for t in layers)
                for j, ref in style_regions.items()}
        nearest = min(dist, key=dist.get)
        colour = tuple(int(c) for c in palette[k])
        results.append(LabelMatch(colour, share, dist[k], tuple(int(c) for c in palette[nearest]), dist[nearest]))
    return results


# --------------------------------------------------------------------------
# Command-line helpers
# --------------------------------------------------------------------------

def parse_region_arg(text: str) -> tuple[str, Any, float]:
    """``MASK=STYLE[:STRENGTH]`` -> (mask path, style path, strength). The mask
    path ends at the first '='; a trailing ``:number`` is the strength."""
    mask, sep, style = text.partition("=")
    if not sep or not mask or not style:
        raise ConfigError(f"--region expects MASK=STYLE[:STRENGTH], got {text!r}")
    parsed = parse_style_arg(style)
    return mask, parsed.image, check_strength(parsed.weight)
