"""Int8 stylize graphs for onnxruntime (``semstyle export --onnx --int8``; ``--precision int8``).

onnxruntime has no bfloat16 convolutions on the CPU, so its float32 graph is slower than the
PyTorch engine's bfloat16 path; its int8 (VNNI) kernels close the gap. Measured with
``benchmarks/int8.py`` on the fast model at 1024 px: convolutions in int8 run 1.5-1.6x faster than
float32 onnxruntime at 44 dB PSNR to it, level with PyTorch bf16; quantizing every op costs 27-31
dB. So only convolutions with constant weights are quantized (static QDQ, per-channel int8 weights,
uint8 activations); the folded injection's convolution, whose weights the style vector makes per
image, stays float32.

Activation ranges are calibrated on the package's own gallery paintings as content, each with
other paintings' style vectors: no data outside the package, the same result on every machine.
The graph is refused below :data:`MIN_PSNR_DB` against the float32 graph on a gallery image the
calibration did not see.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import WeightsError
from ..gallery import load_gallery

INT8_STYLIZE_FILE = "stylize_int8.onnx"
MIN_PSNR_DB = 38.0
"""The least PSNR (dB) to the float32 graph an int8 graph may have: past it the loss shows."""
CALIBRATION_IMAGES = 8
CALIBRATION_SIDE = 256
CHECK_SIDE = 320


class Int8Refused(WeightsError):
    """The int8 graph is too far from the float32 one (below :data:`MIN_PSNR_DB`)."""


def _as_input(path: Path, side: int, multiple: int = 8) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    img.thumbnail((side, side))
    width, height = (max(multiple, length // multiple * multiple) for length in img.size)
    img = img.resize((width, height))
    return (np.asarray(img, np.float32) / 255.0).transpose(2, 0, 1)[None].copy()


def float32_convolutions(model_path: Path, keep_ends: bool = False) -> list[str]:
    """Names of the graph's convolutions to leave in float32: those whose weights the graph computes
    (the folded injection's), and with ``keep_ends`` also the first (RGB in) and the last (RGB out)."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    constant = {i.name for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    excluded = [n.name for n in convs if n.input[1] not in constant]
    if keep_ends:
        excluded += [convs[0].name, convs[-1].name]
    return excluded


def quantize_graph(source: Path, out: Path, feeds: list[dict[str, np.ndarray]], convolutions_only: bool = True,
                   keep_ends: bool = False) -> Path:
    """Static QDQ quantization of the graph ``source`` into ``out`` (per-channel int8 weights, uint8
    activations), activation ranges calibrated on ``feeds``: convolutions only, less
    :func:`float32_convolutions`, or every op onnxruntime can quantize."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter(feeds)

        def get_next(self):
            return next(self.feeds, None)

    with tempfile.TemporaryDirectory(prefix="semstyle-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        choice = {}
        if convolutions_only:
            choice = {"op_types_to_quantize": ["Conv"], "nodes_to_exclude": float32_convolutions(prepared, keep_ends)}
        # reduce_range: 7-bit weights. onnxruntime's u8s8 kernels on CPUs without VNNI (AVX2, or
        # AVX-512 without VNNI) add pairs of products in 16 bits, which saturate with 8-bit weights:
        # there the fast model's int8 graph came out 22 dB from float32, against 41 dB on a VNNI CPU
        quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, **choice)
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2).mean())
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def quantize_stylize(stylize: Path, style_encoder: Path, out: Path) -> float:
    """Write the int8 version of the ``stylize`` graph to ``out``; returns its PSNR (dB) to the
    float32 graph on a held-out gallery image. :class:`Int8Refused` below :data:`MIN_PSNR_DB`."""
    import onnxruntime as ort

    paintings = [style.path for style in load_gallery().values()]
    if len(paintings) < CALIBRATION_IMAGES + 1:
        raise WeightsError("the gallery has too few paintings to calibrate an int8 graph")
    encoder = ort.InferenceSession(str(style_encoder), providers=["CPUExecutionProvider"])
    images = [_as_input(p, CALIBRATION_SIDE) for p in paintings[:CALIBRATION_IMAGES]]
    vectors = [encoder.run(None, {"image": image})[0] for image in images]
    feeds = [{"image": image, "style": vectors[(i + 1 + j) % len(vectors)]}
             for i, image in enumerate(images) for j in range(2)]
    quantize_graph(stylize, out, feeds)
    check = {"image": _as_input(paintings[-1], CHECK_SIDE), "style": vectors[0]}
    reference = ort.InferenceSession(str(stylize), providers=["CPUExecutionProvider"]).run(None, check)[0]
    quantized = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, check)[0]
    quality = psnr(quantized, reference)
    if quality < MIN_PSNR_DB:
        out.unlink(missing_ok=True)
        raise Int8Refused(f"the int8 graph is {quality:.1f} dB from the float32 one (below {MIN_PSNR_DB:g}); "
                          "not written")
    return quality
