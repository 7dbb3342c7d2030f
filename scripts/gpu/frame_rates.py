"""Frames per second of models on a GPU at 512x512 and 1920x1080 (issue 13's GPU figures), with
benchmarks/flops.py's timing, written as JSON: ``frame_rates.py --out F LABEL=MODEL ...``.
benchmarks/speed.py measures the same beside the CPU peer; this is the part of it a GPU machine
without the peer, and with the packed VGG weights of prepare_carry.py, can run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import flops  # noqa: E402
from benchmarks.speed import GPU_SIZES, widescreen  # noqa: E402
from semstyle.io.read import load_image  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="LABEL=MODEL")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--encoder-weights")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    models = dict(item.split("=", 1) for item in args.models)
    photo, style = load_image(REPO / "examples" / "chicago.jpg"), load_image(REPO / "examples" / "starry_night.jpg")
    frames = {f"{w}x{h}": widescreen(photo, w, h) for w, h in GPU_SIZES}
    results = flops.frame_rates(models, frames, style, args.device, args.precision, args.frames,
                                encoder_weights=args.encoder_weights)
    args.out.write_text(json.dumps(results, indent=1))
    if args.device.startswith("cuda"):
        flops.print_frame_rates(results)


if __name__ == "__main__":
    main()
