"""``semstyle serve`` (the HTTP API on loopback by default) and ``semstyle styles`` (the gallery)."""

from __future__ import annotations

import ipaddress
import os
import sys

from ..errors import ConfigError
from .common import MODEL_HELP, ensure_weights

TOKEN_VARIABLE = "SEMSTYLE_TOKEN"


def add_parsers(commands) -> None:
    from ..server.settings import ServerSettings

    d = ServerSettings()
    p = commands.add_parser("serve", help="serve the HTTP API (and, later, the browser app)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default %(default)s: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    p.add_argument("--model", help=MODEL_HELP)
    p.add_argument("--styles", dest="styles_dir", help="a folder of paintings added to the gallery")
    p.add_argument("--workers", type=int, default=d.workers, help="images stylized at once (default %(default)s)")
    p.add_argument("--queue", type=int, default=d.queue, help="requests waiting at most (default %(default)s); "
                   "beyond, 503 with Retry-After")
    p.add_argument("--max-upload-mb", type=float, default=d.max_upload_mb, help="largest request (default %(default)s)")
    p.add_argument("--token", help=f"API token clients send as 'Authorization: Bearer TOKEN' (or ${TOKEN_VARIABLE})")
    p.add_argument("--no-auth", action="store_true", help="listen beyond loopback without a token")
    p.add_argument("--device", default=d.device, help="cpu, cuda, cuda:N or auto (default)")
    p.set_defaults(func=run)
    s = commands.add_parser("styles", help="list the gallery's paintings (use their ids as --style)")
    s.add_argument("--styles", dest="styles_dir", help="a folder of paintings added to the gallery")
    s.set_defaults(func=list_styles)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args) -> int:
    import uvicorn

    from ..server.app import create_app
    from ..server.settings import ServerSettings

    token = args.token or os.environ.get(TOKEN_VARIABLE) or None
    if not _is_loopback(args.host) and not token and not args.no_auth:
        raise ConfigError(f"--host {args.host} listens beyond this machine: give --token (or ${TOKEN_VARIABLE}), "
                          f"or --no-auth to serve without one")
    for name in ("workers", "queue"):
        if getattr(args, name) < (1 if name == "workers" else 0):
            raise ConfigError(f"--{name} must be at least {1 if name == 'workers' else 0}")
    if not args.max_upload_mb > 0:
        raise ConfigError(f"--max-upload-mb must be above 0, got {args.max_upload_mb}")
    if args.styles_dir and not os.path.isdir(args.styles_dir):
        raise ConfigError(f"--styles {args.styles_dir} is not a folder")
    ensure_weights(None)
    settings = ServerSettings(model=args.model, styles_dir=args.styles_dir, workers=args.workers, queue=args.queue,
                              max_upload_mb=args.max_upload_mb, token=token, device=args.device)
    app = create_app(settings)
    print(f"semstyle: serving on http://{args.host}:{args.port}/ (API docs at /docs)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def list_styles(args) -> int:
    from ..gallery import load_gallery

    for entry in load_gallery(args.styles_dir).values():
        year = f", {entry.year}" if entry.year and entry.year not in entry.title else ""
        painter = f"{entry.painter}: " if entry.painter else ""
        print(f"{entry.id:32} {painter}{entry.title}{year}")
    return 0
