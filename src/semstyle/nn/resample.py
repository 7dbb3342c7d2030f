"""The network's resampling at inference, written as fewer passes over the largest maps.

:func:`max_pool_2x2`: VGG's pool as the maximum of four strided views.
:func:`upsample2x_reflect_pad`: nearest 2x upsampling fused with the 1-pixel reflection pad of
the convolution after it.

The default decoder upsamples and then reflects a 1-pixel border before each new resolution's
first 3x3 convolution: two passes that each write the largest map of the network (at 1024 px,
64 channels at 1058x1058, 143 MB in bfloat16). The padded, upsampled map is written here in one
pass: every source pixel copied into its 2x2 block of the interior, then the border rows and
columns, which reflection makes copies of the interior's second row and column (for a nearest
upsampled map, the source's first row and column again). Same values, bit for bit; 1.2-1.7x
faster on channels-last bfloat16 maps on this CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def keeps_library_ops(x: torch.Tensor) -> bool:
    """Whether ``x`` goes through the library's own operators instead: when gradients flow (their
    backward, so training is unchanged), and while exporting to ONNX or compiling, whose graphs
    have their own fusion and no use for strided views or in-place writes into slices."""
    return (torch.is_grad_enabled() and x.requires_grad) or torch.onnx.is_in_onnx_export() \
        or torch.compiler.is_compiling()


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """VGG's 2x2 max pool (stride 2, ``ceil_mode``: an odd last row or column pools alone), the
    same values as :func:`torch.nn.functional.max_pool2d`: the maximum of four strided views, on
    channels-last bfloat16 maps 1.3-2x faster than the pooling kernel, which also writes indices
    nobody reads at inference."""
    if keeps_library_ops(x):
        return F.max_pool2d(x, 2, 2, ceil_mode=True)
    height, width = x.shape[-2:]
    if height % 2 or width % 2:
        x = F.pad(x, (0, width % 2, 0, height % 2), mode="replicate")
    return torch.maximum(torch.maximum(x[..., 0::2, 0::2], x[..., 0::2, 1::2]),
                         torch.maximum(x[..., 1::2, 0::2], x[..., 1::2, 1::2]))


def upsample2x_reflect_pad(x: torch.Tensor) -> torch.Tensor:
    """``F.pad(F.interpolate(x, scale_factor=2, mode="nearest"), (1, 1, 1, 1), mode="reflect")``
    for (N, C, H, W) maps, channels-last out (the two library calls where
    :func:`keeps_library_ops`)."""
    if keeps_library_ops(x):
        return F.pad(F.interpolate(x, scale_factor=2.0, mode="nearest"), (1, 1, 1, 1), mode="reflect")
    n, c, h, w = x.shape
    out = torch.empty((n, c, 2 * h + 2, 2 * w + 2), dtype=x.dtype, device=x.device,
                      memory_format=torch.channels_last)
    out[:, :, 1:-1, 1:-1].unflatten(2, (h, 2)).unflatten(4, (w, 2)).copy_(x[:, :, :, None, :, None])
    out[:, :, 0] = out[:, :, 2]
    out[:, :, -1] = out[:, :, -3]
    out[:, :, :, 0] = out[:, :, :, 2]
    out[:, :, :, -1] = out[:, :, :, -3]
    return out
