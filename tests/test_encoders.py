"""The frozen VGG encoder, its weights (cache, checksums, other formats) and
the HED edge detector built on the same weights.

Uses the real converted VGG16 weights from the user cache (fetched on first
use) and, when present, the shared photos in ``../shared/data``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from safetensors.torch import save_file

from semstyle import weights
from semstyle.errors import WeightsError
from semstyle.nn.hed import HEDEdgeDetector
from semstyle.nn.resample import max_pool_2x2
from semstyle.nn.vgg import (
    CAFFE_BGR_MEAN,
    TORCH_RGB_MEAN,
    TORCH_RGB_STD,
    VGG16_BLOCKS,
    VGG19_BLOCKS,
    VGGEncoder,
    tap_names,
)
from semstyle.weights import CONVERTED_NAME, convert_hed_h5, default_weights_path, load_encoder, load_hed, semstyle_home

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PHOTO = SHARED_DATA / "content" / "chicago.jpg"

VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
VGG19_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
VGG_WIDTHS_16 = (64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512)
VGG_WIDTHS_19 = (64, 64, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512)


# --------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_weights_path() -> Path:
    """The converted weights in the real cache (make install fetches them)."""
    return weights.fetch_weights()


@pytest.fixture(scope="module")
def encoder(real_weights_path) -> VGGEncoder:
    return load_encoder()


@pytest.fixture(scope="module")
def real_state(real_weights_path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(real_weights_path))


@pytest.fixture(scope="module")
def torchvision_pth(real_state, tmp_path_factory) -> Path:
    """The real VGG16 weights as a torchvision ``vgg16().state_dict()`` file
    (features.* convs plus a classifier entry that the loader must ignore)."""
    state = {k: v.clone() for k, v in real_state.items() if k.startswith("features.")}
    state["classifier.0.weight"] = torch.zeros(4, 4)
    state["classifier.0.bias"] = torch.zeros(4)
    path = tmp_path_factory.mktemp("torchvision") / "vgg16.safetensors"
    save_file(state, str(path))
    return path


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty SEMSTYLE_HOME."""
    monkeypatch.setenv("SEMSTYLE_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def load_photo(size: int) -> torch.Tensor:
    image = Image.open(PHOTO).convert("RGB").resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float().div(255)[None]


def assert_one_line(message: str) -> None:
    assert message and "\n" not in message


# --------------------------------------------------------------------------
# Taps
# --------------------------------------------------------------------------

def test_tap_names():
    assert tap_names(VGG16_BLOCKS) == [
        "relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3",
        "relu4_1", "relu4_2", "relu4_3", "relu5_1", "relu5_2", "relu5_3"]
    names19 = tap_names(VGG19_BLOCKS)
    assert len(names19) == 16 and names19[-1] == "relu5_4" and "relu3_4" in names19


def test_taps_have_vgg_shapes(encoder):
    image = torch.rand(1, 3, 64, 64)
    taps = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_3")
    out = encoder(image, taps)
    assert set(out) == set(taps)
    assert out["relu1_1"].shape == (1, 64, 64, 64)  # full resolution
    assert out["relu2_1"].shape == (1, 128, 32, 32)  # 1/2
    assert out["relu3_1"].shape == (1, 256, 16, 16)  # 1/4
    assert out["relu4_1"].shape == (1, 512, 8, 8)  # 1/8
    assert out["relu5_3"].shape == (1, 512, 4, 4)  # 1/16
    assert all((t >= 0).all() for t in out.values())  # ReLU outputs


def test_default_tap_and_consistency(encoder):
    image = torch.rand(2, 3, 32, 32)
    default = encoder(image)
    assert list(default) == ["relu4_1"] and default["relu4_1"].shape == (2, 512, 4, 4)
    # a shallow tap is the same whether or not deeper ones are requested
    shallow = encoder(image, ["relu1_1"])["relu1_1"]
    both = encoder(image, ["relu1_1", "relu4_1"])
    assert torch.allclose(shallow, both["relu1_1"])
    assert torch.allclose(default["relu4_1"], both["relu4_1"])


def test_odd_sizes_round_up(encoder):
    out = encoder(torch.rand(1, 3, 36, 20), ["relu4_1"])  # pools with ceil_mode
    assert out["relu4_1"].shape == (1, 512, 5, 3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_inference_pool_equals_max_pool2d_at_even_and_odd_sizes(dtype):
    for height, width in [(8, 8), (7, 9), (9, 6), (1, 1)]:
        x = torch.randn(2, 5, height, width, dtype=dtype).contiguous(memory_format=torch.channels_last)
        pooled = max_pool_2x2(x)
        assert torch.equal(pooled, F.max_pool2d(x, 2, 2, ceil_mode=True))
        assert pooled.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(1, 2, 5, 5, requires_grad=True)
    max_pool_2x2(x).sum().backward()  # training keeps the kernel's backward: one gradient per window
    assert x.grad.sum().item() == 2 * 9 and torch.count_nonzero(x.grad) == 2 * 9


def test_unknown_taps_raise(encoder):
    with pytest.raises(ValueError, match="relu6_1"):
        encoder(torch.rand(1, 3, 16, 16), ["relu1_1", "relu6_1"])
    with pytest.raises(ValueError, match="conv1_1"):
        encoder(torch.rand(1, 3, 16, 16), ["conv1_1"])


# --------------------------------------------------------------------------
# Frozen and preprocessing
# --------------------------------------------------------------------------

def test_encoder_is_frozen(encoder):
    params = list(encoder.parameters())
    assert len(params) == 2 * 13
    assert not any(p.requires_grad for p in params)
    assert encoder.train() is encoder
    assert not encoder.training
    assert not any(m.training for m in encoder.modules())
    encoder.train(True)
    assert not encoder.training
    # gradients still flow through it to the image (used by the perceptual losses)
    image = torch.rand(1, 3, 16, 16, requires_grad=True)
    encoder(image, ["relu2_1"])["relu2_1"].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(p.grad is None for p in params)


def test_caffe_bgr_preprocessing_by_hand():
    enc = VGGEncoder(preprocessing="caffe_bgr")
    rgb = torch.tensor([[[[0.0, 1.0]], [[0.5, 0.25]], [[1.0, 0.1]]]])  # 1x3x1x2
    out = enc.preprocess(rgb)
    b_mean, g_mean, r_mean = CAFFE_BGR_MEAN
    for x in range(2):
        r, g, b = (rgb[0, c, 0, x].item() for c in range(3))
        expected = [b * 255 - b_mean, g * 255 - g_mean, r * 255 - r_mean]
        assert out[0, :, 0, x].tolist() == pytest.approx(expected, rel=1e-5)


def test_torch_rgb_preprocessing_by_hand():
    enc = VGGEncoder(preprocessing="torch_rgb")
    rgb = torch.tensor([[[[0.0]], [[0.5]], [[1.0]]]])
    expected = [(v - m) / s for v, m, s in zip((0.0, 0.5, 1.0), TORCH_RGB_MEAN, TORCH_RGB_STD)]
    assert enc.preprocess(rgb).flatten().tolist() == pytest.approx(expected, rel=1e-5)


# --------------------------------------------------------------------------
# Pretrained features are real
# --------------------------------------------------------------------------

def test_pretrained_weights_match_the_file(encoder, real_state):
    assert encoder.preprocessing == "caffe_bgr"
    assert encoder.blocks == VGG16_BLOCKS
    for conv, index in zip(encoder.convs, VGG16_CONV_INDICES):
        assert torch.equal(conv.weight, real_state[f"features.{index}.weight"])
        assert torch.equal(conv.bias, real_state[f"features.{index}.bias"])


def test_first_layer_filters_are_smooth_not_random(encoder):
    """Learnt conv1_1 filters are smooth colour/edge detectors: neighbouring
    taps (and the three colour planes) are strongly correlated, unlike random
    initialisations (correlation about 0)."""
    w = encoder.convs[0].weight
    horizontal = torch.corrcoef(torch.stack([w[..., :-1].flatten(), w[..., 1:].flatten()]))[0, 1]
    colour = torch.corrcoef(torch.stack([w[:, :-1].flatten(), w[:, 1:].flatten()]))[0, 1]
    assert horizontal.item() > 0.3
    assert colour.item() > 0.5


def test_features_of_shifted_photo_are_close_and_noise_is_far(encoder):
    photo = load_photo(72)
    a, b = photo[..., 0:64, 0:64], photo[..., 4:68, 4:68]  # shifted by 4 px
    noise = torch.rand(a.shape, generator=torch.Generator().manual_seed(0))
    taps = ("relu2_1", "relu3_1", "relu4_1")
    fa, fb, fn = encoder(a, taps), encoder(b, taps), encoder(noise, taps)
    for tap in taps:
        pa, pb, pn = (f[tap].mean(dim=(2, 3)).flatten() for f in (fa, fb, fn))
        assert F.cosine_similarity(pa, pb, dim=0) > 0.97
        assert F.cosine_similarity(pa, pb, dim=0) > F.cosine_similarity(pa, pn, dim=0) + 0.1
        assert (pa - pb).norm() < 0.4 * (pa - pn).norm()


# --------------------------------------------------------------------------
# Cache location, corrupt and missing files
# --------------------------------------------------------------------------

def test_semstyle_home_override(home):
    assert semstyle_home() == home
    assert default_weights_path() == home / CONVERTED_NAME


def test_default_home_without_override(monkeypatch):
    monkeypatch.delenv("SEMSTYLE_HOME", raising=False)
    assert default_weights_path() == Path.home() / ".cache" / "semstyle" / CONVERTED_NAME


def test_corrupt_cached_file(home):
    (home / CONVERTED_NAME).write_bytes(b"\x00this is not a safetensors file\xff" * 10)
    with pytest.raises(WeightsError) as info:
        load_encoder()
    message = str(info.value)
    assert_one_line(message)
    assert "semstyle weights fetch" in message
    assert str(home / CONVERTED_NAME) in message


def test_altered_tensors_at_default_path_fail_checksum(home, real_state):
    from safetensors.torch import save_file

    altered = dict(real_state)
    altered["features.0.bias"] = real_state["features.0.bias"].clone()
    altered["features.0.bias"][0] += 1e-3
    target = home / CONVERTED_NAME
    save_file(altered, str(target), metadata={"preprocessing": "caffe_bgr"})
    for attempt in (lambda: load_encoder(), lambda: load_encoder(target)):
        with pytest.raises(WeightsError, match="SHA-256") as info:
            attempt()
        assert_one_line(str(info.value))
        assert "semstyle weights fetch" in str(info.value)
    with pytest.raises(WeightsError, match="SHA-256"):
        load_hed()
    # the same file anywhere else is a user-supplied safetensors: loaded as is
    elsewhere = home.parent / "mine.safetensors"
    target.rename(elsewhere)
    enc = load_encoder(elsewhere)
    assert enc.preprocessing == "caffe_bgr"
    assert torch.equal(enc.convs[0].bias, altered["features.0.bias"])


def test_missing_explicit_path(tmp_path):
    missing = tmp_path / "nowhere" / "vgg.safetensors"
    with pytest.raises(WeightsError, match="not found") as info:
        load_encoder(missing)
    assert_one_line(str(info.value))
    with pytest.raises(WeightsError, match="not found"):
        load_hed(missing)


def test_convert_rejects_wrong_h5(tmp_path):
    bad = tmp_path / "hed.weights.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    out = tmp_path / "out" / CONVERTED_NAME
    with pytest.raises(WeightsError, match="SHA-256") as info:
        convert_hed_h5(bad, out)
    assert_one_line(str(info.value))
    assert not out.exists()


# --------------------------------------------------------------------------
# Other weight formats
# --------------------------------------------------------------------------

def test_torchvision_vgg16_state_dict(torchvision_pth, real_state):
    enc = load_encoder(torchvision_pth)
    assert enc.preprocessing == "torch_rgb"
    assert enc.blocks == VGG16_BLOCKS
    for conv, index in zip(enc.convs, VGG16_CONV_INDICES):
        assert torch.equal(conv.weight, real_state[f"features.{index}.weight"])
        assert torch.equal(conv.bias, real_state[f"features.{index}.bias"])
    image = torch.rand(1, 3, 16, 16)
    rgb_input = (image - torch.tensor(TORCH_RGB_MEAN).view(1, 3, 1, 1)) / torch.tensor(TORCH_RGB_STD).view(1, 3, 1, 1)
    expected = F.relu(F.conv2d(rgb_input, enc.convs[0].weight, enc.convs[0].bias, padding=1))
    assert torch.allclose(enc(image, ["relu1_1"])["relu1_1"], expected, atol=1e-4)


def test_torchvision_vgg19_state_dict(tmp_path):
    gen = torch.Generator().manual_seed(0)
    state, in_ch = {}, 3
    for index, width in zip(VGG19_CONV_INDICES, VGG_WIDTHS_19):
        state[f"features.{index}.weight"] = torch.randn(width, in_ch, 3, 3, generator=gen) * 0.05
        state[f"features.{index}.bias"] = torch.randn(width, generator=gen) * 0.01
        in_ch = width
    path = tmp_path / "vgg19.safetensors"
    save_file(state, str(path))
    enc = load_encoder(path)
    assert enc.blocks == VGG19_BLOCKS
    assert enc.names[-1] == "relu5_4" and len(enc.convs) == 16
    assert torch.equal(enc.convs[15].weight, state["features.34.weight"])
    assert torch.equal(enc.convs[8].bias, state["features.19.bias"])
    out = enc(torch.rand(1, 3, 32, 32), ["relu3_4", "relu5_4"])
    assert out["relu3_4"].shape == (1, 256, 8, 8)
    assert out["relu5_4"].shape == (1, 512, 2, 2)


def test_garbage_weights_file_is_not_told_to_fetch(tmp_path):
    """A user's own corrupt file: the error says what is wrong with it, not to run
    'weights fetch' (which would not repair it)."""
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(b"definitely not a tensor file" * 20)
    with pytest.raises(WeightsError) as info:
        load_encoder(path)
    assert_one_line(str(info.value))
    assert "not a valid safetensors file" in str(info.value) and "fetch" not in str(info.value)


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".ckpt"])
def test_pickled_weights_are_refused_without_unpickling(tmp_path, suffix):
    """Pickle can run code on load, so a user's .pth is never opened: even a real state
    dict is refused, with the way to convert it."""
    path = tmp_path / f"vgg{suffix}"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(WeightsError, match="pickled PyTorch files are not loaded") as info:
        load_encoder(path)
    assert_one_line(str(info.value))
    assert "safetensors" in str(info.value)


def test_state_dict_with_wrong_layer_count(tmp_path):
    path = tmp_path / "small.safetensors"
    save_file({"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)}, str(path))
    with pytest.raises(WeightsError, match="1 conv layers"):
        load_encoder(path)
    save_file({"state.features.0.weight": torch.zeros(1)}, str(path))  # no features.* keys
    with pytest.raises(WeightsError, match="0 conv layers"):
        load_encoder(path)


def test_state_dict_with_wrong_shapes(tmp_path):
    state, in_ch = {}, 3
    for index, width in zip(VGG16_CONV_INDICES, VGG_WIDTHS_16):
        state[f"features.{index}.weight"] = torch.zeros(width, in_ch, 3, 3)
        state[f"features.{index}.bias"] = torch.zeros(width)
        in_ch = width
    state["features.5.weight"] = torch.zeros(128, 64, 5, 5)  # 5x5 kernel: not VGG
    path = tmp_path / "wrong.safetensors"
    save_file(state, str(path))
    with pytest.raises(WeightsError, match="do not fit") as info:
        load_encoder(path)
    assert_one_line(str(info.value))


# --------------------------------------------------------------------------
# HED edge detector
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hed(real_weights_path) -> HEDEdgeDetector:
    return load_hed()


def test_hed_on_photo(hed):
    photo = load_photo(64)
    edges = hed(photo)
    assert edges.shape == (1, 1, 64, 64)
    assert edges.min() >= 0 and edges.max() <= 1
    assert edges.max() > 0.5  # a city photo has strong edges somewhere
    assert not edges.requires_grad


def test_hed_sees_drawn_rectangle(hed):
    size = 64
    canvas = Image.new("RGB", (size, size), (200, 200, 200))
    ImageDraw.Draw(canvas).rectangle([16, 16, 47, 47], outline=(20, 20, 20), width=2)
    rect = torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1).float().div(255)[None]
    flat = torch.full_like(rect, 200 / 255)
    e_rect, e_flat = hed(torch.cat([rect, flat]))
    assert e_rect.shape == e_flat.shape == (1, size, size)
    on_line = torch.zeros(size, size, dtype=torch.bool)
    on_line[14:50, 14:50] = True
    on_line[19:45, 19:45] = False
    inside = torch.zeros(size, size, dtype=torch.bool)
    inside[24:40, 24:40] = True
    # strong response on the outline, none on the flat image, little inside the box
    assert e_rect[0][on_line].mean() > 0.5
    assert e_flat[0][on_line].mean() < 0.05
    assert e_rect[0][on_line].mean() > 5 * e_rect[0][inside].mean()
    interior = torch.zeros(size, size, dtype=torch.bool)
    interior[8:-8, 8:-8] = True  # away from the image border
    assert e_rect[0][interior].mean() > 10 * e_flat[0][interior].mean()


def test_hed_needs_hed_heads(torchvision_pth):
    with pytest.raises(WeightsError, match="HED"):
        load_hed(torchvision_pth)


def test_a_verified_file_is_hashed_again_once_it_changes(home, real_state):
    """The .verified stamp skips hashing an unchanged file at every start, never a rewritten one."""
    from safetensors.torch import save_file

    target = home / CONVERTED_NAME
    save_file(real_state, str(target), metadata={"preprocessing": "caffe_bgr"})
    load_encoder()
    assert (home / (CONVERTED_NAME + ".verified")).is_file()
    load_encoder()  # from the stamp
    altered = {**real_state, "features.0.bias": real_state["features.0.bias"] + 1e-3}
    save_file(altered, str(target), metadata={"preprocessing": "caffe_bgr"})
    with pytest.raises(WeightsError, match="SHA-256"):
        load_encoder()
