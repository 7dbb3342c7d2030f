"""Doodle to painting: ``semstyle paint DOODLE --style PAINTING --style-labels MAP``.

A doodle is a colour-coded label map (the neural-doodle format, e.g.
``../shared/data/semantic/monet_coastline_doodle_content_mask.png``); the
painting comes with a label map in the same colours. There is no photo, so
there are no content features for the feed-forward generator to decode:
instead the picture itself is optimised (Gatys et al. 2016) so that, **label
by label**, its VGG texture statistics match those of the same-label region
of the painting -- the spatial guidance of Gatys et al. 2017, "Controlling
Perceptual Factors in Neural Style Transfer", which is also what
Champandard's neural doodle (2016) does with patches.

Choices, and why:

* **Masked Gram matrices** at relu1_1 ... relu5_1: for each label, the Gram
  matrix of the features weighted by the label's mask (area-resized to each
  layer), divided by the mask's area, so that a small region and a large one
  are compared on the same scale. The non-centred Gram carries the mean
  colours too, so no separate colour term is needed. The loss is the squared
  relative error per (label, layer), averaged: every label counts the same,
  however small, as a painter would treat a small boat.
* **Coarse to fine** (as neural doodle): first at half size, then upsampled
  and refined at full size. Large forms settle at a quarter of the cost, and
  the full-size pass only adds detail.
* **Initialised from a colour fill**: each doodle region takes the mean colour
  of its style region, plus seeded noise. The optimisation then only has to
  add texture, and converges in far fewer steps than from noise alone.
* **L-BFGS** (:func:`semstyle.optimize.lbfgs`), with progress, and Ctrl-C
  stopping early with the picture so far.
* A label of the doodle that the painting lacks takes the whole painting's
  statistics, with a :class:`~semstyle.semantic.masks.SemanticWarning`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import OptionError
from ..geometry import fit_size
from ..io.tensors import tensor_to_image
from ..nn.stats import resize_masks
from ..nn.vgg import VGGEncoder
from ..optimize import lbfgs
from ..pipeline.engine import StyleEngine
from ..pipeline.options import DEFAULT_STYLE_SIZE, MIN_SIDE, MaskLike, check_count, check_side
from ..pipeline.prepare import image_tensor
from ..weights import load_encoder
from .labels import (
    choose_palette,
    label_indices,
    one_hot,
    present_labels,
    resize_labels,
    snap_to_palette,
    warn_missing_labels,
)
from .masks import label_colours
from .paint_defaults import DEFAULT_LEVELS, DEFAULT_SIZE, DEFAULT_STEPS
from .transfer import transfer_by_labels

PAINT_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
"""Where texture is matched: fine strokes (relu1_1) up to larger motifs (relu5_1)."""

INIT_NOISE = 0.05
"""Std of the noise added to the colour fill: texture grows from it."""


@dataclass
class PaintResult:
    """The painting and how the optimisation went."""

    image: Image.Image
    seconds: float
    iterations: int
    evaluations: int
    losses: list[float] = field(default_factory=list)
    """The loss at every function evaluation (the first is the colour fill's)."""
    interrupted: bool = False
    """Ctrl-C stopped it before ``steps`` iterations; ``image`` is the picture so far."""


def masked_gram(feat: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Gram matrix (C, C) of ``feat`` (1, C, h, w) over the positions of one
    region: sum_p w_p f_p f_p^T / (C sum_p w_p) for the soft mask ``weight``
    (1, 1, h, w). With an all-ones weight it is :func:`semstyle.losses.gram_matrix`."""
    c = feat.shape[1]
    f = feat.reshape(c, -1)
    w = weight.reshape(-1).to(feat.dtype)
    return (f * w) @ f.T / (c * w.sum().clamp_min(1e-12))


class DoodleLoss:
    """Mean over labels and layers of ``||G_k,l(x) - G_k,l(style)||^2 / ||G_k,l(style)||^2``.

    ``doodle_weights`` (1, K, H, W) are the doodle's label masks at the
    painting's size; ``style_weights`` (1, K, H', W') the style image's, one
    channel per label (an all-ones channel for a label the style lacks).
    Targets are computed once.
    """

    def __init__(self, encoder: torch.nn.Module, style: torch.Tensor, style_weights: torch.Tensor,
                 doodle_weights: torch.Tensor, layers: Sequence[str] = PAINT_LAYERS):
        self.encoder = encoder
        self.layers = tuple(layers)
        self.doodle_weights = doodle_weights
        with torch.no_grad():
            feats = encoder(style, self.layers)
            self.targets = {
                t: [masked_gram(feats[t], resize_masks(style_weights[:, k:k + 1], feats[t].shape[-2:]))
                    for k in range(style_weights.shape[1])]
                for t in self.layers}
        self.norms = {t: [g.pow(2).sum() + 1e-12 for g in grams] for t, grams in self.targets.items()}

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(image, self.layers)
        terms = []
        for t in self.layers:
            weights = resize_masks(self.doodle_weights, feats[t].shape[-2:])
            for k, (target, norm) in enumerate(zip(self.targets[t], self.norms[t])):
                gram = masked_gram(feats[t], weights[:, k:k + 1])
                terms.append((gram - target).pow(2).sum() / norm)
        return torch.stack(terms).mean()


def colour_fill(doodle_labels: np.ndarray, style: torch.Tensor, style_labels: np.ndarray,
                present: np.ndarray) -> torch.Tensor:
    """(1, 3, H, W): each doodle label painted in the mean colour of its style
    region (the whole painting's mean for a label the style lacks)."""
    pixels = style[0].reshape(3, -1)
    overall = pixels.mean(dim=1)
    flat = torch.from_numpy(style_labels.reshape(-1))
    colours = torch.stack([pixels[:, flat == k].mean(dim=1) if present[k] else overall
                           for k in range(len(present))])
    return colours[torch.from_numpy(doodle_labels)].permute(2, 0, 1)[None].contiguous()


def check_inputs(size: int | None, style_size: int, steps: int, levels: int) -> None:
    """Every number of :func:`paint`, checked before any work."""
    check_side("size", size, allow_none=True)
    check_side("style_size", style_size)
    check_count("steps", steps, 1, 100_000)
    check_count("levels", levels, 1, 8)


def _read_doodle(doodle: MaskLike, size: int | None) -> np.ndarray:
    rgb = label_colours(doodle, "doodle")
    width, height = fit_size(rgb.shape[1], rgb.shape[0], size)
    if min(width, height) < MIN_SIDE:
        raise OptionError("size", f"would make the doodle {width}x{height}; its shorter side must be at least "
                                  f"{MIN_SIDE} px")
    if (width, height) != (rgb.shape[1], rgb.shape[0]):
        rgb = np.asarray(Image.fromarray(rgb).resize((width, height), Image.NEAREST))
    return rgb


def paint(doodle: MaskLike, style: Any, style_labels: MaskLike, *, palette: Any = "auto",
          size: int | None = DEFAULT_SIZE, style_size: int = DEFAULT_STYLE_SIZE, steps: int = DEFAULT_STEPS,
          levels: int = DEFAULT_LEVELS, seed: int = 0, encoder: VGGEncoder | None = None,
          device: str | torch.device = "cpu", on_step: Callable[[int, float], None] | None = None,
          engine: StyleEngine | None = None) -> PaintResult:
    """Paint ``doodle`` (a label map) in the style of ``style`` (a painting
    whose regions ``style_labels`` marks in the doodle's colours).

    ``size`` caps the painting's longer side (the doodle's own size if None).
    It is painted coarse to fine over ``levels`` sizes (halving), ``steps``
    L-BFGS iterations at each. ``on_step(iteration, loss)`` is called after
    each iteration, counting on across levels. A KeyboardInterrupt stops the
    optimisation early and returns the picture so far (``interrupted`` is set).

    With ``engine`` (a loaded model) the optimisation starts from the model's
    label-matched stylization of the colour fill (the one forward pass, region by
    region) instead of the fill plus noise: strokes and texture are there from the
    first iteration, and L-BFGS only has to correct them.
    """
    check_inputs(size, style_size, steps, levels)
    start = time.perf_counter()
    device = torch.device(device)
    doodle_labels, style_t, style_labels_t, colours, present = _read_inputs(doodle, style, style_labels, palette,
                                                                            size, style_size)
    style_weights = torch.cat([one_hot(style_labels_t, [k]) if present[k]
                               else torch.ones(1, 1, *style_labels_t.shape) for k in range(len(colours))], dim=1)
    encoder = (encoder or (engine.encoder if engine is not None else None) or load_encoder()).to(device)
    image = colour_fill(doodle_labels, style_t, style_labels_t, present)
    if engine is not None:
        image = transfer_by_labels(engine, image, doodle_labels, style_t, style_labels_t, colours).cpu()
    else:
        image = image + INIT_NOISE * torch.randn(image.shape, generator=torch.Generator().manual_seed(seed))
    losses: list[float] = []
    iterations, interrupted = 0, False
    for scale in _scales(doodle_labels.shape, levels):
        labels = resize_labels(doodle_labels, scale[::-1])
        image = F.interpolate(image, size=scale, mode="bilinear", align_corners=False) \
            if tuple(image.shape[-2:]) != scale else image
        image = image.detach().to(device).contiguous().requires_grad_(True)
        loss_fn = DoodleLoss(encoder, style_t.to(device), style_weights.to(device),
                             one_hot(labels, range(len(colours))).to(device))
        level_losses, done, interrupted = lbfgs(image, loss_fn, steps, on_step, first_iteration=iterations + 1)
        losses += level_losses
        iterations += done
        if interrupted:
            break
    if image.shape[-2:] != doodle_labels.shape:
        image = F.interpolate(image.detach(), size=doodle_labels.shape, mode="bilinear", align_corners=False)
    return PaintResult(tensor_to_image(image.detach().clamp(0, 1)), time.perf_counter() - start,
                       iterations, len(losses), losses, interrupted)


def _read_inputs(doodle: MaskLike, style: Any, style_labels: MaskLike, palette: Any, size: int | None,
                 style_size: int) -> tuple[np.ndarray, torch.Tensor, np.ndarray, np.ndarray, np.ndarray]:
    """(doodle label indices at the painting's size, style image tensor, style
    label indices at its size, the palette, which labels the style has)."""
    doodle_rgb = _read_doodle(doodle, size)
    style_rgb = label_colours(style_labels, "style label map")
    style_t = image_tensor(style, style_size, "style_size")
    colours = choose_palette(palette, doodle_rgb, style_rgb)
    doodle_labels = snap_to_palette(doodle_rgb, colours)
    style_labels_t = label_indices(style_rgb, colours, (style_t.shape[-1], style_t.shape[-2]))
    present = present_labels(style_labels_t, len(colours))
    warn_missing_labels(doodle_labels, present, colours, "the doodle", "the whole painting's look", stacklevel=4)
    return doodle_labels, style_t, style_labels_t, colours, present


def _scales(shape: tuple[int, int], levels: int) -> list[tuple[int, int]]:
    """(H, W) of each level, coarse to fine, halving from the full size; the
    coarse levels lay out large forms cheaply, the full one adds fine strokes.
    Levels whose shorter side would fall under MIN_SIDE are skipped."""
    sizes = []
    for level in reversed(range(levels)):
        h, w = (max(1, round(side / 2 ** level)) for side in shape)
        if min(h, w) >= MIN_SIDE or level == 0:
            sizes.append((h, w))
    return sizes
