"""The frozen VGG feature extractor: named ReLU taps of a pretrained VGG16/19.

Style transfer only works on features of a network that has learned to see:
random VGG weights give noise, not style. The weights themselves are found,
checked and loaded by :mod:`semstyle.weights` (``load_encoder()``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .resample import max_pool_2x2

# Caffe-style preprocessing of the HED/VGG16 weights: BGR, 0..255, minus mean.
CAFFE_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)
# torchvision-style preprocessing: RGB, 0..1, ImageNet mean/std.
TORCH_RGB_MEAN = (0.485, 0.456, 0.406)
TORCH_RGB_STD = (0.229, 0.224, 0.225)

VGG16_BLOCKS = (2, 2, 3, 3, 3)
VGG19_BLOCKS = (2, 2, 4, 4, 4)
VGG_WIDTHS = (64, 128, 256, 512, 512)


def tap_names(blocks: Sequence[int]) -> list[str]:
    """Names of the ReLU outputs in order: relu1_1, relu1_2, relu2_1, ..."""
    return [f"relu{b + 1}_{i + 1}" for b, n in enumerate(blocks) for i in range(n)]


def torchvision_conv_indices(blocks: Sequence[int]) -> list[int]:
    """Indices of the conv layers inside torchvision's ``vgg.features``."""
    indices, position = [], 0
    for n in blocks:
        for _ in range(n):
            indices.append(position)
            position += 2  # conv, relu
        position += 1  # max pool
    return indices


def blocks_for_conv_count(n_convs: int) -> tuple[int, ...] | None:
    """VGG16's or VGG19's block layout from its number of conv layers (13 or 16)."""
    return {13: VGG16_BLOCKS, 16: VGG19_BLOCKS}.get(n_convs)


class VGGEncoder(nn.Module):
    """Frozen VGG feature extractor returning named ReLU taps.

    Takes RGB images in 0..1 and applies the preprocessing its weights were
    trained with, so callers never think about BGR or means. Computation stops
    at the deepest requested tap: most uses need only up to ``relu4_1``.
    """

    def __init__(self, blocks: Sequence[int] = VGG16_BLOCKS, preprocessing: str = "caffe_bgr"):
        super().__init__()
        self.blocks = tuple(blocks)
        self.preprocessing = preprocessing
        self.names = tap_names(self.blocks)
        self.convs = nn.ModuleList()
        in_ch = 3
        for width, n in zip(VGG_WIDTHS, self.blocks):
            for _ in range(n):
                self.convs.append(nn.Conv2d(in_ch, width, 3, padding=1))
                in_ch = width
        self._pool_after = {sum(self.blocks[: b + 1]) - 1 for b in range(len(self.blocks) - 1)}
        self.requires_grad_(False)
        self.eval()

    def load_torchvision_state(self, state: dict[str, torch.Tensor]) -> None:
        for conv, index in zip(self.convs, torchvision_conv_indices(self.blocks)):
            try:
                conv.weight.data.copy_(state[f"features.{index}.weight"])
                conv.bias.data.copy_(state[f"features.{index}.bias"])
            except (KeyError, RuntimeError, TypeError) as exc:
                raise ValueError(f"weights do not fit VGG ({exc})".splitlines()[0]) from None

    def train(self, mode: bool = True) -> VGGEncoder:
        """Always stay in eval mode: the encoder is frozen."""
        return super().train(False)

    def preprocess(self, rgb: torch.Tensor) -> torch.Tensor:
        """RGB 0..1 -> the input space the weights expect."""
        if self.preprocessing == "caffe_bgr":
            mean = rgb.new_tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1)
            return rgb.flip(1) * 255.0 - mean
        mean = rgb.new_tensor(TORCH_RGB_MEAN).view(1, 3, 1, 1)
        std = rgb.new_tensor(TORCH_RGB_STD).view(1, 3, 1, 1)
        return (rgb - mean) / std

    def forward(self, rgb: torch.Tensor, taps: Iterable[str] = ("relu4_1",)) -> dict[str, torch.Tensor]:
        wanted = set(taps)
        if not wanted:
            raise ValueError("no VGG taps requested")
        unknown = wanted - set(self.names)
        if unknown:
            raise ValueError(f"unknown VGG taps {sorted(unknown)}; known: {self.names}")
        last = max(self.names.index(t) for t in wanted)
        out: dict[str, torch.Tensor] = {}
        x = self.preprocess(rgb)
        for i, conv in enumerate(self.convs[: last + 1]):
            x = F.relu(conv(x), inplace=True)  # on a fresh tensor: one pass, not two
            if self.names[i] in wanted:
                out[self.names[i]] = x
            if i in self._pool_after and i < last:
                x = max_pool_2x2(x)
        return out
