"""Images into network-ready tensors and back: size caps, margins, colour preservation.

Conversions happen here, at the edges; the engine and the generator see only
(N, 3, H, W) float tensors in 0..1.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import OptionError
from ..io.read import DEFAULT_MAX_PIXELS, load_image
from ..io.tensors import image_to_tensor
from .options import BORDER_MARGIN, DEFAULT_MAX_SIDE, MIN_SIDE
from .styles import ImageLike

NETWORK_MULTIPLE = 8
"""Sides are padded to a multiple of this: three VGG poolings up to relu4_1."""


def fit_size(width: int, height: int, max_side: int | None, option: str = "size") -> tuple[int, int]:
    """(width, height) scaled down so the longer side is at most ``max_side``
    (``None``: :data:`DEFAULT_MAX_SIDE`). An image so thin that its shorter side
    would fall under :data:`MIN_SIDE` is an error naming the cap to raise."""
    cap = DEFAULT_MAX_SIDE if max_side is None else max_side
    original, longer, shorter = f"{width}x{height}", max(width, height), min(width, height)
    if longer > cap:
        scale = cap / longer
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    if min(width, height) < MIN_SIDE:
        needed = math.ceil(MIN_SIDE * longer / shorter)
        raise OptionError(option, f"of {cap} px would shrink this {original} image to {width}x{height}, "
                                  f"under the {MIN_SIDE} px minimum of the shorter side; use at least {needed}")
    return width, height


def image_tensor(image: ImageLike, max_side: int | None, option: str = "size",
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
    """A file or PIL image as a (1, 3, H, W) tensor in 0..1, its longer side
    capped at ``max_side`` (``None``: :data:`DEFAULT_MAX_SIDE`), Lanczos-resized.
    ``option`` names the cap in errors (``size`` or ``style_size``)."""
    img = image if isinstance(image, Image.Image) else load_image(image, min_size=MIN_SIDE, max_pixels=max_pixels)
    if img.mode != "RGB":
        img = img.convert("RGB")
    if min(img.size) < MIN_SIDE:
        raise OptionError("image", f"is {img.width}x{img.height}; the shorter side must be at least {MIN_SIDE} px")
    width, height = fit_size(img.width, img.height, max_side, option)
    if (width, height) != img.size:
        img = img.resize((width, height), Image.LANCZOS)
    return image_to_tensor(img)


def pad_for_network(t: torch.Tensor, margin: int = BORDER_MARGIN,
                    multiple: int = NETWORK_MULTIPLE) -> tuple[torch.Tensor, tuple[slice, slice]]:
    """Reflect-pad (N, C, H, W) by ``margin`` on every side (less for small images) and then to a
    multiple of ``multiple``. Returns the padded tensor and the (rows, columns) slices
    that crop a same-size output back to the input's pixels. Any size works: where a
    reflection would be longer than the image, the edge pixels are repeated instead."""
    h, w = t.shape[-2:]
    margin = max(0, min(margin, min(h, w) - multiple))  # reflection needs padding < size
    pad_h, pad_w = (-(h + 2 * margin)) % multiple, (-(w + 2 * margin)) % multiple
    pads = (margin, margin + pad_w, margin, margin + pad_h)
    if not any(pads):
        return t, (slice(0, h), slice(0, w))
    mode = "reflect" if margin + pad_h < h and margin + pad_w < w else "replicate"
    return F.pad(t, pads, mode=mode), (slice(margin, margin + h), slice(margin, margin + w))


def preserve_color(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Keep the content's colours: luminance from the stylized image, chroma
    (YIQ I and Q) from the content (Gatys et al. 2016, "luminance-only transfer")."""
    to_yiq = stylized.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    from_yiq = torch.linalg.inv(to_yiq)
    y_out = torch.einsum("ij,njhw->nihw", to_yiq, stylized)
    yiq_content = torch.einsum("ij,njhw->nihw", to_yiq, content)
    mixed = torch.cat([y_out[:, :1], yiq_content[:, 1:]], dim=1)
    return torch.einsum("ij,njhw->nihw", from_yiq, mixed).clamp(0, 1)
