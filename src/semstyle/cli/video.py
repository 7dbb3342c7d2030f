"""``semstyle video``: a video in a painting's style, steady over time, with its sound."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from ..pipeline.options import DEFAULTS, StylizeOptions
from .common import MODEL_HELP, add_runtime_flags, add_style_fit_flag, ensure_weights, progress, warnings_as_lines
from .stylize import parse_style_arg


def add_parser(commands) -> None:
    from ..video.options import VideoOptions

    d, v = DEFAULTS, VideoOptions()
    p = commands.add_parser("video", help="stylize a video (mp4, mov, mkv, webm, avi, gif in; mp4 or webm out)")
    p.add_argument("input", help="video file")
    p.add_argument("-o", "--output", required=True, help="output video: .mp4/.mov/.mkv (H.264) or .webm (VP9)")
    p.add_argument("--style", action="append", required=True, metavar="IMAGE[:WEIGHT] | IMAGE@TIME",
                   help="style image (repeat to blend); IMAGE@5s keyframes a style schedule, e.g. "
                        "--style a.jpg@0s --style b.jpg@5s")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--size", type=int, default=d.size, help="cap the longer side in px (default: keep the size)")
    p.add_argument("--style-size", type=int, default=d.style_size,
                   help="longer side the style image is read at (default %(default)s)")
    p.add_argument("--strength", type=float, default=d.strength, help="0 = video, 1 = full style (default %(default)s)")
    add_style_fit_flag(p, d)
    p.add_argument("--preserve-color", dest="preserve_colors", action="store_true", help="keep the video's colours")
    p.add_argument("--mask", metavar="PNG", help="stylize only the white area of this mask")
    p.add_argument("--protect", action="append", default=[], metavar="MASK", help="keep this area as it is")
    p.add_argument("--feather", type=float, default=d.feather, metavar="PX", help="soft edge of masks, px")
    p.add_argument("--smooth-stats", type=float, default=v.smooth_stats,
                   help="moving average of the frames' statistics, 0 = off (default %(default)s)")
    p.add_argument("--flow-blend", type=float, default=v.flow_blend,
                   help="share of the flow-warped previous frame kept where the flow is consistent, 0 = off "
                        "(default %(default)s)")
    p.add_argument("--no-audio", action="store_true", help="drop the audio instead of copying it")
    p.add_argument("--precision", default=d.precision, choices=["auto", "fp32", "bf16"])
    add_runtime_flags(p, d)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def parse_schedule_arg(text: str) -> tuple[str, float] | None:
    """``IMAGE@TIME`` -> (image, seconds); None when the text has no time."""
    from ..video.schedule import parse_time

    image, sep, when = text.rpartition("@")
    if not sep or not image or Path(text).exists():
        return None
    return image, parse_time(when)


def run(args) -> int:
    from ..stylizer import Stylizer
    from ..video.container import VideoReader, check_output_path
    from ..video.options import VideoOptions

    keyframes = [parse_schedule_arg(s) for s in args.style]
    if any(keyframes) and not all(keyframes):
        raise ConfigError("--style: give every style a time (a.jpg@0s b.jpg@5s) or none")
    options = StylizeOptions(strength=args.strength, size=args.size, style_size=args.style_size,
                             style_fit=args.style_fit,
                             preserve_colors=args.preserve_colors, device=args.device, precision=args.precision,
                             compile=args.compile,
                             mask=args.mask, protect=tuple(args.protect), feather=args.feather).validate()
    video = VideoOptions(smooth_stats=args.smooth_stats, flow_blend=args.flow_blend, audio=not args.no_audio)
    video.validate()
    check_output_path(args.output)
    with VideoReader(args.input) as reader:  # a bad input fails before the model loads
        total = reader.frames
    ensure_weights(args.encoder_weights)
    stylizer = Stylizer(args.model, options, encoder_weights=args.encoder_weights)
    style = {t: image for image, t in keyframes} if all(keyframes) else [parse_style_arg(s) for s in args.style]
    bar = progress(total or None, "video", not args.no_progress, unit="frame")
    last = [0]

    def on_progress(event) -> None:
        bar.update(event.done - last[0])
        last[0] = event.done

    try:
        with warnings_as_lines():
            result = stylizer.stylize_video(args.input, args.output, style, video=video, on_progress=on_progress)
    finally:
        bar.close()
    print(result.path)
    return 0
