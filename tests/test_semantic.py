"""Semantic style transfer: masks, feathering, regions, label maps (issue 5, parts 1, 2 and 5).

The tiny model's weights are random, so these tests check the mechanics
(which pixels change, which statistics feed which vector), not the look.
The acceptance test at the end needs the shipped default model.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from semstyle.cli import main
from semstyle.errors import ConfigError, ImageError
from semstyle.io import image_to_tensor, read_provenance, tensor_to_image
from semstyle.nn.stats import channel_mean_std, masked_mean_std, resize_masks
from semstyle.pipeline.palette import DPST_PALETTE, parse_palette
from semstyle.semantic.auto import kmeans, match_clusters
from semstyle.semantic.evaluate import label_match
from semstyle.semantic.labels import (
    MIN_STYLE_FRACTION,
    colour_name,
    find_palette,
    label_indices,
    one_hot,
    resize_labels,
    snap_to_palette,
)
from semstyle.semantic.masks import (
    SemanticWarning,
    binary_mask,
    distance_to_mask,
    feather_alpha,
    label_colours,
    read_mask_image,
)
from semstyle.semantic.refine import RegionStatsLoss, layer_scales, refine_regions, region_stats
from semstyle.semantic.transfer import label_style_vectors
from semstyle.stylizer import Stylizer

from .helpers import data_dir
from .models_fixture import tiny_model_dir

RED, GREEN, BLUE, YELLOW = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)
WHITE, BLACK = (255, 255, 255), (0, 0, 0)
CYAN, MAGENTA, GREY = (0, 255, 255), (255, 0, 255), (128, 128, 128)

# The labels of every pair, as SOURCES.md lists them ("dominant mask colours").
PAIR_LABELS = {
    "gogh_portrait": {RED, BLUE, GREEN, YELLOW},
    "monet_coastline_doodle": {WHITE, (255, 51, 31), (192, 0, 0), BLUE, GREEN},
    "renoir_landscape_doodle": {WHITE, GREEN, BLUE, (255, 51, 31)},
    "dpst_living_room": {MAGENTA, BLACK, CYAN, YELLOW, WHITE, BLUE, RED},
    "dpst_lounge": {BLUE, CYAN, RED, GREEN, WHITE, BLACK, YELLOW},
    "dpst_kitchen": {YELLOW, BLACK, WHITE, GREY, RED, BLUE, MAGENTA, CYAN},
    "dpst_road": {RED, YELLOW, WHITE},
    "dpst_house": {BLACK, RED, YELLOW, WHITE},
    "wct2_pyramid": {(128, 128, 0), (128, 0, 0), (0, 128, 0), BLACK},
}


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread for this module: on 2 cores shared with other work, two
    threads spin against each other and run several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def stylizer(tmp_path_factory):
    return Stylizer(tiny_model_dir(tmp_path_factory.mktemp("model")), device="cpu", precision="fp32")


@pytest.fixture(scope="module")
def semantic_dir():
    return data_dir("semantic")


@pytest.fixture(scope="module")
def photo(semantic_dir):
    """The gogh_portrait photo at 64x93 (odd height on purpose)."""
    return Image.open(semantic_dir / "gogh_portrait_content.jpg").convert("RGB").resize((64, 93), Image.LANCZOS)


@pytest.fixture(scope="module")
def painting(semantic_dir):
    img = Image.open(semantic_dir / "gogh_portrait_style.jpg").convert("RGB")
    img.thumbnail((96, 96))
    return img


@pytest.fixture(scope="module")
def other_painting():
    img = Image.open(data_dir("styles") / "the_scream.jpg").convert("RGB")
    img.thumbnail((96, 96))
    return img


def labels_of(path) -> np.ndarray:
    return label_colours(path)


def as_array(img: Image.Image) -> np.ndarray:
    return np.asarray(img).astype(np.int16)


def brute_distance(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance to the nearest mask pixel, by brute force."""
    ys, xs = np.nonzero(mask)
    gy, gx = np.mgrid[: mask.shape[0], : mask.shape[1]]
    d2 = (gy[..., None] - ys) ** 2 + (gx[..., None] - xs) ** 2
    return np.sqrt(d2.min(axis=-1))


# --------------------------------------------------------------------------
# palettes and label maps
# --------------------------------------------------------------------------

@pytest.mark.parametrize("pair", sorted(PAIR_LABELS))
def test_palette_of_every_semantic_pair_is_its_documented_labels(semantic_dir, pair):
    content = labels_of(semantic_dir / f"{pair}_content_mask.png")
    style = labels_of(semantic_dir / f"{pair}_style_mask.png")
    palette = find_palette(content, style)
    assert {tuple(int(c) for c in colour) for colour in palette} == PAIR_LABELS[pair]
    # SOURCES.md: every label covering > 0.5% of the content also appears in the style
    content_counts = np.bincount(snap_to_palette(content, palette).ravel(), minlength=len(palette))
    style_counts = np.bincount(snap_to_palette(style, palette).ravel(), minlength=len(palette))
    for k in np.nonzero(content_counts > 0.005 * content_counts.sum())[0]:
        assert style_counts[k] > MIN_STYLE_FRACTION * style_counts.sum(), colour_name(palette[k])


def test_anti_aliased_edges_snap_to_the_nearest_palette_colour():
    big = Image.new("RGB", (256, 256), BLUE)
    ImageDraw.Draw(big).ellipse((40, 40, 200, 200), fill=RED)
    rgb = np.asarray(big.resize((64, 64), Image.LANCZOS))  # anti-aliased edge: mixed reds and blues
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 10
    palette = find_palette(rgb)
    assert {tuple(int(c) for c in p) for p in palette} == {RED, BLUE}
    labels = snap_to_palette(rgb, palette)
    expected = ((rgb[..., None, :].astype(float) - palette[None, None].astype(float)) ** 2).sum(-1).argmin(-1)
    assert np.array_equal(labels, expected)
    pure = (rgb == RED).all(-1) | (rgb == BLUE).all(-1)
    assert pure.mean() > 0.5 and (~pure).sum() > 50
    assert np.array_equal(palette[labels][pure], rgb[pure])  # pure pixels keep their colour


def test_near_black_strays_snap_to_black():
    rgb = np.array([[[1, 1, 1], [254, 0, 0], [0, 0, 2], [2, 253, 1]]], dtype=np.uint8)
    labels = snap_to_palette(rgb, DPST_PALETTE)
    assert [tuple(int(c) for c in DPST_PALETTE[k]) for k in labels[0]] == [BLACK, RED, BLACK, GREEN]
    # a map whose black is written (1,1,1), as dpst_kitchen's: the label is black
    mostly = np.zeros((10, 10, 3), dtype=np.uint8) + 1
    mostly[:5] = (255, 255, 0)
    assert {tuple(int(c) for c in p) for p in find_palette(mostly)} == {BLACK, YELLOW}


def test_dpst_kitchen_one_one_one_is_the_black_label(semantic_dir):
    content = labels_of(semantic_dir / "dpst_kitchen_content_mask.png")
    style = labels_of(semantic_dir / "dpst_kitchen_style_mask.png")
    palette = find_palette(content, style)
    black = [tuple(int(c) for c in p) for p in palette].index(BLACK)
    was_111 = (style == 1).all(axis=-1)
    assert was_111.mean() > 0.3
    assert (snap_to_palette(style, palette)[was_111] == black).all()


def test_palette_png_masks_are_read_exactly(semantic_dir):
    path = semantic_dir / "wct2_pyramid_content_mask.png"
    assert Image.open(path).mode == "P"
    rgb = label_colours(path)
    assert rgb.shape == (567, 633, 3)
    colours = {tuple(int(c) for c in col) for col in np.unique(rgb.reshape(-1, 3), axis=0)}
    assert colours == PAIR_LABELS["wct2_pyramid"]
    palette = find_palette(rgb)
    assert np.array_equal(palette[snap_to_palette(rgb, palette)], rgb)  # exact colours: snapping is identity


def test_parse_palette():
    assert parse_palette("auto") == "auto"
    assert np.array_equal(parse_palette("dpst"), DPST_PALETTE)
    assert parse_palette("#ff0000, 00FF00").tolist() == [[255, 0, 0], [0, 255, 0]]
    assert parse_palette([(1, 2, 3)]).tolist() == [[1, 2, 3]]
    for bad in ("zz0000", "ff00", [(1, 2)], [(300, 0, 0)]):
        with pytest.raises(ConfigError):
            parse_palette(bad)


# --------------------------------------------------------------------------
# masks and feathering
# --------------------------------------------------------------------------

def test_mask_modes_threshold_and_nearest_resize(tmp_path):
    gray = np.array([[0, 127], [128, 255]], dtype=np.uint8)
    assert binary_mask(Image.fromarray(gray), (2, 2)).tolist() == [[False, False], [True, True]]
    big = binary_mask(Image.fromarray(gray), (4, 4))  # NEAREST: blocks, no grey in between
    assert big.tolist() == [[False] * 4, [False] * 4, [True] * 4, [True] * 4]
    rgb = Image.new("RGB", (4, 4), WHITE)
    rgb.paste(RED, (0, 0, 2, 4))  # red has luma 76: not selected
    assert binary_mask(rgb, (4, 4))[:, :2].sum() == 0 and binary_mask(rgb, (4, 4))[:, 2:].all()
    rgba = Image.new("RGBA", (4, 4), (255, 255, 255, 255))
    rgba.paste((255, 255, 255, 0), (0, 0, 4, 2))  # transparent top half: alpha is the mask
    assert binary_mask(rgba, (4, 4)).tolist() == [[False] * 4] * 2 + [[True] * 4] * 2
    Image.fromarray(gray).convert("1").save(tmp_path / "bilevel.png")
    assert binary_mask(tmp_path / "bilevel.png", (2, 2)).tolist() == [[False, False], [True, True]]


def test_stretched_mask_warns_same_aspect_does_not():
    with pytest.warns(SemanticWarning, match="aspect"):
        binary_mask(Image.new("L", (40, 40), 255), (80, 40))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert binary_mask(Image.new("L", (40, 20), 255), (81, 40)).shape == (40, 81)


def test_unreadable_mask_is_a_one_line_image_error(tmp_path):
    (tmp_path / "notes.png").write_text("not an image\n")
    with pytest.raises(ImageError, match="cannot read mask .*not an image") as info:
        binary_mask(tmp_path / "notes.png", (8, 8))
    assert "\n" not in str(info.value)
    with pytest.raises(ImageError, match="cannot read protect mask .*does not exist"):
        read_mask_image(tmp_path / "none.png", "protect mask")


def test_distance_transform_matches_brute_force():
    rng = np.random.default_rng(0)
    mask = rng.random((30, 41)) < 0.01
    mask[10:14, 5:9] = True
    exact = brute_distance(mask)
    ours = distance_to_mask(mask, 6)
    near = exact <= 6
    assert np.allclose(ours[near], exact[near]) and np.isinf(ours[~near]).all()


def test_feather_alpha_is_one_inside_zero_beyond_and_smooth_between():
    mask = np.zeros((40, 50), dtype=bool)
    mask[10:25, 12:30] = True
    alpha = feather_alpha(mask, 6)
    distance = brute_distance(mask)
    assert (alpha[mask] == 1).all()
    assert (alpha[distance >= 6] == 0).all()
    band = (distance > 0) & (distance < 6)
    assert ((alpha[band] > 0) & (alpha[band] < 1)).all()
    order = np.argsort(distance[band])
    assert (np.diff(alpha[band][order]) <= 1e-12).all()  # falls with distance
    assert np.array_equal(feather_alpha(mask, 0), mask.astype(float))
    with pytest.raises(ConfigError, match="feather"):
        feather_alpha(mask, -1)


# --------------------------------------------------------------------------
# masked statistics and the region-wise forward pass
# --------------------------------------------------------------------------

def test_masked_mean_std_by_hand():
    torch.manual_seed(0)
    feat = torch.rand(1, 3, 5, 7)
    mask = torch.zeros(1, 1, 5, 7)
    mask[..., 1:4, 2:6] = 1
    mean, std = masked_mean_std(feat, mask)
    picked = feat[0][:, mask[0, 0].bool()].double().numpy()  # (C, n)
    assert np.allclose(mean[0].numpy(), picked.mean(axis=1), atol=1e-6)
    assert np.allclose(std[0].numpy(), np.sqrt(picked.var(axis=1) + 1e-5), atol=1e-6)
    full_mean, full_std = masked_mean_std(feat, torch.ones(1, 1, 5, 7))
    ref_mean, ref_std = channel_mean_std(feat)
    assert torch.allclose(full_mean, ref_mean, atol=1e-6) and torch.allclose(full_std, ref_std, atol=1e-6)
    soft = resize_masks(one_hot(np.arange(35).reshape(5, 7) % 3, [0, 1, 2]), (3, 4))
    assert torch.allclose(soft.sum(dim=1), torch.ones(1, 3, 4))  # area resizing keeps a partition of unity


def test_masked_mean_std_gradient_matches_finite_differences():
    """The hand-written backward (refinement's hot path) against numerical derivatives, for the
    whole image (no mask), a soft mask and a mask shared by a batch of two."""
    torch.manual_seed(0)
    feat = torch.rand(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    soft = torch.rand(1, 1, 4, 5, dtype=torch.float64)
    for weight in (None, soft, (soft > 0.5).double()):
        assert torch.autograd.gradcheck(lambda x, w=weight: masked_mean_std(x, w), (feat,))
    whole_mean, whole_std = masked_mean_std(feat.detach(), None)
    ref_mean, ref_std = channel_mean_std(feat.detach())
    assert torch.allclose(whole_mean, ref_mean) and torch.allclose(whole_std, ref_std)
    low = masked_mean_std(feat.detach().bfloat16(), None)
    assert low[0].dtype == torch.float32  # bfloat16 features, float32 statistics
    assert torch.allclose(low[0], ref_mean.float(), atol=1e-2) and torch.allclose(low[1], ref_std.float(), atol=1e-2)


def test_whole_image_mask_gives_the_plain_style_vector(stylizer, painting):
    feats = stylizer.engine.encoder(image_to_tensor(painting), stylizer.config.style_layers)
    plain = stylizer.engine.generator.style_vector(feats)
    masked = stylizer.engine.generator.style_vector(feats, torch.ones(1, 1, painting.height, painting.width))
    assert masked.shape == (1, 1, plain.shape[1])
    assert torch.allclose(masked[:, 0], plain, atol=1e-5)


def test_regionwise_forward_reduces_to_the_generator(stylizer, photo, painting):
    """The one forward with K regions all in the same style is the global forward."""
    generator = stylizer.engine.generator
    content = image_to_tensor(photo.resize((64, 96)))
    feats = stylizer.engine.encoder(content, generator.taps)
    vector = stylizer.style_vector(painting)
    expected = generator(feats, vector)
    labels = (np.arange(96)[:, None] // 20 + np.arange(64)[None] // 24) % 3
    weights = one_hot(labels, [0, 1, 2])
    three = vector[:, None].expand(1, 3, -1)
    same = generator(feats, three, masks=weights, region_norm=False)
    assert torch.allclose(same, expected, atol=1e-4)
    one = generator(feats, vector[:, None], masks=torch.ones(1, 1, 96, 64), region_norm=True)
    assert torch.allclose(one, expected, atol=1e-4)
    per_region = generator(feats, three, masks=weights, region_norm=True)
    assert not torch.allclose(per_region, expected, atol=1e-3)  # per-region normalisation is not global



# --------------------------------------------------------------------------
# --mask, --feather, --protect: exact pixels outside
# --------------------------------------------------------------------------

def rect_mask(size, box) -> np.ndarray:
    width, height = size
    mask = np.zeros((height, width), dtype=bool)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def test_masked_output_is_input_outside_stylized_inside_and_between_on_the_edge(stylizer, semantic_dir):
    photo = Image.open(semantic_dir / "gogh_portrait_content.jpg").convert("RGB")
    style = semantic_dir / "gogh_portrait_style.jpg"
    size = 96  # the content is resized: the reference is the resized input
    reference = tensor_to_image(stylizer.engine.read(photo, size))
    full = stylizer.stylize(photo, style, size=size, style_size=96)
    mask = rect_mask(reference.size, (15, 20, 45, 60))
    out = stylizer.stylize(photo, style, size=size, style_size=96, mask=Image.fromarray(mask), feather=6)
    a, x, s = as_array(out), as_array(reference), as_array(full)
    distance = brute_distance(mask)
    outside = distance >= 6
    assert np.array_equal(a[outside], x[outside])  # bit-identical
    assert np.array_equal(a[mask], s[mask])
    band = (distance > 0) & (distance < 6)
    lo, hi = np.minimum(x, s), np.maximum(x, s)
    assert ((a[band] >= lo[band]) & (a[band] <= hi[band])).all()
    strictly = (a[band] != x[band]) & (a[band] != s[band])
    assert strictly.any()
    hard = as_array(stylizer.stylize(photo, style, size=size, style_size=96, mask=Image.fromarray(mask), feather=0))
    assert np.array_equal(hard[~mask], x[~mask]) and np.array_equal(hard[mask], s[mask])


def test_protected_areas_stay_exact(stylizer, photo, painting):
    full = as_array(stylizer.stylize(photo, painting))
    x = as_array(photo)
    protect_a = rect_mask(photo.size, (5, 5, 25, 30))
    protect_b = rect_mask(photo.size, (40, 60, 60, 90))
    out = as_array(stylizer.stylize(photo, painting, protect=[protect_a, protect_b], feather=5))
    protected = protect_a | protect_b
    assert np.array_equal(out[protected], x[protected])
    distance = brute_distance(protected)
    assert np.array_equal(out[distance >= 5], full[distance >= 5])
    band = (distance > 0) & (distance < 5)
    lo, hi = np.minimum(x, full), np.maximum(x, full)
    assert ((out[band] >= lo[band]) & (out[band] <= hi[band])).all()


def test_empty_mask_warns_and_changes_nothing(stylizer, photo, painting):
    with pytest.warns(SemanticWarning, match="selects no pixels"):
        out = stylizer.stylize(photo, painting, mask=np.zeros((93, 64), dtype=bool))
    assert np.array_equal(np.asarray(out), np.asarray(photo))


# --------------------------------------------------------------------------
# --region: each region its own style
# --------------------------------------------------------------------------

def test_each_region_gets_its_own_style(stylizer, photo, painting, other_painting):
    left, right = rect_mask(photo.size, (0, 0, 24, 93)), rect_mask(photo.size, (40, 0, 64, 93))
    only_a = as_array(stylizer.stylize(photo, painting))
    only_b = as_array(stylizer.stylize(photo, other_painting, strength=0.7))
    out = as_array(stylizer.stylize(photo, None, regions=[(left, painting), (right, other_painting, 0.7)], feather=0))
    x = as_array(photo)
    assert np.array_equal(out[left], only_a[left]) and np.array_equal(out[right], only_b[right])
    assert (out[left] != only_b[left]).any() and (out[right] != only_a[right]).any()
    middle = ~(left | right)
    assert np.array_equal(out[middle], x[middle])
    # over a base style: the base everywhere else, the region's style inside it
    over = as_array(stylizer.stylize(photo, painting, regions=[(right, other_painting, 0.7)], feather=0))
    assert np.array_equal(over[~right], only_a[~right]) and np.array_equal(over[right], only_b[right])


def test_bad_region_entries(stylizer, photo, painting):
    with pytest.raises(ConfigError, match="region"):
        stylizer.stylize(photo, painting, regions=[np.ones((93, 64), dtype=bool)])
    with pytest.raises(ConfigError, match="strength"):
        stylizer.stylize(photo, painting, regions=[(np.ones((93, 64), dtype=bool), painting, 2.0)])
    with pytest.raises(ConfigError, match="style"):
        stylizer.stylize(photo, None, mask=np.ones((93, 64), dtype=bool))


# --------------------------------------------------------------------------
# label-matched transfer
# --------------------------------------------------------------------------

def vector_by_hand(stylizer, feats, mask: np.ndarray) -> torch.Tensor:
    """Masked mean/std per tap in float64 numpy (mask area-averaged to each tap), then the MLP."""
    stats = []
    for tap in stylizer.config.style_layers:
        feat = feats[tap][0].double().numpy()
        w = F.adaptive_avg_pool2d(torch.from_numpy(mask).double()[None, None], feat.shape[-2:])[0, 0].numpy()
        mean = (feat * w).sum(axis=(1, 2)) / w.sum()
        std = np.sqrt(((feat - mean[:, None, None]) ** 2 * w).sum(axis=(1, 2)) / w.sum() + 1e-5)
        stats += [np.log1p(mean), np.log(std)]
    return stylizer.engine.generator.style_encoder.mlp(torch.from_numpy(np.concatenate(stats)).float()[None])


@pytest.mark.parametrize("pair", ["gogh_portrait", "wct2_pyramid"])
def test_per_label_vectors_are_the_style_regions_statistics(stylizer, semantic_dir, pair):
    style_rgb = labels_of(semantic_dir / f"{pair}_style_mask.png")
    palette = find_palette(labels_of(semantic_dir / f"{pair}_content_mask.png"), style_rgb)
    style_t = stylizer.engine.read(semantic_dir / f"{pair}_style.jpg", 96)
    size = (style_t.shape[-1], style_t.shape[-2])
    style_labels = np.asarray(Image.fromarray(snap_to_palette(style_rgb, palette).astype(np.uint8))
                              .resize(size, Image.NEAREST))
    feats = stylizer.engine.encoder(style_t, stylizer.config.style_layers)
    styles = label_style_vectors(stylizer.engine, style_t, style_labels, palette, contrast=0.0)
    assert styles.present.all() and len(palette) == len(PAIR_LABELS[pair])
    for k in range(len(palette)):
        expected = vector_by_hand(stylizer, feats, style_labels == k)
        assert torch.allclose(styles.vectors[k], expected[0], atol=1e-4), colour_name(palette[k])
    assert not torch.allclose(styles.vectors[0], styles.vectors[1], atol=1e-3)
    # contrast pushes every region's vector away from their mean, by that fraction of the way
    pushed = label_style_vectors(stylizer.engine, style_t, style_labels, palette, contrast=0.5).vectors
    centre = styles.vectors.mean(dim=0, keepdim=True)
    assert torch.allclose(pushed - centre, 1.5 * (styles.vectors - centre), atol=1e-4)


def test_a_single_label_content_takes_that_labels_vector(stylizer, semantic_dir, photo):
    """End to end: a content map all in one label gives exactly the output of
    that label's style vector (so stylize really uses the per-label vectors)."""
    style = semantic_dir / "gogh_portrait_style.jpg"
    style_map = semantic_dir / "gogh_portrait_style_mask.png"
    content_map = np.zeros((93, 64, 3), dtype=np.uint8)
    content_map[:] = BLUE
    exact = {"region_contrast": 0.0, "colour_match": 0.0}  # the label's vector itself, colours as painted
    out = stylizer.stylize(photo, style, labels=(content_map, style_map), style_size=96, **exact)
    style_rgb = labels_of(style_map)
    palette = find_palette(content_map, style_rgb)
    style_t = stylizer.engine.read(style, 96)
    style_labels = resize_labels(snap_to_palette(style_rgb, palette), (style_t.shape[-1], style_t.shape[-2]))
    feats = stylizer.engine.encoder(style_t, stylizer.config.style_layers)
    blue = [tuple(int(c) for c in p) for p in palette].index(BLUE)
    vector = stylizer.engine.generator.style_vector(feats, one_hot(style_labels, [blue]))[:, 0]
    expected = as_array(stylizer.stylize(photo, vector))
    assert np.abs(as_array(out) - expected).max() <= 1
    global_out = as_array(stylizer.stylize(photo, style, style_size=96))
    assert np.abs(as_array(out) - global_out).max() > 3
    # strength 0: every label its own content region's vector, i.e. the photo's own
    zero = as_array(stylizer.stylize(photo, style, labels=(content_map, style_map), style_size=96, strength=0.0))
    assert np.abs(zero - as_array(stylizer.stylize(photo, style, strength=0.0))).max() <= 1


def test_label_matched_regions_differ_from_global_style(stylizer, semantic_dir):
    photo = Image.open(semantic_dir / "gogh_portrait_content.jpg").convert("RGB")
    labels = (semantic_dir / "gogh_portrait_content_mask.png", semantic_dir / "gogh_portrait_style_mask.png")
    style = semantic_dir / "gogh_portrait_style.jpg"
    out = stylizer.stylize(photo, style, labels=labels, size=96, style_size=96)
    plain = stylizer.stylize(photo, style, size=96, style_size=96)
    assert out.size == plain.size == (66, 96)
    assert np.abs(as_array(out) - as_array(plain)).mean() > 1


def test_missing_label_falls_back_to_the_global_vector_with_a_warning(stylizer, semantic_dir, photo):
    style = semantic_dir / "gogh_portrait_style.jpg"
    style_map = semantic_dir / "gogh_portrait_style_mask.png"
    content_map = np.zeros((93, 64, 3), dtype=np.uint8)
    content_map[:] = RED
    content_map[30:60] = MAGENTA  # not in the style map
    with pytest.warns(SemanticWarning, match="#ff00ff .*no region in the style"):
        stylizer.stylize(photo, style, labels=(content_map, style_map), style_size=96)
    style_t = stylizer.engine.read(style, 96)
    palette = find_palette(content_map, labels_of(style_map))
    style_labels = resize_labels(snap_to_palette(labels_of(style_map), palette),
                                     (style_t.shape[-1], style_t.shape[-2]))
    styles = label_style_vectors(stylizer.engine, style_t, style_labels, palette)
    magenta = [tuple(int(c) for c in p) for p in palette].index(MAGENTA)
    assert not styles.present[magenta]
    assert torch.equal(styles.vectors[magenta], styles.global_vector[0])
    assert torch.allclose(styles.global_vector, stylizer.style_vector(style, 96))


def test_labels_need_one_style_image(stylizer, photo, painting, other_painting, semantic_dir):
    labels = (semantic_dir / "gogh_portrait_content_mask.png", semantic_dir / "gogh_portrait_style_mask.png")
    with pytest.raises(ConfigError, match="one image"):
        stylizer.stylize(photo, [(painting, 1), (other_painting, 1)], labels=labels)
    with pytest.raises(ConfigError, match="style image itself"):
        stylizer.stylize(photo, stylizer.style_vector(painting), labels=labels)


def test_label_match_of_the_style_itself_is_all_matched(stylizer, semantic_dir):
    style_t = stylizer.engine.read(semantic_dir / "gogh_portrait_style.jpg", 96)
    rgb = labels_of(semantic_dir / "gogh_portrait_style_mask.png")
    palette = find_palette(rgb)
    labels = resize_labels(snap_to_palette(rgb, palette), (style_t.shape[-1], style_t.shape[-2]))
    matches = label_match(stylizer.engine.encoder, stylizer.config.style_layers, style_t, labels, style_t, labels,
                              palette)
    assert len(matches) == 4 and all(m.matched and m.own < 1e-6 for m in matches)
    # content labels permuted: every region now sits under another label's name
    permuted = (labels + 1) % len(palette)
    matches = label_match(stylizer.engine.encoder, stylizer.config.style_layers, style_t, permuted, style_t, labels,
                              palette)
    assert not any(m.matched for m in matches)


def test_refine_pulls_each_region_towards_its_style_region(stylizer, semantic_dir, photo):
    """The tiny model's draft is far from any style; 10 refinement steps must
    cut every label's distance to its own style region."""
    labels = (semantic_dir / "gogh_portrait_content_mask.png", semantic_dir / "gogh_portrait_style_mask.png")
    style = semantic_dir / "gogh_portrait_style.jpg"
    palette = find_palette(labels_of(labels[0]), labels_of(labels[1]))
    content_labels = resize_labels(snap_to_palette(labels_of(labels[0]), palette), photo.size)
    style_t = stylizer.engine.read(style, 64)
    style_labels = resize_labels(snap_to_palette(labels_of(labels[1]), palette),
                                     (style_t.shape[-1], style_t.shape[-2]))

    def own_distances(img):
        return [m.own for m in label_match(stylizer.engine.encoder, stylizer.config.style_layers, image_to_tensor(img),
                                               content_labels, style_t, style_labels, palette)]

    draft = stylizer.stylize(photo, style, labels=labels, style_size=64)
    refined = stylizer.stylize(photo, style, labels=labels, style_size=64, refine=10)
    assert refined.size == draft.size
    before, after = own_distances(draft), own_distances(refined)
    assert all(a < b for a, b in zip(after, before)), (before, after)
    assert sum(after) < 0.5 * sum(before), (before, after)
    assert np.array_equal(np.asarray(draft), np.asarray(stylizer.stylize(photo, style, labels=labels, style_size=64,
                                                                         refine=0)))


def test_refine_content_term_keeps_the_photo(stylizer, painting, photo):
    """The content term of refinement (``content_weight``): with it, the refined picture's relu3_1
    features end closer to the photo's than with the anchor to the draft alone, and further from
    them without it; the style statistics still move towards the painting's either way."""
    engine = stylizer.engine
    content = image_to_tensor(photo)
    draft = image_to_tensor(stylizer.stylize(photo, painting))
    style_t = image_to_tensor(painting)
    whole = np.zeros(draft.shape[-2:], np.int64)

    def refined(content_weight):
        return refine_regions(engine.encoder, stylizer.config.style_layers, draft, whole, style_t,
                              np.zeros(style_t.shape[-2:], np.int64), np.array([True]), 8, content=content,
                              anchor_weight=0.5, content_weight=content_weight)

    def photo_error(image):
        with torch.no_grad():
            mine, theirs = (engine.encoder(x, ("relu3_1",))["relu3_1"] for x in (image, content))
        return float((mine - theirs).pow(2).sum() / theirs.pow(2).sum())

    def style_error(image):
        return float(RegionStatsLoss(engine.encoder, stylizer.config.style_layers, one_hot(whole, [0], "cpu"),
                                     targets, scale, draft, anchor_weight=0.0)(image))

    with torch.no_grad():
        whole_style = region_stats(engine.encoder, stylizer.config.style_layers, style_t,
                                   torch.ones(1, 1, *style_t.shape[-2:]))
        targets, scale = [whole_style], layer_scales(whole_style)
    with_content, without = refined(1.0), refined(0.0)
    assert photo_error(with_content) < photo_error(without)
    assert style_error(with_content) < style_error(draft) and style_error(without) < style_error(draft)


def test_refine_reports_its_steps_and_can_be_stopped(stylizer, semantic_dir, photo):
    """``on_progress(step, total)``: (0, N) as refinement starts, then once per step; what it raises
    stops the work. Without refinement it is not called; the result does not depend on it."""
    labels = (semantic_dir / "gogh_portrait_content_mask.png", semantic_dir / "gogh_portrait_style_mask.png")
    style = semantic_dir / "gogh_portrait_style.jpg"
    seen = []
    with_progress = stylizer.stylize(photo, style, labels=labels, style_size=64, refine=3,
                                     on_progress=lambda step, total: seen.append((step, total)))
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert np.array_equal(np.asarray(with_progress),
                          np.asarray(stylizer.stylize(photo, style, labels=labels, style_size=64, refine=3)))
    seen.clear()
    stylizer.stylize(photo, style, labels=labels, style_size=64, on_progress=lambda *a: seen.append(a))
    assert seen == []

    class Stop(Exception):
        pass

    def stop_at_two(step, total):
        if step == 2:
            raise Stop

    with pytest.raises(Stop):
        stylizer.stylize(photo, style, labels=labels, style_size=64, refine=5, on_progress=stop_at_two)


def test_refine_is_a_final_render_for_global_transfer_too(stylizer, photo, painting, vgg):
    """--refine N on a plain stylization: the whole image's VGG statistics move onto the painting's."""
    from semstyle.io.tensors import image_to_tensor
    from semstyle.semantic.refine import region_stats, stats_distance

    draft = stylizer.stylize(photo, painting, style_size=64)
    steps = []
    final = stylizer.stylize(photo, painting, style_size=64, refine=8, on_progress=lambda k, n: steps.append((k, n)))
    assert final.size == draft.size and final.tobytes() != draft.tobytes()
    assert steps[0] == (0, 8) and steps[-1][0] >= 1 and all(n == 8 for _, n in steps)
    style_t = stylizer.engine.read(painting, 64, "style_size", 10**8)
    layers = stylizer.config.style_layers

    def distance(image):
        x = image_to_tensor(image)
        mine = region_stats(vgg, layers, x, torch.ones(1, 1, *x.shape[-2:]))
        theirs = region_stats(vgg, layers, style_t, torch.ones(1, 1, *style_t.shape[-2:]))
        return sum(stats_distance(*mine[t], *theirs[t], 1.0).item() for t in layers)

    assert distance(final) < 0.8 * distance(draft)


def test_refine_needs_the_painting_itself(stylizer, photo, painting):
    with pytest.raises(ConfigError, match="must be the style image itself for refinement, not a style vector"):
        stylizer.stylize(photo, stylizer.style_vector(painting), refine=5)
    with pytest.raises(ConfigError, match="must be one image for refinement, not a blend"):
        stylizer.stylize(photo, [(painting, 0.5), (photo, 0.5)], refine=5)
    with pytest.raises(ConfigError, match="refine must be a whole number"):
        stylizer.stylize(photo, painting, auto_regions=2, refine=-1)


# --------------------------------------------------------------------------
# automatic regions
# --------------------------------------------------------------------------

def test_kmeans_finds_separated_clusters():
    gen = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 5.0, 5.0]])
    points = torch.cat([c + 0.1 * torch.randn(50, 3, generator=gen) for c in centres])
    found = kmeans(points, 3, seed=0)
    nearest = torch.cdist(centres, found).min(dim=1).values
    assert (nearest < 0.1).all()
    assert torch.equal(found, kmeans(points, 3, seed=0))  # deterministic


def test_match_clusters_maximises_total_score_one_to_one():
    content = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    style = torch.tensor([[0.0, 1.0], [1.0, 1.1], [1.0, 0.0]])
    places = np.full((3, 2), 0.5)
    pairing, similarity = match_clusters(content, style, places, places)
    assert pairing.tolist() == [2, 0, 1]
    assert np.allclose(similarity[:2], 1.0)
    # equal features: where the regions sit decides (top pairs with top)
    same = torch.ones(2, 2)
    pairing, _ = match_clusters(same, same, np.array([[0.5, 0.1], [0.5, 0.9]]), np.array([[0.5, 0.8], [0.5, 0.2]]))
    assert pairing.tolist() == [1, 0]


def _two_textures(left: Image.Image, right: Image.Image, size=(96, 64)) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size)
    img.paste(left.resize((w // 2, h)), (0, 0))
    img.paste(right.resize((w - w // 2, h)), (w // 2, 0))
    return img


@pytest.fixture(scope="module")
def textures(semantic_dir):
    starry = Image.open(data_dir("styles") / "starry_night.jpg").convert("RGB").crop((0, 0, 200, 200))
    road = Image.open(semantic_dir / "dpst_road_content.jpg").convert("RGB")
    sky = road.crop((0, 0, road.width, road.height // 3))
    return starry, sky


def test_auto_regions_pair_regions_by_what_they_look_like(stylizer, textures):
    """Content: texture A left, B right; style: B left, A right. Each content
    half must take the label of the style half with the same texture, even
    though it sits on the other side."""
    a, b = textures
    content, style = _two_textures(a, b), _two_textures(b, a)
    found = stylizer.auto_regions(content, style, 2)
    assert found.content.shape == (64, 96, 3) and found.style.shape == (64, 96, 3)
    colours = {tuple(int(v) for v in c) for c in found.palette}
    assert len(colours) == 2
    for mapped in (found.content, found.style):
        assert {tuple(int(v) for v in c) for c in mapped.reshape(-1, 3)} <= colours

    def colour_at(m, x):  # the label of a column well inside a half
        return tuple(int(v) for v in m[32, x])

    assert colour_at(found.content, 20) != colour_at(found.content, 76)
    assert colour_at(found.content, 20) == colour_at(found.style, 76)
    assert colour_at(found.content, 76) == colour_at(found.style, 20)


def test_stylize_auto_regions_is_label_matched_transfer_with_the_found_maps(stylizer, photo, painting):
    """The same transfer; only the defaults for the regions' look differ (no region contrast, the
    whole image's colours matched: automatic borders are not the objects' edges), so both are off."""
    found = stylizer.auto_regions(photo, painting, 3, style_size=96)
    same_look = {"region_contrast": 0.0, "colour_match": 0.0}
    auto = stylizer.stylize(photo, painting, auto_regions=3, style_size=96, **same_look)
    explicit = stylizer.stylize(photo, painting, labels=(found.content, found.style), palette=found.palette,
                                style_size=96, **same_look)
    assert auto.size == photo.size
    assert np.array_equal(np.asarray(auto), np.asarray(explicit))
    assert not np.array_equal(np.asarray(auto), np.asarray(stylizer.stylize(photo, painting, style_size=96)))


@pytest.mark.parametrize("k", [1, 9, 2.5])
def test_auto_regions_out_of_range_is_refused(stylizer, photo, painting, k):
    with pytest.raises(ConfigError, match="auto_regions must be a whole number from 2 to 8"):
        stylizer.stylize(photo, painting, auto_regions=k)


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_files(tmp_path_factory, semantic_dir):
    tmp = tmp_path_factory.mktemp("cli")
    Image.open(semantic_dir / "gogh_portrait_content.jpg").convert("RGB").resize((64, 93)).save(tmp / "photo.png")
    Image.open(semantic_dir / "gogh_portrait_style.jpg").convert("RGB").resize((80, 98)).save(tmp / "style.jpg")
    Image.open(data_dir("styles") / "the_scream.jpg").convert("RGB").resize((64, 80)).save(tmp / "scream.jpg")
    Image.fromarray(rect_mask((64, 93), (0, 0, 32, 93))).save(tmp / "left.png")
    Image.fromarray(rect_mask((64, 93), (40, 0, 64, 93))).save(tmp / "right.png")
    Image.fromarray(rect_mask((64, 93), (10, 10, 20, 20))).save(tmp / "face.png")
    (tmp / "notes.png").write_text("not an image\n")
    wrong = labels_of(semantic_dir / "gogh_portrait_content_mask.png").copy()
    wrong[:100] = MAGENTA
    Image.fromarray(wrong).save(tmp / "content_labels_magenta.png")
    return tmp


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_mask_region_protect(model_dir, cli_files, tmp_path, capsys):
    f = cli_files
    out = tmp_path / "out.png"
    code, stdout, err = run_cli(["stylize", f / "photo.png", "--style", f / "style.jpg", "-o", out,
                                 "--model", model_dir, "--style-size", "64", "--mask", f / "left.png",
                                 "--region", f"{f / 'right.png'}={f / 'scream.jpg'}:0.5",
                                 "--protect", f / "face.png", "--feather", "3"], capsys)
    assert code == 0, err
    result, photo = as_array(Image.open(out)), as_array(Image.open(f / "photo.png"))
    assert result.shape == photo.shape
    assert np.array_equal(result[:, 35:37], photo[:, 35:37])  # 3+ px from both areas
    assert np.array_equal(result[10:20, 10:20], photo[10:20, 10:20])  # protected
    assert not np.array_equal(result[:, :28], photo[:, :28])
    meta = read_provenance(out)["xmp"]
    assert "style.jpg" in meta and "scream.jpg" in meta


def test_cli_labels_and_missing_label_warning(model_dir, cli_files, semantic_dir, tmp_path, capsys):
    f = cli_files
    base = ["stylize", f / "photo.png", "--style", f / "style.jpg", "--model", model_dir, "--style-size", "64",
            "--style-labels", semantic_dir / "gogh_portrait_style_mask.png", "--label-palette", "dpst"]
    code, _, err = run_cli([*base, "-o", tmp_path / "a.png", "--content-labels",
                            semantic_dir / "gogh_portrait_content_mask.png"], capsys)
    assert code == 0 and err == "", err
    assert Image.open(tmp_path / "a.png").size == (64, 93)
    code, _, err = run_cli([*base, "-o", tmp_path / "b.png", "--content-labels", f / "content_labels_magenta.png"],
                           capsys)
    assert code == 0
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("semstyle: warning:") and "#ff00ff" in lines[0], err


def test_cli_auto_regions_saves_label_maps_that_reproduce_the_output(model_dir, cli_files, tmp_path, capsys):
    f = cli_files
    base = ["stylize", f / "photo.png", "--style", f / "style.jpg", "--model", model_dir, "--style-size", "64"]
    code, stdout, err = run_cli([*base, "-o", tmp_path / "auto.png", "--auto-regions", "3", "--save-labels",
                                 tmp_path / "maps.jpg"], capsys)
    assert code == 0 and err == "", err
    content_map, style_map = tmp_path / "maps_content.png", tmp_path / "maps_style.png"
    assert stdout.split() == [str(content_map), str(style_map), str(tmp_path / "auto.png")]
    assert Image.open(content_map).size == (64, 93)
    assert Image.open(style_map).size == (52, 64)  # the style as read, at --style-size
    assert len(np.unique(labels_of(content_map).reshape(-1, 3), axis=0)) <= 3
    # the saved maps, given back as label maps with automatic regions' look (no region contrast, the
    # whole image's colours matched; label maps' defaults differ), give the same picture
    code, _, err = run_cli([*base, "-o", tmp_path / "again.png", "--content-labels", content_map,
                            "--style-labels", style_map, "--region-contrast", "0", "--colour-by-image"], capsys)
    assert code == 0, err
    assert np.array_equal(as_array(Image.open(tmp_path / "auto.png")), as_array(Image.open(tmp_path / "again.png")))


@pytest.mark.parametrize("extra,needle", [
    (["--auto-regions", "12"], "from 2 to 8"),
    (["--refine", "-5"], "--refine must be"),
    (["--save-labels", "{f}/maps"], "--auto-regions K"),
    (["--auto-regions", "3", "--content-labels", "{f}/left.png", "--style-labels", "{f}/left.png"], "not both"),
    (["--mask", "{f}/notes.png"], "cannot read mask"),
    (["--protect", "{f}/none.png"], "does not exist"),
    (["--region", "{f}/left.png"], "MASK=STYLE"),
    (["--region", "{f}/left.png={f}/scream.jpg:1.5"], "strength"),
    (["--region", "{f}/notes.png={f}/scream.jpg"], "cannot read region mask"),
    (["--content-labels", "{f}/left.png"], "go together"),
    (["--content-labels", "{f}/notes.png", "--style-labels", "{f}/left.png"], "cannot read content label map"),
    (["--feather", "-2"], "feather"),
    (["--feather", "abc"], "feather"),
    (["--label-palette", "red"], "palette"),
    (["--colour-match", "1.5"], "--colour-match must be between 0 and 1"),
    (["--region-contrast", "-1"], "--region-contrast must be between 0 and 2"),
])
def test_cli_bad_semantic_options_are_one_line(cli_files, tmp_path, capsys, extra, needle):
    f = cli_files
    out = tmp_path / "o.png"
    # a model that does not exist: the options must fail first, before any model loads
    code, _, err = run_cli(["stylize", f / "photo.png", "--style", f / "style.jpg", "-o", out,
                            "--model", tmp_path / "no_model", *[e.format(f=f) for e in extra]], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err
    assert not out.exists()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model_dir(tmp_path_factory.mktemp("cli_model"))


# --------------------------------------------------------------------------
# acceptance (issue 5): needs a trained model
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def default_stylizer():
    return Stylizer(device="cpu")


def _acceptance_matches(stylizer, semantic_dir, pair, refine):
    layers = stylizer.config.style_layers
    photo_path = semantic_dir / f"{pair}_content.jpg"
    content_map, style_map = semantic_dir / f"{pair}_content_mask.png", semantic_dir / f"{pair}_style_mask.png"
    style_path = semantic_dir / f"{pair}_style.jpg"
    photo = Image.open(photo_path if photo_path.exists() else content_map).convert("RGB")
    photo.thumbnail((128, 128))
    out = stylizer.stylize(photo, style_path, labels=(content_map, style_map), style_size=128, refine=refine)
    palette = find_palette(labels_of(content_map), labels_of(style_map))
    content_labels = label_indices(labels_of(content_map), palette, out.size)
    style_t = stylizer.engine.read(style_path, 128)
    style_labels = label_indices(labels_of(style_map), palette, (style_t.shape[-1], style_t.shape[-2]))
    matches = label_match(stylizer.engine.encoder, layers, image_to_tensor(out), content_labels, style_t, style_labels,
                              palette)
    assert matches
    return [f"{colour_name(m.colour)}: own {m.own:.2f}, nearest {colour_name(m.nearest)} "
            f"{m.nearest_distance:.2f}" for m in matches if not m.matched]


@pytest.mark.slow
@pytest.mark.parametrize("pair", sorted(PAIR_LABELS))
def test_acceptance_each_label_takes_its_own_style_region(default_stylizer, semantic_dir, pair):
    """Issue 5: for every label, the output's region statistics (VGG mean/std)
    are closer to the same-label style region than to any other label's
    (:func:`semstyle.semantic.label_match`; labels covering > 0.5% of the
    content), with label-matched transfer refined for 20 steps. Doodle pairs
    (no photo) use the content doodle itself as the content image."""
    wrong = _acceptance_matches(default_stylizer, semantic_dir, pair, refine=20)
    assert not wrong, "; ".join(wrong)


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="the default model alone (no refinement) matches 42 of the 46 labels "
                   "at 256 px with region contrast and colours (35 without; v0.2 31), not all: its style vectors "
                   "carry region statistics too loosely")
@pytest.mark.parametrize("pair", sorted(PAIR_LABELS))
def test_acceptance_feed_forward_only(default_stylizer, semantic_dir, pair):
    wrong = _acceptance_matches(default_stylizer, semantic_dir, pair, refine=0)
    assert not wrong, "; ".join(wrong)
