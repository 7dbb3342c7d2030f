"""Live stylization: frames from a camera or a video file played at its own rate, stylized as fast
as the machine allows, shown as an MJPEG stream on loopback (any browser plays it) or in a window.

Three threads and two one-frame slots: the source puts every frame it reads into a slot (a newer
one replaces an older one not yet taken: frames are dropped, never queued, so the picture never
falls behind the camera); the stylizer takes the newest, runs the per-frame pipeline (smoothed
statistics, flow blending across whatever frames were dropped) and puts the JPEG into the output
slot; the HTTP server sends each client the newest JPEG.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import OptionError
from .container import VideoError, VideoReader
from .frames import FrameStylizer

BOUNDARY = "semstyleframe"
JPEG_QUALITY = 85
PAGE = ("<!doctype html><meta charset=utf-8><title>semstyle live</title>"
        "<style>body{margin:0;background:#111;display:grid;place-items:center;height:100vh}"
        "img{max-width:100vw;max-height:100vh}</style><img src=/stream alt='live stylized video'>")


class Slot:
    """The newest item and its sequence number; putting replaces, taking waits for a newer one."""

    def __init__(self):
        self._cond = threading.Condition()
        self._item, self._seq, self.closed = None, 0, False

    def put(self, item) -> None:
        with self._cond:
            self._item, self._seq = item, self._seq + 1
            self._cond.notify_all()

    def take_newer(self, seen: int, timeout: float = 1.0):
        """(item, seq) newer than ``seen``, or (None, seen) after ``timeout`` or when closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > seen or self.closed, timeout)
            return (self._item, self._seq) if self._seq > seen else (None, seen)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def newest(self, stop: threading.Event):
        """Each newest item in turn, skipping any replaced meanwhile, until the slot closes or ``stop``."""
        seen = 0
        while not stop.is_set():
            item, seen = self.take_newer(seen)
            if item is not None:
                yield item
            elif self.closed:
                return


@dataclass
class LiveStats:
    """What a live session achieved. ``seconds`` runs from the first stylized frame to the last:
    the first one also pays one-off start-up (kernels chosen and built for the frame size, a second
    or so), which is not the rate a viewer sees."""

    read: int = 0
    shown: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    @property
    def fps(self) -> float:
        return (self.shown - 1) / self.seconds if self.shown > 1 and self.seconds > 0 else 0.0

    @property
    def dropped(self) -> int:
        return max(0, self.read - self.shown)


def file_source(path: str | Path, slot: Slot, stop: threading.Event, stats: LiveStats) -> None:
    """Decode a video file and put each frame into ``slot`` when its timestamp comes up."""
    with VideoReader(path) as reader:
        start = time.monotonic()
        for frame in reader:
            if stop.is_set():
                break
            delay = frame.time - (time.monotonic() - start)
            if delay > 0 and stop.wait(delay):
                break
            stats.read += 1
            slot.put((frame.rgb, frame.time))
    slot.close()


def camera_source(index: int, slot: Slot, stop: threading.Event, stats: LiveStats) -> None:
    """Frames of an OpenCV camera (``VideoCapture(index)``) as fast as it delivers them."""
    import cv2

    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        slot.close()
        raise VideoError(f"cannot open camera {index}")
    start = time.monotonic()
    try:
        while not stop.is_set():
            ok, bgr = capture.read()
            if not ok:
                break
            stats.read += 1
            slot.put((cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), time.monotonic() - start))
    finally:
        capture.release()
        slot.close()


def jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def stylize_loop(stylizer: FrameStylizer, frames: Slot, jpegs: Slot, stop: threading.Event, stats: LiveStats,
                 show: Callable[[np.ndarray], None] | None = None) -> None:
    """Stylize the newest frame, again and again, until the source ends or ``stop``."""
    first = None
    for rgb, seconds in frames.newest(stop):
        result = stylizer(rgb, seconds)
        jpegs.put(jpeg(result))
        if show is not None:
            show(result)
        stats.shown += 1
        now = time.monotonic()
        first = first if first is not None else now
        stats.seconds = now - first
    jpegs.close()


def mjpeg_server(jpegs: Slot, port: int, stop: threading.Event) -> ThreadingHTTPServer:
    """``/`` a page with the stream, ``/stream`` multipart MJPEG, ``/frame.jpg`` the newest frame. Loopback only."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # no access log on stderr
            pass

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            if self.path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", PAGE.encode())
            elif self.path == "/frame.jpg":
                item, _ = jpegs.take_newer(0, timeout=5)
                self._send(200, "image/jpeg", item) if item else self._send(503, "text/plain", b"no frame yet")
            elif self.path == "/stream":
                self._stream()
            else:
                self._send(404, "text/plain", b"not found")

        def _send(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            try:
                for item in jpegs.newest(stop):
                    self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                     f"Content-Length: {len(item)}\r\n\r\n".encode() + item + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def parse_source(text: str) -> int | Path:
    """A camera index (``0``) or a video file."""
    if text.isdigit():
        return int(text)
    path = Path(text)
    if not path.is_file():
        raise OptionError("source", f"must be a camera index or a video file; {text} does not exist")
    return path


def run_live(stylizer: FrameStylizer, source: int | Path, port: int | None, window: bool, duration: float | None,
             on_ready: Callable[[str], None], on_stats: Callable[[LiveStats], None]) -> LiveStats:
    """Run until the file ends, ``duration`` seconds pass or Ctrl-C (``interrupted``); returns what was achieved."""
    show = _window() if window else None
    stop, frames, jpegs, stats = threading.Event(), Slot(), Slot(), LiveStats()
    server = mjpeg_server(jpegs, port, stop) if port is not None else None
    if server is not None:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        on_ready(f"http://127.0.0.1:{server.server_address[1]}/")
    errors: list[BaseException] = []

    def read() -> None:
        try:
            (camera_source if isinstance(source, int) else file_source)(source, frames, stop, stats)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which reports it
            errors.append(exc)
            frames.close()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    timer = threading.Timer(duration, stop.set) if duration else None
    if timer:
        timer.start()
    reporter = threading.Thread(target=_report, args=(stats, stop, on_stats), daemon=True)
    reporter.start()
    try:
        stylize_loop(stylizer, frames, jpegs, stop, stats, show)
    except KeyboardInterrupt:
        stats.interrupted = True
    finally:
        stop.set()
        frames.close()
        jpegs.close()
        if timer:
            timer.cancel()
        if server is not None:
            server.shutdown()
            server.server_close()
        reader.join(5)
    if errors:
        raise errors[0]
    return stats


def _report(stats: LiveStats, stop: threading.Event, on_stats: Callable[[LiveStats], None]) -> None:
    while not stop.wait(2.0):
        on_stats(stats)


def _window() -> Callable[[np.ndarray], None]:
    import cv2

    try:
        cv2.namedWindow("semstyle live", cv2.WINDOW_NORMAL)
    except cv2.error:
        raise OptionError("window", "needs an OpenCV build with a GUI (this one is headless); "
                                    "watch the stream in a browser instead") from None

    def show(rgb: np.ndarray) -> None:
        cv2.imshow("semstyle live", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.waitKey(1)

    return show
