"""Region colours of label-matched transfer (semantic/colours.py): each labelled region of the
output takes its style region's colour mean and spread, and nothing else changes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from semstyle.errors import OptionError
from semstyle.pipeline.options import StylizeOptions
from semstyle.semantic.colours import match_region_colours


def _two_region_case():
    """An output whose left half is dark noisy red and right half pale noisy blue, and a style
    whose label 0 region is bright green and label 1 region dark grey, with other spreads."""
    gen = torch.Generator().manual_seed(0)
    output = torch.empty(1, 3, 48, 64)
    output[..., :32] = torch.tensor([0.4, 0.1, 0.1])[:, None, None] + 0.05 * torch.randn(3, 48, 32, generator=gen)
    output[..., 32:] = torch.tensor([0.6, 0.6, 0.8])[:, None, None] + 0.03 * torch.randn(3, 48, 32, generator=gen)
    labels = np.zeros((48, 64), dtype=np.int64)
    labels[:, 32:] = 1
    style = torch.empty(1, 3, 40, 40)
    style[..., :20, :] = torch.tensor([0.2, 0.7, 0.3])[:, None, None] + 0.1 * torch.randn(3, 20, 40, generator=gen)
    style[..., 20:, :] = torch.tensor([0.3, 0.3, 0.3])[:, None, None] + 0.05 * torch.randn(3, 20, 40, generator=gen)
    style_labels = np.zeros((40, 40), dtype=np.int64)
    style_labels[20:] = 1
    return output, labels, style.clamp(0, 1), style_labels


def _moments(image, mask):
    pixels = image[0][:, torch.from_numpy(mask)]
    return pixels.mean(dim=1), pixels.std(dim=1, unbiased=False)


def test_each_region_takes_its_style_regions_colour_moments():
    output, labels, style, style_labels = _two_region_case()
    matched = match_region_colours(output, labels, style, style_labels, np.array([True, True]))
    inner = np.zeros_like(labels, dtype=bool)
    for k, columns in ((0, slice(4, 28)), (1, slice(36, 60))):  # away from the blended border
        inner[:] = False
        inner[:, columns] = True
        mean, std = _moments(matched, inner)
        target_mean, target_std = _moments(style, style_labels == k)
        assert torch.allclose(mean, target_mean, atol=0.01), k
        assert torch.allclose(std, target_std, rtol=0.15), k
    # an affine map per channel: the pattern inside a region is kept (correlation ~1)
    before, after = output[0, 0, :, 4:28].flatten(), matched[0, 0, :, 4:28].flatten()
    assert torch.corrcoef(torch.stack([before, after]))[0, 1] > 0.99


def test_amount_zero_and_missing_labels_keep_the_colours():
    output, labels, style, style_labels = _two_region_case()
    assert torch.equal(match_region_colours(output, labels, style, style_labels, np.array([True, True]), 0.0),
                       output)
    only_first = match_region_colours(output, labels, style, style_labels, np.array([True, False]))
    assert torch.allclose(only_first[..., 36:], output[..., 36:], atol=1e-6)  # label 1 not in the style
    assert not torch.allclose(only_first[..., :28], output[..., :28], atol=0.05)
    half = match_region_colours(output, labels, style, style_labels, np.array([True, True]), 0.5)
    full = match_region_colours(output, labels, style, style_labels, np.array([True, True]), 1.0)
    mask = labels == 0
    assert torch.allclose(_moments(half, mask)[0], (_moments(output, mask)[0] + _moments(full, mask)[0]) / 2,
                          atol=0.01)


def test_the_border_between_regions_is_blended_not_cut():
    output, labels, style, style_labels = _two_region_case()
    output[...] = 0.5  # one flat colour: any jump in the result comes from the region maps alone
    matched = match_region_colours(output, labels, style, style_labels, np.array([True, True]))
    row = matched[0, 1, 24]  # green channel across the border, from green-ish to grey
    steps = (row[1:] - row[:-1]).abs()
    assert steps.max() < 0.5 * (row[:28].mean() - row[36:].mean()).abs()


@pytest.mark.parametrize("name, value", [("region_colours", 1.5), ("region_colours", -0.1),
                                         ("region_contrast", 2.5), ("region_contrast", "x")])
def test_bad_region_options_are_refused(name, value):
    with pytest.raises(OptionError, match=name):
        StylizeOptions(**{name: value}).validate()
