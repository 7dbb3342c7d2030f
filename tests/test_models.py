"""Generator, style encoder/injection and discriminator: shapes, initial
behaviour, gradients and architectural promises (no transposed convs,
reflection padding, spectral norm)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from semstyle.config import ModelConfig
from semstyle.nn.discriminator import MultiScaleDiscriminator, PatchDiscriminator
from semstyle.nn.generator import Decoder, FeatureModulation, Generator, StyleEncoder, StyleInjection, tap_channels
from semstyle.nn.resample import upsample2x_reflect_pad
from semstyle.nn.stats import channel_mean_std

STYLE_DIM = 16


@pytest.fixture
def small_config() -> ModelConfig:
    return ModelConfig(style_dim=STYLE_DIM, decoder_width=32, disc_channels=8, disc_scales=2)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def fake_vgg_feats(layers, size=16, batch=2) -> dict[str, torch.Tensor]:
    """Non-negative (post-ReLU-like) features with VGG channel counts and the
    resolution each tap has for a ``size`` px image."""
    factor = {"relu1": 1, "relu2": 2, "relu3": 4, "relu4": 8, "relu5": 16}
    return {t: torch.rand(batch, tap_channels(t), max(1, size // factor[t.split("_")[0]]),
                          max(1, size // factor[t.split("_")[0]])) for t in layers}


# --------------------------------------------------------------------------
# Statistics and style vector
# --------------------------------------------------------------------------

def test_tap_channels():
    assert [tap_channels(t) for t in ("relu1_1", "relu2_2", "relu3_3", "relu4_1", "relu5_4")] == \
        [64, 128, 256, 512, 512]


def test_channel_mean_std_by_hand():
    feat = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[5.0, 5.0], [5.0, 5.0]]],
                         [[[0.0, 0.0], [0.0, 8.0]], [[-1.0, 1.0], [-1.0, 1.0]]]], dtype=torch.float64)
    mean, std = channel_mean_std(feat)
    assert mean.shape == std.shape == (2, 2)
    eps = 1e-5
    # image 0: channel 0 mean 2.5, var 1.25 ; channel 1 mean 5, var 0
    # image 1: channel 0 mean 2, var (4+4+4+36)/4 = 12 ; channel 1 mean 0, var 1
    assert mean.flatten().tolist() == pytest.approx([2.5, 5.0, 2.0, 0.0])
    assert std.flatten().tolist() == pytest.approx([math.sqrt(1.25 + eps), math.sqrt(eps),
                                                    math.sqrt(12 + eps), math.sqrt(1 + eps)])
    _, std0 = channel_mean_std(feat, eps=0.0)
    assert std0.flatten().tolist() == pytest.approx([math.sqrt(1.25), 0.0, math.sqrt(12), 1.0])
    # the training path (a gradient flows) computes the same numbers
    mean_g, std_g = channel_mean_std(feat.clone().requires_grad_(True))
    assert mean_g.detach().flatten().tolist() == pytest.approx(mean.flatten().tolist())
    assert std_g.detach().flatten().tolist() == pytest.approx(std.flatten().tolist())


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("shape", [(1, 64, 300, 211), (3, 256, 40, 37), (2, 5, 1, 1)])
def test_chunked_statistics_match_the_library_path(shape, layout):
    """At inference (no gradient) the statistics are read in chunks and merged (Chan's update);
    with a gradient flowing they are the plain two-pass library ops. Both must give the same
    numbers on maps larger than a chunk, in either layout, in float32 and bfloat16."""
    base = (torch.randn(*shape, dtype=torch.float64) * 3 + 2).relu()
    exact_mean = base.mean(dim=(2, 3))
    exact_std = (base.var(dim=(2, 3), unbiased=False) + 1e-5).sqrt()
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 1e-2)):
        feat = base.to(dtype).contiguous(memory_format=layout)
        fast_mean, fast_std = channel_mean_std(feat)
        slow_mean, slow_std = channel_mean_std(feat.clone().requires_grad_(True))
        assert fast_mean.dtype == feat.dtype and fast_mean.shape == (shape[0], shape[1])
        torch.testing.assert_close(fast_mean.double(), slow_mean.detach().double(), rtol=tol, atol=tol)
        torch.testing.assert_close(fast_std.double(), slow_std.detach().double(), rtol=tol, atol=tol)
        torch.testing.assert_close(fast_std.double(), exact_std, rtol=tol, atol=tol)
        torch.testing.assert_close(fast_mean.double(), exact_mean, rtol=tol, atol=tol)


def test_style_encoder_output_shape_and_dependence():
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    enc = StyleEncoder(layers, STYLE_DIM)
    feats = fake_vgg_feats(layers, size=16, batch=3)
    vec = enc(feats)
    assert vec.shape == (3, STYLE_DIM)
    assert torch.isfinite(vec).all()
    # different statistics -> different vectors; the batch items are independent
    assert not torch.allclose(vec[0], vec[1])
    single = enc({t: f[1:2] for t, f in feats.items()})
    assert torch.allclose(single[0], vec[1], atol=1e-5)
    # only statistics matter: a spatial permutation of the features gives the same vector
    perm = torch.randperm(16 * 16)
    shuffled = dict(feats)
    f = feats["relu1_1"]
    shuffled["relu1_1"] = f.flatten(2)[..., perm].view_as(f)
    assert torch.allclose(enc(shuffled), vec, atol=1e-5)


def test_style_encoder_with_one_layer():
    enc = StyleEncoder(("relu3_1",), 8)
    assert enc(fake_vgg_feats(("relu3_1",), size=16, batch=1)).shape == (1, 8)


# --------------------------------------------------------------------------
# Style injection (AdaIN) and decoder modulation (FiLM)
# --------------------------------------------------------------------------

def test_style_injection_at_init_normalizes_each_channel():
    inj = StyleInjection(STYLE_DIM, 6)
    feat = torch.randn(2, 6, 8, 8) * torch.tensor([1.0, 5.0, 0.5, 10.0, 2.0, 3.0]).view(1, 6, 1, 1) + 4.0
    out = inj(feat, torch.randn(2, STYLE_DIM))
    assert out.shape == feat.shape
    mean = out.mean(dim=(2, 3))
    std = out.std(dim=(2, 3), unbiased=False)
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-5)
    assert torch.allclose(std, torch.ones_like(std), atol=1e-3)


def test_style_injection_gives_requested_statistics():
    channels = 3
    inj = StyleInjection(STYLE_DIM, channels)
    wanted_mean = [1.5, -2.0, 0.0]
    wanted_std = [2.0, 0.5, 3.0]
    with torch.no_grad():  # bias layout: (log std per channel, mean per channel)
        inj.affine.bias.copy_(torch.tensor([math.log(s) for s in wanted_std] + wanted_mean))
    feat = torch.randn(2, channels, 8, 8) * 4 + 7
    out = inj(feat, torch.randn(2, STYLE_DIM))
    mean = out.mean(dim=(2, 3))
    std = out.std(dim=(2, 3), unbiased=False)
    assert torch.allclose(mean, torch.tensor([wanted_mean] * 2), atol=1e-4)
    assert torch.allclose(std, torch.tensor([wanted_std] * 2), atol=1e-3)
    # the spatial pattern is the content's: output is an increasing affine map of the input
    corr = torch.corrcoef(torch.stack([feat[0, 1].flatten(), out[0, 1].flatten()]))[0, 1]
    assert corr.item() == pytest.approx(1.0, abs=1e-5)


def test_style_injection_follows_the_style_vector():
    inj = StyleInjection(STYLE_DIM, 4)
    with torch.no_grad():
        inj.affine.weight.normal_()
    feat = torch.randn(1, 4, 6, 6)
    a = inj(feat, torch.randn(1, STYLE_DIM))
    b = inj(feat, torch.randn(1, STYLE_DIM))
    assert not torch.allclose(a, b)


def test_feature_modulation_is_identity_at_init():
    mod = FeatureModulation(STYLE_DIM, 5)
    x = torch.randn(2, 5, 7, 3)
    assert torch.equal(mod(x, torch.randn(2, STYLE_DIM)), x)


def test_feature_modulation_scale_and_shift_by_hand():
    mod = FeatureModulation(STYLE_DIM, 2)
    with torch.no_grad():  # bias layout: (scale per channel, shift per channel)
        mod.affine.bias.copy_(torch.tensor([1.0, -0.5, 3.0, 0.0]))
    x = torch.tensor([[[[1.0, 2.0]], [[4.0, -2.0]]]])
    out = mod(x, torch.zeros(1, STYLE_DIM))
    # channel 0: x * 2 + 3 ; channel 1: x * 0.5 + 0
    assert out.tolist() == [[[[5.0, 7.0]], [[2.0, -1.0]]]]


# --------------------------------------------------------------------------
# Decoder / generator
# --------------------------------------------------------------------------

def test_decoder_output_is_eight_times_the_feature_size():
    dec = Decoder(STYLE_DIM, width=32)
    feat = torch.rand(2, 512, 4, 5)
    out = dec(feat, torch.randn(2, STYLE_DIM))
    assert out.shape == (2, 3, 32, 40)


def test_decoder_without_modulation():
    dec = Decoder(STYLE_DIM, width=16, modulate=False, in_channels=256)
    assert len(dec.modulations) == 0
    assert dec(torch.rand(1, 256, 3, 3), torch.randn(1, STYLE_DIM)).shape == (1, 3, 24, 24)


def test_generator_shape_and_gradients(small_config):
    small_config.content_layer = "relu4_1"
    gen = Generator(small_config)
    feats = fake_vgg_feats(small_config.style_layers, size=32, batch=2)
    style = gen.style_vector(feats)
    assert style.shape == (2, STYLE_DIM)
    content = torch.rand(2, 512, 4, 4, requires_grad=True)
    out = gen({"relu4_1": content}, style)
    assert out.shape == (2, 3, 32, 32)
    out.square().mean().backward()
    assert content.grad is not None and content.grad.abs().sum() > 0
    assert gen.decoder.to_rgb[1].weight.grad.abs().sum() > 0
    # the zero-initialised style layers get gradients, so the style can be learnt
    assert gen.injection.affine.weight.grad.abs().sum() > 0
    assert all(m.affine.weight.grad.abs().sum() > 0 for m in gen.decoder.modulations)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_upsample_and_pad_equals_interpolate_then_reflect(dtype):
    for shape in [(1, 4, 5, 7), (2, 3, 1, 1), (1, 8, 6, 6)]:
        for layout in [torch.contiguous_format, torch.channels_last]:
            x = torch.randn(shape, dtype=dtype).contiguous(memory_format=layout)
            expected = F.pad(F.interpolate(x, scale_factor=2.0, mode="nearest"), (1, 1, 1, 1), mode="reflect")
            fused = upsample2x_reflect_pad(x)
            assert torch.equal(fused, expected)
            assert fused.is_contiguous(memory_format=torch.channels_last)
    x = torch.randn(1, 2, 3, 3, requires_grad=True)  # training: the library's ops and their backward
    upsample2x_reflect_pad(x).sum().backward()
    assert x.grad.sum().item() == 2 * 8 * 8


@pytest.mark.parametrize("layer", ["relu3_1", "relu4_1"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_folding_the_injection_and_film_into_the_convolutions_gives_the_same_image(small_config, layer, dtype):
    """Inference's ``fold=True`` (AdaIN and every FiLM as the next convolution's weights, see
    nn/fold.py) returns the unfolded image, for given statistics too; with masks or a batch it
    takes the plain path."""
    small_config.content_layer = layer
    gen = Generator(small_config).eval()
    with torch.no_grad():  # trained-like: every FiLM and the injection really scale and shift
        for m in [gen.injection, *gen.decoder.modulations]:
            m.affine.weight.normal_(0, 0.3)
            m.affine.bias.normal_(0, 0.3)
    gen.use_decoder_dtype(dtype)
    feats = {layer: torch.rand(2, tap_channels(layer), 6, 7)}
    one = {layer: feats[layer][:1].to(dtype)}
    style = torch.randn(1, STYLE_DIM)
    thumbnail = gen.content_stats({layer: feats[layer][1:]})
    tolerance = 1e-4 if dtype == torch.float32 else 0.03
    with torch.no_grad():
        for options in (dict(), dict(stats=thumbnail)):
            want = gen.run(one, style, **options)
            got = gen.run(one, style, fold=True, **options)
            assert want.injected is not None and got.injected is None
            assert want.image.float().std() > 0.05
            torch.testing.assert_close(got.image.float(), want.image.float(), rtol=tolerance, atol=tolerance)
        masks = torch.ones(1, 1, 6, 7)
        assert gen.run(one, style[:, None], masks=masks, fold=True).injected is not None
        assert gen.run({layer: feats[layer].to(dtype)}, style, fold=True).injected is not None


def test_generator_content_layer_sets_decoder_input(small_config):
    """relu3_1 is 1/4 of the image size (two poolings), relu4_1 is 1/8."""
    small_config.content_layer = "relu3_1"
    gen = Generator(small_config)
    assert gen({"relu3_1": torch.rand(1, 256, 4, 4)}, torch.randn(1, STYLE_DIM)).shape == (1, 3, 16, 16)
    small_config.content_layer = "relu4_1"
    gen = Generator(small_config)
    assert gen({"relu4_1": torch.rand(1, 512, 4, 4)}, torch.randn(1, STYLE_DIM)).shape == (1, 3, 32, 32)
    small_config.content_layer = "relu5_1"
    with pytest.raises(ValueError, match="relu3_1 or relu4_1"):
        Generator(small_config)


def test_generator_has_no_transposed_convolutions(small_config):
    gen = Generator(small_config)
    kinds = {type(m) for m in gen.modules()}
    assert not kinds & {nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d}
    assert nn.Conv2d in kinds


def test_decoder_pads_by_reflection(small_config):
    dec = Generator(small_config).decoder
    convs = [m for m in dec.modules() if isinstance(m, nn.Conv2d)]
    pads = [m for m in dec.modules() if isinstance(m, nn.ReflectionPad2d)]
    assert convs and len(pads) == len(convs)
    # the padding comes from the ReflectionPad2d, not from zero padding in the conv
    assert all(c.padding == (0, 0) for c in convs)


# --------------------------------------------------------------------------
# Discriminator
# --------------------------------------------------------------------------

def test_multiscale_discriminator_outputs(small_config):
    small_config.disc_scales = 3
    disc = MultiScaleDiscriminator(small_config)
    image = torch.rand(2, 3, 32, 32)
    logits = disc(image, torch.randn(2, STYLE_DIM))
    assert isinstance(logits, list) and len(logits) == 3
    # three stride-2 convs: 32 -> 4 patches per side; each scale halves the image
    assert [tuple(t.shape) for t in logits] == [(2, 1, 4, 4), (2, 1, 2, 2), (2, 1, 1, 1)]
    sum(t.mean() for t in logits).backward()
    assert all(p.grad is not None for p in disc.parameters() if p.requires_grad)


def test_conditional_discriminator_uses_the_style_vector(small_config):
    small_config.disc_conditional = True
    disc = MultiScaleDiscriminator(small_config).eval()
    image = torch.rand(1, 3, 32, 32)
    a = disc(image, torch.randn(1, STYLE_DIM))
    b = disc(image, torch.randn(1, STYLE_DIM))
    for x, y in zip(a, b):
        assert not torch.allclose(x, y)


def test_unconditional_discriminator_ignores_the_style_vector(small_config):
    small_config.disc_conditional = False
    disc = MultiScaleDiscriminator(small_config).eval()
    assert all(d.projection is None for d in disc.scales)
    image = torch.rand(1, 3, 32, 32)
    a = disc(image, torch.randn(1, STYLE_DIM))
    b = disc(image, torch.randn(1, STYLE_DIM))
    c = disc(image)
    for x, y, z in zip(a, b, c):
        assert torch.equal(x, y) and torch.equal(x, z)


def test_discriminator_is_spectrally_normalized(small_config):
    disc = MultiScaleDiscriminator(small_config)
    layers = [m for m in disc.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    # per scale: 4 body convs, the head and the style projection
    assert len(layers) == small_config.disc_scales * 6
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    # the normalised weights have largest singular value about 1
    image = torch.rand(1, 3, 32, 32)
    for _ in range(5):  # a few power iterations in training mode
        disc(image, torch.randn(1, STYLE_DIM))
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.05)


def test_patch_discriminator_projection_adds_inner_product():
    disc = PatchDiscriminator(channels=4, style_dim=STYLE_DIM).eval()
    image = torch.rand(1, 3, 16, 16)
    style = torch.randn(1, STYLE_DIM)
    h = disc.body(image * 2 - 1)
    expected = disc.head(h) + (h * disc.projection(style)[..., None, None]).sum(1, keepdim=True)
    assert torch.allclose(disc(image, style), expected, atol=1e-6)
    # without a style vector only the unconditional head is used
    assert torch.allclose(disc(image), disc.head(h), atol=1e-6)
