"""Tiled inference: the same picture as the whole image, in bounded pieces; the style cache."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from semstyle import Stylizer
from semstyle.errors import OptionError
from semstyle.pipeline.tiles import stylize_tiled, tile_ranges, tile_side

from .helpers import data_dir
from .models_fixture import tiny_model_dir


@pytest.fixture(scope="module")
def stylizer(tmp_path_factory):
    return Stylizer(tiny_model_dir(tmp_path_factory.mktemp("model")), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def photo():
    return Image.open(data_dir("content") / "golden_gate.jpg").convert("RGB").resize((520, 390), Image.LANCZOS)


def psnr(a, b) -> float:
    mse = ((np.asarray(a).astype(float) - np.asarray(b).astype(float)) ** 2).mean()
    return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)


@pytest.mark.parametrize("length,tile,overlap", [(1000, 256, 64), (390, 160, 40), (3840, 1024, 64), (200, 256, 64)])
def test_tiles_cover_the_image_overlap_and_start_on_the_pooling_grid(length, tile, overlap):
    ranges = tile_ranges(length, tile, overlap)
    assert ranges[0][0] == 0 and ranges[-1][1] == length
    assert all(start % 8 == 0 for start, _ in ranges)
    assert all(b_start <= a_end - overlap for (_, a_end), (b_start, _) in zip(ranges, ranges[1:]))
    assert all(end - start <= tile + 8 for start, end in ranges)


def test_tiled_equals_whole_within_38_db(stylizer, photo):
    vector = stylizer.style_vector(data_dir("styles") / "starry_night.jpg")
    whole = stylizer.stylize(photo, vector, tile=None)
    tiled = stylizer.stylize(photo, vector, tile=160)
    assert tiled.size == whole.size == photo.size
    assert psnr(tiled, whole) >= 38


def test_shared_statistics_are_what_keeps_tiles_consistent(stylizer, photo):
    """Each tile normalised by its own statistics drifts from the whole image (the reason for
    the thumbnail's): measurably further than the tiled result with shared ones."""
    from semstyle.io import image_to_tensor

    engine = stylizer.engine
    vector = stylizer.style_vector(data_dir("styles") / "starry_night.jpg")
    content = image_to_tensor(photo)
    whole = engine.stylize(content, vector)
    shared = stylize_tiled(engine, content, vector, 160)
    own = (engine.stylize(content[..., :, :200], vector), engine.stylize(content[..., :, 200:], vector))
    per_tile = np.concatenate([o.numpy() for o in own], axis=-1)
    error_shared = float(((shared - whole) ** 2).mean())
    error_own = float(((per_tile - whole.numpy()) ** 2).mean())
    assert error_shared < 0.1 * error_own


def test_tile_option(stylizer, photo):
    assert tile_side("auto", 2000, 3000) == 1024 and tile_side("auto", 1000, 1024) is None
    assert tile_side(None, 5000, 5000) is None and tile_side(512, 400, 500) is None
    with pytest.raises(OptionError, match="tile must be a whole number from 128"):
        stylizer.stylize(photo, photo, tile=64)


def test_style_vectors_are_cached_by_content(stylizer, tmp_path):
    style = data_dir("styles") / "starry_night.jpg"
    copy = tmp_path / "same painting, other name.jpg"
    copy.write_bytes(style.read_bytes())
    cache = stylizer.engine.style_cache
    first = stylizer.style_vector(style)
    hits = cache.hits
    again = stylizer.style_vector(copy)
    assert cache.hits == hits + 1 and (first == again).all()
    other_size = stylizer.style_vector(style, style_size=256)
    assert cache.hits == hits + 1 and not (other_size == first).all()


def test_own_vector_is_the_one_strength_mixes_with(stylizer, photo):
    """Tiles below full strength mix with the thumbnail's own vector, computed as the whole
    image's stylization computes it (over the padded image)."""
    import torch

    from semstyle.io import image_to_tensor

    engine = stylizer.engine
    content = image_to_tensor(photo.resize((160, 120)))
    vector = stylizer.style_vector(data_dir("styles") / "starry_night.jpg")
    mixed = engine.stylize(content, 0.5 * vector + 0.5 * engine.own_vector(content), strength=1.0)
    assert torch.allclose(engine.stylize(content, vector, strength=0.5), mixed, atol=1e-5)
