"""``/v1/live``: camera frames over a WebSocket, stylized frames back (the browser app's Live tab).

Protocol. The client's first message is JSON text::

    {"style_id": "starry_night", "strength": 1.0, "size": 360, "preserve_color": false}

(``token`` too, when the server has one and the client cannot send an ``Authorization`` header).
The server answers ``{"ready": true, ...}`` once the style is loaded; then each binary message
from the client is one JPEG (or PNG) frame, and each binary message back the newest frame
stylized, as JPEG. A client that sends faster than the server stylizes loses frames, never
time: only the newest frame received is stylized, older ones are dropped (counted in
``stats.dropped``), so nothing queues. A problem is a JSON text message ``{"error": "..."}``,
then the server closes the socket (1008 a bad first message, 1003 a bad frame, 1009 a frame
over the upload limit, 1013 busy, 1011 a bug).

Each session holds one slot of the server's worker pool for as long as it lasts (none free:
refused as busy) and runs the library's live machinery in a thread of its own:
:func:`semstyle.video.live.stylize_loop` over a :class:`~semstyle.video.live.Slot`, with a
:class:`~semstyle.video.frames.FrameStylizer` from :meth:`semstyle.stylizer.Stylizer.frame_stylizer`
(smoothed statistics and flow blending across frames, as ``semstyle live``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import numpy as np
from fastapi import WebSocket, WebSocketDisconnect

from ..errors import ImageError, OptionError, SemstyleError
from ..gallery import SAFE_ID, GalleryStyle
from ..io.read import load_image
from ..pipeline.options import StylizeOptions
from ..stylizer import Stylizer
from ..video.frames import FrameStylizer
from ..video.live import LiveStats, Slot, stylize_loop
from ..video.options import LIVE_VIDEO
from .pool import WorkPool

DEFAULT_SIZE = 360
MAX_SIZE = 1280
MAX_FRAME_PIXELS = 4096 * 4096
FIRST_MESSAGE_TIMEOUT_S = 30.0
IDLE_TIMEOUT_S = 60.0
FIELDS = {"style_id", "strength", "size", "preserve_color", "token"}

# close codes (RFC 6455 section 7.4.1)
POLICY, UNSUPPORTED, TOO_BIG, INTERNAL, TRY_LATER = 1008, 1003, 1009, 1011, 1013


class LiveError(Exception):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.message, self.code = message, code


async def receive_within(websocket: WebSocket, seconds: float, silence: str) -> dict | None:
    """The client's next message, or None when it disconnected; ``silence`` (a LiveError that
    closes the socket) when nothing comes for ``seconds``."""
    try:
        message = await asyncio.wait_for(websocket.receive(), seconds)
    except asyncio.TimeoutError:
        raise LiveError(silence, POLICY) from None
    return None if message["type"] == "websocket.disconnect" else message


def parse_config(text: str | None, gallery: dict[str, GalleryStyle], token: str | None,
                 header: str) -> tuple[str, StylizeOptions]:
    """The first message -> (style id, validated options), or a :class:`LiveError`."""
    if text is None:
        raise LiveError('the first message must be JSON text: {"style_id": ..., "strength": ..., "size": ...}',
                        POLICY)
    try:
        config = json.loads(text)
    except ValueError:
        raise LiveError("the first message is not JSON", POLICY) from None
    if not isinstance(config, dict):
        raise LiveError("the first message must be a JSON object", POLICY)
    if token and not (hmac.compare_digest(header.encode(), f"Bearer {token}".encode())
                      or hmac.compare_digest(str(config.get("token", "")).encode(), token.encode())):
        raise LiveError("missing or wrong API token (send 'Authorization: Bearer TOKEN' or \"token\")", POLICY)
    unknown = sorted(set(config) - FIELDS)
    if unknown:
        raise LiveError(f"unknown field {unknown[0]!r}; the fields are {', '.join(sorted(FIELDS))}", POLICY)
    style_id = config.get("style_id")
    if not isinstance(style_id, str) or not SAFE_ID.match(style_id) or style_id not in gallery:
        raise LiveError(f"no style {style_id!r} in the gallery (style_id: one of /v1/styles)", POLICY)
    strength, size = config.get("strength", 1.0), config.get("size", DEFAULT_SIZE)
    preserve = config.get("preserve_color", False)
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        raise LiveError(f"strength must be a number from 0 to 1, got {strength!r}", POLICY)
    if isinstance(size, bool) or not isinstance(size, int) or not 32 <= size <= MAX_SIZE:
        raise LiveError(f"size must be a whole number of pixels from 32 to {MAX_SIZE}, got {size!r}", POLICY)
    if not isinstance(preserve, bool):
        raise LiveError(f"preserve_color must be true or false, got {preserve!r}", POLICY)
    try:
        options = StylizeOptions(strength=float(strength), size=size, preserve_colors=preserve).validate()
    except OptionError as exc:
        raise LiveError(str(exc), POLICY) from None
    return style_id, options


class Latest:
    """The newest item from a worker thread, for the event loop: a put replaces an item not yet taken."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop, self.item, self.closed, self.event = loop, None, False, asyncio.Event()

    def put(self, item) -> None:            # from any thread
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is listening
            self.loop.call_soon_threadsafe(self._set, item)

    def close(self) -> None:                # from any thread
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._close)

    def _set(self, item) -> None:
        self.item = item
        self.event.set()

    def _close(self) -> None:
        self.closed = True
        self.event.set()

    async def get(self):
        """The newest item, or None once closed and empty."""
        while self.item is None and not self.closed:
            self.event.clear()
            await self.event.wait()
        item, self.item = self.item, None
        return item


class DecodingStylizer:
    """``(jpeg bytes, seconds) -> stylized RGB``: decodes the client's frame (same guarded decoder
    as uploads) in the stylizing thread, then runs the :class:`FrameStylizer`."""

    def __init__(self, frames: FrameStylizer):
        self.frames = frames

    def __call__(self, data: bytes, seconds: float) -> np.ndarray:
        image = load_image(data, min_size=16, max_pixels=MAX_FRAME_PIXELS)
        return self.frames(np.asarray(image), seconds)


def _failure(exc: BaseException) -> LiveError:
    if isinstance(exc, LiveError):
        return exc
    if isinstance(exc, (ImageError, OptionError)):
        return LiveError(f"bad frame: {exc}", UNSUPPORTED)
    if isinstance(exc, SemstyleError):
        return LiveError(str(exc), UNSUPPORTED)
    return LiveError(f"internal error ({type(exc).__name__})", INTERNAL)


class LiveSessions:
    """Runs ``/v1/live`` sessions against one Stylizer, gallery and worker pool."""

    def __init__(self, stylizer: Stylizer, gallery: dict[str, GalleryStyle], pool: WorkPool, token: str | None,
                 max_frame_bytes: int):
        self.stylizer, self.gallery, self.pool, self.token = stylizer, gallery, pool, token
        self.max_frame_bytes = max_frame_bytes
        self.active = 0

    async def __call__(self, websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await self._session(websocket)
        except LiveError as exc:
            with contextlib.suppress(Exception):
                await websocket.send_text(json.dumps({"error": exc.message}))
                await websocket.close(exc.code)

    async def _session(self, websocket: WebSocket) -> None:
        origin, host = websocket.headers.get("origin"), websocket.headers.get("host", "")
        if origin and urlsplit(origin).netloc != host:
            raise LiveError(f"cross-origin WebSocket refused (origin {origin})", POLICY)
        first = await receive_within(websocket, FIRST_MESSAGE_TIMEOUT_S,
                                     f"no first message within {FIRST_MESSAGE_TIMEOUT_S:g} s")
        if first is None:
            return
        style_id, options = parse_config(first.get("text"), self.gallery, self.token,
                                         websocket.headers.get("authorization", ""))
        if not self.pool.reserve():
            raise LiveError("busy: every worker and queue place is taken; try again shortly", TRY_LATER)
        loop = asyncio.get_running_loop()
        frames, out, stop, stats = Slot(), Latest(loop), threading.Event(), LiveStats()
        ready: asyncio.Future = loop.create_future()
        self.active += 1

        def settle(future: asyncio.Future, exc: BaseException | None) -> None:
            if not future.done():
                future.set_exception(exc) if exc else future.set_result(None)

        def work() -> None:
            try:
                frame_stylizer = self.stylizer.frame_stylizer(self.gallery[style_id].path, options,
                                                              video=LIVE_VIDEO)
                loop.call_soon_threadsafe(settle, ready, None)
                stylize_loop(DecodingStylizer(frame_stylizer), frames, out, stop, stats)
            except BaseException as exc:  # noqa: BLE001 - reported to the client by the event loop
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(settle, ready, exc)
                out.put(_failure(exc))
            finally:
                self.pool.release()
                out.close()

        threading.Thread(target=work, name="semstyle-live", daemon=True).start()
        try:
            await ready
            await websocket.send_text(json.dumps({"ready": True, "style_id": style_id, "size": options.size}))
            await self._exchange(websocket, frames, out, stop, stats)
        except WebSocketDisconnect:
            pass
        except LiveError:
            raise
        except Exception as exc:  # noqa: BLE001 - the library's error (or a bug) in JSON, not a traceback
            raise _failure(exc) from None
        finally:
            stop.set()
            frames.close()
            self.active -= 1

    async def _exchange(self, websocket: WebSocket, frames: Slot, out: Latest, stop: threading.Event,
                        stats: LiveStats) -> None:
        """Receive frames into the slot while sending each stylized one back, until either side ends."""
        start = time.monotonic()
        receiving = asyncio.ensure_future(self._receive(websocket, frames, stats, start))
        try:
            while True:
                getting = asyncio.ensure_future(out.get())
                done, _ = await asyncio.wait({getting, receiving}, return_when=asyncio.FIRST_COMPLETED)
                if getting not in done:
                    getting.cancel()
                    receiving.result()   # a LiveError from a bad message, or the client left
                    return
                item = getting.result()
                if item is None:         # the stylizing thread has ended
                    return
                if isinstance(item, LiveError):
                    raise item
                await websocket.send_bytes(item)
        finally:
            stop.set()
            receiving.cancel()
            if receiving.done() and not receiving.cancelled():
                receiving.exception()   # retrieved: a second problem after the first is not news

    async def _receive(self, websocket: WebSocket, frames: Slot, stats: LiveStats, start: float) -> None:
        put: Callable = frames.put
        while True:
            message = await receive_within(websocket, IDLE_TIMEOUT_S, f"no frame for {IDLE_TIMEOUT_S:g} s; closing")
            if message is None:
                return
            data = message.get("bytes")
            if data is None:
                raise LiveError("after the first message, send frames as binary JPEG messages", UNSUPPORTED)
            if len(data) > self.max_frame_bytes:
                raise LiveError(f"frame of {len(data)} bytes is over the limit of {self.max_frame_bytes}", TOO_BIG)
            stats.read += 1
            put((data, time.monotonic() - start))
