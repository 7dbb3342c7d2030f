"""Command-line interface: ``semstyle stylize | video | live | paint | train | export | weights | serve | styles``.

Exit codes: 0 success, 2 bad input or usage (one line on stderr, no
traceback), 130 interrupted. Defaults come from the library
(:class:`~semstyle.pipeline.options.StylizeOptions`); library errors naming an
option are reported with its flag.
"""

from __future__ import annotations

import sys

from .. import __version__
from ..errors import OptionError, SemstyleError
from .common import Parser, flag_message


def build_parser() -> Parser:
    from . import export, live, paint, serve, stylize, train, video

    parser = Parser(prog="semstyle", description="GAN-based semantic image style transfer.")
    parser.add_argument("--version", action="version", version=f"semstyle {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    stylize.add_parser(commands)
    video.add_parser(commands)
    live.add_parser(commands)
    paint.add_parser(commands)
    train.add_parser(commands)
    export.add_export_parser(commands)
    export.add_weights_parser(commands)
    serve.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage error (2), --help or --version (0)
        return int(exc.code or 0)
    try:
        return args.func(args)
    except OptionError as exc:
        print(f"semstyle: error: {flag_message(exc)}", file=sys.stderr)
        return 2
    except SemstyleError as exc:
        print(f"semstyle: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("semstyle: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
