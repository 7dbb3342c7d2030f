"""The one forward pass: external normalisation statistics (``stats=``), regions, strength."""

from __future__ import annotations

import pytest
import torch

from semstyle import Stylizer
from semstyle.io import image_to_tensor

from .helpers import data_dir
from .models_fixture import tiny_model_dir


@pytest.fixture(scope="module")
def stylizer(tmp_path_factory):
    return Stylizer(tiny_model_dir(tmp_path_factory.mktemp("model")), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def photo():
    from PIL import Image

    return image_to_tensor(Image.open(data_dir("content") / "chicago.jpg").convert("RGB").resize((96, 64)))


@pytest.fixture(scope="module")
def vector(stylizer):
    return stylizer.style_vector(data_dir("styles") / "starry_night.jpg")


def test_given_stats_of_the_image_itself_change_nothing(stylizer, photo, vector):
    engine = stylizer.engine
    own = engine.content_stats(photo)
    assert own[0].shape == (1, 1, 256)  # (N, K, C) at relu3_1
    assert torch.equal(engine.stylize(photo, vector, stats=own), engine.stylize(photo, vector))


def test_given_stats_come_from_elsewhere(stylizer, photo, vector):
    """Statistics computed elsewhere (a thumbnail for tiles, frames for video) are the ones
    the injection normalises with, exactly; the image's own would give another result."""
    generator, engine = stylizer.engine.generator, stylizer.engine
    feats = engine.encoder(photo, generator.taps)
    content = feats[generator.config.content_layer]
    mean = torch.rand(1, 1, content.shape[1])
    std = torch.rand(1, 1, content.shape[1]) + 0.5
    result = generator.run(feats, vector, stats=(mean, std))
    expected = ((content - mean[0, 0, :, None, None]) / std[0, 0, :, None, None]
                * result.target_std[0, 0, :, None, None] + result.target_mean[0, 0, :, None, None])
    assert torch.allclose(result.injected, expected, atol=1e-5)
    assert not torch.allclose(result.image, generator(feats, vector), atol=1e-3)
    darker = engine.content_stats(photo * 0.3)
    assert not torch.allclose(engine.stylize(photo, vector, stats=darker), engine.stylize(photo, vector), atol=1e-4)


def test_strength_zero_gives_the_photos_own_vector_per_region(stylizer, photo, vector):
    generator, engine = stylizer.engine.generator, stylizer.engine
    masks = torch.zeros(1, 2, 64, 96)
    masks[:, 0, :, :40] = 1
    masks[:, 1, :, 40:] = 1
    two = vector[:, None].expand(1, 2, -1)
    feats = engine.encoder(photo, generator.taps)
    zero = generator.run(feats, two, masks=masks, strength=0.0)
    own = generator.style_vector(feats, masks)
    assert torch.allclose(zero.styles, own, atol=1e-6)
    full = generator.run(feats, two, masks=masks, strength=1.0)
    assert torch.allclose(full.styles, two, atol=1e-6)
