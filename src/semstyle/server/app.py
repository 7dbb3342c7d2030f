"""The HTTP API (FastAPI): the same options object and rules as the command line and Python.

* ``POST /v1/stylize`` (multipart): ``content`` file; ``style`` file or ``style_id`` (the gallery);
  ``strength``, ``size``, ``style_size``, ``preserve_color``, ``colour_match``, ``mask`` and
  ``protect`` files, ``content_labels`` and ``style_labels`` files or ``auto_regions``,
  ``region_contrast``, ``refine``, ``style_fit``,
  ``format`` (png, jpeg, webp) -> the image, with provenance metadata.
* ``POST /v1/stylize/jobs``: the same form -> a job (202) whose progress counts refinement's steps.
* ``GET /v1/styles``, ``GET /v1/styles/{id}/thumbnail``: the gallery.
* ``POST /v1/videos`` -> a job (202); ``GET /v1/jobs/{id}`` (progress), ``GET /v1/jobs/{id}/result``,
  ``DELETE /v1/jobs/{id}`` (cancel, or delete the result). Results expire; disk use is bounded.
* ``WS /v1/live``: camera frames in, stylized frames out (:mod:`semstyle.server.live`).
* ``GET /healthz``, ``GET /metrics`` (requests, latencies, queue length), ``GET /openapi.json``,
  ``GET /docs`` (a page of our own: no CDN).

Errors are ``{"error": "..."}`` with 400 (bad input), 401 (token), 404, 413 (upload too large,
refused before the body is read), 415 (not an image), 422 (bad option) or 503 (busy, with
Retry-After). Work runs in a bounded pool of threads with a bounded queue.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import shutil
import tempfile
import time
from pathlib import Path

from fastapi import Depends, FastAPI, File, Form, Request, UploadFile, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import SemstyleError
from ..gallery import SAFE_ID, load_gallery
from ..pipeline.options import DEFAULTS, StylizeOptions
from ..stylizer import Stylizer
from ..video.options import VideoOptions
from .forms import StylizeRequest, read_style, stylize_form
from .jobs import Cancelled, Job, JobStore
from .limits import UploadLimit
from .live import LiveSessions
from .pool import Busy, Metrics, WorkPool
from .replies import ApiError, busy, error, from_library
from .settings import ServerSettings

THUMBNAIL_SIDE = 256
DOCS_PAGE = Path(__file__).with_name("docs.html")
STATIC = Path(__file__).with_name("static")
STATIC_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                "app.css": "text/css; charset=utf-8"}
"""The browser app's files; nothing else is served from disk (no path traversal by construction)."""
RESULT_TYPES = {".mp4": "video/mp4", ".webm": "video/webm", ".png": "image/png", ".jpeg": "image/jpeg",
                ".webp": "image/webp"}


def create_app(settings: ServerSettings, stylizer: Stylizer | None = None) -> FastAPI:
    """The application; ``stylizer`` defaults to one loaded from ``settings.model``."""
    stylizer = stylizer or Stylizer(settings.model, device=settings.device)
    gallery = load_gallery(settings.styles_dir)
    pool, metrics = WorkPool(settings.workers, settings.queue), Metrics()
    max_bytes = int(settings.max_upload_mb * 1024 * 1024)
    live = LiveSessions(stylizer, gallery, pool, settings.token, max_bytes)
    model_name = str(stylizer.model_path.name)
    read_stylize_form = stylize_form(gallery, stylizer)
    jobs_root = Path(settings.jobs_dir) if settings.jobs_dir else Path(tempfile.mkdtemp(prefix="semstyle-jobs-"))
    jobs = JobStore(jobs_root, settings.video_queue, settings.keep_results_s,
                    int(settings.max_results_mb * 1024 * 1024))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        jobs.close()
        if not settings.jobs_dir:
            shutil.rmtree(jobs_root, ignore_errors=True)

    app = FastAPI(title="semstyle", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan)
    app.add_middleware(UploadLimit, max_bytes=max_bytes)

    @app.middleware("http")
    async def measure_and_guard(request: Request, call_next):
        start = time.perf_counter()
        if settings.token and request.url.path.startswith("/v1/") and not hmac.compare_digest(
                request.headers.get("authorization", "").encode(), f"Bearer {settings.token}".encode()):
            response = error(401, "missing or wrong API token (send 'Authorization: Bearer TOKEN')")
        else:
            try:
                response = await call_next(request)
            except Exception:  # noqa: BLE001 - a bug: say so in JSON, never a traceback to the client
                response = error(500, "internal error")
        route = request.scope.get("route")
        metrics.observe(getattr(route, "path", "unmatched"), response.status_code, time.perf_counter() - start)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return error(422, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return error(exc.status, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return error(404, f"no such path: {request.url.path}")
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "version": __version__, "queue": pool.queued, "model": model_name}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def get_metrics():
        return metrics.text(pool, live.active)

    @app.get("/", response_class=HTMLResponse)
    async def index():
        return (STATIC / "index.html").read_text()

    @app.get("/static/{name}")
    async def static(name: str):
        if name not in STATIC_FILES:
            return error(404, f"no such file: {name}")
        return Response((STATIC / name).read_bytes(), media_type=STATIC_FILES[name],
                        headers={"Cache-Control": "no-cache"})

    @app.get("/docs", response_class=HTMLResponse)
    async def docs():
        return DOCS_PAGE.read_text()

    @app.get("/v1/styles")
    async def styles():
        return [{**entry.describe(), "thumbnail": f"/v1/styles/{entry.id}/thumbnail"} for entry in gallery.values()]

    @app.get("/v1/styles/{style_id}/thumbnail")
    async def thumbnail(style_id: str):
        entry = gallery.get(style_id) if SAFE_ID.match(style_id) else None
        if entry is None:
            return error(404, f"no style {style_id!r} in the gallery")
        img = Image.open(entry.path).convert("RGB")
        img.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        buffer = io.BytesIO()
        img.save(buffer, format="JPEG", quality=85)
        return Response(buffer.getvalue(), media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    @app.post("/v1/stylize")
    async def stylize(request: StylizeRequest = Depends(read_stylize_form)):
        try:
            result = await pool.run(stylizer.stylize, request.content, request.style, request.options)
        except Busy:
            raise busy() from None
        except SemstyleError as exc:
            raise from_library(exc) from None
        return Response(request.encode(result, model_name), media_type=request.media_type)

    @app.post("/v1/stylize/jobs", status_code=202)
    async def stylize_job(request: StylizeRequest = Depends(read_stylize_form)):
        """The same form as ``/v1/stylize``, as a job: for long work (``refine``), whose progress
        ``GET /v1/jobs/{id}`` reports step by step; the image is at ``GET /v1/jobs/{id}/result``."""
        if not pool.reserve():
            raise busy()
        job = jobs.reserve(kind="image")

        def work(job: Job) -> Path:
            def progress(step: int, total: int) -> None:
                job.done, job.total = step, total
                if job.cancel.is_set():
                    raise Cancelled
            result = stylizer.stylize(request.content, request.style, request.options, on_progress=progress)
            output = job.folder / f"result.{request.format}"
            output.write_bytes(request.encode(result, model_name))
            return output

        pool.submit(jobs.run, job, work)
        return JSONResponse(job.describe(), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    @app.post("/v1/videos", status_code=202)
    async def submit_video(video: UploadFile = File(...), style: UploadFile | None = File(None),
                           style_id: str | None = Form(None), strength: float = Form(1.0),
                           size: int | None = Form(None), preserve_color: bool = Form(False),
                           style_fit: int = Form(DEFAULTS.style_fit),
                           smooth_stats: float = Form(0.9), flow_blend: float = Form(0.6), audio: bool = Form(True),
                           format: str = Form("mp4")):
        if format.lower() not in ("mp4", "webm"):
            raise ApiError(422, f"format must be mp4 or webm, got {format!r}")
        style_img = await read_style(style, style_id, gallery)
        try:
            options = StylizeOptions(strength=strength, size=size, preserve_colors=preserve_color,
                                     style_fit=style_fit, device=stylizer.options.device,
                                     precision=stylizer.options.precision).validate()
            video_options = VideoOptions(smooth_stats=smooth_stats, flow_blend=flow_blend, audio=audio).validate()
        except SemstyleError as exc:
            raise from_library(exc) from None
        job = jobs.reserve()
        if job is None:
            raise busy("the video queue is full", retry_s=30)
        source = job.folder / ("input" + Path(video.filename or "").suffix.lower()[:8])
        source.write_bytes(await video.read())

        def work(job: Job) -> Path:
            def progress(event) -> None:
                job.done, job.total = event.done, event.total
                if job.cancel.is_set():
                    raise Cancelled
            output = job.folder / f"result.{format.lower()}"
            stylizer.stylize_video(source, output, style_img, options, video=video_options, on_progress=progress)
            source.unlink(missing_ok=True)
            return output

        jobs.start(job, work)
        return JSONResponse(job.describe(), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    @app.get("/v1/jobs/{job_id}")
    async def job_status(job_id: str):
        job = jobs.get(job_id)
        return job.describe() if job else error(404, f"no job {job_id!r} (unknown, or expired)")

    @app.get("/v1/jobs/{job_id}/result")
    async def job_result(job_id: str):
        job = jobs.get(job_id)
        if job is None:
            return error(404, f"no job {job_id!r} (unknown, or expired)")
        if job.status != "done":
            return error(409, f"job {job_id} is {job.status}; its result is not ready")
        return FileResponse(job.result, media_type=RESULT_TYPES[job.result.suffix],
                            filename=f"stylized{job.result.suffix}")

    @app.delete("/v1/jobs/{job_id}")
    async def cancel_job(job_id: str):
        job = jobs.delete(job_id)
        return {"id": job_id, "status": "cancelled" if job and job.status != "done" else "deleted"} if job \
            else error(404, f"no job {job_id!r} (unknown, or expired)")

    @app.websocket("/v1/live")
    async def live_socket(websocket: WebSocket):
        await live(websocket)

    return app
