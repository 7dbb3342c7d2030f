"""The discriminator: multi-scale PatchGAN, spectral-normalised, optionally a projection discriminator."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..config import ModelConfig


class PatchDiscriminator(nn.Module):
    """PatchGAN: one real/fake logit per overlapping patch, spectral-normalised
    for stable training. Optionally a projection discriminator: the style
    vector is projected onto the last features, so D judges "a real painting
    *in this style*" rather than any painting."""

    def __init__(self, channels: int = 64, style_dim: int | None = None):
        super().__init__()
        c = channels
        self.body = nn.Sequential(
            spectral_norm(nn.Conv2d(3, c, 4, 2, 1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(c, 2 * c, 4, 2, 1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * c, 4 * c, 4, 2, 1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(4 * c, 4 * c, 3, 1, 1)), nn.LeakyReLU(0.2),
        )
        self.head = spectral_norm(nn.Conv2d(4 * c, 1, 3, 1, 1))
        self.projection = spectral_norm(nn.Linear(style_dim, 4 * c)) if style_dim else None

    def forward(self, image: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        h = self.body(image * 2 - 1)
        logits = self.head(h)
        if self.projection is not None and style is not None:
            logits = logits + (h * self.projection(style)[..., None, None]).sum(1, keepdim=True)
        return logits


class MultiScaleDiscriminator(nn.Module):
    """PatchGANs at full, 1/2, 1/4 ... resolution: fine ones judge brush
    texture, coarse ones judge larger colour and shape patterns."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        style_dim = config.style_dim if config.disc_conditional else None
        self.scales = nn.ModuleList(
            [PatchDiscriminator(config.disc_channels, style_dim) for _ in range(config.disc_scales)]
        )

    def forward(self, image: torch.Tensor, style: torch.Tensor | None = None) -> list[torch.Tensor]:
        outputs = []
        for i, disc in enumerate(self.scales):
            if i > 0:
                image = F.avg_pool2d(image, 3, stride=2, padding=1, count_include_pad=False)
            outputs.append(disc(image, style))
        return outputs
