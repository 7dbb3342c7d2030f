"""The temporal term's random warps: a small shift, zoom and rotation of a photo, plus noise.

Stylizing the warped photo should give the warped stylization (ReReVST; Wang et al. 2020,
"Consistent video style transfer via compound regularization"): a generator that obeys this on
still photos is stable on video, where consecutive frames differ by just such motions and sensor
noise. Warps are drawn from the step's random generator, so resumed runs stay exact.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_SHIFT = 0.04       # of the image side (about 5 px at 128 px)
MAX_ZOOM = 0.05        # +-5%
MAX_ROTATION = 2.0     # degrees
NOISE_STD = 0.01       # of 0..1 pixel values


def random_warps(count: int, rng: torch.Generator) -> torch.Tensor:
    """(count, 2, 3) affine matrices for :func:`torch.nn.functional.affine_grid`."""
    u = torch.rand(count, 4, generator=rng) * 2 - 1
    zoom = 1 + MAX_ZOOM * u[:, 0]
    angle = math.radians(MAX_ROTATION) * u[:, 1]
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    shift = 2 * MAX_SHIFT * u[:, 2:]
    return torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)


def apply_warps(images: torch.Tensor, warps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Warped images (N, C, H, W) and where they are defined (N, 1, H, W; 0 where the warp
    brought in pixels from outside the image)."""
    grid = F.affine_grid(warps.to(images.device, images.dtype), list(images.shape), align_corners=False)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    ones = torch.ones_like(images[:, :1])
    valid = F.grid_sample(ones, grid, mode="bilinear", padding_mode="zeros", align_corners=False) > 0.999
    return warped, valid.to(images.dtype)


def noisy(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    noise = torch.randn(images.shape, generator=rng) * NOISE_STD
    return (images + noise.to(images.device, images.dtype)).clamp(0, 1)
