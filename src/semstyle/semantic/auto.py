"""Automatic regions: cluster deep VGG features of both images, pair the clusters across them.

Without label maps, both images are segmented by k-means over smoothed
relu3_1 + relu4_1 features (each standardised over its image, so a painting's
colour cast does not split it from a photo); the clusters are paired one to
one by feature similarity and position, and the pairs then act as labels.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..nn.stats import channel_mean_std, normalize
from ..pipeline.options import MAX_AUTO_REGIONS, check_count
from ..pipeline.palette import DPST_PALETTE
from ..pipeline.prepare import pad_for_network

AUTO_REGION_LAYERS = ("relu3_1", "relu4_1")
"""Features clustered into regions: relu4_1 for what a region is, relu3_1 for
its texture, both at relu4_1's resolution (1/8 of the image)."""

AUTO_REGION_SMOOTHING = 2
"""3x3 box-filter passes over the features before clustering, so that regions
are spatially coherent rather than speckled."""

AUTO_PLACE_WEIGHT = 1.0
"""How much where a region sits counts against what it looks like when
pairing regions across images (see :func:`match_clusters`)."""

@dataclass
class AutoLabels:
    """Label maps found by :func:`auto_label_maps`, in the colour-coded format
    that ``labels=`` takes: content pixels of a colour take the style of the
    style pixels of that colour."""

    content_labels: np.ndarray  # (H, W) label indices, at the content's (resized) size
    style_labels: np.ndarray    # (H', W') label indices, at the style's (resized) size
    palette: np.ndarray         # (K, 3) uint8, one colour per matched pair of clusters
    similarity: np.ndarray      # (K,) cosine similarity of each matched pair's cluster centres

    @property
    def content(self) -> np.ndarray:
        """The content's label map, (H, W, 3) uint8 colours."""
        return self.palette[self.content_labels]

    @property
    def style(self) -> np.ndarray:
        """The style's label map, (H', W', 3) uint8 colours."""
        return self.palette[self.style_labels]

def region_features(encoder, image: torch.Tensor, smoothing: int = AUTO_REGION_SMOOTHING) -> torch.Tensor:
    """Per-position descriptors (C, h, w) of a (1, 3, H, W) image for
    clustering, at 1/8 resolution. Each channel is standardised over the
    image, which removes the image's global look (a painting's colour cast, a
    photo's exposure) so that clusters of a photo and of a painting are
    comparable; each layer then gets equal weight."""
    h, w = math.ceil(image.shape[-2] / 8), math.ceil(image.shape[-1] / 8)
    padded, _ = pad_for_network(image, margin=0)  # no margin: feature cell (i, j) stays over pixel (8i, 8j)
    feats = encoder(padded, AUTO_REGION_LAYERS)
    parts = []
    for tap in AUTO_REGION_LAYERS:
        x = F.adaptive_avg_pool2d(feats[tap].float(), (h, w))
        mean, std = channel_mean_std(x)
        parts.append(normalize(x, mean, std) / math.sqrt(x.shape[1]))
    x = torch.cat(parts, dim=1)
    for _ in range(smoothing):
        x = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return x[0]

def kmeans(points: torch.Tensor, k: int, seed: int = 0, iterations: int = 30) -> torch.Tensor:
    """Cluster centres (k, C) of ``points`` (N, C): k-means++ seeding, then
    Lloyd iterations. Deterministic for a given seed."""
    rng = torch.Generator().manual_seed(seed)
    points = points.cpu()
    centres = points[torch.randint(len(points), (1,), generator=rng)]
    for _ in range(1, k):
        nearest = torch.cdist(points, centres).min(dim=1).values ** 2
        if nearest.sum() <= 0:  # fewer distinct points than clusters
            break
        centres = torch.cat([centres, points[torch.multinomial(nearest, 1, generator=rng)]])
    for _ in range(iterations):
        assignment = torch.cdist(points, centres).argmin(dim=1)
        updated = torch.stack([points[assignment == j].mean(0) if (assignment == j).any() else centres[j]
                               for j in range(len(centres))])
        if torch.allclose(updated, centres):
            break
        centres = updated
    return centres

def match_clusters(content_centres: torch.Tensor, style_centres: torch.Tensor, content_places: np.ndarray,
                   style_places: np.ndarray, place_weight: float = AUTO_PLACE_WEIGHT) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one pairing of content clusters with style clusters with the
    best summed score (all K! pairings are tried; K <= MAX_AUTO_REGIONS). The
    score of a pair is the cosine similarity of their feature centres minus
    ``place_weight`` times the distance between where they sit in their images
    (mean (x, y), as fractions of width and height): a photo and a painting
    differ too much in texture for features alone to pair sky with sky, but
    both keep their sky at the top. One-to-one, so every region of the style is
    used and no single one takes over. Returns (style cluster of each content
    cluster, the pairs' feature similarities)."""
    sim = (F.normalize(content_centres, dim=1) @ F.normalize(style_centres, dim=1).T).numpy()
    apart = np.linalg.norm(content_places[:, None, :] - style_places[None, :, :], axis=-1)
    score = sim - place_weight * apart
    k = sim.shape[0]
    orders = np.array(list(itertools.permutations(range(sim.shape[1]), k)))
    best = orders[score[np.arange(k), orders].sum(axis=1).argmax()]
    return best, sim[np.arange(k), best]

def _cluster_places(descriptors: torch.Tensor, centres: torch.Tensor) -> np.ndarray:
    """Mean (x, y) of each cluster's positions, as fractions of the image (K, 2)."""
    c, h, w = descriptors.shape
    assignment = torch.cdist(descriptors.reshape(c, -1).T, centres).argmin(dim=1).numpy()
    ys, xs = np.divmod(np.arange(h * w), w)
    places = np.full((len(centres), 2), 0.5)
    for j in range(len(centres)):
        if (assignment == j).any():
            places[j] = ((xs[assignment == j] + 0.5) / w).mean(), ((ys[assignment == j] + 0.5) / h).mean()
    return places

def _cluster_map(descriptors: torch.Tensor, centres: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(H, W) cluster index per pixel: the nearest centre, with the distances
    upsampled bilinearly from 1/8 resolution so region edges are smooth."""
    c, h, w = descriptors.shape
    dist = torch.cdist(descriptors.reshape(c, -1).T, centres).T.reshape(1, -1, h, w)
    full = F.interpolate(-dist, size=(math.ceil(size[1] / 8) * 8, math.ceil(size[0] / 8) * 8),
                         mode="bilinear", align_corners=False)
    return full[0, :, :size[1], :size[0]].argmax(dim=0).numpy()

@torch.no_grad()
def auto_labels_of_tensors(encoder, content: torch.Tensor, style: torch.Tensor, k: int,
                           seed: int = 0) -> AutoLabels:
    """Segment (1, 3, H, W) ``content`` and ``style`` into ``k`` regions each
    by k-means over smoothed deep VGG features, and pair the regions across
    the two images by feature similarity (see :func:`match_clusters`)."""
    k = check_count("auto_regions", k, 2, MAX_AUTO_REGIONS)
    content_desc = region_features(encoder, content)
    style_desc = region_features(encoder, style)
    k = min(k, content_desc[0].numel(), style_desc[0].numel())
    content_centres = kmeans(content_desc.flatten(1).T, k, seed)
    style_centres = kmeans(style_desc.flatten(1).T, k, seed)
    content_centres = content_centres[:min(len(content_centres), len(style_centres))]
    pairing, similarity = match_clusters(content_centres, style_centres, _cluster_places(content_desc, content_centres),
                                         _cluster_places(style_desc, style_centres))
    palette = DPST_PALETTE[:len(style_centres)]
    content_clusters = _cluster_map(content_desc, content_centres, (content.shape[-1], content.shape[-2]))
    style_clusters = _cluster_map(style_desc, style_centres, (style.shape[-1], style.shape[-2]))
    return AutoLabels(pairing[content_clusters], style_clusters, palette, similarity)

def label_map_paths(path: str | Path) -> tuple[Path, Path]:
    """Where ``--save-labels PATH`` writes the two maps: PATH's name with
    ``_content`` and ``_style`` added, always PNG (label colours must survive
    exactly, which JPEG's do not)."""
    path = Path(path)
    return path.with_name(f"{path.stem}_content.png"), path.with_name(f"{path.stem}_style.png")
