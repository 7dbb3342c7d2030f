"""Colour preservation's one matrix: luminance from the stylized image, chroma from the photo
(Gatys et al. 2016, "luminance-only transfer", in YIQ). Plain numpy, shared by both runtimes
(and by training's hue rotations, :mod:`semstyle.train.augment`)."""

from __future__ import annotations

import numpy as np

RGB_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=np.float64)
YIQ_TO_RGB = np.linalg.inv(RGB_TO_YIQ)


def preserve_color_array(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) float arrays in 0..1 -> the stylized luminance with the content's chroma."""
    y = np.einsum("ij,njhw->nihw", RGB_TO_YIQ[:1], stylized)
    iq = np.einsum("ij,njhw->nihw", RGB_TO_YIQ[1:], content)
    return np.clip(np.einsum("ij,njhw->nihw", YIQ_TO_RGB, np.concatenate([y, iq], axis=1)), 0, 1).astype(np.float32)
