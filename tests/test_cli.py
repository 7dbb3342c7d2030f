"""The command line: happy paths, and one clear line + exit 2 for bad input."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semstyle.io import DIGITAL_SOURCE_TYPE, read_provenance

from .helpers import assert_one_line_error, data_dir, run_cli


def stylize(*args: str) -> list[str]:
    return ["stylize", *map(str, args)]


def test_stylize_writes_photo_sized_image_with_provenance(model, style, photo, tmp_path, capsys):
    out = tmp_path / "out.png"
    code, _, err = run_cli(stylize(photo, "--style", style, "-o", out, "--model", model), capsys)
    assert code == 0, err
    assert Image.open(out).size == (90, 60)
    meta = read_provenance(out)
    assert DIGITAL_SOURCE_TYPE in meta["xmp"] and "starry night &amp; co.jpg" in meta["xmp"]
    assert meta["software"].startswith("semstyle")


def test_refine_on_the_command_line(model, style, photo, tmp_path, capsys):
    """--refine N from the CLI: the painting itself goes to refinement (not the style vector the CLI
    encodes once for a folder), and the refined picture differs from the feed-forward one."""
    plain, refined = tmp_path / "plain.png", tmp_path / "refined.png"
    for out, steps in ((plain, "0"), (refined, "3")):
        code, _, err = run_cli(stylize(photo, "--style", style, "-o", out, "--model", model, "--refine", steps), capsys)
        assert code == 0, err
    a, b = (np.asarray(Image.open(p), dtype=np.float32) for p in (plain, refined))
    assert a.shape == b.shape == (60, 90, 3) and np.abs(a - b).mean() > 1.0
    code, _, err = run_cli(stylize(photo, "--style", style, "--style", style, "-o", tmp_path / "x.png", "--model",
                                   model, "--refine", "3"), capsys)
    assert code == 2 and "must be one image for refinement, not a blend" in err


def test_no_metadata_flag(model, style, photo, tmp_path, capsys):
    out = tmp_path / "out.jpg"
    code, _, _ = run_cli(stylize(photo, "--style", style, "-o", out, "--model", model, "--no-metadata"), capsys)
    assert code == 0 and read_provenance(out)["xmp"] == ""


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_output_format_follows_extension(model, style, photo, tmp_path, capsys, suffix):
    out = tmp_path / f"out{suffix}"
    assert run_cli(stylize(photo, "--style", style, "-o", out, "--model", model), capsys)[0] == 0
    assert Image.open(out).format == {".png": "PNG", ".jpg": "JPEG", ".webp": "WEBP"}[suffix]


def test_folder_in_folder_out_with_blend_and_options(model, style, photo, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(photo, folder / "a.png")
    Image.open(photo).resize((70, 100)).save(folder / "b.jpg")
    other = data_dir("styles") / "the_scream.jpg"
    argv = stylize(folder, "--style", f"{style}:0.7", "--style", f"{other}:0.3", "-o", tmp_path / "out",
                   "--model", model, "--strength", "0.6", "--preserve-color", "--size", "64", "--device", "cpu")
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    assert Image.open(tmp_path / "out" / "a.png").size == (64, 43)
    assert Image.open(tmp_path / "out" / "b.jpg").size == (45, 64)
    assert len(out.splitlines()) == 2


def _png_with_header_size(path: Path, width: int, height: int) -> Path:
    """A valid small PNG whose header claims a huge size: a decompression bomb."""
    raw = b"".join(b"\x00" + b"\x00" * width for _ in range(1))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
                     + chunk(b"IEND", b""))
    return path


def _bad_inputs(tmp: Path, photo: Path) -> dict[str, tuple[Path, str]]:
    truncated = tmp / "truncated.jpg"
    data = (data_dir("content") / "chicago.jpg").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    corrupt = tmp / "corrupt.png"
    corrupt.write_bytes(photo.read_bytes()[:40] + bytes(range(256)) * 20)
    (tmp / "empty.jpg").write_bytes(b"")
    (tmp / "notes.jpg").write_text("this is not an image\n")
    Image.new("RGB", (20, 20), "red").save(tmp / "tiny.png")
    return {
        "missing": (tmp / "nope.jpg", "does not exist"),
        "zero-byte": (tmp / "empty.jpg", "empty"),
        "truncated": (truncated, "truncated"),
        "corrupt": (corrupt, "corrupt"),
        "non-image": (tmp / "notes.jpg", "not an image"),
        "bomb": (_png_with_header_size(tmp / "bomb.png", 20000, 20000), "decompression bomb"),
        "too small": (tmp / "tiny.png", "too small"),
    }


@pytest.mark.parametrize("case", ["missing", "zero-byte", "truncated", "corrupt", "non-image", "bomb", "too small"])
def test_bad_content_image(model, style, photo, tmp_path, capsys, case):
    path, needle = _bad_inputs(tmp_path, photo)[case]
    out = tmp_path / "out.png"
    code, _, err = run_cli(stylize(path, "--style", style, "-o", out, "--model", model), capsys)
    assert_one_line_error(code, err, needle)
    assert not out.exists() and not list(tmp_path.glob(".out.png*"))


@pytest.mark.parametrize("case", ["missing", "truncated", "non-image"])
def test_bad_style_image(model, photo, tmp_path, capsys, case):
    path, needle = _bad_inputs(tmp_path, photo)[case]
    out = tmp_path / "out.png"
    code, _, err = run_cli(stylize(photo, "--style", path, "-o", out, "--model", model), capsys)
    assert_one_line_error(code, err, needle)
    assert not out.exists()


def _odd_mode_images(tmp: Path, photo: Path) -> list[Path]:
    rgb = Image.open(photo).convert("RGB")
    gray16 = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    images = {
        "gray.png": rgb.convert("L"),
        "rgba.png": rgb.convert("RGBA"),
        "cmyk.jpg": rgb.convert("CMYK"),
        "gray16.png": Image.fromarray(gray16),
        "palette.png": rgb.convert("P"),
        "bilevel.png": rgb.convert("1"),
    }
    paths = []
    for name, img in images.items():
        img.save(tmp / name)
        paths.append(tmp / name)
    return paths


def test_unusual_image_modes_are_converted_not_rejected(model, style, photo, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    paths = _odd_mode_images(inputs, photo)
    code, _, err = run_cli(stylize(*paths, "--style", style, "-o", tmp_path / "out", "--model", model), capsys)
    assert code == 0, err
    for path in paths:
        result = Image.open(tmp_path / "out" / (path.stem + path.suffix))
        assert result.size == (90, 60) and result.mode == "RGB"


@pytest.mark.parametrize("strength", ["1.5", "-0.2", "abc"])
def test_bad_strength(model, style, photo, tmp_path, capsys, strength):
    code, _, err = run_cli(stylize(photo, "--style", style, "-o", tmp_path / "o.png", "--model", model,
                                   "--strength", strength), capsys)
    assert_one_line_error(code, err, "strength")


@pytest.mark.parametrize("target,needle", [
    ("missing_dir/out.png", "does not exist"),
    ("out.gif", "unsupported output type"),
    ("file.txt/out.png", "not a folder"),
])
def test_unwritable_output(model, style, photo, tmp_path, capsys, target, needle):
    (tmp_path / "file.txt").write_text("x")
    code, _, err = run_cli(stylize(photo, "--style", style, "-o", tmp_path / target, "--model", model), capsys)
    assert_one_line_error(code, err, needle)


def test_bad_model_and_encoder_weights(style, photo, tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    code, _, err = run_cli(stylize(photo, "--style", style, "-o", tmp_path / "o.png", "--model", bad), capsys)
    assert_one_line_error(code, err, "cannot read model file")
    code, _, err = run_cli(stylize(photo, "--style", style, "-o", tmp_path / "o.png", "--model", tmp_path / "none"),
                           capsys)
    assert_one_line_error(code, err, "not found")


def test_usage_errors_are_one_line(capsys):
    code, _, err = run_cli(["stylize", "photo.jpg"], capsys)
    assert_one_line_error(code, err, "--style")


def test_train_bad_folder_is_one_line(tmp_path, capsys):
    code, _, err = run_cli(["train", "--content", tmp_path / "none", "--styles", tmp_path / "none",
                            "--out", tmp_path / "run", "--steps", "1", "--size", "32"], capsys)
    assert_one_line_error(code, err, "none")


def test_weights_path_prints_cache_location(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SEMSTYLE_HOME", str(tmp_path))
    code, out, _ = run_cli(["weights", "path"], capsys)
    assert code == 0 and out.strip() == str(tmp_path / "vgg16_hed_bsds500.safetensors")


def test_export_averages_the_newest_checkpoints(tmp_path, capsys):
    from semstyle.checkpoints import load_generator

    from .test_checkpoints import run_with_checkpoints

    generators = run_with_checkpoints(tmp_path / "run", [1, 2, 3])
    code, out, err = run_cli(["export", tmp_path / "run", "-o", tmp_path / "avg", "--average", "2"], capsys)
    assert code == 0, err
    config = json.loads((tmp_path / "avg" / "config.json").read_text())
    assert config["averaged_steps"] == "200,300"
    averaged, _ = load_generator(tmp_path / "avg")
    name, value = next(iter(averaged.state_dict().items()))
    assert torch.allclose(value, (generators[1].state_dict()[name] + generators[2].state_dict()[name]) / 2, atol=1e-6)

    code, _, err = run_cli(["export", tmp_path / "run", "-o", tmp_path / "x", "--average", "4"], capsys)
    assert code == 2 and "at least that many checkpoints" in err and "Traceback" not in err


def test_export_command(model, tmp_path, capsys):
    code, out, err = run_cli(["export", model, "-o", tmp_path / "exported", "--half"], capsys)
    assert code == 0, err
    assert (tmp_path / "exported" / "model.safetensors").is_file()
