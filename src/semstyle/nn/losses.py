"""Every loss term, one function each.

Generator: content (``injected_content_loss`` by default, or
``content_loss`` against the photo) + ``style_loss`` +
``generator_adversarial_loss`` (+ ``style_code_loss``, ``identity_loss``,
``total_variation``, ``temporal_loss``). Discriminator:
``discriminator_adversarial_loss`` (+ ``r1_penalty``). Feature dictionaries
map VGG tap names (``relu4_1``) to tensors.

Adversarial kinds:

* ``bce`` (default) is the standard GAN objective
  min_G max_D E[log D(x)] + E[log(1 - D(G(z)))]: D minimises
  -log D(x) - log(1 - D(G(z))), G minimises log(1 - D(G(z))).
* ``nonsat`` keeps D's loss and lets G minimise -log D(G(z)) instead, which
  has strong gradients when D easily rejects G's images.
* ``hinge``: D minimises relu(1 - D(x)) + relu(1 + D(G(z))), G minimises -D(G(z)).

D outputs logits; D(x) above means sigmoid(logit). Multi-scale outputs are
averaged over patches and over scales.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from .stats import channel_mean_std, normalize

ADVERSARIAL_KINDS = ("bce", "nonsat", "hinge")
STYLE_KINDS = ("mean_std", "gram", "both")

Features = Mapping[str, torch.Tensor]


def instance_normalized(feat: torch.Tensor) -> torch.Tensor:
    """Features with each channel at mean 0, std 1 (instance normalisation)."""
    return normalize(feat, *channel_mean_std(feat))


def content_loss(output: Features, content: Features, layers: Sequence[str], normalize: bool = True) -> torch.Tensor:
    """Mean squared distance of VGG features of the output and the content.

    With ``normalize`` both sides are instance-normalised first, so the loss
    asks for the same *structure* and leaves feature statistics (the style)
    free to change.
    """
    total = output[layers[0]].new_zeros(())
    for tap in layers:
        out, ref = output[tap], content[tap]
        if normalize:
            out, ref = instance_normalized(out), instance_normalized(ref)
        total = total + F.mse_loss(out, ref)
    return total


def relative_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error relative to the (detached) target's mean square, so that features of
    any scale weigh alike."""
    target = target.detach()
    return F.mse_loss(output, target) / (target.pow(2).mean() + 1e-8)


def injected_content_loss(output_feat: torch.Tensor, injected: torch.Tensor) -> torch.Tensor:
    """AdaIN's content loss: the output's VGG features should equal the
    injected features the decoder was given (a detached target), relative to
    the target's mean square so the term does not depend on feature scale."""
    return relative_mse(output_feat, injected)


def style_code_loss(pred_mean: torch.Tensor, pred_std: torch.Tensor, style_feat: torch.Tensor) -> torch.Tensor:
    """How well the style vector encodes the style's own feature statistics.

    ``pred_mean``/``pred_std`` are what the injection derives from the style
    vector; the targets are the style image's per-channel mean and std at the
    injection layer. Mean error is relative to the mean square of the std;
    std error is taken in log space (stds span orders of magnitude).
    """
    mean, std = channel_mean_std(style_feat.detach())
    scale = std.pow(2).mean() + 1e-8
    return F.mse_loss(pred_mean, mean) / scale + F.mse_loss(pred_std.log(), std.log())


def mean_std_style_loss(output: Features, style: Features, layers: Sequence[str]) -> torch.Tensor:
    """AdaIN's style loss, made relative per layer.

    For each layer: (MSE of per-channel means + MSE of per-channel stds)
    divided by the mean squared std of the style features. Raw VGG
    activations shrink by ~10x from relu1_1 to relu4_1, so without the
    division the colour statistics of relu1_1 would drown the texture layers.
    """
    total = output[layers[0]].new_zeros(())
    for tap in layers:
        out_mean, out_std = channel_mean_std(output[tap])
        ref_mean, ref_std = channel_mean_std(style[tap])
        scale = ref_std.detach().pow(2).mean() + 1e-8
        total = total + (F.mse_loss(out_mean, ref_mean) + F.mse_loss(out_std, ref_std)) / scale
    return total


def gram_matrix(feat: torch.Tensor) -> torch.Tensor:
    """Channel correlations (N, C, C), normalised by C*H*W (Gatys et al.)."""
    n, c, h, w = feat.shape
    flat = feat.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def gram_style_loss(output: Features, style: Features, layers: Sequence[str]) -> torch.Tensor:
    """Sum over layers of the relative Gram error ||G_out - G_style||^2 / ||G_style||^2
    (relative for the same reason as :func:`mean_std_style_loss`)."""
    total = output[layers[0]].new_zeros(())
    for tap in layers:
        out_gram, ref_gram = gram_matrix(output[tap]), gram_matrix(style[tap])
        scale = ref_gram.detach().pow(2).mean() + 1e-12
        total = total + F.mse_loss(out_gram, ref_gram) / scale
    return total


def style_loss(output: Features, style: Features, layers: Sequence[str], kind: str = "mean_std") -> torch.Tensor:
    if kind == "mean_std":
        return mean_std_style_loss(output, style, layers)
    if kind == "gram":
        return gram_style_loss(output, style, layers)
    if kind == "both":
        return mean_std_style_loss(output, style, layers) + gram_style_loss(output, style, layers)
    raise ValueError(f"unknown style loss kind {kind!r}; choose one of {STYLE_KINDS}")


def _check_kind(kind: str) -> None:
    if kind not in ADVERSARIAL_KINDS:
        raise ValueError(f"unknown adversarial loss {kind!r}; choose one of {ADVERSARIAL_KINDS}")


def discriminator_adversarial_loss(real: Sequence[torch.Tensor], fake: Sequence[torch.Tensor],
                                   kind: str = "bce") -> torch.Tensor:
    """D's loss on real-painting logits and generated-image logits (lists over scales)."""
    _check_kind(kind)
    terms = []
    for r, f in zip(real, fake):
        if kind == "hinge":
            terms.append(F.relu(1 - r).mean() + F.relu(1 + f).mean())
        else:  # -log sigmoid(r) - log(1 - sigmoid(f))
            terms.append(F.softplus(-r).mean() + F.softplus(f).mean())
    return torch.stack(terms).mean()


def generator_adversarial_loss(fake: Sequence[torch.Tensor], kind: str = "bce") -> torch.Tensor:
    """G's loss on the logits D gives its images (lists over scales)."""
    _check_kind(kind)
    terms = []
    for f in fake:
        if kind == "bce":  # log(1 - sigmoid(f)) = -softplus(f)
            terms.append(-F.softplus(f).mean())
        elif kind == "nonsat":  # -log sigmoid(f)
            terms.append(F.softplus(-f).mean())
        else:
            terms.append(-f.mean())
    return torch.stack(terms).mean()


def r1_penalty(real_logits: Sequence[torch.Tensor], real_images: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): mean over images of ||d D(x) / d x||^2 on
    real data; ``real_images`` must require grad. Multiply by gamma/2 outside."""
    total = sum(logits.sum() for logits in real_logits)
    (grad,) = torch.autograd.grad(total, real_images, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbouring pixels: penalises speckle noise."""
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean()
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean()
    return dx + dy


def identity_loss(reconstruction: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """L1 between the content and its stylization with its own style vector.

    Teaches the generator that strength 0 gives back the photo and speeds up
    learning to decode VGG features.
    """
    return F.l1_loss(reconstruction, content)


def temporal_loss(of_warped: torch.Tensor, warped_of: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of G(warp(x)) and warp(G(x)) where the warp is defined
    (``valid`` (N, 1, H, W)): the generator must commute with small motions."""
    squared = (of_warped - warped_of).pow(2) * valid
    return squared.sum() / (valid.sum() * of_warped.shape[1]).clamp_min(1.0)
