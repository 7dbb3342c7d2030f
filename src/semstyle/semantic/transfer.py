"""Label-matched transfer: each content label takes the style of the same label's style region.

Each label gets its own style vector from the style image's statistics
*inside that label's region* (masks area-resized to every VGG tap), and the
generator's one forward pass (:meth:`semstyle.nn.generator.Generator.run`)
injects them region by region, blended by the content's soft label masks at
each feature resolution. The content-side instance normalisation is per region
too (``region_norm``), so a dark sky and a bright road are each normalised
against themselves. A content label with no region in the style takes the
style's global vector, with a :class:`~semstyle.semantic.masks.SemanticWarning`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..pipeline.engine import StyleEngine
from ..pipeline.options import DEFAULTS, LABEL_MAP_CONTRAST
from ..pipeline.prepare import match_colours
from .colours import match_region_colours
from .labels import MIN_STYLE_FRACTION, one_hot, present_labels, warn_missing_labels
from .refine import refine_regions


@dataclass
class LabelStyles:
    """Per-label style vectors of one style image and its label map."""

    palette: np.ndarray        # (K, 3) uint8, all labels
    vectors: torch.Tensor      # (K, D): the label's region vector, or the global vector if missing
    present: np.ndarray        # (K,) bool: the label has a region in the style
    global_vector: torch.Tensor  # (1, D)


def label_style_vectors(engine: StyleEngine, style: torch.Tensor, style_labels: np.ndarray,
                        palette: np.ndarray, min_fraction: float = MIN_STYLE_FRACTION,
                        contrast: float = LABEL_MAP_CONTRAST) -> LabelStyles:
    """One style vector per palette label from the style image (1, 3, H, W) and
    its label index map (at the style image's resolution).

    ``contrast`` pushes each region's vector away from the mean of the regions' vectors by that
    fraction of its distance: the decoder sees across region borders and blends neighbouring
    regions' looks, so without it the regions of the output are more alike than the painting's
    (label-matched transfer on the 9 semantic pairs: see
    :data:`~semstyle.pipeline.options.LABEL_MAP_CONTRAST`)."""
    global_vector = engine.style_vector(style)
    present = present_labels(style_labels, len(palette), min_fraction)
    vectors = global_vector.expand(len(palette), -1).clone()
    found = [k for k in range(len(palette)) if present[k]]
    if found:
        own = engine.style_vector(style, one_hot(style_labels, found, engine.device))[0]
        vectors[found] = own + contrast * (own - own.mean(dim=0, keepdim=True))
    return LabelStyles(palette, vectors, present, global_vector)


def label_matched_tensor(engine: StyleEngine, content: torch.Tensor, content_labels: np.ndarray,
                         styles: LabelStyles, strength: float = 1.0, region_norm: bool = True,
                         border_margin: int | None = None) -> torch.Tensor:
    """Stylize (1, 3, H, W) ``content`` label by label; ``content_labels`` is
    its (H, W) label index map. Missing style labels warn and use the global
    vector. Strength < 1 mixes each label's vector with the content region's own."""
    labels = [int(k) for k in np.unique(content_labels)]
    warn_missing_labels(content_labels, styles.present, styles.palette, "the content", "the style's global look")
    masks = one_hot(content_labels, labels, engine.device)
    options = {} if border_margin is None else {"border_margin": border_margin}
    return engine.stylize(content, styles.vectors[labels][None], strength=strength, masks=masks,
                          region_norm=region_norm, **options)


def transfer_by_labels(engine: StyleEngine, content: torch.Tensor, content_labels: np.ndarray,
                       style: torch.Tensor, style_labels: np.ndarray, palette: np.ndarray, *, strength: float = 1.0,
                       region_norm: bool = True, region_contrast: float = LABEL_MAP_CONTRAST,
                       colour_match: float = DEFAULTS.colour_match, colour_regions: bool = True, refine: int = 0,
                       border_margin: int | None = None,
                       on_progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Label-matched transfer of tensors with index maps (``region_contrast``: see
    :func:`label_style_vectors`), each region's colours moved ``colour_match`` of the way to its
    style region's (:func:`~semstyle.semantic.colours.match_region_colours`, scaled by
    ``strength``; with ``colour_regions`` False the whole image's to the whole style's), then
    ``refine`` L-BFGS steps; ``on_progress(step, refine)`` is called as
    refinement starts (step 0) and after each step."""
    styles = label_style_vectors(engine, style, style_labels, palette, contrast=region_contrast)
    output = label_matched_tensor(engine, content, content_labels, styles, strength, region_norm, border_margin)
    if colour_regions:
        output = match_region_colours(output, content_labels, style, style_labels, styles.present,
                                      colour_match * strength)
    else:
        output = match_colours(output, engine.colour_moments(style), colour_match * strength)
    if refine:
        output = refine_with_progress(engine, output, content, content_labels, style, style_labels, styles.present,
                                      refine, strength, on_progress)
    return output


def refine_with_progress(engine: StyleEngine, draft: torch.Tensor, content: torch.Tensor,
                         content_labels: np.ndarray, style: torch.Tensor, style_labels: np.ndarray,
                         present: np.ndarray, steps: int, strength: float = 1.0,
                         on_progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """:func:`~semstyle.semantic.refine.refine_regions` on the engine's VGG and style layers,
    ``on_progress(step, steps)`` called as it starts (step 0) and after each step."""
    on_step = None
    if on_progress is not None:
        on_progress(0, steps)
        on_step = lambda step, _loss: on_progress(step, steps)  # noqa: E731
    with engine.autocast():  # bfloat16 VGG passes where the engine runs in bfloat16: 1.6x faster at 512 px
        return refine_regions(engine.encoder, engine.config.style_layers, draft, content_labels, style,
                              style_labels, present, steps, content=content, strength=strength, on_step=on_step)


def refine_whole(engine: StyleEngine, draft: torch.Tensor, content: torch.Tensor, style: torch.Tensor, steps: int,
                 strength: float = 1.0, on_progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Refinement of a global result: the whole image is one region, the whole painting its style."""
    whole_content = np.zeros(draft.shape[-2:], dtype=np.int64)
    whole_style = np.zeros(style.shape[-2:], dtype=np.int64)
    return refine_with_progress(engine, draft, content, whole_content, style, whole_style, np.array([True]), steps,
                                strength, on_progress)
