"""Colour in a perceptual space: sRGB -> CIE Lab, and a loss on the whole colour distribution.

Why a colour term at all: the style losses read VGG statistics, in which a painting's palette is
only one of many things relu1_1 encodes, and the default model's pictures came out paler than the
paintings (issue 12). Matching means and stds of Lab would fix the average tint but not a palette
of a few distinct colours (a blue sky over orange fields has the mean of neither), so the loss
compares the whole distributions: the sliced Wasserstein distance, i.e. sorted projections of the
two pixel clouds onto fixed directions of Lab, which is exact for 1-D distributions, cheap (a sort),
and differentiable.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_RGB_TO_XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                            [0.2126729, 0.7151522, 0.0721750],
                            [0.0193339, 0.1191920, 0.9503041]])
_D65_WHITE = torch.tensor([0.95047, 1.0, 1.08883])
_LAB_SCALE = torch.tensor([100.0, 128.0, 128.0])

COLOUR_PIXELS = 64
"""Images are average-pooled to at most this many pixels a side first: a palette needs no more,
and sorting 4k values per direction costs nothing next to the VGG passes."""

COLOUR_DIRECTIONS = 16
"""Projections of the Lab cloud: L, a, b themselves and 13 fixed oblique ones."""

HISTOGRAM_BINS = 8
"""Bins per RGB channel of the soft joint histogram (512 in all, as the benchmark's colour metric)."""


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in 0..1, (N, 3, H, W) -> CIE Lab (D65), each channel divided by its range
    (L/100, a/128, b/128) so that the three weigh alike in a distance."""
    rgb = rgb.float().clamp(0, 1)
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055).clamp_min(1e-8) ** 2.4)
    xyz = torch.einsum("ij,njhw->nihw", _RGB_TO_XYZ.to(rgb.device), linear)
    xyz = xyz / _D65_WHITE.to(rgb.device).view(1, 3, 1, 1)
    delta = 6.0 / 29.0
    f = torch.where(xyz > delta ** 3, xyz.clamp_min(1e-8) ** (1.0 / 3.0), xyz / (3 * delta ** 2) + 4.0 / 29.0)
    lab = torch.stack([116.0 * f[:, 1] - 16.0, 500.0 * (f[:, 0] - f[:, 1]), 200.0 * (f[:, 1] - f[:, 2])], dim=1)
    return lab / _LAB_SCALE.to(rgb.device).view(1, 3, 1, 1)


def _directions(device: torch.device) -> torch.Tensor:
    """(3, COLOUR_DIRECTIONS) unit vectors: the three axes, then fixed pseudo-random ones."""
    oblique = torch.randn(3, COLOUR_DIRECTIONS - 3, generator=torch.Generator().manual_seed(0))
    directions = torch.cat([torch.eye(3), oblique / oblique.norm(dim=0, keepdim=True)], dim=1)
    return directions.to(device)


def _pixel_cloud(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) sRGB -> (N, P, 3) Lab pixels of the image pooled to COLOUR_PIXELS a side."""
    side = max(image.shape[-2:])
    if side > COLOUR_PIXELS:
        image = F.adaptive_avg_pool2d(image, (max(1, image.shape[-2] * COLOUR_PIXELS // side),
                                              max(1, image.shape[-1] * COLOUR_PIXELS // side)))
    return rgb_to_lab(image).flatten(2).transpose(1, 2)


def _sorted_quantiles(values: torch.Tensor, count: int) -> torch.Tensor:
    """(N, P, D) -> (N, count, D): the sorted values resampled to ``count`` quantiles, so two
    images of different sizes can be compared."""
    ordered = values.sort(dim=1).values
    if ordered.shape[1] == count:
        return ordered
    return F.interpolate(ordered.transpose(1, 2), size=count, mode="linear", align_corners=True).transpose(1, 2)


def colour_distribution_loss(output: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """Sliced Wasserstein-2 distance between the Lab colours of ``output`` and of ``style``
    (both (N, 3, H, W) sRGB in 0..1; sizes may differ): 0 when the palettes are the same
    whatever the layout."""
    directions = _directions(output.device)
    out_cloud = _pixel_cloud(output) @ directions
    ref_cloud = (_pixel_cloud(style) @ directions).detach()
    count = min(out_cloud.shape[1], ref_cloud.shape[1])
    return F.mse_loss(_sorted_quantiles(out_cloud, count), _sorted_quantiles(ref_cloud, count))


def soft_histogram(image: torch.Tensor, bins: int = HISTOGRAM_BINS) -> torch.Tensor:
    """(N, 3, H, W) sRGB -> (N, bins**3) joint RGB histogram summing to 1, with linear (tent)
    binning: each pixel is shared between the 8 bin centres around it, so the histogram is a
    differentiable function of the colours."""
    n = image.shape[0]
    position = image.float().clamp(0, 1).flatten(2) * bins - 0.5          # (N, 3, P), bin centres at 0..bins-1
    low = position.floor().clamp(0, bins - 2)
    upper_share = (position - low).clamp(0, 1)
    low = low.long()
    hist = image.new_zeros(n, bins ** 3, dtype=torch.float32)
    for corner in range(8):
        offsets = [(corner >> axis) & 1 for axis in range(3)]
        weight = torch.ones_like(upper_share[:, 0])
        index = torch.zeros_like(low[:, 0])
        for axis, offset in enumerate(offsets):
            weight = weight * (upper_share[:, axis] if offset else 1 - upper_share[:, axis])
            index = index * bins + low[:, axis] + offset
        hist = hist.scatter_add(1, index, weight)
    return hist / hist.sum(dim=1, keepdim=True)


def histogram_loss(output: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """1 - the Bhattacharyya coefficient of the soft joint RGB histograms of ``output`` and
    ``style`` (the square of their Hellinger distance): the palette as a set of colours, which
    the sliced distance sees only through 1-D projections."""
    mine, theirs = soft_histogram(output), soft_histogram(style).detach()
    return (1.0 - (mine * theirs + 1e-10).sqrt().sum(dim=1)).mean()
