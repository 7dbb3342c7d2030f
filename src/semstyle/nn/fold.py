"""The fast model's injection folded into its neighbours: exact, and most of a frame's time saved.

In the fast model, three linear steps sit between the light encoder's last hidden layer ``h``
(64 channels at a quarter of the size) and the light decoder's first ReLU: the encoder's 1x1
projection to 256 relu3_1-like channels, the injection (AdaIN: per channel, a scale and a shift
once the statistics are known) and the decoder's 1x1 entry back to 64 channels. Written as
they are trained, they make and walk a 256-channel map four times (projection, statistics,
AdaIN, entry), 60% of the fast model's time at 1024 px for 10% of its arithmetic. Their
product is one 64 -> 64 1x1 convolution per image and region:

    x = g_e (W1 h + b1)                  the features (LightEncoder: projection, output_gain)
    x' = a * x + c                       AdaIN (StyleInjection.adain_affine)
    entry = W2 (g_d x') + b2             LightDecoder.entry, input_gain
          = [g_e g_d W2 diag(a) W1] h + [W2 g_d (g_e a * b1 + c) + b2]

and the statistics AdaIN needs follow from h's own mean and covariance: mean(x) = g_e (W1 mu
+ b1), var(x)_c = g_e^2 w_c' Sigma w_c. Regions blend their entries by their masks, as the
unfolded path blends its AdaIN results. :meth:`semstyle.nn.generator.Generator.run` takes
this path whenever the features carry the hidden layer (``inference_tap``); training reads
the features themselves, which its losses need.

The default model's decoder folds the same way (:func:`conv_after_affine`): AdaIN and each
FiLM are a scale and a shift per channel, which nearest upsampling and reflection padding
commute with, so each one becomes the weights and bias of the next 3x3 convolution instead of a
pass over the largest feature maps (four at 1024 px: relu3_1's 256 channels and three FiLMs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .light import LightDecoder, LightEncoder
from .modulation import blend_regions
from .resample import upsample2x_reflect_pad
from .stats import EPS, region_mean_cov

ChannelAffine = tuple[torch.Tensor, torch.Tensor]
"""A per-channel ``x * scale + shift`` not yet applied: (C,) each, float32."""


def conv_after_affine(padded_conv: nn.Sequential, x: torch.Tensor, affine: ChannelAffine | None,
                      upsample: bool = False) -> torch.Tensor:
    """``padded_conv`` (a 1-pixel ReflectionPad2d and a Conv2d) of ``x * scale + shift`` without
    making that map: ``W' = W * scale`` per input channel and ``b' = b + sum(W) . shift``. Exact up
    to rounding because the pad only copies values, each channel's own. ``affine`` None: the plain
    convolution. ``upsample``: of ``x`` upsampled 2x (nearest) first, fused with the pad
    (:func:`semstyle.nn.resample.upsample2x_reflect_pad`; nearest upsampling copies values too)."""
    pad, conv = padded_conv
    x = upsample2x_reflect_pad(x) if upsample else pad(x)
    if affine is None:
        return conv(x)
    scale, shift = affine
    weight = conv.weight.float()
    folded_weight = (weight * scale[None, :, None, None]).to(conv.weight.dtype)
    folded_bias = conv.bias.float() + weight.sum(dim=(2, 3)) @ shift
    return F.conv2d(x, folded_weight, folded_bias.to(conv.bias.dtype))


def _matrix(conv: torch.nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """A 1x1 convolution as a float32 matrix (out, in) and bias (out,)."""
    return conv.weight.float()[:, :, 0, 0], conv.bias.float()


def projected_stats(hidden: torch.Tensor, encoder: LightEncoder,
                    masks: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-region (mean, std), (N, K, C) each, of ``encoder``'s features, from its hidden layer
    alone; as :func:`~semstyle.nn.stats.region_mean_std` of the features, up to rounding."""
    mean_h, cov_h = region_mean_cov(hidden, masks)
    weight, bias = _matrix(encoder.projection)  # (C, Ch), (C,)
    gain = encoder.output_gain
    mean = gain * (mean_h @ weight.T + bias)
    var = gain ** 2 * torch.einsum("ch,nkhg,cg->nkc", weight, cov_h, weight)
    return mean, (var.clamp_min(0) + EPS).sqrt()


def folded_entry(hidden: torch.Tensor, encoder: LightEncoder, decoder: LightDecoder, scale: torch.Tensor,
                 shift: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """``decoder.entry`` of the injected features, from the hidden layer (N, Ch, h, w): AdaIN's
    per-region ``scale`` and ``shift`` (N, K, C), ``weights`` the regions' masks at (h, w) or
    None for one region. Returns (N, O, h, w) in ``hidden``'s dtype."""
    w1, b1 = _matrix(encoder.projection)  # (C, Ch), (C,)
    w2, b2 = _matrix(decoder.entry)  # (O, C), (O,)
    g_e, g_d = encoder.output_gain, decoder.input_gain
    kernels = torch.einsum("oc,nkc,ch->nkoh", w2, scale, w1) * (g_e * g_d)  # (N, K, O, Ch)
    biases = (g_d * (g_e * scale * b1 + shift)) @ w2.T + b2  # (N, K, O)
    images = []
    for n in range(hidden.shape[0]):
        parts = [F.conv2d(hidden[n:n + 1], kernels[n, k, :, :, None, None].to(hidden.dtype),
                          biases[n, k].to(hidden.dtype)) for k in range(kernels.shape[1])]
        images.append(blend_regions(parts, None if weights is None else weights[n:n + 1].to(hidden.dtype)))
    return torch.cat(images)
