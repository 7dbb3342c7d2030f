"""ONNX: export the tiny model, run it with onnxruntime (torch-free), compare with PyTorch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from semstyle import Stylizer
from semstyle.errors import OptionError, WeightsError
from semstyle.export.onnx import export_onnx
from semstyle.runtime.onnx import OnnxStylizer

from .helpers import assert_one_line_error, data_dir, run_cli


@pytest.fixture(scope="module")
def onnx_dir(model, tmp_path_factory):
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny_onnx")


@pytest.fixture(scope="module")
def painting():
    return data_dir("styles") / "starry_night.jpg"


def test_export_writes_two_graphs_with_dynamic_sizes(onnx_dir):
    import onnx

    assert sorted(p.name for p in onnx_dir.iterdir()) == ["semstyle-onnx.json", "style_encoder.onnx", "stylize.onnx"]
    graph = onnx.load(str(onnx_dir / "stylize.onnx"))
    assert graph.opset_import[0].version >= 17
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims[2:]] == ["height", "width"]


@pytest.mark.parametrize("options", [{}, {"strength": 0.5}, {"preserve_colors": True}, {"size": 70}])
def test_onnx_runtime_matches_pytorch(model, onnx_dir, photo, painting, options):
    eager = np.asarray(Stylizer(model, device="cpu", precision="fp32").stylize(photo, painting, **options)).astype(int)
    ported = np.asarray(OnnxStylizer(onnx_dir).stylize(photo, painting, **options)).astype(int)
    assert ported.shape == eager.shape
    assert np.abs(ported - eager).max() <= 1


def test_the_runtime_and_the_cli_need_no_torch(onnx_dir, photo, painting, tmp_path):
    """With ``import torch`` made to fail, the ONNX path still stylizes, in Python and on the command line."""
    out = tmp_path / "out.png"
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any import of torch now raises ImportError
        from semstyle.runtime.onnx import OnnxStylizer
        image = OnnxStylizer({str(onnx_dir)!r}).stylize({str(photo)!r}, {str(painting)!r}, strength=0.7)
        assert image.size == (90, 60), image.size
        from semstyle.cli import main
        sys.exit(main(["stylize", {str(photo)!r}, "--style", {str(painting)!r}, "-o", {str(out)!r},
                       "--backend", "onnx", "--model", {str(onnx_dir)!r}]))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (90, 60)


def test_onnx_bad_inputs(onnx_dir, photo, painting, tmp_path, capsys):
    code, _, err = run_cli(["stylize", photo, "--style", painting, "-o", tmp_path / "o.png", "--backend", "onnx",
                            "--model", tmp_path], capsys)
    assert_one_line_error(code, err, "holds no semstyle-onnx.json")
    mask = tmp_path / "m.png"
    Image.new("L", (90, 60), 255).save(mask)
    code, _, err = run_cli(["stylize", photo, "--style", painting, "-o", tmp_path / "o.png", "--backend", "onnx",
                            "--model", onnx_dir, "--mask", mask], capsys)
    assert_one_line_error(code, err, "--backend onnx stylizes whole images")


def test_export_refuses_a_folder_of_other_files(model, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(WeightsError, match="not an ONNX model folder"):
        export_onnx(model, folder)
    assert [p.name for p in folder.iterdir()] == ["holiday.jpg"]


HEAVY_MODULES = ("torch", "safetensors", "h5py", "av", "cv2", "fastapi", "uvicorn")
"""What semstyle[runtime] does not install: the torch-free test blocks all of them."""


@pytest.fixture(scope="module")
def shipped_onnx():
    """The package's ONNX files, built as ``make install`` builds them (``make onnx-assets``) if missing."""
    from semstyle.config import SHIPPED_MODELS
    from semstyle.export.onnx import export_shipped
    from semstyle.pipeline.engine import default_model_path
    from semstyle.runtime.onnx import MANIFEST, onnx_folder

    names = [n for n in SHIPPED_MODELS if any(default_model_path(n).glob("*.safetensors"))]
    try:
        [onnx_folder(name) for name in names]
    except WeightsError:
        export_shipped(default_model_path().parent / "onnx")
    assert all((onnx_folder(name) / MANIFEST).is_file() for name in names)
    return names


@pytest.mark.slow
def test_a_torch_free_install_stylizes_with_the_shipped_models(shipped_onnx, photo, painting, tmp_path):
    """As after ``pip install "semstyle[runtime]"``: none of the engine's dependencies importable,
    the command line picks the ONNX backend by itself and finds the shipped models by name."""
    outputs = {name: tmp_path / f"{name}.png" for name in shipped_onnx}
    script = textwrap.dedent(f"""
        import sys
        for name in {HEAVY_MODULES!r}:
            sys.modules[name] = None  # any import of it now raises ImportError
        from semstyle.cli import main
        for name, out in {({k: str(v) for k, v in outputs.items()})!r}.items():
            code = main(["stylize", {str(photo)!r}, "--style", "starry_night", "-o", out, "--model", name])
            assert code == 0, code
        import semstyle
        try:
            semstyle.Stylizer
        except ImportError as exc:
            assert "semstyle[torch]" in str(exc), exc
        else:
            raise AssertionError("Stylizer imported without torch")
        image = semstyle.OnnxStylizer("default", strength=0.5).stylize({str(photo)!r}, {str(painting)!r})
        assert image.size == (90, 60), image.size
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    images = {name: np.asarray(Image.open(path).convert("RGB")).astype(int) for name, path in outputs.items()}
    photo_pixels = np.asarray(Image.open(photo).convert("RGB")).astype(int)
    for name, pixels in images.items():
        assert pixels.shape == photo_pixels.shape, name
        assert np.abs(pixels - photo_pixels).mean() > 10, name  # stylized, not the photo back
    if len(images) > 1:
        assert np.abs(images["default"] - images["fast"]).mean() > 0.5  # two models, not one twice


def test_the_onnx_stylizer_is_also_stylizers_onnx_backend(onnx_dir, photo, painting):
    via_stylizer = Stylizer(str(onnx_dir), backend="onnx", strength=0.6)
    assert isinstance(via_stylizer, OnnxStylizer)
    assert via_stylizer.stylize(photo, painting).tobytes() == \
        OnnxStylizer(onnx_dir, strength=0.6).stylize(photo, painting).tobytes()
    with pytest.raises(Exception, match="backend must be 'torch' or 'onnx'"):
        Stylizer(backend="tensorflow")


def test_the_onnx_runtime_reads_a_paintings_colours_once(onnx_dir, photo, painting, monkeypatch):
    """Colour matching's moments come from the runtime's own cache after the first image, as the
    engine's do (the same resolution of blends and vectors: semstyle.pipeline.painting_colours)."""
    stylizer = OnnxStylizer(onnx_dir)
    first = stylizer.stylize(photo, painting)
    reads = []
    real_read = stylizer.read
    monkeypatch.setattr(stylizer, "read", lambda image, *a: reads.append(image) or real_read(image, *a))
    assert stylizer.stylize(photo, painting).tobytes() == first.tobytes()
    assert painting not in reads and reads == [photo]
    assert stylizer.style_colours(np.zeros((1, 512), np.float32), stylizer.options) is None


def test_the_shipped_fast_model_has_an_int8_graph_close_to_float32(shipped_onnx, photo, painting, tmp_path, capsys):
    """``--precision int8``: the fast model's int8 convolutions (export/quantize.py), within 38 dB of
    float32 (measured on a gallery image at export), chosen by the CLI without --backend onnx."""
    if "fast" not in shipped_onnx:
        pytest.skip("no fast model shipped")
    from semstyle.runtime.onnx import MANIFEST, onnx_folder

    manifest = json.loads((onnx_folder("fast") / MANIFEST).read_text())
    assert manifest["int8"]["psnr_db"] >= 38
    content = Image.open(data_dir("content") / "chicago.jpg").convert("RGB").resize((192, 128))
    exact = np.asarray(OnnxStylizer("fast").stylize(content, painting), dtype=float) / 255
    int8 = np.asarray(OnnxStylizer("fast", precision="int8").stylize(content, painting), dtype=float) / 255
    assert 10 * np.log10(1 / ((exact - int8) ** 2).mean()) > 30 and np.abs(exact - int8).max() > 0  # close, not equal
    out = tmp_path / "int8.png"
    code, _, err = run_cli(["stylize", photo, "--style", painting, "-o", out, "--model", "fast",
                            "--precision", "int8"], capsys)
    assert code == 0, err
    assert Image.open(out).size == (90, 60)


def test_int8_needs_an_int8_graph_and_the_onnx_backend(onnx_dir, photo, painting, tmp_path, capsys):
    with pytest.raises(OptionError, match="int8 graph"):
        OnnxStylizer(onnx_dir, precision="int8")  # exported without --int8
    with pytest.raises(OptionError, match="ONNX backend"):
        Stylizer("fast", precision="int8")
    code, _, err = run_cli(["stylize", photo, "--style", painting, "-o", tmp_path / "x.png", "--model", "fast",
                            "--precision", "int8", "--backend", "torch"], capsys)
    assert_one_line_error(code, err, "ONNX backend")
    assert not (tmp_path / "x.png").exists()


def test_export_int8_writes_a_third_graph_and_the_runtime_runs_it(model, photo, painting, tmp_path, capsys):
    code, out, err = run_cli(["export", "--onnx", "--int8", model, "-o", tmp_path / "int8"], capsys)
    assert code == 0, err
    manifest = json.loads((tmp_path / "int8" / "semstyle-onnx.json").read_text())
    assert (tmp_path / "int8" / manifest["int8"]["stylize"]).is_file() and manifest["int8"]["psnr_db"] >= 38
    image = OnnxStylizer(tmp_path / "int8", precision="int8").stylize(photo, painting)
    assert image.size == (90, 60)
    code, _, err = run_cli(["export", "--int8", model, "-o", tmp_path / "plain"], capsys)
    assert_one_line_error(code, err, "--int8 goes with --onnx")
