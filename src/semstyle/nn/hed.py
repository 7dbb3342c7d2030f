"""Holistically-Nested Edge Detection on the VGG16 weights (for the benchmarks' edge F1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .vgg import VGG_WIDTHS, VGGEncoder


class HEDEdgeDetector(nn.Module):
    """Holistically-Nested Edge Detection on the same VGG16 weights.

    Used to measure structure preservation: edges of a stylized image should
    match the edges of its content photo.
    """

    HEADS = ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5")
    SIDE_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")

    def __init__(self, encoder: VGGEncoder):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict({name: nn.Conv2d(c, 1, 1) for name, c in zip(self.HEADS, VGG_WIDTHS)})
        self.fuse = nn.Conv2d(5, 1, 1)
        self.requires_grad_(False)
        self.eval()

    def load_heads(self, state: dict[str, torch.Tensor]) -> None:
        """The side-output and fusion heads from a converted weights file's hed.* tensors."""
        for name in self.HEADS:
            self.heads[name].weight.data.copy_(state[f"hed.{name}.weight"])
            self.heads[name].bias.data.copy_(state[f"hed.{name}.bias"])
        self.fuse.weight.data.copy_(state["hed.fuse.weight"])
        self.fuse.bias.data.copy_(state["hed.fuse.bias"])

    @torch.no_grad()
    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """Edge probability maps (N, 1, H, W) in 0..1."""
        size = rgb.shape[-2:]
        feats = self.encoder(rgb, self.SIDE_TAPS)
        sides = [F.interpolate(self.heads[h](feats[t]), size=size, mode="bilinear", align_corners=False)
                 for h, t in zip(self.HEADS, self.SIDE_TAPS)]
        return torch.sigmoid(self.fuse(torch.cat(sides, dim=1)))
