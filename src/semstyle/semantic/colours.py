"""Region colours of label-matched transfer: each region's colours moved onto its style region's.

The generator paints every region from its own style vector, but its decoder sees across region
borders, and a style vector carries colour only loosely: measured on the 9 semantic pairs, a
region's output colours often sat nearer another label's style region than its own (a green sofa
came out the grey of the walls). A per-region colour transfer in the manner of Reinhard et al.
(2001) puts them back: within each content region, every RGB channel of the output gets the mean
and spread of the same channel in the style's same-label region. It is an affine map per region
and channel, so edges, strokes and texture stay as the generator painted them; the maps are
blended across borders by slightly blurred masks, so no seam appears where regions meet.

Label-matched transfer on the 9 pairs (256 px, ``benchmarks/semantic.py``, no refinement):
35 of 46 labels matched without it, 40 with it, 42 with it and ``region_contrast`` 1. Automatic
regions do not use it by default (:class:`~semstyle.pipeline.options.StylizeOptions`): their
borders are not the objects' edges, and a colour change there shows as a halo.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .labels import one_hot

MAX_GAIN = 2.0
"""The largest factor a channel's spread is scaled by (or divided by): a flat region (a white
wall) must not have its noise stretched into a painting's full range."""

BLEND_FRACTION = 0.004
"""Width of the blend across region borders, as a fraction of the image's longer side."""


def _channel_moments(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (3,) of each channel of (1, 3, H, W) ``image`` inside (H, W) bool ``mask``."""
    pixels = image[0][:, mask]
    return pixels.mean(dim=1), pixels.std(dim=1, unbiased=False)


def _soft_weights(labels: np.ndarray, indices: list[int], device: torch.device) -> torch.Tensor:
    """(K, 1, H, W) masks of ``indices``, blurred by a box ``BLEND_FRACTION`` of the image wide and
    normalised to sum to 1 at every pixel."""
    masks = one_hot(labels, indices, device)[0][:, None]
    radius = max(1, round(BLEND_FRACTION * max(labels.shape)))
    blurred = F.avg_pool2d(F.pad(masks, (radius,) * 4, mode="replicate"), 2 * radius + 1, stride=1)
    return blurred / blurred.sum(dim=0, keepdim=True).clamp_min(1e-6)


@torch.no_grad()
def match_region_colours(output: torch.Tensor, content_labels: np.ndarray, style: torch.Tensor,
                         style_labels: np.ndarray, present: np.ndarray, amount: float = 1.0) -> torch.Tensor:
    """(1, 3, H, W) ``output`` with each content label's region moved ``amount`` (0: not at all, 1:
    fully) towards the colour mean and spread of the same label's region of ``style`` (1, 3, h, w).
    ``content_labels`` and ``style_labels`` are index maps at the two images' sizes; labels not
    ``present`` in the style keep their colours."""
    if amount == 0:
        return output
    indices = [int(k) for k in np.unique(content_labels)]
    gains, shifts = [], []
    for k in indices:
        region = torch.from_numpy(content_labels == k).to(output.device)
        if not present[k] or int(region.sum()) < 2:
            gains.append(torch.ones(3, device=output.device))
            shifts.append(torch.zeros(3, device=output.device))
            continue
        mean, std = _channel_moments(output, region)
        target_mean, target_std = _channel_moments(style, torch.from_numpy(style_labels == k).to(style.device))
        gain = (target_std.to(output.device) / std.clamp_min(1e-4)).clamp(1 / MAX_GAIN, MAX_GAIN)
        gain = 1 + amount * (gain - 1)
        gains.append(gain)
        shifts.append(amount * target_mean.to(output.device) + (1 - amount) * mean - gain * mean)
    weights = _soft_weights(content_labels, indices, output.device)  # (K, 1, H, W)
    gain = (weights * torch.stack(gains)[:, :, None, None]).sum(dim=0)
    shift = (weights * torch.stack(shifts)[:, :, None, None]).sum(dim=0)
    return (output * gain + shift).clamp(0, 1)
