"""Colour matching (semstyle/colour.py, semantic/colours.py): the output's RGB mean and spread
move to the painting's, the whole image's or, with label maps, each region's to its style
region's; strokes and edges stay, vectors (no colours) and preserve_colors change nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from semstyle.colour import ColourMoments, blend_moments, match_colours_array
from semstyle.errors import OptionError
from semstyle.pipeline.options import StylizeOptions
from semstyle.semantic.colours import match_region_colours
from semstyle.stylizer import Stylizer
from semstyle.video.schedule import Keyframe, StyleSchedule

from .models_fixture import tiny_model_dir


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


@pytest.mark.parametrize("name, value", [("colour_match", 1.5), ("colour_match", -0.1),
                                         ("region_contrast", 2.5), ("region_contrast", "x")])
def test_bad_region_options_are_refused(name, value):
    with pytest.raises(OptionError, match=name):
        StylizeOptions(**{name: value}).validate()


def test_blended_moments_are_the_moments_of_the_pooled_pixels():
    gen = np.random.default_rng(0)
    a, b = gen.random((3, 400)) * 0.5, gen.random((3, 100)) * 0.3 + 0.6
    mixed = blend_moments([(ColourMoments.of_pixels(a), 400), (ColourMoments.of_pixels(b), 100)])
    pooled = ColourMoments.of_pixels(np.concatenate([a, b], axis=1))
    assert np.allclose(mixed.mean, pooled.mean) and np.allclose(mixed.std, pooled.std)


def test_the_whole_image_takes_the_paintings_moments_in_both_runtimes():
    output, _, _, _ = _two_region_case()
    current = ColourMoments.of_pixels(output[0].flatten(1).double().numpy())
    target = ColourMoments(np.array([0.3, 0.5, 0.4]), current.std * np.array([1.2, 0.7, 0.9]))  # gains within 2x
    matched = match_colours_array(output.numpy(), target, 1.0)
    moments = ColourMoments.of_pixels(matched[0].reshape(3, -1))
    assert np.allclose(moments.mean, target.mean, atol=0.01) and np.allclose(moments.std, target.std, rtol=0.1)
    from semstyle.pipeline.prepare import match_colours

    assert np.allclose(match_colours(output, target, 1.0).numpy(), matched, atol=1e-5)  # torch = numpy
    assert match_colours_array(output.numpy(), None, 1.0) is not None  # a vector's None: unchanged
    assert np.array_equal(match_colours_array(output.numpy(), None, 1.0), output.numpy())


@pytest.fixture(scope="module")
def tiny_stylizer(tmp_path_factory):
    return Stylizer(tiny_model_dir(tmp_path_factory.mktemp("model")), device="cpu", precision="fp32")


def _channel_means(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=float).reshape(-1, 3).mean(axis=0) / 255


def test_stylize_moves_the_colours_to_the_paintings_unless_told_not_to(tiny_stylizer, photo, style):
    painting = style
    target = ColourMoments.of_pixels(tiny_stylizer.engine.read(painting, 64)[0].flatten(1).double().numpy())
    plain = tiny_stylizer.stylize(photo, painting, style_size=64, colour_match=0.0)
    matched = tiny_stylizer.stylize(photo, painting, style_size=64)
    assert np.abs(_channel_means(matched) - target.mean).max() < 0.03
    assert np.abs(_channel_means(matched) - target.mean).max() < np.abs(_channel_means(plain) - target.mean).max()
    vector = tiny_stylizer.style_vector(painting, style_size=64)
    assert tiny_stylizer.stylize(photo, vector).tobytes() == plain.tobytes()  # a vector has no colours
    kept = tiny_stylizer.stylize(photo, painting, style_size=64, preserve_colors=True)
    assert kept.tobytes() == tiny_stylizer.stylize(photo, painting, style_size=64, preserve_colors=True,
                                                   colour_match=0.0).tobytes()
    zero = tiny_stylizer.stylize(photo, painting, style_size=64, strength=0.0)
    assert zero.tobytes() == tiny_stylizer.stylize(photo, painting, style_size=64, strength=0.0,
                                                   colour_match=0.0).tobytes()


def test_a_schedule_mixes_the_keyframes_colours_as_it_mixes_their_vectors():
    red = ColourMoments(np.array([0.8, 0.1, 0.1]), np.array([0.1, 0.1, 0.1]))
    blue = ColourMoments(np.array([0.1, 0.1, 0.8]), np.array([0.2, 0.2, 0.2]))
    schedule = StyleSchedule([Keyframe(0.0, torch.zeros(1, 4), red), Keyframe(2.0, torch.ones(1, 4), blue)])
    assert np.allclose(schedule.colours_at(0.0).mean, red.mean)
    assert np.allclose(schedule.colours_at(5.0).mean, blue.mean)
    middle = schedule.colours_at(1.0)  # smoothstep(0.5) = 0.5
    assert torch.allclose(schedule.at(1.0), torch.full((1, 4), 0.5))
    assert np.allclose(middle.mean, (red.mean + blue.mean) / 2)
    assert StyleSchedule.constant(torch.zeros(1, 4)).colours_at(1.0) is None


def test_video_makes_the_colour_map_from_the_moving_average_of_the_frames_moments():
    """A frame whose own moments jump (a bright object passing) keeps the map of the average, so
    the colours do not pump; the smoother (video's StatsSmoother) gets the frame's (mean, std)."""
    from semstyle.pipeline.prepare import match_colours
    from semstyle.video.temporal import StatsSmoother

    output, _, _, _ = _two_region_case()
    current = ColourMoments.of_pixels(output[0].flatten(1).double().numpy())
    target = ColourMoments(np.array([0.3, 0.5, 0.4]), current.std)
    seen = []
    held = (torch.tensor([[0.5, 0.4, 0.5]], dtype=torch.float64), torch.tensor([[0.2, 0.2, 0.2]], dtype=torch.float64))
    result = match_colours(output, target, 1.0, own=lambda moments: seen.append(moments) or held)
    assert torch.allclose(seen[0][0][0].float(), torch.from_numpy(current.mean).float(), atol=0.01)  # 1/16 sample
    gain, shift = (torch.from_numpy(a) for a in colour_affine_of(held, target))
    assert torch.allclose(result, (output * gain[:, None, None] + shift[:, None, None]).clamp(0, 1), atol=1e-6)
    smoother = StatsSmoother(0.9)
    first = match_colours(output, target, 1.0, own=smoother)
    brighter = (output + 0.05).clamp(0, 1)
    # the second frame's map is made from moments 90% the first's: nearly the first frame's map
    second = match_colours(brighter, target, 1.0, own=smoother)
    assert (second - first).mean().item() > 0.03  # the brighter frame stays brighter, not re-centred


def colour_affine_of(held, target):
    from semstyle.colour import colour_affine

    return colour_affine(ColourMoments(held[0][0].numpy(), held[1][0].numpy()), target, 1.0)


def test_label_maps_given_per_call_get_the_label_map_contrast(tiny_stylizer):
    """A Stylizer's options are validated before a call adds labels: the default contrast is
    chosen where it is used, so labels given per call still get it."""
    from semstyle.pipeline.options import LABEL_MAP_CONTRAST

    with_labels = tiny_stylizer.resolve_options(labels=("a.png", "b.png"))
    assert with_labels.label_contrast == LABEL_MAP_CONTRAST
    assert tiny_stylizer.resolve_options(auto_regions=3).label_contrast == 0.0
    assert tiny_stylizer.resolve_options(labels=("a.png", "b.png"), region_contrast=0.2).label_contrast == 0.2


def test_the_command_line_matches_colours_as_the_python_api_does(tiny_stylizer, photo, style, tmp_path):
    """The CLI stylizes with the painting, not a pre-encoded vector, so its pictures get the
    painting's colours too (a vector carries none)."""
    from semstyle.cli import main

    model = str(tiny_stylizer.model_path)
    out, plain = tmp_path / "out.png", tmp_path / "plain.png"
    common = ["stylize", str(photo), "--style", str(style), "--model", model, "--style-size", "64",
              "--precision", "fp32", "--no-metadata"]
    assert main([*common, "-o", str(out)]) == 0
    assert main([*common, "-o", str(plain), "--colour-match", "0"]) == 0
    expected = tiny_stylizer.stylize(photo, style, style_size=64)
    assert np.abs(np.asarray(Image.open(out), dtype=int) - np.asarray(expected, dtype=int)).max() <= 1
    assert np.abs(np.asarray(Image.open(out), dtype=int) - np.asarray(Image.open(plain), dtype=int)).mean() > 1


def test_a_paintings_colours_are_read_once_per_process(tiny_stylizer, style, monkeypatch):
    engine = tiny_stylizer.engine
    first = engine.style_colours(style, 48)
    reads = []
    monkeypatch.setattr(engine, "read", lambda *a, **k: reads.append(a) or pytest.fail("read again"))
    again = engine.style_colours(style, 48)
    assert not reads and np.array_equal(first.mean, again.mean) and np.array_equal(first.std, again.std)
