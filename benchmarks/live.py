#!/usr/bin/env python
"""Live benchmark (issues 11 and 13): the frames per second ``semstyle live`` achieves.

A 640x360 clip at 30 fps is made here (video.py's camera path panning and zooming over a
photo) and played at its own rate through :func:`semstyle.video.live.run_live`, the code
``semstyle live`` runs: the stylizer takes the newest frame, drops the ones it cannot keep up
with and JPEG-encodes each result for the MJPEG stream. One row per model and temporal setting:

* ``temporal on``: ``semstyle live``'s defaults (stats smoothing and flow blending, DIS flow at 320 px);
* ``temporal off``: frame by frame.

The achieved fps cannot exceed the clip's 30. Run on a quiet machine::

    .venv/bin/python benchmarks/live.py --threads 2
    .venv/bin/python benchmarks/live.py --seconds 3 --models fast --size 160x90   # smoke
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402
from benchmarks.video import camera_path_clip  # noqa: E402

RATE = 30


def write_clip(path: Path, size: tuple[int, int], seconds: float) -> Path:
    """The synthetic clip as H.264 at :data:`RATE` fps."""
    import av

    frames = camera_path_clip(common.content_photo("astronaut"), int(seconds * RATE) + RATE, size)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=RATE)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path


def measure(model: str, temporal: bool, clip: Path, style: Path, args: argparse.Namespace) -> dict[str, Any]:
    from semstyle import Stylizer
    from semstyle.video.live import run_live
    from semstyle.video.options import LIVE_VIDEO, VideoOptions

    video = LIVE_VIDEO if temporal else VideoOptions(smooth_stats=0.0, flow_blend=0.0)
    stylizer = Stylizer(model, size=max(args.size))
    frames = stylizer.frame_stylizer(str(style), video=video.validate())
    stats = run_live(frames, clip, port=None, window=False, duration=args.seconds,
                     on_ready=lambda url: None, on_stats=lambda s: None)
    return {"model": model, "temporal": temporal, "fps": stats.fps, "shown": stats.shown,
            "dropped": stats.dropped, "seconds": stats.seconds}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["fast", "default"], help="models (default: fast default)")
    p.add_argument("--size", default="640x360", help="clip size WIDTHxHEIGHT (default 640x360)")
    p.add_argument("--seconds", type=float, default=10.0, help="seconds of live play per row (default 10)")
    p.add_argument("--style", default="starry_night.jpg", help="painting in ../shared/data/styles")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    p.add_argument("--out", type=Path, default=common.DEFAULT_OUT, help="output folder (default benchmarks/results/)")
    args = p.parse_args(argv)
    try:
        args.size = tuple(int(v) for v in args.size.lower().split("x"))
        assert len(args.size) == 2 and min(args.size) >= 32
    except (ValueError, AssertionError):
        p.error(f"--size must be WIDTHxHEIGHT with sides of at least 32, got {args.size!r}")
    if not args.seconds > 0 or args.threads < 1:
        p.error("--seconds must be above 0 and --threads at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="semstyle-live-") as tmp:
        clip = write_clip(Path(tmp) / "clip.mp4", args.size, args.seconds)
        style = common.DATA_DIR / "styles" / args.style
        for model in args.models:
            for temporal in (True, False):
                result = measure(model, temporal, clip, style, args)
                results.append(result)
                rows.append([model, "on" if temporal else "off", result["fps"], result["shown"], result["dropped"]])
                print(f"  {model}, temporal {'on' if temporal else 'off'}: {result['fps']:.1f} fps", flush=True)
    common.print_table(f"Live: {args.size[0]}x{args.size[1]} clip at {RATE} fps, {args.seconds:g} s per row, "
                       f"{args.threads} threads", ["model", "temporal", "fps", "shown", "dropped"], rows,
                       text_columns=2)
    path = common.write_json({"benchmark": "live", "config": {**vars(args), "out": str(args.out)},
                              "environment": common.environment(), "results": results}, args.out / "live.json")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
