"""The colour term (Lab, sliced Wasserstein) and style augmentation (new palettes) of training."""

from __future__ import annotations

import json

import pytest
import torch

from semstyle.config import LossConfig
from semstyle.errors import ConfigError
from semstyle.io.read import load_image
from semstyle.io.tensors import image_to_tensor
from semstyle.nn.colour import colour_distribution_loss, histogram_loss, rgb_to_lab, soft_histogram
from semstyle.train.augment import augment_styles, hue_rotation, recolour
from semstyle.train.loop import train
from semstyle.train.trainer import validate

from .helpers import data_dir
from .test_train import folders, tiny_config  # noqa: F401  (the module's fixture)


def painting(name: str, side: int = 96) -> torch.Tensor:
    image = load_image(data_dir("styles") / name)
    image.thumbnail((side, side))
    return image_to_tensor(image)


def test_lab_of_known_colours():
    """CIE Lab (D65) of white, black and pure sRGB red, divided by (100, 128, 128)."""
    colours = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 3)
    lab = rgb_to_lab(colours)[0, :, 0].T * torch.tensor([100.0, 128.0, 128.0])
    assert torch.allclose(lab[0], torch.tensor([100.0, 0.0, 0.0]), atol=0.05)
    assert torch.allclose(lab[1], torch.zeros(3), atol=0.05)
    assert torch.allclose(lab[2], torch.tensor([53.24, 80.09, 67.20]), atol=0.1)


def test_colour_loss_reads_the_palette_not_the_layout():
    starry = painting("starry_night.jpg", side=64)   # within COLOUR_PIXELS: no pooling, which would mix neighbours
    shuffled = starry.flatten(2)[..., torch.randperm(starry[0, 0].numel())].reshape(starry.shape)
    scream = painting("the_scream.jpg")
    assert float(colour_distribution_loss(starry, starry)) == 0.0
    assert float(colour_distribution_loss(shuffled, starry)) < 1e-4   # same colours elsewhere
    assert float(colour_distribution_loss(scream, starry)) > 0.005    # another painting's palette
    small = torch.nn.functional.interpolate(scream, scale_factor=0.5)  # sizes may differ
    assert float(colour_distribution_loss(small, starry)) > 0.005


def descent_ratio(loss_fn, start: torch.Tensor, target: torch.Tensor, steps: int = 60) -> float:
    """The loss after ``steps`` of Adam on the pixels of ``start``, as a fraction of the first."""
    image = start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([image], lr=0.02)
    first = float(loss_fn(image.detach(), target))
    for _ in range(steps):
        optimiser.zero_grad()
        loss_fn(image, target).backward()
        optimiser.step()
    return float(loss_fn(image.detach().clamp(0, 1), target)) / first


def test_descending_the_colour_loss_moves_the_palette_towards_the_painting():
    target = painting("starry_night.jpg")
    assert descent_ratio(colour_distribution_loss, torch.full_like(target, 0.5), target) < 0.3


def test_soft_histogram_is_the_hard_one_at_bin_centres_and_differentiable():
    centres = (torch.arange(8, dtype=torch.float32) + 0.5) / 8
    image = torch.stack(torch.meshgrid(centres, centres, centres, indexing="ij")).reshape(1, 3, 8, 64)
    hist = soft_histogram(image)
    assert torch.allclose(hist, torch.full((1, 512), 1 / 512))   # one pixel at each bin's centre
    starry, scream = painting("starry_night.jpg"), painting("the_scream.jpg")
    assert torch.allclose(soft_histogram(starry).sum(1), torch.ones(1))
    assert float(histogram_loss(starry, starry)) < 1e-4 < float(histogram_loss(scream, starry))
    # a greyish image with some spread (a flat one would move as one colour and fill one bin)
    greyish = 0.4 + 0.2 * torch.rand(starry.shape, generator=torch.Generator().manual_seed(0))
    assert descent_ratio(histogram_loss, greyish, starry) < 0.5


def test_hue_rotation_keeps_luma_and_full_turns_change_nothing():
    image = painting("starry_night.jpg")[0]
    luma = torch.tensor([0.299, 0.587, 0.114])
    turned = torch.einsum("ij,jhw->ihw", hue_rotation(2.0), image)
    assert torch.allclose(torch.einsum("c,chw->hw", luma, turned), torch.einsum("c,chw->hw", luma, image), atol=1e-5)
    assert torch.allclose(hue_rotation(2 * torch.pi), torch.eye(3), atol=1e-5)
    assert not torch.allclose(turned, image, atol=0.05)


def test_recoloured_paintings_are_new_palettes_of_the_same_picture():
    image = painting("starry_night.jpg")[0]
    rng = torch.Generator().manual_seed(3)
    for _ in range(6):
        new = recolour(image, rng)
        assert new.shape == image.shape and 0.0 <= float(new.min()) and float(new.max()) <= 1.0
        assert float(colour_distribution_loss(new[None], image[None])) > 1e-3
        # the structure stays: the grey levels of the two correlate strongly
        a, b = image.mean(0).flatten(), new.mean(0).flatten()
        assert float(torch.corrcoef(torch.stack([a, b]))[0, 1]) > 0.6


def test_augmentation_off_draws_no_randomness_so_old_runs_resume_exactly():
    batch = torch.rand(3, 3, 8, 8)
    rng = torch.Generator().manual_seed(1)
    assert augment_styles(batch, 0.0, rng) is batch
    assert torch.equal(torch.rand(4, generator=rng), torch.rand(4, generator=torch.Generator().manual_seed(1)))
    changed = augment_styles(batch, 1.0, torch.Generator().manual_seed(1))
    assert all(not torch.equal(a, b) for a, b in zip(changed, batch))


def test_training_with_colour_term_and_augmentation_logs_the_term(folders, tmp_path):  # noqa: F811
    config = tiny_config(folders, tmp_path / "run", 2, style_augment=0.5,
                         loss=LossConfig(colour_weight=20.0, histogram_weight=5.0))
    assert train(config, progress=False).is_file()
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r["colour"] > 0 and r["histogram"] > 0 for r in records)


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_style_augment_is_a_probability(folders, tmp_path, value):  # noqa: F811
    with pytest.raises(ConfigError, match="style_augment"):
        validate(tiny_config(folders, tmp_path, 1, style_augment=value))
