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

from semstyle.nn.vgg import VGG16_BLOCKS, VGGEncoder, torchvision_conv_indices


def main(packed: str, out: str) -> None:
    with safe_open(packed, "pt") as handle:
        state = {k: handle.get_tensor(k).float() for k in handle.keys()}
        metadata = handle.metadata()
    for conv, index in zip(VGGEncoder(VGG16_BLOCKS).convs, torchvision_conv_indices(VGG16_BLOCKS)):
        state.setdefault(f"features.{index}.weight", torch.zeros_like(conv.weight))
        state.setdefault(f"features.{index}.bias", torch.zeros_like(conv.bias))
    save_file(state, out, metadata={"preprocessing": metadata["preprocessing"]})
    print(f"{out}: {len(state)} tensors ({metadata['kept_convs']} convolutions real, the rest zeros)")


if __name__ == "__main__":
    main(*sys.argv[1:])
