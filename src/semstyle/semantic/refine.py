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
            self.anchor = encoder(draft, (anchor_layer,))[anchor_layer].float()
        self.anchor_norm = self.anchor.pow(2).sum() + 1e-12

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(image, self.taps)
        terms = []
        for t in self.layers:
            w = resize_masks(self.weights, feats[t].shape[-2:])
            for k, target in enumerate(self.targets):
                terms.append(stats_distance(*masked_mean_std(feats[t].float(), w[:, k:k + 1]), *target[t],
                                            self.scale[t]))
        stats = torch.stack(terms).sum() / len(self.targets)
        anchor = (feats[self.anchor_layer].float() - self.anchor).pow(2).sum() / self.anchor_norm
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
