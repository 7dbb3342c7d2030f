"""FLOPs per part of semstyle's data path, and how much of this CPU's convolution speed each part reaches.

Used by ``speed.py`` (issue 13, item 5). Why per part: the issue found that the kernels are
fine and the amount of work is the problem, so the table says, for each part, how much work
it does (GFLOP), how long it takes warm (ms), the rate it achieves (GFLOP/s) and that rate as
a fraction of a reference convolution on the same machine, in the same dtype. A part far
below the reference spends its time outside the big convolutions (elementwise passes,
padding, layout changes, small convolutions); a part near it can only get faster by doing
less work.

The parts are the engine's own calls, on the same padded, channels-last input it uses:

* ``content features``: ``generator.features(encoder, x, (generator.inference_tap,))`` -- VGG up
  to the content layer, or the fast model's light encoder up to its hidden layer (no VGG at full
  strength);
* ``decoding``: ``generator.run(feats, vector)`` -- statistics, injection and the decoder (for
  the fast model folded into one convolution with the encoder's projection: nn/fold.py);
* ``style encoding``: ``engine.style_vector`` of the painting at the default style size
  (512 px), once per model (it does not depend on the content size);
* ``whole stylize``: ``engine.stylize(content, vector)``, the sum plus padding, crop and clamp.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode``: convolutions and matrix products
(2 per multiply-add); elementwise work (ReLU, normalisation, FiLM) is not counted. The peer
runs ONNX graphs, which this counter cannot see, so its FLOPs are not measured here.

Also here, because it times the networks alone the same way: frames/s on a GPU (item 6).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from benchmarks import common

REFERENCE_CONV = "3x3 conv 256->256 on 1x256x128x128, channels-last"


def count_flops(fn: Callable[[], Any]) -> float:
    """FLOPs of one call of ``fn`` (convolutions and matrix products)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], repeats: int, device: torch.device, warmup: int = 1) -> list[float]:
    """Seconds of each of ``repeats`` warm calls (after ``warmup`` untimed ones), synchronized on a GPU."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


@torch.no_grad()
def conv_reference(device: torch.device, dtype: torch.dtype, repeats: int = 5, side: int = 128) -> dict[str, Any]:
    """This machine's convolution speed in GFLOP/s: the best of ``repeats`` runs of a 3x3 256->256
    convolution, in the engine's dtype and layout. Best, not median: it is the ceiling the parts
    are compared with, and a busy moment should not lower the ceiling."""
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(device=device, dtype=dtype, memory_format=torch.channels_last)
    x = torch.rand(1, 256, side, side, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    flops = count_flops(lambda: conv(x))
    best = min(timed(lambda: conv(x), repeats, device))
    return {"what": REFERENCE_CONV if side == 128 else f"{REFERENCE_CONV} at {side}x{side}", "runs": repeats,
            "dtype": str(dtype), "gflop": flops / 1e9, "seconds": best, "gflops_per_second": flops / 1e9 / best}


def part_calls(engine: Any, content: torch.Tensor, style: torch.Tensor) -> dict[str, Callable[[], Any]]:
    """The parts of the data path for one content tensor (1, 3, H, W) and one style image tensor
    (1, 3, h, w), as the engine runs them: features under its autocast, the generator in the
    decoder's dtype. Features and vector are computed once here, so that decoding runs alone."""
    from semstyle.pipeline.prepare import pad_for_network

    generator = engine.generator
    padded = pad_for_network(content.to(engine.device))[0].contiguous(memory_format=torch.channels_last)
    taps = (generator.inference_tap,)
    style = style.to(engine.device)

    def features() -> dict[str, torch.Tensor]:
        with torch.no_grad(), engine.autocast():
            return generator.features(engine.encoder, padded, taps)

    feats = features()
    vector = engine.style_vector(style)

    def decoding() -> torch.Tensor:
        with torch.no_grad():
            return generator.run(feats, vector).image

    return {"content features": features, "decoding": decoding,
            "whole stylize": lambda: engine.stylize(content, vector)}


def measure_part(fn: Callable[[], Any], repeats: int, device: torch.device, peak: float) -> dict[str, Any]:
    """GFLOP, warm median ms, achieved GFLOP/s and the fraction of ``peak`` GFLOP/s of one part."""
    flops = count_flops(fn)
    times = timed(fn, repeats, device)
    seconds = common.median(times)
    rate = flops / 1e9 / seconds if seconds else float("nan")
    return {"gflop": flops / 1e9, "runs": times, "median_seconds": seconds, "gflops_per_second": rate,
            "fraction_of_reference": rate / peak if peak else float("nan")}


def measure_model(engine: Any, photo: Image.Image, style: Image.Image, sizes: list[int], repeats: int,
                  peak: float, log: Callable[[str], None] = print, label: str = "") -> dict[str, Any]:
    """Every part at every content size (the longer side), and the style encoding once (it does not
    depend on the content). Returns ``{"style encoding": part, "sizes": {size: {part: ...}}}``."""
    from semstyle.io import image_to_tensor
    from semstyle.pipeline.options import DEFAULT_STYLE_SIZE

    style_t = engine.read(style, DEFAULT_STYLE_SIZE, "style_size")
    result: dict[str, Any] = {"style_size": DEFAULT_STYLE_SIZE, "sizes": {},
                              "style encoding": measure_part(lambda: engine.style_vector(style_t), repeats,
                                                             engine.device, peak)}
    for size in sizes:
        calls = part_calls(engine, image_to_tensor(common.fit_longer_side(photo, size)), style_t)
        parts = result["sizes"][str(size)] = {name: measure_part(fn, repeats, engine.device, peak)
                                              for name, fn in calls.items()}
        log(f"  flops {label} {size}px: " + ", ".join(
            f"{name} {p['gflop']:.1f} GFLOP, {1e3 * p['median_seconds']:.0f} ms" for name, p in parts.items()))
    return result


def figures(engines: dict[str, Any], photo: Image.Image, style: Image.Image, sizes: list[int], repeats: int,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """The reference convolution (in the first engine's device and dtype: the models share the
    precision) and every part of every model: ``{"reference": ..., "models": {label: ...}}``."""
    first = next(iter(engines.values()))
    reference = conv_reference(first.device, first.dtype, max(3, repeats))
    log(f"  reference convolution: {reference['gflops_per_second']:.0f} GFLOP/s ({reference['dtype']})")
    peak = reference["gflops_per_second"]
    return {"reference": reference,
            "models": {label: measure_model(engine, photo, style, sizes, repeats, peak, log, label)
                       for label, engine in engines.items()}}


def frame_rates(models: dict[str, str], frames: dict[str, Image.Image], style: Image.Image, device: str,
                precision: str, count: int, encoder_weights: str | None = None) -> dict[str, Any]:
    """Frames/s of each model (label -> model argument) on ``device`` (a GPU) at each frame size,
    warm, synchronized after every frame: the networks' rate for video (the frame already on the
    device, the style vector given). One model on the device at a time."""
    results = {}
    for label, name in models.items():
        results[label] = model_frame_rates(name, frames, style, device, precision, count, encoder_weights)
        if device.startswith("cuda"):
            torch.cuda.empty_cache()  # the model's tensors are gone with the call: free them for the next
    return results


def model_frame_rates(model: str, frames: dict[str, Image.Image], style: Image.Image, device: str, precision: str,
                      count: int, encoder_weights: str | None = None) -> dict[str, Any]:
    from semstyle import Stylizer
    from semstyle.io import image_to_tensor

    stylizer = Stylizer(model, device=device, precision=precision, encoder_weights=encoder_weights)
    engine, vector = stylizer.engine, stylizer.style_vector(style)
    results: dict[str, Any] = {}
    for size, frame in frames.items():
        content = image_to_tensor(frame).to(engine.device)
        times = timed(lambda: engine.stylize(content, vector), count, engine.device, warmup=3)
        median = common.median(times)
        results[size] = {"runs": times, "median_seconds": median, "fps": 1 / median if median else None}
    return results


def print_frame_rates(results: dict[str, Any] | None) -> None:
    if results is None:
        print("GPU: no GPU (torch.cuda.is_available() is false)")
        return
    rows = [[label, size, 1e3 * e["median_seconds"], e["fps"]]
            for label, sizes in results.items() for size, e in sizes.items()]
    common.print_table(f"GPU ({torch.cuda.get_device_name(0)}; warm, synchronized after each frame, style vector "
                       "given)", ["model", "size", "ms / frame", "fps"], rows, text_columns=2)


def table_rows(models: dict[str, dict[str, Any]]) -> tuple[list[list[Any]], list[int]]:
    """Rows [model, size, part, GFLOP, ms, GFLOP/s, % of the reference] and section starts."""
    rows: list[list[Any]] = []
    sections: list[int] = []

    def row(model: str, size: str, name: str, part: dict[str, Any]) -> list[Any]:
        return [model, size, name, part["gflop"], 1e3 * part["median_seconds"], part["gflops_per_second"],
                100 * part["fraction_of_reference"]]

    for label, result in models.items():
        if rows:
            sections.append(len(rows))
        for size, parts in result["sizes"].items():
            rows.extend(row(label, f"{size} px", name, part) for name, part in parts.items())
        if "style encoding" in result:
            rows.append(row(label, f"{result['style_size']} px", "style encoding", result["style encoding"]))
    return rows, sections


def print_tables(results: dict[str, Any], repeats: int) -> None:
    ref = results["reference"]
    rows, sections = table_rows(results["models"])
    common.print_table(f"FLOPs per part (median of {repeats} warm runs; % of this CPU's reference convolution: "
                       f"{ref['gflops_per_second']:.0f} GFLOP/s, {ref['dtype']})",
                       ["model", "size", "part", "GFLOP", "ms", "GFLOP/s", "% of ref"], rows,
                       sections=sections, text_columns=3)
    print(f"  reference: {ref['what']}, best of {ref['runs']} runs")
    print("  GFLOP: convolutions and matrix products (FlopCounterMode); elementwise work is not counted")
    print("  content features: VGG to the content layer, or the fast model's light encoder; "
          "decoding: statistics, injection, decoder; whole stylize adds padding, crop and clamp")
    print("  peer: not measured (its ONNX graphs are invisible to PyTorch's FLOP counter)")
