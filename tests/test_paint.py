"""Doodle to painting (issue 5, part 4): masked Grams, colour fill, the
optimisation, and ``semstyle paint``. Real VGG features, tiny images, few steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from semstyle.cli import main
from semstyle.io import image_to_tensor, read_provenance
from semstyle.nn.losses import gram_matrix
from semstyle.semantic import paint
from semstyle.semantic.labels import one_hot
from semstyle.semantic.masks import SemanticWarning

from .helpers import data_dir

RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def two_labels(size, left, right) -> np.ndarray:
    """A (H, W, 3) label map: left half one colour, right half another."""
    w, h = size
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, : w // 2] = left
    rgb[:, w // 2:] = right
    return rgb


@pytest.fixture(scope="module")
def painting(tmp_path_factory):
    """Left half Starry Night's swirls, right half the Scream's sky, 96x64,
    with its label map (red = swirls, blue = scream)."""
    styles = data_dir("styles")
    tmp = tmp_path_factory.mktemp("paint")
    img = Image.new("RGB", (96, 64))
    img.paste(Image.open(styles / "starry_night.jpg").convert("RGB").resize((48, 64)), (0, 0))
    img.paste(Image.open(styles / "the_scream.jpg").convert("RGB").resize((48, 64)), (48, 0))
    img.save(tmp / "style.png")
    Image.fromarray(two_labels((96, 64), RED, BLUE)).save(tmp / "style_labels.png")
    # the doodle swaps the sides: swirls on the right
    Image.fromarray(two_labels((64, 48), BLUE, RED)).save(tmp / "doodle.png")
    return tmp


def test_masked_gram_of_everything_is_the_gram_matrix(vgg):
    feat = vgg(torch.rand(1, 3, 40, 48), ("relu2_1",))["relu2_1"]
    assert torch.allclose(paint.masked_gram(feat, torch.ones(1, 1, *feat.shape[-2:])), gram_matrix(feat)[0], rtol=1e-5)
    # a binary mask is the Gram of the selected positions only
    mask = torch.zeros(1, 1, *feat.shape[-2:])
    mask[..., :, :5] = 1
    expected = gram_matrix(feat[..., :, :5])[0]
    assert torch.allclose(paint.masked_gram(feat, mask), expected, rtol=1e-5)


def test_colour_fill_is_each_style_regions_mean_colour():
    style = torch.rand(1, 3, 10, 12)
    style_labels = np.zeros((10, 12), np.int64)
    style_labels[:, 6:] = 1
    doodle = np.array([[0, 1, 2], [1, 1, 0]])
    present = np.array([True, True, False])
    fill = paint.colour_fill(doodle, style, style_labels, present)
    assert fill.shape == (1, 3, 2, 3)
    assert torch.allclose(fill[0, :, 0, 0], style[0, :, :, :6].mean(dim=(1, 2)))
    assert torch.allclose(fill[0, :, 0, 1], style[0, :, :, 6:].mean(dim=(1, 2)))
    assert torch.allclose(fill[0, :, 0, 2], style[0].mean(dim=(1, 2)))  # missing label: whole painting


@pytest.mark.slow
def test_paint_follows_the_doodle_labels(vgg, painting):
    """After painting, each doodle half is closer (masked Gram, every layer)
    to its own label's style region than to the other one's."""
    result = paint.paint(painting / "doodle.png", painting / "style.png", painting / "style_labels.png",
                      size=None, steps=15, levels=1, encoder=vgg)
    assert result.image.size == (64, 48)
    assert result.iterations == 15 and not result.interrupted
    assert result.losses[-1] < 0.5 * result.losses[0]
    out = image_to_tensor(result.image)
    style = image_to_tensor(Image.open(painting / "style.png"))
    doodle_halves = {"red": (slice(None), slice(32, None)), "blue": (slice(None), slice(None, 32))}
    style_halves = {"red": (slice(None), slice(None, 48)), "blue": (slice(None), slice(48, None))}
    for name, (rows, cols) in doodle_halves.items():
        ours = vgg(out[..., rows, cols], paint.PAINT_LAYERS[:3])
        dist = {}
        for other, (s_rows, s_cols) in style_halves.items():
            ref = vgg(style[..., s_rows, s_cols], paint.PAINT_LAYERS[:3])
            dist[other] = sum(float(((gram_matrix(ours[t]) - gram_matrix(ref[t])) ** 2).sum()
                                    / (gram_matrix(ref[t]) ** 2).sum()) for t in ref)
        assert min(dist, key=dist.get) == name, (name, dist)


@pytest.mark.slow
def test_paint_is_deterministic_and_coarse_to_fine(vgg, painting, tmp_path):
    Image.fromarray(two_labels((96, 72), BLUE, RED)).save(tmp_path / "doodle.png")
    args = (tmp_path / "doodle.png", painting / "style.png", painting / "style_labels.png")
    a = paint.paint(*args, size=None, steps=2, levels=2, encoder=vgg)
    b = paint.paint(*args, size=None, steps=2, levels=2, encoder=vgg)
    assert a.iterations == 4 and a.image.size == (96, 72)  # 2 at 48x36, 2 at 96x72
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert paint._scales((72, 96), 2) == [(36, 48), (72, 96)]
    assert paint._scales((40, 64), 3) == [(40, 64)]  # levels under 32 px are skipped


def test_ctrl_c_returns_the_picture_so_far(vgg, painting):
    def stop_at_two(iteration, loss):
        if iteration == 2:
            raise KeyboardInterrupt

    result = paint.paint(painting / "doodle.png", painting / "style.png", painting / "style_labels.png",
                      size=None, steps=10, levels=1, encoder=vgg, on_step=stop_at_two)
    assert result.interrupted and result.iterations == 2
    assert result.image.size == (64, 48)


def test_a_doodle_label_missing_from_the_painting_warns(vgg, painting, tmp_path):
    Image.fromarray(two_labels((64, 48), GREEN, RED)).save(tmp_path / "green.png")
    with pytest.warns(SemanticWarning, match="#00ff00"):
        paint.paint(tmp_path / "green.png", painting / "style.png", painting / "style_labels.png",
                 size=None, steps=1, levels=1, encoder=vgg)


def test_doodle_loss_is_zero_for_the_style_itself(vgg, painting):
    style = image_to_tensor(Image.open(painting / "style.png"))
    labels = np.zeros((64, 96), np.int64)
    labels[:, 48:] = 1
    weights = one_hot(labels, [0, 1])
    loss = paint.DoodleLoss(vgg, style, weights, weights)
    assert float(loss(style)) < 1e-10
    swapped = paint.DoodleLoss(vgg, style, weights, weights.flip(1))
    assert float(swapped(style)) > 0.1


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_paint_writes_the_painting_with_provenance_and_time(painting, tmp_path, capsys, monkeypatch):
    out = tmp_path / "painted.png"
    code, stdout, err = run_cli(["paint", painting / "doodle.png", "--style", painting / "style.png",
                                 "--style-labels", painting / "style_labels.png", "-o", out, "--steps", "2",
                                 "--levels", "1", "--no-progress", "--device", "cpu"], capsys)
    assert code == 0, err
    assert stdout.strip() == str(out)
    assert Image.open(out).size == (64, 48)
    assert "painted 64x48 in" in err and "2 iterations" in err
    xmp = read_provenance(out)["xmp"]
    assert "trainedAlgorithmicMedia" in xmp and "style.png" in xmp and "doodle.png" in xmp


@pytest.mark.parametrize("extra,needle", [
    (["--steps", "0"], "--steps"),
    (["--levels", "0"], "--levels"),
    (["--size", "8"], "--size"),
    (["--label-palette", "nonsense"], "palette"),
])
def test_cli_paint_bad_options_are_one_line(painting, tmp_path, capsys, extra, needle):
    out = tmp_path / "o.png"
    code, _, err = run_cli(["paint", painting / "doodle.png", "--style", painting / "style.png",
                            "--style-labels", painting / "style_labels.png", "-o", out, *extra], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0], err
    assert not out.exists()


def test_cli_paint_missing_doodle(painting, tmp_path, capsys):
    code, _, err = run_cli(["paint", tmp_path / "none.png", "--style", painting / "style.png",
                            "--style-labels", painting / "style_labels.png", "-o", tmp_path / "o.png"], capsys)
    assert code == 2 and "does not exist" in err and "Traceback" not in err


def test_lbfgs_one_iteration_per_call_matches_one_long_call():
    """optimize.lbfgs steps one iteration per call; it must follow the same
    path as a single LBFGS call (a too-small max_eval once cut the line
    search off after one trial point, and the optimisation stalled)."""
    from semstyle.optimize import lbfgs

    target = torch.linspace(-1, 1, 12)

    def rosenbrock_like(x):
        return ((x - target) ** 2).sum() + 10 * ((x[1:] - x[:-1] ** 2) ** 2).sum()

    x = torch.zeros(12, requires_grad=True)
    losses, done, interrupted = lbfgs(x, rosenbrock_like, 15)
    y = torch.zeros(12, requires_grad=True)
    reference = torch.optim.LBFGS([y], lr=1.0, max_iter=15, max_eval=1000, tolerance_grad=0.0,
                                  tolerance_change=0.0, history_size=50, line_search_fn="strong_wolfe")

    def closure():
        reference.zero_grad()
        loss = rosenbrock_like(y)
        loss.backward()
        return loss

    reference.step(closure)
    assert done == 15 and not interrupted
    assert torch.allclose(x, y, atol=1e-5)
    assert min(losses) < losses[0]


def test_paint_can_start_from_the_models_label_matched_draft(painting, tmp_path):
    """--init model: the optimisation starts from the one forward pass's region-wise
    stylization of the colour fill (a tiny model here), not from fill plus noise."""
    from semstyle.pipeline.engine import StyleEngine

    from .models_fixture import tiny_model_dir

    engine = StyleEngine.load(tiny_model_dir(tmp_path / "model"), "cpu", "fp32")
    doodle, style, labels = painting / "doodle.png", painting / "style.png", painting / "style_labels.png"
    from_fill = paint.paint(doodle, style, labels, size=None, steps=1, levels=1, encoder=engine.encoder)
    from_model = paint.paint(doodle, style, labels, size=None, steps=1, levels=1, engine=engine)
    assert from_model.image.size == from_fill.image.size
    assert from_model.losses[0] != pytest.approx(from_fill.losses[0])
