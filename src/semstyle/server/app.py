"""The HTTP API (FastAPI): the same options object and rules as the command line and Python.

* ``POST /v1/stylize`` (multipart): ``content`` file; ``style`` file or ``style_id`` (the gallery);
  ``strength``, ``size``, ``style_size``, ``preserve_color``, ``mask`` and ``protect`` files,
  ``content_labels`` and ``style_labels`` files or ``auto_regions``, ``refine``,
  ``format`` (png, jpeg, webp) -> the image, with provenance metadata.
* ``GET /v1/styles``, ``GET /v1/styles/{id}/thumbnail``: the gallery.
* ``POST /v1/videos`` -> a job (202); ``GET /v1/jobs/{id}`` (progress), ``GET /v1/jobs/{id}/result``,
  ``DELETE /v1/jobs/{id}`` (cancel, or delete the result). Results expire; disk use is bounded.
* ``GET /healthz``, ``GET /metrics`` (requests, latencies, queue length), ``GET /openapi.json``,
  ``GET /docs`` (a page of our own: no CDN).

Errors are ``{"error": "..."}`` with 400 (bad input), 401 (token), 404, 413 (upload too large,
refused before the body is read), 415 (not an image), 422 (bad option) or 503 (busy, with
Retry-After). Work runs in a bounded pool of threads with a bounded queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import io
import shutil
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from PIL import Image
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import ImageError, OptionError, SemstyleError
from ..gallery import SAFE_ID, load_gallery
from ..io.provenance import Provenance
from ..io.read import load_image, read_raw_image
from ..io.write import encode_image
from ..pipeline.options import StylizeOptions
from ..stylizer import Stylizer
from ..video.options import VideoOptions
from .jobs import Cancelled, Job, JobStore
from .limits import UploadLimit
from .settings import ServerSettings

FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "jpg": ("JPEG", "image/jpeg"),
           "webp": ("WEBP", "image/webp")}
THUMBNAIL_SIDE = 256
DOCS_PAGE = Path(__file__).with_name("docs.html")
STATIC = Path(__file__).with_name("static")
STATIC_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                "app.css": "text/css; charset=utf-8"}
"""The browser app's files; nothing else is served from disk (no path traversal by construction)."""


class Busy(Exception):
    """The pool and its queue are full."""


class WorkPool:
    """A bounded pool of worker threads with a bounded queue: past ``workers + queue`` jobs, new
    ones are refused at once (HTTP 503) instead of piling up until clients time out."""

    def __init__(self, workers: int, queue: int):
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="semstyle")
        self.capacity, self.pending = workers + queue, 0
        self.workers = workers
        self.lock = threading.Lock()

    async def run(self, func, *args):
        with self.lock:
            if self.pending >= self.capacity:
                raise Busy
            self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, func, *args)
        finally:
            with self.lock:
                self.pending -= 1

    @property
    def queued(self) -> int:
        return max(0, self.pending - self.workers)


class Metrics:
    def __init__(self):
        self.requests: Counter = Counter()
        self.seconds: Counter = Counter()

    def observe(self, path: str, status: int, seconds: float) -> None:
        self.requests[(path, status)] += 1
        self.seconds[path] += seconds

    def text(self, pool: WorkPool) -> str:
        lines = ["# TYPE semstyle_requests_total counter"]
        lines += [f'semstyle_requests_total{{path="{p}",status="{s}"}} {n}'
                  for (p, s), n in sorted(self.requests.items())]
        lines.append("# TYPE semstyle_request_seconds_total counter")
        lines += [f'semstyle_request_seconds_total{{path="{p}"}} {v:.6f}' for p, v in sorted(self.seconds.items())]
        lines += ["# TYPE semstyle_queue_length gauge", f"semstyle_queue_length {pool.queued}",
                  "# TYPE semstyle_jobs_in_progress gauge", f"semstyle_jobs_in_progress {pool.pending - pool.queued}"]
        return "\n".join(lines) + "\n"


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def _upload_image(upload: UploadFile | None) -> Image.Image | None:
    """A mask or label map as stored (values matter), through the same guarded decoder as photos."""
    return None if upload is None else read_raw_image(await upload.read(), what=upload.filename or "upload")


def create_app(settings: ServerSettings, stylizer: Stylizer | None = None) -> FastAPI:
    """The application; ``stylizer`` defaults to one loaded from ``settings.model``."""
    stylizer = stylizer or Stylizer(settings.model, device=settings.device)
    gallery = load_gallery(settings.styles_dir)
    pool, metrics = WorkPool(settings.workers, settings.queue), Metrics()
    max_bytes = int(settings.max_upload_mb * 1024 * 1024)
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

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return error(404, f"no such path: {request.url.path}")
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    def style_problem(style: UploadFile | None, style_id: str | None) -> JSONResponse | None:
        """The error reply when the request names no style, two, or one the gallery lacks."""
        if (style is None) == (style_id is None):
            return error(422, "give one of style (a file) or style_id (from /v1/styles)")
        if style_id is not None and (not SAFE_ID.match(style_id) or style_id not in gallery):
            return error(404, f"no style {style_id!r} in the gallery")
        return None

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "version": __version__, "queue": pool.queued, "model": str(stylizer.model_path.name)}

    @app.get("/metrics", response_class=PlainTextResponse)
    async def get_metrics():
        return metrics.text(pool)

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
    async def stylize(content: UploadFile = File(...), style: UploadFile | None = File(None),
                      style_id: str | None = Form(None), strength: float = Form(1.0), size: int | None = Form(None),
                      style_size: int = Form(512), preserve_color: bool = Form(False),
                      mask: UploadFile | None = File(None), protect: UploadFile | None = File(None),
                      content_labels: UploadFile | None = File(None), style_labels: UploadFile | None = File(None),
                      auto_regions: int | None = Form(None), refine: int = Form(0), format: str = Form("png")):
        if format.lower() not in FORMATS:
            return error(422, f"format must be one of png, jpeg, webp, got {format!r}")
        refused = style_problem(style, style_id)
        if refused:
            return refused
        try:
            content_img = load_image(await content.read(), min_size=32)
            style_img = gallery[style_id].path if style_id else load_image(await style.read(), min_size=32)
            if (content_labels is None) != (style_labels is None):
                return error(422, "content_labels and style_labels go together; give both")
            labels = (await _upload_image(content_labels), await _upload_image(style_labels)) if content_labels \
                else None
            options = StylizeOptions(strength=strength, size=size, style_size=style_size,
                                     preserve_colors=preserve_color, mask=await _upload_image(mask),
                                     protect=(await _upload_image(protect),) if protect else (), labels=labels,
                                     auto_regions=auto_regions, refine=refine,
                                     device=stylizer.options.device, precision=stylizer.options.precision).validate()
            result = await pool.run(stylizer.stylize, content_img, style_img, options)
        except Busy:
            return error(503, "busy: every worker and queue place is taken; try again shortly",
                         {"Retry-After": "2"})
        except OptionError as exc:
            return error(422, str(exc))
        except ImageError as exc:
            return error(415 if "not an image" in str(exc) else 400, str(exc))
        except SemstyleError as exc:
            return error(400, str(exc))
        names = [style_id] if style_id else [style.filename or "uploaded style"]
        provenance = Provenance(styles=names, model=str(stylizer.model_path.name))
        pil_format, media = FORMATS[format.lower()]
        return Response(encode_image(result, pil_format, provenance), media_type=media)

    @app.post("/v1/videos", status_code=202)
    async def submit_video(video: UploadFile = File(...), style: UploadFile | None = File(None),
                           style_id: str | None = Form(None), strength: float = Form(1.0),
                           size: int | None = Form(None), preserve_color: bool = Form(False),
                           smooth_stats: float = Form(0.9), flow_blend: float = Form(0.6), audio: bool = Form(True),
                           format: str = Form("mp4")):
        if format.lower() not in ("mp4", "webm"):
            return error(422, f"format must be mp4 or webm, got {format!r}")
        refused = style_problem(style, style_id)
        if refused:
            return refused
        try:
            options = StylizeOptions(strength=strength, size=size, preserve_colors=preserve_color,
                                     device=stylizer.options.device, precision=stylizer.options.precision).validate()
            video_options = VideoOptions(smooth_stats=smooth_stats, flow_blend=flow_blend, audio=audio).validate()
            style_img = gallery[style_id].path if style_id else load_image(await style.read(), min_size=32)
        except OptionError as exc:
            return error(422, str(exc))
        except ImageError as exc:
            return error(415 if "not an image" in str(exc) else 400, str(exc))
        job = jobs.reserve()
        if job is None:
            return error(503, "busy: the video queue is full; try again later", {"Retry-After": "30"})
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
        media = "video/mp4" if job.result.suffix == ".mp4" else "video/webm"
        return FileResponse(job.result, media_type=media, filename=f"stylized{job.result.suffix}")

    @app.delete("/v1/jobs/{job_id}")
    async def cancel_job(job_id: str):
        job = jobs.delete(job_id)
        return {"id": job_id, "status": "cancelled" if job and job.status != "done" else "deleted"} if job \
            else error(404, f"no job {job_id!r} (unknown, or expired)")

    return app
