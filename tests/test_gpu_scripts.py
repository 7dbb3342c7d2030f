"""scripts/gpu: what a borrowed GPU machine is sent (a packed VGG, shrunk images) reads back right."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from PIL import Image

from semstyle.io.read import list_images
from semstyle.weights import load_encoder

from .helpers import data_dir

REPO = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "gpu" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_packed_vgg_expands_to_an_encoder_with_the_same_features_up_to_relu4_1(vgg, tmp_path):
    packed, expanded = tmp_path / "packed.safetensors", tmp_path / "vgg.safetensors"
    kept = _script("prepare_carry").pack_vgg(packed)
    assert len(kept) == 16 and packed.stat().st_size < 6.5e6  # 8 convolutions in float16
    _script("expand_vgg").main(str(packed), str(expanded))
    encoder = load_encoder(expanded)
    image = torch.rand(1, 3, 64, 80)
    taps = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    with torch.no_grad():
        want, got = vgg(image, taps), encoder(image, taps)
    for tap in taps:  # float16 weights: about 1e-3 relative
        assert (got[tap] - want[tap]).norm() / want[tap].norm() < 5e-3, tap


def test_shrink_folder_keeps_every_image_at_the_short_side(tmp_path):
    count = _script("prepare_carry").shrink_folder(data_dir("styles"), tmp_path / "small", 96)
    files = sorted((tmp_path / "small").glob("*.jpg"))
    assert count == len(files) == len(list_images(data_dir("styles")))
    for path in files[:5]:
        with Image.open(path) as img:
            assert min(img.size) <= 96
