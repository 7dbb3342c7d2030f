"""Style augmentation: new palettes from the same paintings.

Twenty-six paintings are few: the style encoder sees 26 palettes and learns them by heart, and
the colours of an unseen painting come out pulled towards the nearest one it knows (issue 12's
"pale and washed out"). A hue rotation or a permutation of the RGB channels keeps a painting's
brushwork, contrast and composition and gives it a palette no painting of the set has, so every
batch shows the encoder and the discriminator paintings it has not seen. (Crops at several scales
come from :class:`~semstyle.train.data.ImageBank` already.)
"""

from __future__ import annotations

import math

import torch

from ..colour import RGB_TO_YIQ, YIQ_TO_RGB

_RGB_TO_YIQ = torch.tensor(RGB_TO_YIQ, dtype=torch.float32)
_YIQ_TO_RGB = torch.tensor(YIQ_TO_RGB, dtype=torch.float32)

_PERMUTATIONS = ((0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))
"""The five RGB orders other than the identity."""


def hue_rotation(angle: float) -> torch.Tensor:
    """The 3x3 RGB matrix that turns hues by ``angle`` radians (a rotation of YIQ's chroma plane;
    luma is kept)."""
    c, s = math.cos(angle), math.sin(angle)
    rotate = torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    return _YIQ_TO_RGB @ rotate @ _RGB_TO_YIQ


def recolour(image: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """(3, H, W) -> the same painting in a random new palette: a hue rotation by 30-330 degrees,
    or (one time in three) a permutation of the channels."""
    if float(torch.rand((), generator=rng)) < 1.0 / 3.0:
        order = _PERMUTATIONS[int(torch.randint(len(_PERMUTATIONS), (1,), generator=rng))]
        return image[list(order)]
    angle = math.radians(30.0 + 300.0 * float(torch.rand((), generator=rng)))
    matrix = hue_rotation(angle).to(image)
    return torch.einsum("ij,jhw->ihw", matrix, image).clamp(0, 1)


def augment_styles(batch: torch.Tensor, probability: float, rng: torch.Generator) -> torch.Tensor:
    """Each painting of (N, 3, H, W) recoloured with ``probability`` (0 keeps them all)."""
    if probability <= 0:
        return batch
    picks = (torch.rand(batch.shape[0], generator=rng) < probability).tolist()
    return torch.stack([recolour(image, rng) if pick else image for image, pick in zip(batch, picks)])
