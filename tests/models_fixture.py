"""A tiny real generator exported as a model directory, for inference tests."""

from __future__ import annotations

from pathlib import Path

import torch

from semstyle.checkpoints import export_model
from semstyle.config import ModelConfig
from semstyle.nn.generator import Generator

TINY_MODEL = ModelConfig(style_dim=16, decoder_width=32, disc_channels=8)


def tiny_model_dir(dest: Path, seed: int = 0) -> Path:
    """Random but non-trivial weights: injections get non-zero weights so
    the style vector really changes the output."""
    torch.manual_seed(seed)
    generator = Generator(TINY_MODEL)
    with torch.no_grad():
        for module in [generator.injection, *generator.decoder.modulations]:
            module.affine.weight.normal_(0, 0.05)
    export_model(generator, dest)
    return dest
