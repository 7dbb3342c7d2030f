#!/usr/bin/env python
"""Int8 benchmark (issue 13): does onnxruntime's int8 (VNNI) path pay for the fast model?

The exported image -> image graph (``semstyle export --onnx``; the shipped one by default) is
quantized statically (QDQ, per-channel int8 weights, uint8 activations, calibrated on photos
of ``../shared/data/content`` with paintings' vectors), in three ways:

* ``all ops``: every op onnxruntime can quantize;
* ``convolutions``: only convolutions with constant weights (the folded injection's, made per
  image from the style vector, stays float32);
* ``inner convolutions``: also leaving the first (RGB in) and last (RGB out) in float32.

Each is timed against the float32 graph, alternating, warm medians, and semstyle's own torch
path (bfloat16 eager, what ``Stylizer("fast")`` runs) is timed before them; the PSNR against
the float32 graph's output says what a variant costs in the picture. Run on a quiet machine::

    .venv/bin/python benchmarks/int8.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402

VARIANTS = {
    "all ops": {"convolutions_only": False},
    "convolutions": {},
    "inner convolutions": {"keep_ends": True},
}
"""Keyword arguments of :func:`semstyle.export.quantize.quantize_graph` per variant."""
CALIBRATION_PHOTOS = 6
CALIBRATION_STYLES = 2


def as_input(img, side: int) -> np.ndarray:
    """A PIL image, longer side ``side`` and both sides multiples of 8, as (1, 3, H, W) float32."""
    img = common.fit_longer_side(img.convert("RGB"), side)
    img = img.resize((img.width // 8 * 8, img.height // 8 * 8))
    return (np.asarray(img, np.float32) / 255.0).transpose(2, 0, 1)[None].copy()


def time_torch(args: argparse.Namespace, vector) -> dict[int, list[float]]:
    """Warm seconds of semstyle's torch path (``Stylizer("fast")``, bfloat16) per size, measured
    before any onnxruntime session exists: their idle threads slowed it by up to 1.7x."""
    import torch

    from semstyle import Stylizer

    stylizer = Stylizer("fast")
    times = {}
    for side in args.sizes:
        tensor = torch.from_numpy(as_input(common.content_photo(args.photo), side))
        stylizer.engine.stylize(tensor, vector)
        times[side] = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            stylizer.engine.stylize(tensor, vector)
            times[side].append(time.perf_counter() - start)
    return times


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--onnx", type=Path, help="an ONNX folder of a fast model (default: the shipped fast model's)")
    p.add_argument("--sizes", type=int, nargs="+", default=[384, 1024], help="longer sides in px (default 384 1024)")
    p.add_argument("--repeats", type=int, default=5, help="warm calls per variant and size (default 5)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads (default: all cores)")
    p.add_argument("--photo", default="astronaut", help="the timed photo (scikit-image's, never calibrated on)")
    p.add_argument("--style", default="starry_night.jpg", help="painting in ../shared/data/styles")
    p.add_argument("--out", type=Path, default=common.DEFAULT_OUT, help="output folder (default benchmarks/results/)")
    args = p.parse_args(argv)
    if args.repeats < 1 or args.threads < 1 or min(args.sizes) < 32:
        p.error("--repeats and --threads must be at least 1, --sizes at least 32")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import onnxruntime as ort
    import torch

    from semstyle.export.quantize import psnr, quantize_graph
    from semstyle.runtime.onnx import MANIFEST, onnx_folder

    torch.set_num_threads(args.threads)
    folder = onnx_folder(args.onnx or "fast")
    session_options = ort.SessionOptions()
    session_options.intra_op_num_threads = args.threads
    # onnxruntime's idle threads spin by default, stealing the cores from the torch row timed next
    session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    manifest = json.loads((folder / MANIFEST).read_text())
    encoder = ort.InferenceSession(str(folder / manifest.get("style_encoder", "style_encoder.onnx")), session_options)
    paintings = sorted(common.STYLES_DIR.glob("*.jpg"))[:CALIBRATION_STYLES]
    vectors = [encoder.run(None, {"image": as_input(common.style_image(p.name), 256)})[0] for p in paintings]
    photos = sorted((common.DATA_DIR / "content").glob("*.jpg"))[:CALIBRATION_PHOTOS]
    from PIL import Image

    calibration = [{"image": as_input(Image.open(p), 384), "style": v} for p in photos for v in vectors]
    style = encoder.run(None, {"image": as_input(common.style_image(args.style), 512)})[0]
    torch_times = time_torch(args, torch.from_numpy(style))  # first: onnxruntime's threads would slow it
    sessions: dict[str, Any] = {"float32": ort.InferenceSession(str(folder / "stylize.onnx"), session_options)}
    with tempfile.TemporaryDirectory(prefix="semstyle-int8-") as tmp:
        for name, variant in VARIANTS.items():
            path = quantize_graph(folder / "stylize.onnx", Path(tmp) / f"{name.replace(' ', '_')}.onnx", calibration,
                                  **variant)
            sessions[name] = ort.InferenceSession(str(path), session_options)
    rows, results = [], []
    for side in args.sizes:
        image = as_input(common.content_photo(args.photo), side)
        feed = {"image": image, "style": style}
        outputs = {name: s.run(None, feed)[0] for name, s in sessions.items()}  # warm-up, and the pictures
        times: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(args.repeats):  # alternating, so drifts of the machine hit every row alike
            for name, session in sessions.items():
                start = time.perf_counter()
                session.run(None, feed)
                times[name].append(time.perf_counter() - start)
        times["torch bf16"] = torch_times[side]
        base = common.median(times["float32"])
        for name, values in times.items():
            seconds = common.median(values)
            quality = psnr(outputs[name], outputs["float32"]) if name in outputs else None
            results.append({"size": side, "variant": name, "seconds": seconds, "psnr_vs_float32": quality})
            rows.append([f"{image.shape[3]}x{image.shape[2]}", name, seconds, base / seconds, quality])
    common.print_table(f"Fast model, onnxruntime int8 vs float32 and torch ({args.threads} threads, warm medians "
                       f"of {args.repeats})", ["size", "variant", "seconds", "speed-up vs fp32", "PSNR dB vs fp32"],
                       rows, text_columns=2)
    path = common.write_json({"benchmark": "int8", "config": {**vars(args), "out": str(args.out)},
                              "environment": common.environment(), "results": results}, args.out / "int8.json")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
