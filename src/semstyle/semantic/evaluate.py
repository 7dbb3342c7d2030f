"""Evaluation of label-matched results: does each label look like its own style region?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .labels import MIN_LABEL_FRACTION, MIN_STYLE_FRACTION, one_hot
from .refine import layer_scales, region_stats, stats_distance


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
