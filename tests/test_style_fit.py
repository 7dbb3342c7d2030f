"""Style fitting (pipeline/style_fit.py, ``style_fit``, ``--style-fit``): a painting's vector fitted
to the model's own decoder, cached apart from the plain vector, refused where it cannot run."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from semstyle.errors import OptionError
from semstyle.pipeline.options import MAX_STYLE_FIT, StylizeOptions
from semstyle.pipeline.style_fit import fit_objective, reference_photos
from semstyle.stylizer import Stylizer

from .helpers import assert_one_line_error, data_dir, run_cli

UNSEEN = data_dir("semantic") / "gogh_portrait_style.jpg"
"""A painting none of the shipped models was trained on."""


def objective_of(stylizer: Stylizer, painting, style_size: int):
    engine = stylizer.engine
    return fit_objective(engine.generator, engine.encoder, engine.read(painting, style_size, "style_size"),
                         engine.autocast)


def test_the_reference_photos_ship_with_the_package():
    photos = reference_photos()
    assert photos.shape == (2, 3, 192, 192) and 0 <= photos.min() and photos.max() <= 1
    assert photos.std() > 0.1  # photos, not flat placeholders


def test_fitting_lowers_the_style_loss_of_the_shipped_model_on_an_unseen_painting():
    stylizer = Stylizer("default", precision="fp32", style_size=128)
    objective = objective_of(stylizer, UNSEEN, 128)
    plain = stylizer.style_vector(UNSEEN)
    fitted = stylizer.style_vector(UNSEEN, style_fit=3)
    with torch.no_grad():
        before, after = objective(plain).item(), objective(fitted).item()
    assert after < 0.97 * before, (before, after)
    assert torch.equal(stylizer.style_vector(UNSEEN, style_fit=0), plain)  # 0 is the encoder's own vector


def test_a_fitted_vector_is_cached_apart_from_the_plain_one_and_on_disk(model, fresh_store):
    painting = data_dir("styles") / "starry_night.jpg"
    first = Stylizer(model, precision="fp32", style_size=96)
    plain = first.style_vector(painting)
    fitted = first.style_vector(painting, style_fit=4)
    assert not torch.allclose(plain, fitted)
    assert torch.equal(first.style_vector(painting), plain)  # fitting did not overwrite the plain vector
    assert len(list(fresh_store.folder.glob("*.npy"))) == 2
    other_steps = first.style_vector(painting, style_fit=2)
    assert not torch.allclose(other_steps, fitted)
    later = Stylizer(model, precision="fp32", style_size=96)  # a new process starts the same way
    assert torch.equal(later.style_vector(painting, style_fit=4), fitted)
    assert later.engine.style_cache.misses == 0


def test_stylize_uses_the_fitted_vector(model, photo):
    stylizer = Stylizer(model, precision="fp32", style_size=96)
    painting = data_dir("styles") / "the_scream.jpg"
    plain = stylizer.stylize(photo, painting)
    fitted = stylizer.stylize(photo, painting, style_fit=4)
    again = stylizer.stylize(photo, painting, style_fit=4)
    assert plain.size == fitted.size and plain.tobytes() != fitted.tobytes()
    assert again.tobytes() == fitted.tobytes()
    # the same vector, passed by hand, paints the same picture: fitting is only a better vector
    vector = stylizer.style_vector(painting, style_fit=4)
    by_hand = stylizer.stylize(photo, vector, colour_match=0.0)
    assert by_hand.tobytes() == stylizer.stylize(photo, painting, style_fit=4, colour_match=0.0).tobytes()


@pytest.mark.parametrize("steps", [-1, MAX_STYLE_FIT + 1, 2.5, "10"])
def test_bad_step_counts_name_the_option(steps):
    with pytest.raises(OptionError, match="style_fit"):
        StylizeOptions(style_fit=steps).validate()


def test_the_command_line_fits_and_refuses_bad_counts(model, style, photo, tmp_path, capsys):
    plain, fitted = tmp_path / "plain.png", tmp_path / "fitted.png"
    for out, steps in ((plain, "0"), (fitted, "3")):
        code, _, err = run_cli(["stylize", str(photo), "--style", str(style), "-o", str(out), "--model", str(model),
                                "--style-fit", steps], capsys)
        assert code == 0, err
    assert Image.open(plain).tobytes() != Image.open(fitted).tobytes()
    code, _, err = run_cli(["stylize", str(photo), "--style", str(style), "-o", str(tmp_path / "x.png"),
                            "--model", str(model), "--style-fit", "-3"], capsys)
    assert_one_line_error(code, err, "--style-fit")
    assert not (tmp_path / "x.png").exists()


def test_the_onnx_backend_refuses_fitting_in_one_line(model, style, photo, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from semstyle.export.onnx import export_onnx
    from semstyle.runtime.onnx import OnnxStylizer

    folder = export_onnx(model, tmp_path / "onnx")
    with pytest.raises(OptionError, match="torch backend"):
        OnnxStylizer(folder).stylize(photo, style, style_fit=5)


def test_on_step_sees_every_step_and_the_last_is_the_result(model):
    """benchmarks/fit_sweep.py reads a whole trajectory from one fit through ``on_step``."""
    from semstyle.pipeline.style_fit import fit_style_vector

    stylizer = Stylizer(model, precision="fp32", style_size=64)
    engine, painting = stylizer.engine, data_dir("styles") / "starry_night.jpg"
    pixels, plain = engine.read(painting, 64, "style_size"), stylizer.style_vector(painting)
    before = plain.clone()
    seen: list[tuple[int, torch.Tensor]] = []
    fitted = fit_style_vector(engine.generator, engine.encoder, pixels, plain, 3, engine.autocast,
                              on_step=lambda done, vector: seen.append((done, vector)))
    assert [done for done, _ in seen] == [1, 2, 3]
    assert torch.equal(seen[-1][1], fitted) and not torch.equal(seen[0][1], fitted)
    assert torch.equal(plain, before)  # the encoder's vector is not moved in place


def test_the_fast_model_refuses_fitting_which_made_it_worse(photo):
    """quality.py's 18 unseen pairs: the fast model's style distance 0.637 plain, 0.719 fitted."""
    with pytest.raises(OptionError, match="style_fit.*fast model"):
        Stylizer("fast").stylize(photo, data_dir("styles") / "the_scream.jpg", style_fit=2)
