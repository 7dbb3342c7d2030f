"""Images into network-ready tensors and back: size caps, margins, colour preservation.

Conversions happen here, at the edges; the engine and the generator see only
(N, 3, H, W) float tensors in 0..1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..colour import MOMENT_STRIDE, RGB_TO_YIQ, YIQ_TO_RGB, ColourMoments, colour_affine
from ..errors import OptionError
from ..geometry import NETWORK_MULTIPLE, fit_size, network_padding
from ..io.read import DEFAULT_MAX_PIXELS, load_image
from ..io.tensors import image_to_tensor
from .options import BORDER_MARGIN, MIN_SIDE
from .styles import ImageLike


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
    multiple of ``multiple`` (:func:`semstyle.geometry.network_padding`). Returns the padded
    tensor and the (rows, columns) slices that crop a same-size output back to the input's pixels."""
    pads, crop, mode = network_padding(*t.shape[-2:], margin, multiple)
    return (F.pad(t, pads, mode=mode) if any(pads) else t), crop


def preserve_color(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Keep the content's colours: luminance from the stylized image, chroma
    (YIQ I and Q) from the content (:mod:`semstyle.colour`)."""
    to_yiq = stylized.new_tensor(RGB_TO_YIQ)
    from_yiq = stylized.new_tensor(YIQ_TO_RGB)
    y_out = torch.einsum("ij,njhw->nihw", to_yiq, stylized)
    yiq_content = torch.einsum("ij,njhw->nihw", to_yiq, content)
    mixed = torch.cat([y_out[:, :1], yiq_content[:, 1:]], dim=1)
    return torch.einsum("ij,njhw->nihw", from_yiq, mixed).clamp(0, 1)


def match_colours(stylized: torch.Tensor, target: ColourMoments | None, amount: float,
                  own: Callable[[tuple[torch.Tensor, torch.Tensor]], tuple[torch.Tensor, torch.Tensor]] | None = None
                  ) -> torch.Tensor:
    """(N, 3, H, W) in 0..1 with each image's RGB mean and spread moved ``amount`` of the way
    to ``target``'s, on the tensor's device (:func:`semstyle.colour.match_colours_array`, whose
    :func:`~semstyle.colour.colour_affine` it shares); ``None`` (a style vector) changes nothing.
    ``own``: a function from the images' own (mean, std), each (N, 3), to the ones the map is
    made from (video: a moving average, so the map does not pump as objects pass)."""
    if target is None or amount == 0:
        return stylized
    sample = stylized[..., ::MOMENT_STRIDE, ::MOMENT_STRIDE].flatten(2).double()
    moments = (sample.mean(dim=2), sample.std(dim=2, unbiased=False))
    if own is not None:
        moments = own(moments)
    means, stds = (m.cpu().numpy() for m in moments)
    maps = [colour_affine(ColourMoments(mean, std), target, amount) for mean, std in zip(means, stds)]
    gain = stylized.new_tensor(np.stack([g for g, _ in maps]))[:, :, None, None]
    shift = stylized.new_tensor(np.stack([b for _, b in maps]))[:, :, None, None]
    return torch.addcmul(shift, stylized, gain).clamp_(0, 1)
