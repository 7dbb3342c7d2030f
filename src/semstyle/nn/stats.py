"""Per-channel feature statistics: what AdaIN calls "style", written once.

Instance normalisation, its masked (region-wise) form and mask resizing are
used by the injection, the style encoder, the losses, refinement and automatic
regions alike; they all call these functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .resample import keeps_library_ops

EPS = 1e-5
"""Added to the variance before the square root: flat regions have std 0."""


def channel_mean_std(feat: torch.Tensor, eps: float = EPS,
                     dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and standard deviation of (N, C, H, W), shapes (N, C), in
    ``dtype`` (default ``feat``'s: callers wanting float32 statistics of a bfloat16 map ask for
    them here rather than copying the map to float32 first).

    Two passes in (at least) float32, the mean and then the mean of squared deviations, rather than
    ``Tensor.var``: as exact, and 3x faster on this CPU (``var`` reaches 0.3 G values/s on the
    fast model's 256-channel features, a fifth of a frame's time at 640x360). At inference on a
    CPU the map is read in cache-sized chunks instead (:func:`_chunked_moments`; a GPU reduces a
    whole map in one kernel, and gradients need the library ops)."""
    dtype = dtype or feat.dtype
    if feat.device.type == "cpu" and not keeps_library_ops(feat):
        mean, var = _chunked_moments(feat)
        return mean.to(dtype), (var + eps).sqrt().to(dtype)
    wide = feat.to(torch.promote_types(feat.dtype, torch.float32))
    mean = wide.mean(dim=(2, 3), keepdim=True)
    var = (wide - mean).square().mean(dim=(2, 3))
    return mean[..., 0, 0].to(dtype), (var + eps).sqrt().to(dtype)


CHUNK_VALUES = 1 << 19
"""Values per chunk of :func:`_chunked_moments`: 2 MiB in float32, which stays in this CPU's cache
(0.25-1 M values were fastest on maps from 64x1056x1056 down to 256x90x160)."""


def _chunked_moments(feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and (biased) variance of (N, C, H, W), (N, C) in float32, from chunks of
    positions merged exactly (Chan et al.'s pairwise update of count, mean and sum of squared
    deviations). Why: on a whole bfloat16 map each float32 temporary (the copy, the deviations,
    their squares) is a fresh allocation of up to 285 MB that the CPU faults in page by page, and
    channels-last 4-D reductions take a slow path; a (positions, channels) view read a chunk at a
    time does neither. Measured on this CPU: 92 -> 11 ms on the default model's relu3_1 map at
    1024 px (256 x 264 x 264), 43 -> 6 ms on a batch of eight 256 x 64 x 64 maps."""
    n, c, h, w = feat.shape
    wide = torch.promote_types(feat.dtype, torch.float32)
    if feat.is_contiguous(memory_format=torch.channels_last):
        positions = feat.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view: channels vary fastest
    else:
        positions = feat.reshape(n, c, h * w).transpose(1, 2)
    rows = max(1, CHUNK_VALUES // max(1, n * c))
    count = 0
    mean = torch.zeros(n, c, dtype=wide, device=feat.device)
    squares = torch.zeros(n, c, dtype=wide, device=feat.device)
    for start in range(0, h * w, rows):
        part = positions[:, start:start + rows].to(wide)
        size = part.shape[1]
        part_mean = part.mean(dim=1)
        part_squares = (part - part_mean[:, None]).square_().sum(dim=1)
        delta = part_mean - mean
        total = count + size
        mean = mean + delta * (size / total)
        squares = squares + part_squares + delta.square() * (count * size / total)
        count = total
    return mean, squares / max(count, 1)


def masked_mean_std(feat: torch.Tensor, weight: torch.Tensor | None,
                    eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`channel_mean_std` restricted to a (soft) region: the weighted
    per-channel mean and std of ``feat`` (N, C, h, w) under ``weight`` (N or 1,
    1, h, w), shapes (N, C), in at least float32 whatever ``feat``'s dtype. A binary weight gives the
    plain mean/std of the selected positions; ``None`` the whole image's.

    Differentiable through :class:`_WeightedMoments`, whose backward is written out: the
    gradient is ``w * (a + b * feat)`` with per-channel a and b, one fused pass, where autograd
    through the elementwise ops takes about ten passes over the full-size tensor, in float32.
    That made these statistics, not VGG, most of a refinement step at 512 px."""
    return _WeightedMoments.apply(feat, weight, eps)


class _WeightedMoments(torch.autograd.Function):
    """Weighted per-channel mean and std with a hand-written backward (see
    :func:`masked_mean_std`); sums accumulate in (at least) float32 and ``feat`` is never copied whole
    in the unweighted case."""

    @staticmethod
    def forward(ctx, feat: torch.Tensor, weight: torch.Tensor | None, eps: float):
        wide = torch.promote_types(feat.dtype, torch.float32)
        if weight is None:
            count = feat.shape[-2] * feat.shape[-1]
            mean = feat.sum(dim=(2, 3), dtype=wide) / count
            second = torch.linalg.vector_norm(feat, 2, dim=(2, 3), dtype=wide).square() / count
            var = (second - mean.square()).clamp_min(0)
            share = None
        else:
            w = weight.to(wide)
            share = w / w.sum(dim=(2, 3), keepdim=True).clamp_min(1e-12)
            mean = (feat * share).sum(dim=(2, 3))
            var = ((feat - mean[..., None, None]).square() * share).sum(dim=(2, 3))
        std = (var + eps).sqrt()
        ctx.save_for_backward(feat, share, mean, std)
        return mean, std

    @staticmethod
    def backward(ctx, grad_mean: torch.Tensor | None, grad_std: torch.Tensor | None):
        feat, share, mean, std = ctx.saved_tensors
        grad_mean = torch.zeros_like(mean) if grad_mean is None else grad_mean
        slope = torch.zeros_like(std) if grad_std is None else grad_std / std  # d std / d x = w (x - mean) / std
        offset = grad_mean - slope * mean
        if share is None:
            count = feat.shape[-2] * feat.shape[-1]
            offset, slope = offset / count, slope / count
        grad = torch.addcmul(offset[..., None, None].to(feat.dtype), slope[..., None, None].to(feat.dtype), feat)
        if share is not None:
            grad = grad * share.to(feat.dtype)
        return grad, None, None


def region_mean_std(feat: torch.Tensor, masks: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Statistics of every region: shapes (N, K, C) for masks (N or 1, K, H, W)
    at any resolution (area-resized to ``feat``); ``None`` is one region, the whole image. In at
    least float32 whatever ``feat``'s dtype, as :func:`masked_mean_std`."""
    if masks is None:
        mean, std = channel_mean_std(feat, dtype=torch.promote_types(feat.dtype, torch.float32))
        return mean[:, None], std[:, None]
    weights = resize_masks(masks, feat.shape[-2:])
    parts = [masked_mean_std(feat, weights[:, k:k + 1]) for k in range(weights.shape[1])]
    return torch.stack([m for m, _ in parts], dim=1), torch.stack([s for _, s in parts], dim=1)


def region_mean_cov(feat: torch.Tensor, masks: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-region mean (N, K, C) and covariance (N, K, C, C) of ``feat`` (N, C, h, w), in
    float32, masks as in :func:`region_mean_std`. The statistics of any linear projection of
    ``feat`` follow from them without computing the projection: the fast model's 64-channel
    hidden layer gives its 256-channel features' mean and std (:mod:`semstyle.nn.fold`)."""
    flat = feat.float().flatten(2)  # (N, C, P)
    weights = torch.ones_like(flat[:, :1]) if masks is None \
        else resize_masks(masks, feat.shape[-2:]).float().flatten(2)  # (N or 1, K, P)
    weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)
    means, covs = [], []
    for k in range(weights.shape[1]):
        w = weights[:, k:k + 1]  # (N or 1, 1, P)
        mean = (flat * w).sum(-1)  # (N, C)
        centred = flat - mean[..., None]
        means.append(mean)
        covs.append((centred * w) @ centred.transpose(1, 2))
    return torch.stack(means, dim=1), torch.stack(covs, dim=1)


def normalize(feat: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(feat - mean) / std with per-channel (N, C) statistics."""
    return (feat - mean[..., None, None]) / std[..., None, None]


def resize_masks(masks: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Soft masks (N, K, H, W) at another resolution by area averaging, so
    one-hot masks stay a partition of unity (they sum to 1 per pixel)."""
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    return F.interpolate(masks, size=tuple(size), mode="area")


def pooled_mean_std(parts: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and std of the union of several images' features, each image weighing alike:
    per-image (mean, std) of any same shapes -> the mixture's, E[x] and sqrt(E[x^2] - E[x]^2).
    What a collection of paintings looks like as one distribution (its spread between
    paintings included), rather than an average of summaries."""
    means = torch.stack([m for m, _ in parts])
    second = torch.stack([s.pow(2) + m.pow(2) for m, s in parts]).mean(0)
    mean = means.mean(0)
    return mean, (second - mean.pow(2)).clamp_min(EPS).sqrt()
