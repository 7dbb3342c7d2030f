"""On the GPU machine: ``.gpu/vgg16_to_relu4_1.fp16.safetensors`` back into a VGG16 file that
:func:`semstyle.weights.load_encoder` reads (13 convolutions, float32). The convolutions past
relu4_1 are zeros: no training loss and no shipped model reads past relu4_1
(:meth:`semstyle.nn.vgg.VGGEncoder.forward` stops at the deepest requested layer), so they
never run.

Usage: ``python3 scripts/gpu/expand_vgg.py PACKED OUT``
"""

from __future__ import annotations

import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file

VGG16_CONVS = ((0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256),
               (14, 256, 256), (17, 256, 512), (19, 512, 512), (21, 512, 512), (24, 512, 512),
               (26, 512, 512), (28, 512, 512))
"""torchvision index, input and output channels of VGG16's convolutions."""


def main(packed: str, out: str) -> None:
    with safe_open(packed, "pt") as handle:
        state = {k: handle.get_tensor(k).float() for k in handle.keys()}
        metadata = handle.metadata()
    for index, c_in, c_out in VGG16_CONVS:
        state.setdefault(f"features.{index}.weight", torch.zeros(c_out, c_in, 3, 3))
        state.setdefault(f"features.{index}.bias", torch.zeros(c_out))
    save_file(state, out, metadata={"preprocessing": metadata["preprocessing"]})
    print(f"{out}: {len(state)} tensors ({metadata['kept_convs']} convolutions real, the rest zeros)")


if __name__ == "__main__":
    main(*sys.argv[1:])
