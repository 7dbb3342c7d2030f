"""Gatys et al. (2016) optimisation-based style transfer: the quality reference of issue 4.

Instead of a network that predicts the stylized image in one pass, the image itself is
optimised so that its VGG16 Gram matrices match the style image's and its relu4_2 features
match the content photo's. It is slow (hundreds of VGG forward/backward passes per image), but
it is the classic upper reference for "how far can these features be pushed": a feed-forward
model should get close to it on the style and content distances of ``metrics.py``.

Choices, and why:

* **Same features as the metrics**: the VGG16 of ``semstyle.weights.load_encoder()``,
  style layers relu1_2, relu2_2, relu3_3, relu4_3 and content layer relu4_2
  (``metrics.STYLE_LAYERS`` / ``metrics.CONTENT_LAYER``). The losses are the *squares* of the
  metrics' relative errors (smooth at zero, layer-balanced, size-free). Gatys therefore
  optimises exactly what ``quality.py`` measures: read its style/content distances as an
  attainable target, not as a fair competitor; its edge F1 and colour distance are not optimised.
* **L-BFGS** with ``line_search_fn="strong_wolfe"``: the optimiser of the original paper and of
  most reference implementations; on this smooth, deterministic, full-batch objective it needs
  far fewer steps than Adam. ``steps`` is L-BFGS *iterations* (``max_iter``); the number of
  function evaluations (the line search may take several per iteration) is capped at 4x that
  and both counts are reported. The tolerances are 0 so that it always runs the full budget
  unless the line search cannot make progress.
* **Contiguous image tensor** as the single parameter: ``torch.optim.LBFGS`` flattens its
  parameters with ``view(-1)``, which a non-contiguous tensor (e.g. a permuted numpy image)
  does not allow.
* **Initialised from the content photo** (not noise): deterministic, converges in fewer steps,
  and the standard choice of modern implementations; the content weight then mostly decides
  how far the optimisation may drift from the photo.
* **No clamping during the optimisation**: clamping inside the closure would fight the
  strong-Wolfe line search (it evaluates trial points and restores the parameters), so the
  pixels are free and the result is clamped to 0..1 once at the end (jcjohnson/neural-style
  does the same).
* **Weights**: content 1, style 10 (:data:`DEFAULT_STYLE_WEIGHT`). With relative squared
  errors both terms start on the same scale (content 0, style about 1 from a photo), and a
  style weight of 10 pushes the style error down by an order of magnitude while the content
  error stays well below 1. ``quality.py --gatys-style-weight`` changes it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from .metrics import CONTENT_LAYER, STYLE_LAYERS, gram_matrix

DEFAULT_STEPS = 300
DEFAULT_STYLE_WEIGHT = 10.0
DEFAULT_CONTENT_WEIGHT = 1.0


@dataclass
class GatysResult:
    """The optimised image (1, 3, H, W) in 0..1 and how the optimisation went."""

    image: torch.Tensor
    iterations: int
    evaluations: int
    seconds: float
    style_loss: list[float] = field(default_factory=list)
    """Style term (mean squared relative Gram error) at every function evaluation."""
    content_loss: list[float] = field(default_factory=list)
    """Content term (squared relative relu4_2 error) at every function evaluation."""


class GatysLoss:
    """``style_weight * mean_l rel_gram_err_l(x)^2 + content_weight * rel_feat_err(x)^2``.

    Targets (style Grams, content features and their norms) are computed once.
    """

    def __init__(self, encoder: torch.nn.Module, content: torch.Tensor, style: torch.Tensor,
                 style_weight: float = DEFAULT_STYLE_WEIGHT, content_weight: float = DEFAULT_CONTENT_WEIGHT,
                 style_layers: Sequence[str] = STYLE_LAYERS, content_layer: str = CONTENT_LAYER):
        self.encoder = encoder
        self.style_layers = tuple(style_layers)
        self.content_layer = content_layer
        self.taps = tuple(dict.fromkeys((*self.style_layers, content_layer)))
        self.style_weight, self.content_weight = float(style_weight), float(content_weight)
        with torch.no_grad():
            style_feats = encoder(style, self.style_layers)
            self.style_grams = {t: gram_matrix(style_feats[t]) for t in self.style_layers}
            self.style_norms = {t: g.pow(2).sum() for t, g in self.style_grams.items()}
            self.content_feat = encoder(content, (content_layer,))[content_layer]
            self.content_norm = self.content_feat.pow(2).sum()

    def terms(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(style term, content term) for ``image`` (1, 3, H, W), differentiable."""
        feats = self.encoder(image, self.taps)
        style = torch.stack([
            (gram_matrix(feats[t]) - self.style_grams[t]).pow(2).sum() / (self.style_norms[t] + 1e-24)
            for t in self.style_layers]).mean()
        content = (feats[self.content_layer] - self.content_feat).pow(2).sum() / (self.content_norm + 1e-24)
        return style, content

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        style, content = self.terms(image)
        return self.style_weight * style + self.content_weight * content


def stylize(content: torch.Tensor, style: torch.Tensor, encoder: torch.nn.Module, *,
            steps: int = DEFAULT_STEPS, style_weight: float = DEFAULT_STYLE_WEIGHT,
            content_weight: float = DEFAULT_CONTENT_WEIGHT, history_size: int = 100) -> GatysResult:
    """Optimise an image (initialised from ``content``, (1, 3, H, W) in 0..1) with L-BFGS.

    ``style`` may have another size than ``content``. ``encoder`` is a frozen
    ``semstyle.vgg.VGGEncoder`` on the device of the images.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    start = time.perf_counter()
    loss_fn = GatysLoss(encoder, content, style, style_weight, content_weight)
    # a fresh contiguous leaf tensor: LBFGS flattens its parameters with view(-1)
    image = content.detach().clone().contiguous().requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], lr=1.0, max_iter=steps, max_eval=4 * steps,
                                  tolerance_grad=0.0, tolerance_change=0.0,
                                  history_size=history_size, line_search_fn="strong_wolfe")
    style_hist: list[float] = []
    content_hist: list[float] = []

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        style_term, content_term = loss_fn.terms(image)
        loss = loss_fn.style_weight * style_term + loss_fn.content_weight * content_term
        loss.backward()
        style_hist.append(style_term.item())
        content_hist.append(content_term.item())
        return loss

    optimizer.step(closure)  # one call runs up to max_iter iterations
    state = optimizer.state[image]
    return GatysResult(image=image.detach().clamp(0, 1), iterations=int(state.get("n_iter", 0)),
                       evaluations=int(state.get("func_evals", len(style_hist))),
                       seconds=time.perf_counter() - start,
                       style_loss=style_hist, content_loss=content_hist)
