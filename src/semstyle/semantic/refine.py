"""Refinement: a few L-BFGS steps that pull each region's VGG statistics onto its style region's.

The generator predicts each region's look from a 512-number style vector and
decodes through one shared network, so regions whose style statistics are
close come out alike; the optimisation enforces what the user asked for --
this region in the style of that one -- exactly, and, starting from the
feed-forward draft, needs tens of steps rather than Gatys' hundreds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..nn.stats import masked_mean_std, resize_masks
from ..optimize import lbfgs
from .labels import one_hot

REFINE_ANCHOR_WEIGHT = 0.5
"""How strongly refinement keeps the feed-forward result's relu3_1 features
(its structure and strokes) while it moves the regions' statistics."""
REFINE_CONTENT_WEIGHT = 1.0
"""How strongly refinement pulls the image's ``REFINE_CONTENT_LAYER`` features towards the
photo's (Gatys' content loss) beside the anchor to the draft: the anchor alone can only keep the
draft's edges while the statistics move (edge F1 fell from 0.69 to 0.58 in 20 steps on
quality.py's pairs); the photo's features bring edges back above the draft's. The weights were
chosen on three training photos and paintings, not the benchmark's (`benchmarks/refine_sweep.py`,
20 steps at 512 px, medians; draft: style distance 0.377, edge F1 0.553): anchor 1 alone 0.196 and
0.551; anchor 0.5 + content 1: 0.211 and 0.684; anchor 1 + content 2: 0.255 and 0.770. The rule: the
lowest style distance among the weightings that raise edge F1 by at least 0.1."""
REFINE_CONTENT_LAYER = "relu3_1"
"""relu3_1 is already computed for the anchor and the style statistics: the content term costs no
VGG pass (relu2_1 kept fewer edges at a higher style distance in the sweep)."""


class RegionStatsLoss:
    """Per-label distance of an image's VGG mean/std to its style region's
    (the measure of :func:`label_match`, averaged over labels), plus
    ``anchor_weight`` times the relative relu3_1 feature error to the draft
    being refined and ``content_weight`` times the relative ``content_layer``
    error to ``content``, the photo (none without it). ``weights`` (1, K, H, W) are the content's label masks,
    ``targets[k]`` the style statistics of label k per layer."""

    def __init__(self, encoder, layers: Sequence[str], weights: torch.Tensor,
                 targets: list[dict[str, tuple[torch.Tensor, torch.Tensor]]], scale: dict[str, float],
                 draft: torch.Tensor, anchor_weight: float = REFINE_ANCHOR_WEIGHT, anchor_layer: str = "relu3_1",
                 content: torch.Tensor | None = None, content_weight: float = REFINE_CONTENT_WEIGHT,
                 content_layer: str = REFINE_CONTENT_LAYER):
        self.encoder, self.layers, self.weights = encoder, tuple(layers), weights
        self.targets, self.scale = targets, scale
        pulls = [(anchor_layer, anchor_weight, draft)]  # (layer, weight, image whose features to keep)
        if content is not None and content_weight > 0:
            pulls.append((content_layer, content_weight, content))
        self.taps = tuple(dict.fromkeys((*self.layers, *(layer for layer, _, _ in pulls))))
        with torch.no_grad():
            self.pulls = [(layer, weight, encoder(image, (layer,))[layer].float()) for layer, weight, image in pulls]
        self.pull_norms = [target.pow(2).sum() + 1e-12 for _, _, target in self.pulls]

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(image, self.taps)
        whole = len(self.targets) == 1  # one label covers the image: no mask to weigh by
        terms = []
        for t in self.layers:
            w = None if whole else resize_masks(self.weights, feats[t].shape[-2:])
            for k, target in enumerate(self.targets):
                terms.append(stats_distance(*masked_mean_std(feats[t], None if whole else w[:, k:k + 1]),
                                            *target[t], self.scale[t]))
        stats = torch.stack(terms).sum() / len(self.targets)
        pulls = [weight * F.mse_loss(feats[layer].float(), target, reduction="sum") / norm
                 for (layer, weight, target), norm in zip(self.pulls, self.pull_norms)]
        return stats + sum(pulls)

def refine_regions(encoder, layers: Sequence[str], draft: torch.Tensor, content_labels: np.ndarray,
                   style: torch.Tensor, style_labels: np.ndarray, present: np.ndarray, steps: int, *,
                   content: torch.Tensor | None = None, strength: float = 1.0, on_step=None,
                   anchor_weight: float = REFINE_ANCHOR_WEIGHT, content_weight: float = REFINE_CONTENT_WEIGHT,
                   content_layer: str = REFINE_CONTENT_LAYER) -> torch.Tensor:
    """A few L-BFGS steps on the pixels of ``draft`` (the feed-forward
    label-matched result, (1, 3, H, W)) so that each content label's VGG
    statistics move onto its style region's (the whole style's for a label
    the style lacks), while its relu3_1 features stay close to the draft's and
    to ``content``'s (the photo's).
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
        loss_fn = RegionStatsLoss(encoder, layers, weights, targets, scale, draft, anchor_weight,
                                  content=content, content_weight=content_weight, content_layer=content_layer)
        image = draft.detach().clone().contiguous().requires_grad_(True)
        lbfgs(image, loss_fn, steps, on_step, line_search=False)
    return image.detach().clamp(0, 1)

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
    return {t: masked_mean_std(feats[t].float(), resize_masks(weight, feats[t].shape[-2:])) for t in layers}
