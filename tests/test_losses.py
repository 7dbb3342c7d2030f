"""Every loss term checked against values worked out by hand on tiny tensors.

The expected numbers are computed here with plain Python (``math``) from the
definitions, never copied from running the implementation.
"""

from __future__ import annotations

import math

import pytest
import torch

from semstyle.nn.losses import (
    content_loss,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    gram_matrix,
    gram_style_loss,
    identity_loss,
    injected_content_loss,
    mean_std_style_loss,
    r1_penalty,
    style_code_loss,
    style_loss,
    total_variation,
)

EPS = 1e-5  # the variance epsilon of models.channel_mean_std


def fmap(values, channels=1) -> torch.Tensor:
    """A (1, C, H, W) float64 feature map from nested lists [[row, ...], ...] per channel."""
    t = torch.tensor(values, dtype=torch.float64)
    if channels == 1 and t.dim() == 2:
        t = t[None]
    return t[None]


def softplus(x: float) -> float:
    return math.log(1.0 + math.exp(x))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


def pstd(xs) -> float:
    """Population std with the implementation's epsilon under the root."""
    m = mean(xs)
    return math.sqrt(mean((x - m) ** 2 for x in xs) + EPS)


# --------------------------------------------------------------------------
# Content loss
# --------------------------------------------------------------------------

def test_content_loss_unnormalized_is_mse_summed_over_layers():
    out = {"a": fmap([[1.0, 2.0], [3.0, 4.0]]), "b": fmap([[2.0, 2.0], [2.0, 2.0]])}
    ref = {"a": fmap([[0.0, 0.0], [0.0, 0.0]]), "b": fmap([[0.0, 1.0], [2.0, 3.0]])}
    # layer a: (1 + 4 + 9 + 16) / 4 = 7.5 ; layer b: (4 + 1 + 0 + 1) / 4 = 1.5
    assert content_loss(out, ref, ["a"], normalize=False).item() == pytest.approx(7.5)
    assert content_loss(out, ref, ["b"], normalize=False).item() == pytest.approx(1.5)
    assert content_loss(out, ref, ["a", "b"], normalize=False).item() == pytest.approx(9.0)


def test_content_loss_normalized_by_hand():
    out = {"a": fmap([[1.0, 2.0], [3.0, 4.0]])}
    ref = {"a": fmap([[4.0, 3.0], [2.0, 1.0]])}
    # both: mean 2.5, variance 1.25 -> normalised values (x - 2.5) / sqrt(1.25 + eps)
    s = math.sqrt(1.25 + EPS)
    o = [(v - 2.5) / s for v in (1, 2, 3, 4)]
    r = [(v - 2.5) / s for v in (4, 3, 2, 1)]
    expected = mean((a - b) ** 2 for a, b in zip(o, r))  # = 5 / (1.25 + eps), about 4
    assert expected == pytest.approx(4.0, rel=1e-4)
    assert content_loss(out, ref, ["a"], normalize=True).item() == pytest.approx(expected, rel=1e-9)


def test_content_loss_normalized_ignores_per_channel_affine_changes():
    torch.manual_seed(0)
    feat = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    scale = torch.tensor([2.0, 0.5, 7.0], dtype=torch.float64).view(1, 3, 1, 1)
    shift = torch.tensor([1.0, -3.0, 0.25], dtype=torch.float64).view(1, 3, 1, 1)
    restyled = {"x": feat * scale + shift}
    assert content_loss(restyled, {"x": feat}, ["x"], normalize=True).item() < 1e-6
    # ... which is exactly what the unnormalised loss does not ignore
    assert content_loss(restyled, {"x": feat}, ["x"], normalize=False).item() > 1.0


# --------------------------------------------------------------------------
# Style losses
# --------------------------------------------------------------------------

# Two channels, one row of two pixels each (shape 1x2x1x2).
OUT_2CH = [[[1.0, 3.0]], [[0.0, 0.0]]]
STY_2CH = [[[2.0, 2.0]], [[1.0, 5.0]]]


def hand_mean_std_layer(out_channels, sty_channels) -> float:
    """(MSE of channel means + MSE of channel stds) / mean(style std^2)."""
    out_m = [mean(c) for c in out_channels]
    sty_m = [mean(c) for c in sty_channels]
    out_s = [pstd(c) for c in out_channels]
    sty_s = [pstd(c) for c in sty_channels]
    mse_m = mean((a - b) ** 2 for a, b in zip(out_m, sty_m))
    mse_s = mean((a - b) ** 2 for a, b in zip(out_s, sty_s))
    scale = mean(s ** 2 for s in sty_s) + 1e-8
    return (mse_m + mse_s) / scale


def test_mean_std_style_loss_by_hand():
    out, sty = {"l": fmap(OUT_2CH, 2)}, {"l": fmap(STY_2CH, 2)}
    # means: out (2, 0), style (2, 3) -> MSE 4.5
    # stds:  out (1, 0), style (0, 2) -> MSE (1 + 4) / 2 = 2.5 (up to eps)
    # relative scale: mean of style std^2 = (0 + 4) / 2 = 2
    expected = hand_mean_std_layer([[1, 3], [0, 0]], [[2, 2], [1, 5]])
    assert expected == pytest.approx((4.5 + 2.5) / 2.0, rel=2e-3)
    assert mean_std_style_loss(out, sty, ["l"]).item() == pytest.approx(expected, rel=1e-9)


def test_mean_std_style_loss_is_relative_per_layer():
    """Scaling one layer's features by k scales its raw error by k^2 and its
    style std^2 by k^2: the relative loss stays the same (the docstring's point)."""
    # channels with std well above sqrt(eps), so the epsilon does not matter
    out, sty = fmap([[[1.0, 3.0]], [[0.0, 4.0]]], 2), fmap([[[2.0, 6.0]], [[1.0, 5.0]]], 2)
    base = mean_std_style_loss({"l": out}, {"l": sty}, ["l"]).item()
    # by hand: means (2, 2) vs (4, 3) -> MSE 2.5 ; stds (1, 2) vs (2, 2) -> MSE 0.5 ; scale (4 + 4) / 2
    assert base == pytest.approx((2.5 + 0.5) / 4.0, rel=1e-4)
    scaled = mean_std_style_loss({"l": 10 * out}, {"l": 10 * sty}, ["l"]).item()
    assert scaled == pytest.approx(base, rel=1e-4)
    # layers add up
    both = mean_std_style_loss({"a": out, "b": 10 * out}, {"a": sty, "b": 10 * sty}, ["a", "b"]).item()
    assert both == pytest.approx(base + scaled, rel=1e-9)


def test_mean_std_style_loss_zero_for_matching_statistics():
    # same per-channel mean and std, different spatial arrangement
    a = fmap([[[1.0, 3.0]], [[5.0, 1.0]]], 2)
    b = fmap([[[3.0, 1.0]], [[1.0, 5.0]]], 2)
    assert mean_std_style_loss({"l": a}, {"l": b}, ["l"]).item() == pytest.approx(0.0, abs=1e-12)


def test_gram_matrix_by_hand():
    feat = fmap([[[1.0, 2.0]], [[3.0, 4.0]]], 2)  # C=2, H=1, W=2 -> divide by 4
    # F = [[1, 2], [3, 4]]; F F^T = [[5, 11], [11, 25]]
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]], dtype=torch.float64) / 4
    gram = gram_matrix(feat)
    assert gram.shape == (1, 2, 2)
    assert torch.allclose(gram, expected)


def test_gram_matrix_batch_and_symmetry():
    torch.manual_seed(1)
    feat = torch.rand(3, 4, 2, 5, dtype=torch.float64)
    gram = gram_matrix(feat)
    assert gram.shape == (3, 4, 4)
    assert torch.allclose(gram, gram.transpose(1, 2))
    # entry (i, j) of image n = sum over pixels of F_i * F_j / (C*H*W)
    n, i, j = 2, 1, 3
    hand = sum(feat[n, i].flatten()[k].item() * feat[n, j].flatten()[k].item() for k in range(10)) / (4 * 2 * 5)
    assert gram[n, i, j].item() == pytest.approx(hand)


def test_gram_style_loss_by_hand():
    out = fmap([[[1.0, 2.0]], [[3.0, 4.0]]], 2)
    sty = fmap([[[1.0, 0.0]], [[0.0, 2.0]]], 2)
    g_out = [[5 / 4, 11 / 4], [11 / 4, 25 / 4]]
    g_sty = [[1 / 4, 0.0], [0.0, 4 / 4]]
    num = sum((g_out[i][j] - g_sty[i][j]) ** 2 for i in range(2) for j in range(2))
    den = sum(g_sty[i][j] ** 2 for i in range(2) for j in range(2))
    expected = num / den  # relative squared Frobenius error
    got = gram_style_loss({"l": out}, {"l": sty}, ["l"]).item()
    assert got == pytest.approx(expected, rel=1e-9)
    # summed over layers
    two = gram_style_loss({"a": out, "b": out}, {"a": sty, "b": sty}, ["a", "b"]).item()
    assert two == pytest.approx(2 * expected, rel=1e-9)


def test_style_loss_dispatch():
    out, sty = {"l": fmap(OUT_2CH, 2)}, {"l": fmap(STY_2CH, 2)}
    ms = hand_mean_std_layer([[1, 3], [0, 0]], [[2, 2], [1, 5]])
    g_out = [[10 / 4, 0.0], [0.0, 0.0]]  # [1,3]·[1,3]=10, [1,3]·[0,0]=0
    g_sty = [[8 / 4, 12 / 4], [12 / 4, 26 / 4]]  # [2,2]·[2,2]=8, [2,2]·[1,5]=12, [1,5]·[1,5]=26
    gram = (sum((g_out[i][j] - g_sty[i][j]) ** 2 for i in range(2) for j in range(2))
            / sum(g_sty[i][j] ** 2 for i in range(2) for j in range(2)))
    assert style_loss(out, sty, ["l"]).item() == pytest.approx(ms, rel=1e-9)  # default: mean_std
    assert style_loss(out, sty, ["l"], kind="mean_std").item() == pytest.approx(ms, rel=1e-9)
    assert style_loss(out, sty, ["l"], kind="gram").item() == pytest.approx(gram, rel=1e-9)
    assert style_loss(out, sty, ["l"], kind="both").item() == pytest.approx(ms + gram, rel=1e-9)


def test_style_loss_unknown_kind():
    out = {"l": fmap(OUT_2CH, 2)}
    with pytest.raises(ValueError, match="wasserstein"):
        style_loss(out, out, ["l"], kind="wasserstein")


# --------------------------------------------------------------------------
# Adversarial losses
# --------------------------------------------------------------------------

REAL = [2.0, -1.0]
FAKE = [0.5, -3.0]


def logits(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).view(1, 1, 1, -1)


def test_adversarial_losses_at_zero_logits():
    zero = [torch.zeros(2, 1, 3, 3, dtype=torch.float64)]
    log2 = math.log(2.0)
    for kind in ("bce", "nonsat"):  # -log(1/2) - log(1/2)
        assert discriminator_adversarial_loss(zero, zero, kind).item() == pytest.approx(2 * log2)
    assert discriminator_adversarial_loss(zero, zero, "hinge").item() == pytest.approx(2.0)
    assert generator_adversarial_loss(zero, "bce").item() == pytest.approx(-log2)  # log(1 - 1/2)
    assert generator_adversarial_loss(zero, "nonsat").item() == pytest.approx(log2)  # -log(1/2)
    assert generator_adversarial_loss(zero, "hinge").item() == pytest.approx(0.0)


@pytest.mark.parametrize("kind", ["bce", "nonsat"])
def test_discriminator_bce_by_hand(kind):
    expected = (mean(-math.log(sigmoid(r)) for r in REAL)
                + mean(-math.log(1 - sigmoid(f)) for f in FAKE))
    got = discriminator_adversarial_loss([logits(REAL)], [logits(FAKE)], kind).item()
    assert got == pytest.approx(expected, rel=1e-9)


def test_discriminator_hinge_by_hand():
    # relu(1 - 2) = 0, relu(1 + 1) = 2 -> 1 ; relu(1 + 0.5) = 1.5, relu(1 - 3) = 0 -> 0.75
    got = discriminator_adversarial_loss([logits(REAL)], [logits(FAKE)], "hinge").item()
    assert got == pytest.approx(1.75)


def test_generator_losses_by_hand():
    fake = [logits(FAKE)]
    bce = mean(math.log(1 - sigmoid(f)) for f in FAKE)
    nonsat = mean(-math.log(sigmoid(f)) for f in FAKE)
    assert generator_adversarial_loss(fake, "bce").item() == pytest.approx(bce, rel=1e-9)
    assert generator_adversarial_loss(fake).item() == pytest.approx(bce, rel=1e-9)  # default kind
    assert generator_adversarial_loss(fake, "nonsat").item() == pytest.approx(nonsat, rel=1e-9)
    assert generator_adversarial_loss(fake, "hinge").item() == pytest.approx(-(0.5 - 3.0) / 2)


def test_standard_gan_objective_is_minus_the_discriminator_loss():
    """V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))]; D maximises V, i.e. minimises -V."""
    value = mean(math.log(sigmoid(r)) for r in REAL) + mean(math.log(1 - sigmoid(f)) for f in FAKE)
    d_loss = discriminator_adversarial_loss([logits(REAL)], [logits(FAKE)], "bce").item()
    assert d_loss == pytest.approx(-value, rel=1e-9)
    # G minimises the fake term of V
    g_loss = generator_adversarial_loss([logits(FAKE)], "bce").item()
    assert g_loss == pytest.approx(mean(math.log(1 - sigmoid(f)) for f in FAKE), rel=1e-9)


@pytest.mark.parametrize("kind", ["bce", "nonsat", "hinge"])
def test_generator_loss_falls_as_discriminator_believes_the_fake(kind):
    """Minimax direction: the higher D's logit on G's image, the lower G's loss
    (and the higher D's loss on that image)."""
    values = [-4.0, -2.0, -0.5, 0.0, 0.5, 2.0, 4.0]
    g = [generator_adversarial_loss([logits([v])], kind).item() for v in values]
    assert all(a > b for a, b in zip(g, g[1:])), g
    real = logits([1.0])
    d = [discriminator_adversarial_loss([real], [logits([v])], kind).item() for v in values]
    assert all(a <= b for a, b in zip(d, d[1:])), d
    # and the gradient G follows pushes the logit up
    f = logits([0.3]).requires_grad_(True)
    generator_adversarial_loss([f], kind).backward()
    assert f.grad.item() < 0


def test_adversarial_losses_average_per_scale_then_over_scales():
    """Scales of different sizes count equally: mean of per-scale means, not a
    mean over all patches pooled together."""
    fine = torch.ones(1, 1, 2, 2, dtype=torch.float64)  # 4 patches at logit 1
    coarse = torch.full((1, 1, 1, 1), 3.0, dtype=torch.float64)  # 1 patch at logit 3
    # hinge G: per scale -1 and -3 -> -2 (pooled patches would give -7/5)
    assert generator_adversarial_loss([fine, coarse], "hinge").item() == pytest.approx(-2.0)
    # bce G: (log(1 - s(1)) + log(1 - s(3))) / 2
    expected = (math.log(1 - sigmoid(1.0)) + math.log(1 - sigmoid(3.0))) / 2
    assert generator_adversarial_loss([fine, coarse], "bce").item() == pytest.approx(expected, rel=1e-9)
    # hinge D with reals at 0 everywhere: scale terms (1 + 2) and (1 + 4) -> 4
    real = [torch.zeros_like(fine), torch.zeros_like(coarse)]
    assert discriminator_adversarial_loss(real, [fine, coarse], "hinge").item() == pytest.approx(4.0)
    # bce D
    d_expected = (softplus(0.0) + softplus(1.0) + softplus(0.0) + softplus(3.0)) / 2
    assert discriminator_adversarial_loss(real, [fine, coarse], "bce").item() == pytest.approx(d_expected, rel=1e-9)


def test_adversarial_unknown_kind():
    x = [torch.zeros(1, 1, 2, 2)]
    with pytest.raises(ValueError, match="wgan"):
        discriminator_adversarial_loss(x, x, "wgan")
    with pytest.raises(ValueError, match="wgan"):
        generator_adversarial_loss(x, "wgan")


# --------------------------------------------------------------------------
# R1, total variation, identity
# --------------------------------------------------------------------------

def test_r1_penalty_linear_discriminator():
    """D(x) = <w, x>: the gradient is w for every image, so R1 = ||w||^2."""
    w = torch.tensor([[[[1.0, -2.0], [0.5, 3.0]]]], dtype=torch.float64, requires_grad=True)
    x = torch.rand(3, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    logits_ = [(x * w).sum(dim=(1, 2, 3)).view(3, 1, 1, 1)]
    penalty = r1_penalty(logits_, x)
    assert penalty.item() == pytest.approx(1 + 4 + 0.25 + 9)
    # differentiable w.r.t. D's parameters (create_graph): d||w||^2/dw = 2w
    penalty.backward()
    assert torch.allclose(w.grad, 2 * w.detach())


def test_r1_penalty_sums_scales_and_averages_images():
    """D(x) = sum(x^2) on one scale plus sum(x) on another: gradient 2x + 1;
    the penalty is the mean over images of the squared gradient norm."""
    x = torch.tensor([[[[1.0, 2.0]]], [[[0.0, 3.0]]]], dtype=torch.float64, requires_grad=True)
    scales = [x.pow(2).sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3))]
    # image 1: grad (3, 5) -> 34 ; image 2: grad (1, 7) -> 50 ; mean 42
    assert r1_penalty(scales, x).item() == pytest.approx(42.0)


def test_total_variation_by_hand():
    image = torch.tensor([[[[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]]])  # 1x1x2x3
    # horizontal: |1-0|, |3-1|, 0, 0 -> mean 0.75 ; vertical: |2-0|, |2-1|, |2-3| -> mean 4/3
    assert total_variation(image).item() == pytest.approx(0.75 + 4 / 3)
    assert total_variation(torch.full((2, 3, 5, 4), 0.7)).item() == pytest.approx(0.0)


def test_identity_loss_is_mean_absolute_error():
    a = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    b = torch.tensor([[[[1.0, 1.0], [0.0, 3.5]]]])
    assert identity_loss(a, b).item() == pytest.approx((1 + 0 + 2 + 0.5) / 4)
    assert identity_loss(b, b).item() == 0.0


# --------------------------------------------------------------------------
# AdaIN content target and style code
# --------------------------------------------------------------------------

def test_injected_content_loss_by_hand():
    out = fmap([[1.0, 2.0], [3.0, 4.0]])
    target = fmap([[2.0, 2.0], [2.0, 0.0]])
    squared_errors = [(1 - 2) ** 2, 0.0, (3 - 2) ** 2, (4 - 0) ** 2]
    target_mean_square = mean([4.0, 4.0, 4.0, 0.0])
    expected = mean(squared_errors) / (target_mean_square + 1e-8)
    assert injected_content_loss(out, target).item() == pytest.approx(expected, rel=1e-9)


def test_injected_content_loss_does_not_train_its_target():
    target = fmap([[2.0, 2.0], [2.0, 0.0]]).requires_grad_()
    out = fmap([[1.0, 2.0], [3.0, 4.0]]).requires_grad_()
    injected_content_loss(out, target).backward()
    assert target.grad is None and out.grad.abs().sum() > 0


def test_style_code_loss_by_hand():
    style = torch.tensor([[[[1.0, 3.0]], [[2.0, 2.0]]]], dtype=torch.float64)  # 2 channels, 1x2
    means = [2.0, 2.0]
    stds = [pstd([1.0, 3.0]), pstd([2.0, 2.0])]
    pred_mean = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    pred_std = torch.tensor([[2.0, 1.0]], dtype=torch.float64)
    scale = mean(s * s for s in stds) + 1e-8
    mean_term = mean([(1.0 - means[0]) ** 2, (2.0 - means[1]) ** 2]) / scale
    std_term = mean([(math.log(2.0) - math.log(stds[0])) ** 2, (math.log(1.0) - math.log(stds[1])) ** 2])
    assert style_code_loss(pred_mean, pred_std, style).item() == pytest.approx(mean_term + std_term, rel=1e-6)
