"""Quality metrics of the issue-4 benchmark, shared by ``quality.py``, ``gatys.py`` and the tests.

All images are float tensors (N, 3, H, W) in 0..1 (``semstyle.io.image_to_tensor``); every
metric returns one value per image, a tensor of shape (N,), so a batch and a single image
go through the same code. Only torch is needed (no scipy/scikit-image), so the unit tests run
with the plain ``test`` extra.

The four numbers, and why each is measured the way it is:

* **style distance** (:func:`style_distance`, lower is better): the relative Gram-matrix error
  ``||G_out - G_style||_F / ||G_style||_F`` averaged over ``relu1_2, relu2_2, relu3_3, relu4_3``
  of VGG16 (the last ReLU of blocks 1-4, i.e. the layers HED's side outputs use). Gram matrices
  are Gatys et al.'s definition of style, and the relative error makes the layers comparable:
  raw activations shrink by an order of magnitude from block 1 to block 4, so an absolute error
  would be all relu1_2 (colour). It is also scale-free, so the normalisation of the Gram matrix
  (here by C*H*W, as in ``semstyle.losses.gram_matrix``) and the image size do not matter.
  semstyle is trained on per-channel mean/std (AdaIN) statistics, not Gram matrices, so this is
  not its own training objective (the Gatys reference optimises it directly: see gatys.py).
* **content distance** (:func:`content_distance`, lower is better): relative feature error
  ``||F_out - F_content||_F / ||F_content||_F`` at ``relu4_2``, Gatys et al.'s content layer.
  Relative for the same scale reason. Output and content must have the same size.
* **structure preservation** (:func:`edge_f1`, :func:`structure_f1`, higher is better): F1 of
  binary edge maps of the output against those of the content photo, both from the HED edge
  detector (``semstyle.nn.hed.HEDEdgeDetector``), with a 2 px tolerance. Edge maps are made
  by **non-maximum suppression followed by a fixed threshold** (0.5 on HED's probability), see
  :func:`binary_edges` for why; the tolerance is a dilation (max-pooling) of the *other* map.
* **colour distance** (:func:`color_distance`, lower is better): Hellinger distance between the
  normalised joint 3D RGB histograms (8 bins per channel, 512 bins) of the output and the style
  image; see :func:`color_histogram` for why.

A fifth number, the **independent style distance**, is the style distance's definition (the same
:func:`gram_distance`) on an ImageNet network semstyle never trains on, EfficientNet-Lite0, so a
gain cannot be an artefact of the VGG features: see ``benchmarks/effnet.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

STYLE_LAYERS: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
"""Layers of the style distance (and of the Gatys reference's style loss)."""
CONTENT_LAYER = "relu4_2"
"""Layer of the content distance (and of the Gatys reference's content loss)."""
METRIC_TAPS: tuple[str, ...] = (*STYLE_LAYERS, CONTENT_LAYER)
"""Every VGG tap the metrics need; pass to the encoder once per image."""

EDGE_THRESHOLD = 0.5
EDGE_TOLERANCE = 2
HIST_BINS = 8

Features = Mapping[str, torch.Tensor]


# --------------------------------------------------------------------------
# Style and content distances
# --------------------------------------------------------------------------

def gram_matrix(feat: torch.Tensor) -> torch.Tensor:
    """Channel correlations (N, C, C) normalised by C*H*W: the same definition as
    ``semstyle.losses.gram_matrix`` (repeated so the metric does not change if training
    code changes; the relative error does not depend on the normalisation anyway)."""
    n, c, h, w = feat.shape
    flat = feat.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def relative_error(output: torch.Tensor, reference: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``||output - reference||_F / ||reference||_F`` per batch element, shape (N,).

    ``reference`` may have batch size 1 and is then compared with every output.
    """
    diff = (output - reference).flatten(1).norm(dim=1)
    return diff / (reference.flatten(1).norm(dim=1) + eps)


def gram_distance(output_feat: torch.Tensor, style_feat: torch.Tensor) -> torch.Tensor:
    """Relative Gram error of one layer, shape (N,). Sizes may differ (Grams are C x C)."""
    return relative_error(gram_matrix(output_feat), gram_matrix(style_feat))


def style_distance(output: Features, style: Features, layers: Sequence[str] = STYLE_LAYERS) -> torch.Tensor:
    """Relative Gram error averaged over ``layers`` (default relu1_2..relu4_3), shape (N,)."""
    if not layers:
        raise ValueError("style_distance needs at least one layer")
    return torch.stack([gram_distance(output[tap], style[tap]) for tap in layers]).mean(dim=0)


def content_distance(output: Features, content: Features, layer: str = CONTENT_LAYER) -> torch.Tensor:
    """Relative feature error at ``layer`` (default relu4_2), shape (N,).

    The output must have the content's size: the features are compared position by position.
    """
    out, ref = output[layer], content[layer]
    if out.shape[1:] != ref.shape[1:]:
        raise ValueError(f"content distance needs equal feature shapes, got {tuple(out.shape)} "
                         f"and {tuple(ref.shape)}; resize the output to the content's size")
    return relative_error(out, ref)


# --------------------------------------------------------------------------
# Edge maps and structure F1
# --------------------------------------------------------------------------

_BINOMIAL5 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _smooth(x: torch.Tensor) -> torch.Tensor:
    """Separable 5-tap binomial blur (about a Gaussian with sigma 1), replicate padding."""
    k = _BINOMIAL5.to(x)
    x = F.conv2d(F.pad(x, (2, 2, 0, 0), mode="replicate"), k.view(1, 1, 1, 5))
    return F.conv2d(F.pad(x, (0, 0, 2, 2), mode="replicate"), k.view(1, 1, 5, 1))


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """``out[y, x] = in[y + dy, x + dx]`` with replicated borders (dy, dx in -1..1)."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    h, w = x.shape[-2:]
    return padded[..., 1 + dy: 1 + dy + h, 1 + dx: 1 + dx + w]


def thin_edges(prob: torch.Tensor) -> torch.Tensor:
    """Non-maximum suppression of an edge probability map (N, 1, H, W); returns the map with
    every pixel that is not a maximum across the edge set to 0.

    HED's edges are several pixels wide, so thresholding its map directly gives thick bands,
    and thick bands make an F1 with a 2 px tolerance meaningless (any two blurry maps overlap).
    Thinning to one-pixel lines is also what HED's own BSDS evaluation does (Dollar's edge
    NMS). The direction across the edge is the eigenvector of the Hessian of the (slightly
    smoothed) map with the most negative eigenvalue: the first derivative is zero exactly on
    the ridge, so it cannot give the direction there. The direction is rounded to 0/45/90/135
    degrees and a pixel survives if it is >= one neighbour and > the other along it (the
    asymmetry keeps one of two equal pixels on a flat-topped ridge). Pure torch, so the
    metric needs no scikit-image (whose ``skeletonize`` would also do, on the thresholded map).
    """
    if prob.dim() != 4 or prob.shape[1] != 1:
        raise ValueError(f"expected an (N, 1, H, W) edge map, got {tuple(prob.shape)}")
    s = _smooth(prob)
    hxx = _shift(s, 0, 1) - 2 * s + _shift(s, 0, -1)
    hyy = _shift(s, 1, 0) - 2 * s + _shift(s, -1, 0)
    hxy = (_shift(s, 1, 1) - _shift(s, 1, -1) - _shift(s, -1, 1) + _shift(s, -1, -1)) / 4
    # angle of the eigenvector with the largest eigenvalue, plus 90 degrees = the most negative one
    normal = 0.5 * torch.atan2(2 * hxy, hxx - hyy) + math.pi / 2
    sector = torch.remainder(torch.round(normal / (math.pi / 4)), 4).long()  # 0:x 1:diag 2:y 3:anti
    keep = torch.zeros_like(prob, dtype=torch.bool)
    for index, (dy, dx) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        local = (prob >= _shift(prob, dy, dx)) & (prob > _shift(prob, -dy, -dx))
        keep |= (sector == index) & local
    return prob * keep


def binary_edges(prob: torch.Tensor, threshold: float = EDGE_THRESHOLD, thin: bool = True) -> torch.Tensor:
    """Binary edge map (N, 1, H, W, bool) from HED probabilities.

    With ``thin`` (the default): non-maximum suppression (:func:`thin_edges`), then a fixed
    threshold. Without: a plain threshold (thick edges; only for comparison). The threshold is
    fixed (0.5, HED's own decision boundary) rather than tuned per image (BSDS's ODS/OIS), so
    an output whose edges are weaker than the photo's loses recall, which is what structure
    preservation should penalise.
    """
    return (thin_edges(prob) if thin else prob) >= threshold


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Binary dilation with a (2r+1) x (2r+1) square (Chebyshev distance <= r), via max-pooling."""
    if radius <= 0:
        return mask.bool()
    return F.max_pool2d(mask.float(), 2 * radius + 1, stride=1, padding=radius) > 0


def edge_f1(pred: torch.Tensor, ref: torch.Tensor, tolerance: int = EDGE_TOLERANCE) -> dict[str, torch.Tensor]:
    """Precision, recall and F1 of binary edge maps (N, 1, H, W) with a pixel tolerance.

    precision = share of ``pred`` edge pixels within ``tolerance`` px of a ``ref`` edge pixel
    (``pred & dilate(ref)``); recall = share of ``ref`` edge pixels within ``tolerance`` of a
    ``pred`` pixel (``ref & dilate(pred)``). The neighbourhood is a square (Chebyshev distance),
    and a pixel may match several pixels of the other map: simpler and a little more lenient
    than BSDS's one-to-one matching, applied the same way in both directions. Two empty
    maps give F1 = 1 (nothing to miss); one empty map gives 0.
    """
    if pred.shape != ref.shape:
        raise ValueError(f"edge maps differ in shape: {tuple(pred.shape)} vs {tuple(ref.shape)}")
    pred, ref = pred.bool(), ref.bool()
    n_pred = pred.flatten(1).sum(1).float()
    n_ref = ref.flatten(1).sum(1).float()
    hit_pred = (pred & dilate(ref, tolerance)).flatten(1).sum(1).float()
    hit_ref = (ref & dilate(pred, tolerance)).flatten(1).sum(1).float()
    precision = torch.where(n_pred > 0, hit_pred / n_pred.clamp(min=1), (n_ref == 0).float())
    recall = torch.where(n_ref > 0, hit_ref / n_ref.clamp(min=1), (n_pred == 0).float())
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(denom))
    return {"precision": precision, "recall": recall, "f1": f1}


@torch.no_grad()
def structure_f1(detector: torch.nn.Module, output: torch.Tensor, content: torch.Tensor,
                 tolerance: int = EDGE_TOLERANCE, threshold: float = EDGE_THRESHOLD,
                 thin: bool = True) -> dict[str, torch.Tensor]:
    """Edge F1 of ``output`` (prediction) against ``content`` (reference), same size, with HED
    edge maps from ``detector`` (a ``semstyle.nn.hed.HEDEdgeDetector``)."""
    if output.shape[-2:] != content.shape[-2:]:
        raise ValueError("structure F1 needs the output at the content's size")
    pred = binary_edges(detector(output), threshold, thin)
    ref = binary_edges(detector(content), threshold, thin)
    return edge_f1(pred, ref, tolerance)


# --------------------------------------------------------------------------
# Colour
# --------------------------------------------------------------------------

def color_histogram(image: torch.Tensor, bins: int = HIST_BINS) -> torch.Tensor:
    """Normalised joint RGB histogram, (N, bins**3), summing to 1 per image.

    Joint 3D rather than per channel: per-channel histograms cannot tell a red-and-green image
    from a yellow-and-black one, and a painting's palette is a set of colours, not three
    independent channels. 8 bins per channel (32 levels wide) keeps 512 bins, few enough that a
    few hundred thousand pixels fill them well and that small tone shifts (JPEG, resampling)
    stay inside a bin.
    """
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected an (N, 3, H, W) image, got {tuple(image.shape)}")
    q = (image.clamp(0, 1) * bins).floor().clamp(max=bins - 1).long()
    index = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    flat = index.flatten(1)
    hist = torch.zeros(image.shape[0], bins ** 3, dtype=torch.float64, device=image.device)
    hist.scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float64))
    return hist / hist.sum(dim=1, keepdim=True)


def hellinger(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Hellinger distance ``sqrt(1 - sum(sqrt(p q)))`` of normalised histograms, in 0..1."""
    bc = (p * q).sqrt().sum(dim=-1)
    return (1.0 - bc).clamp(min=0.0).sqrt()


def color_distance(output: torch.Tensor, style: torch.Tensor, bins: int = HIST_BINS) -> torch.Tensor:
    """Hellinger distance between the RGB histograms of ``output`` and ``style``, (N,), in 0..1.

    Hellinger rather than chi-square or EMD: bounded (0 = same palette, 1 = no colour in
    common), symmetric, and defined for empty bins, which chi-square divides by and which are
    the norm for 512-bin histograms of paintings with a few colours; a 3D Earth mover's
    distance would be more perceptual but needs an optimal-transport solver (a dependency,
    and slow at 512 bins). Sizes may differ: histograms are normalised.
    """
    return hellinger(color_histogram(output, bins), color_histogram(style, bins)).float()
