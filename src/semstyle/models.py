"""The trainable networks: style encoder, style injection, generator, discriminator.

Data flow (see the README's diagram)::

    style image --VGG--> features --StyleEncoder--> style vector (ModelConfig.style_dim)
    content image --VGG--> relu4_1 --StyleInjection(vector)--> Decoder(vector) --> image
    image (+ style vector) --MultiScaleDiscriminator--> real/fake logits per patch

Everything that changes the look of the image flows through the style vector,
so strength and multi-style blending are plain interpolation of vectors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .config import ModelConfig

VGG_CHANNELS = {"relu1": 64, "relu2": 128, "relu3": 256, "relu4": 512, "relu5": 512}


def tap_channels(tap: str) -> int:
    """Channel count of a VGG tap such as ``relu3_1``."""
    return VGG_CHANNELS[tap.split("_")[0]]


def channel_mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image, per-channel mean and standard deviation, shapes (N, C).

    These first and second moments are what AdaIN calls "style".
    """
    flat = feat.flatten(2)
    mean = flat.mean(dim=2)
    std = (flat.var(dim=2, unbiased=False) + eps).sqrt()
    return mean, std


class StyleEncoder(nn.Module):
    """VGG features of a style image -> one style vector.

    Input is the per-channel mean and std at several VGG layers (log-scaled,
    since they span orders of magnitude); an MLP compresses them into a
    fixed-size vector that a user can blend, store and inject anywhere.
    """

    def __init__(self, layers: tuple[str, ...], style_dim: int):
        super().__init__()
        self.layers = layers
        in_dim = 2 * sum(tap_channels(t) for t in layers)
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, 1024), nn.LeakyReLU(0.2),
            nn.Linear(1024, style_dim),
        )

    def forward(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.from_stats([channel_mean_std(feats[tap].float()) for tap in self.layers])

    def from_stats(self, stats: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """The vector from per-layer (mean, std) pairs, in ``self.layers`` order;
        lets callers supply statistics of their own, e.g. of one masked region."""
        flat = []
        for mean, std in stats:
            flat += [torch.log1p(mean), torch.log(std)]
        return self.mlp(torch.cat(flat, dim=1))


class StyleInjection(nn.Module):
    """AdaIN driven by the style vector.

    The content features are instance-normalised (removing the photo's own
    feature statistics) and then given the mean and std that the style vector
    predicts. Zero-initialised weights start every channel at mean 0, std 1;
    training's style-code loss (``losses.style_code_loss``) then teaches the
    vector to carry the style's own statistics, so injection behaves like
    AdaIN from early on.
    """

    def __init__(self, style_dim: int, channels: int):
        super().__init__()
        self.affine = nn.Linear(style_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def target_stats(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-channel (mean, std) this style vector asks for, shapes (N, C)."""
        log_std, new_mean = self.affine(style).float().chunk(2, dim=1)
        return new_mean, log_std.clamp(-8.0, 8.0).exp()

    def forward(self, feat: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.renormalize(feat, *self.target_stats(style))

    @staticmethod
    def renormalize(feat: torch.Tensor, new_mean: torch.Tensor, new_std: torch.Tensor) -> torch.Tensor:
        """AdaIN with given target statistics (N, C): training reuses the
        statistics it also puts into the style-code loss."""
        mean, std = channel_mean_std(feat)
        normalized = (feat - mean[..., None, None]) / std[..., None, None]
        return normalized * new_std[..., None, None] + new_mean[..., None, None]


class FeatureModulation(nn.Module):
    """FiLM inside the decoder: scale and shift per channel from the style vector.

    Lets the style reach the decoder's fine layers (brush strokes, colours)
    rather than only the bottleneck. Starts as the identity.
    """

    def __init__(self, style_dim: int, channels: int):
        super().__init__()
        self.affine = nn.Linear(style_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        scale, shift = self.affine(style).chunk(2, dim=1)
        return x * (1 + scale[..., None, None]) + shift[..., None, None]


def _conv(in_ch: int, out_ch: int) -> nn.Sequential:
    """3x3 conv with reflection padding: no zero borders for the eye to see."""
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(in_ch, out_ch, 3))


class Decoder(nn.Module):
    """Mirror of VGG up to the injection layer (relu4_1 or relu3_1): nearest
    upsampling + conv, never transposed convolutions, whose uneven overlap
    draws checkerboards. The first conv of each resolution is modulated by
    the style vector."""

    def __init__(self, style_dim: int, width: int = 256, modulate: bool = True, in_channels: int = 512,
                 level: int = 4):
        super().__init__()
        w1, w2, w4 = width, width // 2, width // 4
        if level == 4:
            plan = [[(in_channels, w1)], [(w1, w1), (w1, w1), (w1, w1), (w1, w2)], [(w2, w2), (w2, w4)], [(w4, w4)]]
        elif level == 3:
            plan = [[(in_channels, w2)], [(w2, w2), (w2, w4)], [(w4, w4)]]
        else:
            raise ValueError(f"the decoder supports injection at relu3_1 or relu4_1, not level {level}")
        self.stages = nn.ModuleList([nn.ModuleList([_conv(i, o) for i, o in stage]) for stage in plan])
        self.modulations = nn.ModuleList(
            [FeatureModulation(style_dim, stage[0][1]) for stage in plan] if modulate else []
        )
        self.to_rgb = _conv(w4, 3)

    def forward(self, feat: torch.Tensor, style: torch.Tensor,
                modulate: Callable[[int, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """``modulate(stage, x)`` replaces the FiLM of each stage when given
        (region-wise styles in :mod:`semstyle.semantic` use it)."""
        x = feat
        for i, convs in enumerate(self.stages):
            if i > 0:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            for j, conv in enumerate(convs):
                x = F.relu(conv(x))
                if j == 0 and self.modulations:
                    x = modulate(i, x) if modulate else self.modulations[i](x, style)
        return self.to_rgb(x)


class Generator(nn.Module):
    """Style encoder + injection + decoder: content features and a style vector in,
    an RGB image (about 0..1, unclamped during training) out.

    The frozen VGG encoder is kept outside, so checkpoints hold only what
    training changes and any VGG-compatible encoder can feed it.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.style_encoder = StyleEncoder(config.style_layers, config.style_dim)
        self.injection = StyleInjection(config.style_dim, tap_channels(config.content_layer))
        self.decoder = Decoder(config.style_dim, config.decoder_width, config.modulate_decoder,
                               tap_channels(config.content_layer), level=int(config.content_layer[4]))

    def style_vector(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.style_encoder(feats)

    def inject(self, content_feat: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Content features re-styled by the vector (the decoder's input)."""
        return self.injection(content_feat, style)

    def forward(self, content_feat: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.inject(content_feat, style), style)


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
