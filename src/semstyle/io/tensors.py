"""Images as tensors and back: the conversions at the edges of every pipeline."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .read import to_rgb8


def image_to_tensor(img: Image.Image) -> torch.Tensor:
    """(1, 3, H, W) float32 in 0..1: the layout every model in semstyle takes."""
    rgb = to_rgb8(img)
    array = np.array(rgb, dtype=np.uint8)  # a copy: torch wants writable memory
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tensor_to_image(tensor: torch.Tensor) -> Image.Image:
    """Back to an 8-bit RGB image; out-of-range and NaN values are clamped, not wrapped."""
    t = tensor.detach()
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"expected a (1,3,H,W) or (3,H,W) tensor, got shape {tuple(tensor.shape)}")
    t = torch.nan_to_num(t.float().cpu(), nan=0.0).clamp(0.0, 1.0)
    array = t.mul(255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(array)
