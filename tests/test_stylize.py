"""Inference pipeline: sizes, strength, blends, colour preservation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semstyle.cli.stylize import parse_style_arg
from semstyle.errors import ConfigError, WeightsError
from semstyle.io import image_to_tensor
from semstyle.pipeline.prepare import fit_size, pad_for_network, preserve_color
from semstyle.stylizer import Stylizer

from .helpers import data_dir
from .models_fixture import tiny_model_dir


@pytest.fixture(scope="module")
def stylizer(tmp_path_factory):
    return Stylizer(tiny_model_dir(tmp_path_factory.mktemp("model")), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def photo():
    img = Image.open(data_dir("content") / "chicago.jpg").convert("RGB")
    return img.resize((101, 67))  # odd sizes on purpose


@pytest.fixture(scope="module")
def painting():
    return data_dir("styles") / "starry_night.jpg"


def test_output_keeps_odd_input_size(stylizer, photo, painting):
    result = stylizer.stylize(photo, painting)
    assert result.size == photo.size and result.mode == "RGB"


def test_size_caps_the_longer_side(stylizer, photo, painting):
    assert stylizer.stylize(photo, painting, size=50).size == (50, 33)
    assert fit_size(3000, 2000, None) == (1024, 683)
    assert fit_size(640, 480, None) == (640, 480)


def test_strength_interpolates_style_vectors(stylizer, photo, painting):
    stylizer = Stylizer(stylizer.model_path, device="cpu", precision="fp32", border_margin=0)
    content = stylizer.engine.read(photo.resize((96, 64)), None)  # no padding: same features both ways
    style_vec = stylizer.style_vector(painting)
    own_vec = stylizer.engine.generator.style_vector(stylizer.engine.encoder(content, stylizer.config.style_layers))
    zero = stylizer.engine.stylize(content, style_vec, strength=0.0, border_margin=0)
    half = stylizer.engine.stylize(content, style_vec, strength=0.5, border_margin=0)
    full = stylizer.engine.stylize(content, style_vec, strength=1.0, border_margin=0)
    own = stylizer.engine.stylize(content, own_vec, strength=1.0, border_margin=0)
    mid = stylizer.engine.stylize(content, 0.5 * style_vec + 0.5 * own_vec, strength=1.0, border_margin=0)
    assert torch.allclose(zero, own, atol=1e-5)
    assert torch.allclose(half, mid, atol=1e-5)
    assert not torch.allclose(zero, full, atol=1e-3)


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan")])
def test_bad_strength_is_rejected(stylizer, photo, painting, strength):
    with pytest.raises(ConfigError, match="strength"):
        stylizer.stylize(photo, painting, strength=strength)


@pytest.mark.slow
def test_blend_is_the_weighted_sum_of_style_vectors(stylizer):
    styles = data_dir("styles")
    a, b = styles / "starry_night.jpg", styles / "the_scream.jpg"
    blend = stylizer.style_vector([(a, 0.7), (b, 0.3)])
    expected = 0.7 * stylizer.style_vector(a) + 0.3 * stylizer.style_vector(b)
    assert torch.allclose(blend, expected, atol=1e-5)
    assert torch.allclose(stylizer.style_vector([(a, 7), (b, 3)]), expected, atol=1e-5)


def test_parse_style_arg():
    assert parse_style_arg("a.jpg:0.7").weight == pytest.approx(0.7)
    assert str(parse_style_arg("a.jpg:0.7").image) == "a.jpg"
    assert parse_style_arg("dir:x/a.jpg").weight == 1.0
    assert str(parse_style_arg("b.jpg").image) == "b.jpg"


def test_preserve_color_keeps_content_chroma(stylizer, photo, painting):
    stylized = torch.rand(1, 3, 8, 8) * 0.5 + 0.25
    content = torch.rand(1, 3, 8, 8) * 0.5 + 0.25
    mixed = preserve_color(stylized, content)
    to_y = torch.tensor([0.299, 0.587, 0.114])
    luma = lambda t: torch.einsum("c,nchw->nhw", to_y, t)  # noqa: E731
    assert torch.allclose(luma(mixed), luma(stylized), atol=1e-4)
    result = stylizer.stylize(photo, painting, preserve_colors=True)
    assert result.size == photo.size


def test_missing_default_model_says_what_to_do(monkeypatch, tmp_path):
    import semstyle.pipeline.engine as engine

    monkeypatch.setattr(engine, "default_model_path", lambda: tmp_path / "absent")
    with pytest.raises(WeightsError, match="semstyle train"):
        Stylizer(device="cpu")


def test_run_directory_means_latest_checkpoint(tmp_path, photo, painting):
    import json

    from semstyle.checkpoints import checkpoint_path, prefixed
    from semstyle.config import to_dict
    from semstyle.nn.generator import Generator
    from semstyle.tensorfile import write_tensors

    from .models_fixture import TINY_MODEL

    for step, seed in ((1, 1), (2, 2)):
        torch.manual_seed(seed)
        g = Generator(TINY_MODEL)
        checkpoint_path(tmp_path, step).parent.mkdir(parents=True, exist_ok=True)
        write_tensors(prefixed("generator", g.state_dict()), checkpoint_path(tmp_path, step),
                      {"format": "semstyle-checkpoint", "step": str(step),
                       "model_config": json.dumps(to_dict(TINY_MODEL))})
    loaded = Stylizer(tmp_path, device="cpu", precision="fp32")
    assert torch.equal(loaded.engine.generator.decoder.to_rgb[1].weight, g.decoder.to_rgb[1].weight)


@pytest.mark.slow
def test_shipped_default_model_stylizes_a_photo(photo, painting):
    """The model in src/semstyle/assets/default loads and really stylizes:
    the output's colour statistics move towards the painting's."""
    stylizer = Stylizer(device="cpu")
    assert stylizer.config.content_layer == "relu3_1"
    result = stylizer.stylize(photo, painting)
    assert result.size == photo.size

    def to_mean(img: Image.Image) -> torch.Tensor:
        return image_to_tensor(img.resize((64, 64))).mean(dim=(0, 2, 3))

    style_mean = to_mean(Image.open(painting).convert("RGB"))
    assert (to_mean(result) - style_mean).norm() < (to_mean(photo) - style_mean).norm()
    same = stylizer.stylize(photo, painting, strength=0.0)
    assert (to_mean(same) - to_mean(photo)).norm() < (to_mean(result) - to_mean(photo)).norm()


@pytest.mark.parametrize("height, width", [(67, 101), (32, 32), (8, 13), (5, 7)])
def test_pad_for_network_reflects_and_crops_back(height, width):
    image = torch.rand(2, 3, height, width)
    padded, (rows, cols) = pad_for_network(image, margin=16)
    assert padded.shape[-2] % 8 == 0 and padded.shape[-1] % 8 == 0
    assert torch.equal(padded[..., rows, cols], image)
    top = rows.start
    if top:  # the margin mirrors the image: row top-1 is row 1 of the image
        assert torch.equal(padded[..., top - 1, cols], image[..., 1, :])


def border_step(img: Image.Image) -> float:
    """Mean colour difference (0..255) between the outer 3 px and the next 8 px, over the four sides."""
    a = np.asarray(img, dtype=np.float64)
    sides = (a, a[::-1], a.transpose(1, 0, 2), a.transpose(1, 0, 2)[::-1])
    return float(np.mean([np.abs(s[:3].mean(axis=(0, 1)) - s[4:12].mean(axis=(0, 1))).mean() for s in sides]))


@pytest.mark.slow
def test_border_margin_removes_the_frame_of_zero_padding():
    """Without reflected margins the shipped model paints a frame along the border."""
    with_margin = Stylizer(device="cpu", precision="fp32")
    without = Stylizer(device="cpu", precision="fp32", border_margin=0)
    framed, clean, photos = [], [], []
    for photo_name, style_name in [("tubingen", "starry_night"), ("golden_gate", "the_scream"),
                                   ("chicago", "composition_vii")]:
        photo = Image.open(data_dir("content") / f"{photo_name}.jpg").convert("RGB")
        photo.thumbnail((384, 384))  # at this size the step is the frame's, not the photo's texture
        vector = with_margin.style_vector(data_dir("styles") / f"{style_name}.jpg")
        framed.append(border_step(without.stylize(photo, vector)))
        clean.append(border_step(with_margin.stylize(photo, vector)))
        photos.append(border_step(photo))
    assert all(c < 0.8 * f for c, f in zip(clean, framed))
    assert np.median(clean) < 0.6 * np.median(framed)
    assert np.median(clean) < 1.5 * np.median(photos)


def test_bfloat16_precision_is_close_to_float32(stylizer, tmp_path_factory):
    """precision='bf16' (what 'auto' picks on CPUs with AVX-512 BF16) gives
    float32 output within a few grey levels of the exact computation."""
    fast = Stylizer(stylizer.model_path, device="cpu", precision="bf16")
    photo = torch.rand(1, 3, 40, 56)
    vector = stylizer.style_vector(Image.fromarray((np.random.default_rng(0).random((48, 48, 3)) * 255)
                                                   .astype(np.uint8)))
    exact, approx = stylizer.engine.stylize(photo, vector), fast.engine.stylize(photo, vector)
    assert approx.dtype == torch.float32 and approx.shape == exact.shape
    assert (approx - exact).abs().mean() < 2 / 255 and not torch.equal(approx, exact)


def test_precision_names():
    from semstyle.devices import resolve_precision

    assert resolve_precision("fp32", torch.device("cpu")) == torch.float32
    assert resolve_precision("bf16", torch.device("cpu")) == torch.bfloat16
    assert resolve_precision("auto", torch.device("cpu")) in (torch.float32, torch.bfloat16)
    with pytest.raises(ConfigError, match="precision"):
        resolve_precision("fp8", torch.device("cpu"))


def _huge_page_kib(env_value: str | None) -> tuple[str, int]:
    """In a fresh process importing semstyle before torch: the allocator setting it ends up with,
    and how much anonymous huge-page memory a 64 MiB tensor gets."""
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    if env_value is not None:
        env["THP_MEM_ALLOC_ENABLE"] = env_value
    code = ("import os, semstyle, torch\n"
            "x = torch.ones(16 << 20)\n"
            "kib = sum(int(line.split()[1]) for line in open('/proc/self/smaps_rollup') "
            "if line.startswith('AnonHugePages:'))\n"
            "print(os.environ['THP_MEM_ALLOC_ENABLE'], kib)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    setting, kib = out.split()
    return setting, int(kib)


@pytest.mark.skipif(not Path("/sys/kernel/mm/transparent_hugepage/enabled").exists()
                    or "[never]" in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text(),
                    reason="no transparent huge pages on this kernel")
def test_importing_semstyle_gives_torch_huge_pages_unless_opted_out():
    """The big maps of a forward pass come from huge pages (semstyle/__init__.py says why);
    a user's THP_MEM_ALLOC_ENABLE=0 is kept."""
    setting, kib = _huge_page_kib(None)
    assert setting == "1" and kib >= 32 * 1024
    setting, _ = _huge_page_kib("0")
    assert setting == "0"
