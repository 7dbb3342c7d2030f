"""ONNX export: the image -> image graph with a style-vector input, and the style-encoder graph.

Two graphs, dynamic height and width, opset 18, written into a folder with a small JSON manifest:

* ``stylize.onnx``: ``image`` (1, 3, H, W) in 0..1, already padded for the network (a reflected
  margin and sides a multiple of 8: :func:`semstyle.geometry.network_padding`), and ``style``
  (1, D) -> ``output`` (1, 3, H, W) in 0..1. It is :meth:`semstyle.nn.generator.Generator.run`
  on VGG's content layer, traced: the data path is the same code, not a copy.
* ``style_encoder.onnx``: ``image`` -> ``style`` (1, D), for style images and, below full
  strength, the content's own vector;
* with ``int8``, ``stylize_int8.onnx``: the first graph with int8 convolutions (``--precision int8``).

Padding, cropping, resizing and colour preservation stay outside the graphs, in the runtime
(:mod:`semstyle.runtime.onnx`), which needs neither torch nor this module.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..config import SHIPPED_MODELS
from ..errors import WeightsError
from ..files import atomic_write_text, describe_os_error, staged_folder
from ..nn.generator import Generator
from ..nn.vgg import VGGEncoder
from ..pipeline.engine import StyleEngine, default_model_path
from ..pipeline.options import BORDER_MARGIN
from .quantize import INT8_STYLIZE_FILE, Int8Refused, quantize_stylize

OPSET = 18
MANIFEST = "semstyle-onnx.json"
STYLIZE_FILE = "stylize.onnx"
STYLE_ENCODER_FILE = "style_encoder.onnx"
TOLERANCE = 1e-3
"""Largest difference from eager PyTorch an export may show (pixel values 0..1) before it is refused."""


class StylizeGraph(nn.Module):
    """The content features (VGG up to the content layer, or the fast model's light encoder),
    then the generator's one forward pass at full strength."""

    def __init__(self, encoder: VGGEncoder, generator: Generator):
        super().__init__()
        self.encoder, self.generator = encoder, generator
        self.taps = (generator.inference_tap,)

    def forward(self, image: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.generator(self.generator.features(self.encoder, image, self.taps), style).clamp(0, 1)


class StyleEncoderGraph(nn.Module):
    """VGG up to the style layers, then the style encoder."""

    def __init__(self, encoder: VGGEncoder, generator: Generator):
        super().__init__()
        self.encoder, self.generator = encoder, generator

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.generator.style_vector(self.encoder(image, self.generator.config.style_layers))


def export_onnx(model: str | Path | None, out_dir: str | Path, encoder_weights: str | Path | None = None,
                int8: bool = False, int8_optional: bool = False) -> Path:
    """Export ``model`` (default: the shipped one) into ``out_dir`` and check it against eager;
    with ``int8`` also ``stylize_int8.onnx`` (:mod:`semstyle.export.quantize`) for ``--precision int8``.
    An int8 graph too far from float32 fails the export, or with ``int8_optional`` is left out
    (said on stderr)."""
    engine = StyleEngine.load(model, "cpu", "fp32", encoder_weights)
    encoder = engine.encoder.to(memory_format=torch.contiguous_format).eval()
    generator = engine.generator.to(memory_format=torch.contiguous_format).eval()
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(p.name != MANIFEST and p.suffix != ".onnx"
                                                         for p in out_dir.iterdir())):
        raise WeightsError(f"cannot export to {out_dir}: it exists and is not an ONNX model folder")
    try:
        with staged_folder(out_dir) as stage:
            stylize, encode = StylizeGraph(encoder, generator), StyleEncoderGraph(encoder, generator)
            image, style = torch.rand(1, 3, 64, 96), torch.rand(1, generator.config.style_dim)
            _export(stylize, (image, style), stage / STYLIZE_FILE, ["image", "style"], ["output"],
                    {"image": {2: "height", 3: "width"}, "output": {2: "height", 3: "width"}})
            _export(encode, (image,), stage / STYLE_ENCODER_FILE, ["image"], ["style"],
                    {"image": {2: "height", 3: "width"}})
            manifest = {"format": "semstyle-onnx", "opset": OPSET, "style_dim": generator.config.style_dim,
                        "border_margin": BORDER_MARGIN, "model": str(engine.model_path.name),
                        "model_info": dict(engine.model_info)}
            verify(stage, stylize, encode)
            if int8:
                try:
                    quality = quantize_stylize(stage / STYLIZE_FILE, stage / STYLE_ENCODER_FILE,
                                               stage / INT8_STYLIZE_FILE)
                    manifest["int8"] = {"stylize": INT8_STYLIZE_FILE, "psnr_db": round(quality, 2)}
                except Int8Refused as exc:
                    if not int8_optional:
                        raise
                    print(f"semstyle: {engine.model_path.name}: no int8 graph: {exc}", file=sys.stderr)
            (stage / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    except OSError as exc:
        raise WeightsError(f"cannot write ONNX model folder {out_dir}: {describe_os_error(exc)}") from None
    return out_dir


def export_shipped(root: str | Path, int8: bool = True) -> list[Path]:
    """The package's ONNX files (``make onnx-assets``): every shipped model exported into
    ``root``/NAME, and their style-encoder graph kept once in ``root`` when their style encoders
    hold the same weights (the fast model is distilled with the default model's, frozen: 22 MB
    saved). Traced graphs of equal weights need not be equal bytes, so the weights decide."""
    root = Path(root)
    names = [name for name in SHIPPED_MODELS if any(default_model_path(name).glob("*.safetensors"))]
    # an int8 graph where it stays close to float32 (the fast model: 39 dB; the default model's VGG
    # features lose too much, 26 dB)
    folders = [export_onnx(name, root / name, int8=int8, int8_optional=True) for name in names]
    if len(folders) > 1 and same_style_encoders(names):
        shared = root / STYLE_ENCODER_FILE
        (folders[0] / STYLE_ENCODER_FILE).replace(shared)
        for folder in folders:
            (folder / STYLE_ENCODER_FILE).unlink(missing_ok=True)
            manifest = json.loads((folder / MANIFEST).read_text())
            manifest["style_encoder"] = f"../{STYLE_ENCODER_FILE}"
            atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return folders


def same_style_encoders(names: list[str]) -> bool:
    """Whether the shipped models ``names`` have one style encoder (equal weights and layers)."""
    from ..checkpoints import load_generator

    generators = [load_generator(default_model_path(name))[0] for name in names]
    first = generators[0].style_vector_state()
    return all(g.config.style_layers == generators[0].config.style_layers
               and g.style_vector_state().keys() == first.keys()
               and all(torch.equal(v, first[k]) for k, v in g.style_vector_state().items()) for g in generators[1:])


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], axes: dict) -> None:
    with warnings.catch_warnings():  # the exporter's notes on tracing; verify() checks the result
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)


@torch.no_grad()
def verify(folder: Path, stylize: nn.Module, encode: nn.Module) -> float:
    """Run both graphs with onnxruntime at a size other than the export's; refuse larger differences
    from eager than :data:`TOLERANCE`. Returns the largest difference seen."""
    import onnxruntime as ort

    image = torch.rand(1, 3, 72, 40)
    style = encode(torch.rand(1, 3, 48, 56))
    run_stylize = ort.InferenceSession(str(folder / STYLIZE_FILE), providers=["CPUExecutionProvider"])
    run_encode = ort.InferenceSession(str(folder / STYLE_ENCODER_FILE), providers=["CPUExecutionProvider"])
    got = run_stylize.run(None, {"image": image.numpy(), "style": style.numpy()})[0]
    got_style = run_encode.run(None, {"image": image.numpy()})[0]
    worst = max(float(np.abs(got - stylize(image, style).numpy()).max()),
                float(np.abs(got_style - encode(image).numpy()).max()) / max(1.0, float(encode(image).abs().max())))
    if worst > TOLERANCE:
        raise WeightsError(f"the ONNX export differs from PyTorch by {worst:.2g} (more than {TOLERANCE}); not written")
    return worst
