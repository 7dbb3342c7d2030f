"""Training data: a folder of images decoded once, kept small, cropped at random."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import ImageError
from ..io.read import list_images, load_image
from ..io.tensors import image_to_tensor


class ImageBank:
    """All images of a folder decoded once and kept small in memory.

    Training crops at ``size`` px; images are stored with their shorter side at
    ``2 * size`` so random crops can also zoom (scale augmentation).
    """

    def __init__(self, folder: str | Path, size: int):
        self.size = size
        self.folder = Path(folder)
        self.images: list[torch.Tensor] = []
        self.skipped: list[str] = []
        """One line per unreadable file (name: reason); the training loop reports them."""
        for path in list_images(folder):
            try:
                self.images.append(image_to_tensor(self._shrink(load_image(path)))[0])
            except ImageError as exc:
                self.skipped.append(f"{path.name}: {exc}")
        if not self.images:
            raise ImageError(f"no readable images in {folder}")

    def _shrink(self, img: Image.Image) -> Image.Image:
        target = 2 * self.size
        short = min(img.size)
        if short > target:
            scale = target / short
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)
        return img

    def batch(self, count: int, rng: torch.Generator) -> torch.Tensor:
        picks = torch.randint(len(self.images), (count,), generator=rng).tolist()
        return torch.stack([self._random_crop(self.images[i], rng) for i in picks])

    def _random_crop(self, image: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """A random square of side between size/1.0 and the full shorter side,
        resized to ``size``, flipped left-right half the time."""
        _, h, w = image.shape
        short = min(h, w)
        low = min(self.size, short)
        side = int(torch.randint(low, short + 1, (1,), generator=rng))
        top = int(torch.randint(0, h - side + 1, (1,), generator=rng))
        left = int(torch.randint(0, w - side + 1, (1,), generator=rng))
        crop = image[:, top:top + side, left:left + side]
        if side != self.size:
            crop = F.interpolate(crop[None], size=(self.size, self.size), mode="bilinear",
                                 antialias=True, align_corners=False)[0]
        if bool(torch.rand((), generator=rng) < 0.5):
            crop = crop.flip(-1)
        return crop.clamp(0, 1)
