"""``semstyle live``: a camera or a video file, stylized in real time, as an MJPEG stream on loopback."""

from __future__ import annotations

import dataclasses

from ..pipeline.options import DEFAULTS, StylizeOptions
from .common import MODEL_HELP, add_runtime_flags, add_style_fit_flag, ensure_weights, say
from .stylize import parse_style_arg

DEFAULT_PORT = 8765


def add_parser(commands) -> None:
    from ..video.options import FLOW_PRESETS, LIVE_VIDEO

    d, v = DEFAULTS, LIVE_VIDEO
    p = commands.add_parser("live", help="stylize a camera (index) or a video file in real time; watch in a browser")
    p.add_argument("source", help="camera index (0, 1, ...) or a video file, played at its own rate")
    p.add_argument("--style", action="append", required=True, metavar="IMAGE[:WEIGHT]", help="style image")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--size", type=int, default=640, help="cap the longer side in px (default %(default)s)")
    p.add_argument("--strength", type=float, default=d.strength, help="0 = as filmed, 1 = full style")
    p.add_argument("--preserve-color", dest="preserve_colors", action="store_true", help="keep the colours")
    add_style_fit_flag(p, d)
    p.add_argument("--smooth-stats", type=float, default=v.smooth_stats, help="0 = off (default %(default)s)")
    p.add_argument("--flow-blend", type=float, default=v.flow_blend, help="0 = off (default %(default)s)")
    p.add_argument("--flow-size", type=int, default=v.flow_size,
                   help="longer side in px at which optical flow runs (default %(default)s)")
    p.add_argument("--flow-preset", default=v.flow_preset, choices=FLOW_PRESETS,
                   help="optical-flow refinement, slowest first (default %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help="serve the MJPEG stream on 127.0.0.1:PORT (default %(default)s; 0 = any free port)")
    p.add_argument("--no-stream", action="store_true", help="no HTTP stream (with --window)")
    p.add_argument("--window", action="store_true", help="also show a window (needs a GUI build of OpenCV)")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--precision", default=d.precision, choices=["auto", "fp32", "bf16"])
    add_runtime_flags(p, d)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..errors import ConfigError
    from ..stylizer import Stylizer
    from ..video.live import parse_source, run_live
    from ..video.options import LIVE_VIDEO

    source = parse_source(args.source)
    if args.no_stream and not args.window:
        raise ConfigError("--no-stream leaves nothing to show; add --window")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be from 0 to 65535, got {args.port}")
    if args.duration is not None and not args.duration > 0:
        raise ConfigError(f"--duration must be a number of seconds above 0, got {args.duration}")
    options = StylizeOptions(strength=args.strength, size=args.size, preserve_colors=args.preserve_colors,
                             style_fit=args.style_fit, device=args.device, precision=args.precision,
                             compile=args.compile).validate()
    video = dataclasses.replace(LIVE_VIDEO, smooth_stats=args.smooth_stats, flow_blend=args.flow_blend,
                                flow_size=args.flow_size, flow_preset=args.flow_preset).validate()
    ensure_weights(args.encoder_weights)
    stylizer = Stylizer(args.model, options, encoder_weights=args.encoder_weights)
    frames = stylizer.frame_stylizer([parse_style_arg(s) for s in args.style], video=video)

    def ready(url: str) -> None:
        print(url, flush=True)
        say(f"semstyle: live: streaming at {url} (Ctrl-C stops)")

    def report(stats) -> None:
        say(f"semstyle: live: {stats.fps:.1f} fps, {stats.shown} shown, {stats.dropped} dropped")

    stats = run_live(frames, source, None if args.no_stream else args.port, args.window, args.duration, ready,
                     report)
    say(f"semstyle: live: {stats.fps:.1f} fps achieved ({stats.shown} frames shown, {stats.dropped} dropped "
        f"of {stats.read} read)" + ("; stopped" if stats.interrupted else ""))
    return 130 if stats.interrupted else 0
