"""Hostile input, as a user who means no good (or just has odd files) would give it.

Every case ends with a sensible output, or exit code 2 and one line on stderr:
never a traceback, never a silently black image, never a lost output.
Stylization, models and the cache here; training and exports in test_hostile_files.py.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semstyle import StylizeOptions, Stylizer
from semstyle.checkpoints import MODEL_FILE, export_model, prefixed
from semstyle.errors import ConfigError, OptionError, WeightsError
from semstyle.nn.generator import Generator
from semstyle.tensorfile import write_tensors

from .helpers import assert_one_line_error, run_cli
from .models_fixture import TINY_MODEL, tiny_model_dir


def stylize(photo, style, out, model, *extra) -> list:
    return ["stylize", photo, "--style", style, "-o", out, "--model", model, *extra]


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


# --------------------------------------------------------------------------
# Image shapes
# --------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("size", [(20000, 50), (50, 20000)])
def test_very_thin_images_say_what_size_would_work(model, style, tmp_path, capsys, size):
    """Under the default 1024 px cap the short side would fall to 3 px: refused, naming the
    --size that works; with that size, the image comes out whole, at its own size."""
    path = tmp_path / "thin.png"
    noise(*size).save(path)
    out = tmp_path / "out.png"
    code, _, err = run_cli(stylize(path, style, out, model), capsys)
    line = assert_one_line_error(code, err, "--size of 1024 px", "at least 12800")
    assert "20000x50" in line or "50x20000" in line
    assert not out.exists()
    code, _, err = run_cli(stylize(path, style, out, model, "--size", "20000"), capsys)
    assert code == 0, err
    result = np.asarray(Image.open(out))
    assert result.shape[:2] == size[::-1]
    assert result.std() > 5  # an image, not a flat or black one


def test_thin_image_is_an_option_error_in_python(model, style):
    stylizer = Stylizer(model, device="cpu")
    with pytest.raises(OptionError, match=r"^size of 1024 px would shrink this 20000x50 image to 1024x3") as info:
        stylizer.stylize(noise(20000, 50), style)
    assert info.value.option == "size"
    with pytest.raises(OptionError, match="style_size of 512 px"):
        stylizer.stylize(noise(64, 64), noise(9000, 40))


def test_tiny_networks_inputs_pad_without_error(model, style):
    """Right at the minimum, with odd sizes, the reflected margin shrinks but the output keeps the size."""
    stylizer = Stylizer(model, device="cpu")
    for size in [(32, 32), (33, 47), (32, 1000)]:
        assert stylizer.stylize(noise(*size), style).size == size


# --------------------------------------------------------------------------
# Numbers: NaN, infinity, zero, negative
# --------------------------------------------------------------------------

@pytest.mark.parametrize("weight", ["nan", "inf", "-inf", "-1"])
def test_style_weights_must_be_finite_and_not_negative(model, style, photo, tmp_path, capsys, weight):
    out = tmp_path / "o.png"
    code, _, err = run_cli(stylize(photo, f"{style}:{weight}", out, model), capsys)
    assert_one_line_error(code, err, "--style", "finite number, 0 or more")
    assert not out.exists()


def test_style_weight_that_is_not_a_number(model, style, photo, tmp_path, capsys):
    code, _, err = run_cli(stylize(photo, f"{style}:abc", tmp_path / "o.png", model), capsys)
    assert_one_line_error(code, err, "the weight 'abc' is not a number")


def test_all_zero_style_weights(model, style, photo, tmp_path, capsys):
    code, _, err = run_cli(stylize(photo, f"{style}:0", tmp_path / "o.png", model), capsys)
    assert_one_line_error(code, err, "must not be 0 for every style image")


@pytest.mark.parametrize("flag,value,needle", [
    ("--style-size", "0", "--style-size must be a whole number of pixels, at least 32"),
    ("--style-size", "-5", "--style-size must be"),
    ("--style-size", "1", "--style-size must be"),
    ("--size", "0", "--size must be"),
    ("--strength", "nan", "--strength must be between 0 and 1"),
    ("--strength", "inf", "--strength must be between 0 and 1"),
    ("--feather", "nan", "--feather must be a number of pixels"),
    ("--feather", "-3", "--feather must be"),
    ("--border-margin", "-1", "--border-margin must be a whole number"),
    ("--max-pixels", "0", "--max-pixels must be a whole number"),
    ("--refine", "-2", "--refine must be a whole number"),
    ("--device", "tpu", "--device must be cpu, cuda, cuda:N or auto"),
])
def test_bad_numbers_are_refused_with_the_flag(model, style, photo, tmp_path, capsys, flag, value, needle):
    out = tmp_path / "o.png"
    code, _, err = run_cli(stylize(photo, style, out, model, flag, value), capsys)
    assert_one_line_error(code, err, needle)
    assert not out.exists()


@pytest.mark.parametrize("change,needle", [
    ({"strength": float("nan")}, "strength must be between 0 and 1"),
    ({"strength": 2}, "strength must be between 0 and 1, got 2"),
    ({"style_size": 0}, "style_size must be"),
    ({"style_size": 64.5}, "style_size must be"),
    ({"size": True}, "size must be"),
    ({"feather": math.inf}, "feather must be"),
    ({"precision": "fp8"}, "precision must be one of auto, fp32, bf16"),
    ({"auto_regions": 9}, "auto_regions must be a whole number from 2 to 8"),
    ({"regions": [("m.png",)]}, "regions must be a list of (mask, style)"),
    ({"labels": ("only one",)}, "labels must be a pair"),
    ({"palette": "ff00zz"}, "palette has a bad colour"),
    ({"preserve_colors": "yes"}, "preserve_colors must be true or false"),
])
def test_library_errors_name_parameters_not_flags(change, needle):
    with pytest.raises(OptionError) as info:
        StylizeOptions(**change).validate()
    assert str(info.value).startswith(needle), str(info.value)
    assert "--" not in str(info.value)


def test_unknown_option_is_named(model):
    stylizer = Stylizer(model, device="cpu")
    with pytest.raises(OptionError, match="stregth is not a stylize option"):
        stylizer.stylize(noise(40, 40), noise(40, 40), stregth=0.5)


def test_device_and_precision_are_fixed_per_stylizer(model):
    stylizer = Stylizer(model, device="cpu", precision="fp32")
    with pytest.raises(OptionError, match="precision is fixed when the Stylizer is made"):
        stylizer.stylize(noise(40, 40), noise(40, 40), precision="bf16")


def test_defaults_are_written_once_and_the_cli_reads_them():
    from semstyle.cli import build_parser
    from semstyle.pipeline.options import DEFAULTS

    args = build_parser().parse_args(["stylize", "x.jpg", "--style", "s.jpg", "-o", "o.png"])
    for name in ("strength", "size", "style_size", "preserve_colors", "device", "precision", "border_margin",
                 "max_pixels", "feather", "palette", "auto_regions", "refine"):
        assert getattr(args, name) == getattr(DEFAULTS, name), name


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------

def weights_only_model(folder: Path, config_text: str | None) -> Path:
    """A model folder whose safetensors file embeds no configuration."""
    folder.mkdir()
    write_tensors(prefixed("generator", Generator(TINY_MODEL).state_dict()), folder / MODEL_FILE, {})
    if config_text is not None:
        (folder / "config.json").write_text(config_text)
    return folder


@pytest.mark.parametrize("config_text,needle", [
    ("{not json", "not valid JSON"),
    ('{"steps": 3}', 'has no "model" section'),
    ('["model"]', 'has no "model" section'),
    ('{"model": {"decoder_width": "wide"}}', "bad model configuration"),
    (None, "has no model configuration"),
])
def test_model_folder_with_a_bad_config(style, photo, tmp_path, capsys, config_text, needle):
    folder = weights_only_model(tmp_path / "model", config_text)
    code, _, err = run_cli(stylize(photo, style, tmp_path / "o.png", folder), capsys)
    assert_one_line_error(code, err, needle)


def test_model_with_nan_weights_is_refused(style, photo, tmp_path, capsys):
    generator = Generator(TINY_MODEL)
    with torch.no_grad():
        generator.decoder.to_rgb[1].weight[0, 0, 0, 0] = float("nan")
    export_model(generator, tmp_path / "nan_model")
    out = tmp_path / "o.png"
    code, _, err = run_cli(stylize(photo, style, out, tmp_path / "nan_model"), capsys)
    assert_one_line_error(code, err, "NaN or infinite weights", "decoder.to_rgb.1.weight")
    assert not out.exists()


# --------------------------------------------------------------------------
# The cache folder (SEMSTYLE_HOME)
# --------------------------------------------------------------------------

@pytest.fixture
def afile(tmp_path) -> Path:
    path = tmp_path / "a_file"
    path.write_text("not a folder")
    return path


@pytest.mark.parametrize("home,needle", [
    ("/proc/semstyle-cache", "cannot write the cache folder SEMSTYLE_HOME=/proc/semstyle-cache"),
    ("/sys/semstyle-cache", "cannot write the cache folder SEMSTYLE_HOME=/sys/semstyle-cache"),
    ("FILE", "is a file, not a folder"),
])
def test_unusable_cache_folder(monkeypatch, capsys, afile, style, photo, tmp_path, home, needle):
    monkeypatch.setenv("SEMSTYLE_HOME", str(afile) if home == "FILE" else home)
    code, _, err = run_cli(["weights", "fetch"], capsys)
    assert_one_line_error(code, err, needle)
    model = tiny_model_dir(tmp_path / "model")
    code, _, err = run_cli(stylize(photo, style, tmp_path / "o.png", model), capsys)
    assert_one_line_error(code, err, "SEMSTYLE_HOME")


def test_library_never_fetches_weights(monkeypatch, tmp_path, style):
    """A library constructor (a server starting up) has no network or disk side effects:
    without cached weights it says what to run, and writes nothing."""
    home = tmp_path / "empty_home"
    monkeypatch.setenv("SEMSTYLE_HOME", str(home))
    with pytest.raises(WeightsError, match="run 'semstyle weights fetch' once"):
        Stylizer(tiny_model_dir(tmp_path / "model"), device="cpu")
    assert not home.exists()


def test_corrupt_cache_suggests_force(monkeypatch, tmp_path, capsys):
    from semstyle.weights import CONVERTED_NAME

    home = tmp_path / "home"
    home.mkdir()
    (home / CONVERTED_NAME).write_bytes(b"\x00 damaged download \xff" * 50)
    monkeypatch.setenv("SEMSTYLE_HOME", str(home))
    code, _, err = run_cli(["weights", "fetch"], capsys)
    assert_one_line_error(code, err, "semstyle weights fetch --force")


def test_corrupt_user_encoder_weights_are_not_told_to_fetch(style, photo, tmp_path, capsys, model):
    bad = tmp_path / "my_vgg.safetensors"
    bad.write_bytes(b"garbage" * 100)
    code, _, err = run_cli(stylize(photo, style, tmp_path / "o.png", model, "--encoder-weights", bad), capsys)
    line = assert_one_line_error(code, err, "cannot read encoder weights", "not a valid safetensors file")
    assert "fetch" not in line


# --------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------

def test_two_inputs_mapping_to_one_output_name(model, style, tmp_path, capsys):
    a, b = tmp_path / "a.png", tmp_path / "a.bmp"
    noise(48, 40).save(a)
    noise(48, 40, seed=1).save(b)
    code, _, err = run_cli(["stylize", a, b, "--style", style, "-o", tmp_path / "out", "--model", model], capsys)
    assert_one_line_error(code, err, "would both be written to", "a.png")
    assert not (tmp_path / "out").exists()
    code, _, err = run_cli(["stylize", a, b, "--style", style, "-o", tmp_path / "x.png", "--model", model], capsys)
    assert_one_line_error(code, err, "several inputs need an output folder", "x.png names an image file")
    assert not (tmp_path / "x.png").exists()


def test_folder_with_two_files_of_one_name(model, style, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    noise(48, 40).save(folder / "pic.png")
    noise(48, 40, seed=1).save(folder / "pic.tif")
    code, _, err = run_cli(stylize(folder, style, tmp_path / "out", model), capsys)
    assert_one_line_error(code, err, "pic.png and", "pic.tif would both be written to")
    assert not (tmp_path / "out").exists()


def test_corrupt_exif_gives_no_stray_warning(model, style, tmp_path, capsys):
    """A photo whose EXIF block is damaged stylizes, and nothing but the output path is printed."""
    path = tmp_path / "exif.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate
    data = bytearray(exif.tobytes())
    data[10:14] = b"\xff\xff\xff\x7f"  # a tag count far past the end of the block
    noise(64, 48).save(path, exif=bytes(data))
    out = tmp_path / "o.png"
    code, stdout, err = run_cli(stylize(path, style, out, model), capsys)
    assert code == 0 and err == "", err
    assert stdout.strip() == str(out)


def test_bomb_message_gives_no_advice_about_a_missing_option(model, style, tmp_path, capsys):
    path = tmp_path / "big.png"
    noise(300, 300).save(path)
    code, _, err = run_cli(stylize(path, style, tmp_path / "o.png", model, "--max-pixels", "50000"), capsys)
    line = assert_one_line_error(code, err, "more than 50,000 pixels", "possible decompression bomb")
    assert "raise max_pixels" not in line


def test_semantic_warnings_are_single_lines(model, style, photo, tmp_path, capsys):
    empty = tmp_path / "empty_mask.png"
    Image.new("L", (90, 60), 0).save(empty)
    out = tmp_path / "o.png"
    code, _, err = run_cli(stylize(photo, style, out, model, "--mask", empty), capsys)
    assert code == 0 and out.exists()
    assert err.strip().splitlines() == [line for line in err.strip().splitlines()
                                        if line.startswith("semstyle: warning: mask")], err


def test_copying_a_model_folder_still_loads(model, tmp_path, style):
    """A model folder moved elsewhere carries everything it needs."""
    copy = shutil.copytree(model, tmp_path / "copied")
    result = Stylizer(copy, device="cpu").stylize(noise(40, 40), style)
    assert result.size == (40, 40)
    assert json.loads((copy / "config.json").read_text())["model"]["style_dim"] == TINY_MODEL.style_dim


def test_config_error_type_is_kept_for_callers():
    """OptionError is a ConfigError, so code that caught ConfigError keeps working."""
    with pytest.raises(ConfigError):
        StylizeOptions(strength=-1).validate()


def test_an_options_object_takes_the_stylizers_device_and_precision(model):
    stylizer = Stylizer(model, device="cpu", precision="fp32")
    image = stylizer.stylize(noise(40, 40), noise(40, 40), StylizeOptions(strength=0.5))
    assert image.size == (40, 40)
