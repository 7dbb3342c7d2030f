"""Per-region style vectors and FiLM: how a style vector reaches a decoder's feature maps.

Shared by both decoders (:class:`semstyle.nn.generator.Decoder`, VGG's mirror, and
:class:`semstyle.nn.light.LightDecoder`, the fast model's).
"""

from __future__ import annotations

import torch
from torch import nn

from .stats import resize_masks


def per_region(values: torch.Tensor) -> torch.Tensor:
    """(N, D) -> (N, 1, D); (N, K, D) stays: every per-region tensor has a K axis."""
    return values[:, None] if values.dim() == 2 else values


def blend_regions(per_pixel: list[torch.Tensor], weights: torch.Tensor | None) -> torch.Tensor:
    """Sum of K same-shape maps weighted by (N, K, h, w) masks; the one map itself when K = 1 without masks."""
    if weights is None:
        return per_pixel[0]
    out = torch.zeros_like(per_pixel[0])
    for k, part in enumerate(per_pixel):
        out = out + weights[:, k:k + 1] * part
    return out


class FeatureModulation(nn.Module):
    """FiLM inside the decoder: scale and shift per channel from the style vector.

    Lets the style reach the decoder's fine layers (brush strokes, colours)
    rather than only the bottleneck. Starts as the identity. With regions the
    scale and shift are per pixel, the mask-weighted mix of each region's (a
    linear mix, so it equals blending the regions' modulated feature maps).
    ``scale=False`` keeps the shift alone (the fast model's decoder): a style-driven
    bias cannot multiply the signal away, which full FiLM did while it was distilled.
    """

    def __init__(self, style_dim: int, channels: int, scale: bool = True):
        super().__init__()
        self.scaled = scale
        self.affine = nn.Linear(style_dim, (2 if scale else 1) * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def _scale_shift(self, styles: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The style vectors' per-region scale offset (None without ``scale``) and shift, (N, K, C) each."""
        params = self.affine(per_region(styles).to(self.affine.weight.dtype))
        return params.chunk(2, dim=-1) if self.scaled else (None, params)

    def channel_affine(self, styles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The modulation of one image's one style vector (1, D) or (1, 1, D) as a per-channel
        ``(scale, shift)``, (C,) each, float32: what :func:`semstyle.nn.fold.conv_after_affine`
        folds into the next convolution."""
        scale, shift = self._scale_shift(styles)
        shift = shift[0, 0].float()
        return (torch.ones_like(shift) if scale is None else 1 + scale[0, 0].float()), shift

    def forward(self, x: torch.Tensor, styles: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """``styles`` (N, D) or (N, K, D); ``masks`` (N, K, H, W) at any resolution, or None for K = 1."""
        scale, shift = self._scale_shift(styles)
        if masks is None:
            shift = shift[:, 0, :, None, None].to(x.dtype)
            if scale is None:
                return x + shift
            return torch.addcmul(shift, x, 1 + scale[:, 0, :, None, None].to(x.dtype))  # one pass, not two
        w = resize_masks(masks, x.shape[-2:]).to(x.dtype)
        shifted = torch.einsum("nkc,nkhw->nchw", shift, w)
        return shifted + (x if scale is None else x * (1 + torch.einsum("nkc,nkhw->nchw", scale, w)))
