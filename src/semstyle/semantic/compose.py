"""Stylization with regions: masks, per-region styles, protected areas, label maps, automatic regions.

The steps of ``Stylizer.stylize`` when options name regions:

1. read every mask and label map (a bad file fails before any network runs);
2. the base layer: the style over the whole image or ``mask``, label-matched
   when ``labels`` or ``auto_regions`` are given (then refined, ``refine``);
3. one layer per ``regions`` entry, each in its own style, later over earlier;
4. composite the layers over the exact input pixels with feathered alphas,
   then put ``protect`` areas back.

Every layer is computed by the engine's one forward pass.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..errors import OptionError
from ..io.tensors import tensor_to_image
from ..pipeline.engine import StyleEngine
from ..pipeline.options import StylizeOptions
from ..pipeline.prepare import match_colours, preserve_color
from ..pipeline.styles import single_style_image
from .auto import AutoLabels, auto_labels_of_tensors
from .labels import choose_palette, label_indices
from .masks import (
    MASK_THRESHOLD,
    SemanticWarning,
    binary_mask,
    check_aspect,
    composite,
    feather_alpha,
    label_colours,
    mask_name,
)
from .transfer import refine_whole, transfer_by_labels


@dataclass
class RegionInputs:
    """Every mask of one stylization, read and resized to the content."""

    base: np.ndarray | None               # the base style's area (None: everywhere)
    regions: list[np.ndarray]             # one per options.regions entry
    protect: list[np.ndarray]
    label_maps: tuple[np.ndarray, np.ndarray] | None  # colour-coded (content, style) maps


def read_region_inputs(options: StylizeOptions, size: tuple[int, int]) -> RegionInputs:
    """Step 1: masks and label maps for a content image of ``size`` (width, height)."""
    base = None if options.mask is None else binary_mask(options.mask, size)
    regions = [binary_mask(m, size, "region mask") for m, _, _ in options.regions]
    protect = [binary_mask(m, size, "protect mask") for m in options.protect]
    label_maps = None
    if options.labels is not None:
        content_map, style_map = options.labels
        label_maps = (label_colours(content_map, "content label map"), label_colours(style_map, "style label map"))
        check_aspect(label_maps[0].shape[1::-1], size, mask_name(content_map), "content label map")
    for found, source, what in [(base, options.mask, "mask"),
                                *((m, e[0], "region mask") for m, e in zip(regions, options.regions))]:
        if found is not None and not found.any():
            warnings.warn(f"{what} {mask_name(source)} selects no pixels (nothing >= {MASK_THRESHOLD}); "
                          f"that area stays unstyled", SemanticWarning, stacklevel=3)
    return RegionInputs(base, regions, protect, label_maps)


def stylize_regions(engine: StyleEngine, content: torch.Tensor, style: Any, options: StylizeOptions,
                    on_progress: Callable[[int, int], None] | None = None) -> Image.Image:
    """``content`` (1, 3, H, W), already resized; ``style`` an image, a blend, a vector,
    or None to style only ``options.regions``. ``options`` must be validated.
    ``on_progress(step, total)``: refinement's steps (see :func:`transfer_by_labels`)."""
    if style is None and not options.regions:
        raise OptionError("style", "is needed, unless every region brings its own style")
    if style is None and options.by_labels:
        raise OptionError("style", "is needed for label-matched transfer")
    height, width = content.shape[-2:]
    inputs = read_region_inputs(options, (width, height))

    def finish(tensor: torch.Tensor) -> np.ndarray:
        if options.preserve_colors:
            tensor = preserve_color(tensor, content)
        return np.asarray(tensor_to_image(tensor))

    layers: list[tuple[np.ndarray, np.ndarray]] = []
    if style is not None:
        alpha = np.ones((height, width)) if inputs.base is None else feather_alpha(inputs.base, options.feather)
        if alpha.any():
            layers.append((alpha, finish(_base_layer(engine, content, style, options, inputs, on_progress))))
    for region_mask, (_, region_style, region_strength) in zip(inputs.regions, options.regions):
        alpha = feather_alpha(region_mask, options.feather)
        if alpha.any():
            vector = engine.encode_style(region_style, options.style_size, options.max_pixels, options.style_fit)
            painted = engine.stylize(content, vector, strength=region_strength, border_margin=options.border_margin)
            painted = match_colours(painted, engine.style_colours(region_style, options.style_size, options.max_pixels),
                                    options.painting_colours * region_strength)
            layers.append((alpha, finish(painted)))
    keep = feather_alpha(np.logical_or.reduce(inputs.protect), options.feather) if inputs.protect else None
    if keep is None and len(layers) == 1 and (layers[0][0] == 1).all():
        return Image.fromarray(layers[0][1])
    return Image.fromarray(composite(np.asarray(tensor_to_image(content)), layers, keep))


def _base_layer(engine: StyleEngine, content: torch.Tensor, style: Any, options: StylizeOptions,
                inputs: RegionInputs, on_progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Step 2: the base style, globally or label by label."""
    if not options.by_labels:
        vector = engine.encode_style(style, options.style_size, options.max_pixels, options.style_fit)
        output = engine.stylize(content, vector, strength=options.strength, border_margin=options.border_margin)
        output = match_colours(output, engine.style_colours(style, options.style_size, options.max_pixels),
                               options.painting_colours * options.strength)
        if not options.refine:
            return output
        style_t = engine.read(single_style_image(style, "refinement"), options.style_size, "style_size",
                              options.max_pixels)
        return refine_whole(engine, output, content, style_t, options.refine, options.strength, on_progress)
    style_t = engine.read(single_style_image(style), options.style_size, "style_size", options.max_pixels)
    if inputs.label_maps is not None:
        content_labels, style_labels, palette = _label_indices(inputs.label_maps, content, style_t, options)
    else:
        found = auto_labels_of_tensors(engine.encoder, content, style_t, options.auto_regions)
        content_labels, style_labels, palette = found.content_labels, found.style_labels, found.palette
    return transfer_by_labels(engine, content, content_labels, style_t, style_labels, palette,
                              strength=options.strength, region_norm=options.region_norm,
                              region_contrast=options.label_contrast, colour_match=options.painting_colours,
                              colour_regions=options.colours_per_region, refine=options.refine,
                              border_margin=options.border_margin, on_progress=on_progress)


def _label_indices(label_maps: tuple[np.ndarray, np.ndarray], content: torch.Tensor, style: torch.Tensor,
                   options: StylizeOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    content_rgb, style_rgb = label_maps
    colours = choose_palette(options.palette, content_rgb, style_rgb)
    style_size = (style.shape[-1], style.shape[-2])
    check_aspect(style_rgb.shape[1::-1], style_size, mask_name(options.labels[1]), "style label map")
    return (label_indices(content_rgb, colours, (content.shape[-1], content.shape[-2])),
            label_indices(style_rgb, colours, style_size), colours)


def find_auto_labels(engine: StyleEngine, content: Any, style: Any, k: int, options: StylizeOptions,
                     seed: int = 0) -> AutoLabels:
    """:func:`~semstyle.semantic.auto.auto_labels_of_tensors` on image files or PIL
    images, read as stylization reads them (``options.size`` and ``style_size``)."""
    content_t = engine.read(content, options.size, "size", options.max_pixels)
    style_t = engine.read(single_style_image(style), options.style_size, "style_size", options.max_pixels)
    return auto_labels_of_tensors(engine.encoder, content_t, style_t, k, seed)
