"""Video files in and out with PyAV (its wheels ship FFmpeg: no system ffmpeg, nothing downloaded).

:class:`VideoReader` decodes whatever FFmpeg reads (mp4, mov, mkv, webm, avi, animated gif) one
frame at a time, with its timestamp and display rotation. :class:`VideoWriter` encodes H.264
(``.mp4``, ``.mov``, ``.mkv``) or VP9 (``.webm``) at the frames' own timestamps (variable frame
rate survives), keeps the display rotation, copies the audio stream's packets untouched, and
writes to a hidden temporary file that is renamed into place only when the video is complete:
an error or Ctrl-C leaves no half-written output.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import ImageError, SemstyleWarning
from ..files import describe_os_error, fsync_dir, remove_stale_temps

OUTPUT_CODECS = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".webm": "libvpx-vp9"}
"""Output extension -> video encoder; the extension alone decides."""

AUDIO_COPY = {".mp4": ("aac", "mp3", "alac", "opus"), ".mov": ("aac", "mp3", "alac", "pcm_s16le"),
              ".mkv": None, ".webm": ("opus", "vorbis")}
"""Audio codecs each container takes as they are (None: any)."""

H264_CRF = 18
"""Visually lossless H.264 quality (lower is better; 23 is FFmpeg's default)."""


class VideoError(ImageError):
    """A video cannot be read or written; the message says which and why, in one line."""


class VideoWarning(SemstyleWarning):
    """Something about a video that is not as asked but usable (audio that cannot be copied)."""


@dataclass
class Frame:
    """One decoded frame: upright RGB pixels and when to show it."""

    rgb: np.ndarray        # (H, W, 3) uint8, rotated upright
    pts: int | None        # in the stream's time base
    time: float            # seconds from the start
    index: int


def _av():
    import av

    return av


class VideoReader:
    """Frames of a video file, decoded one at a time (never the whole video in memory)."""

    def __init__(self, path: str | Path):
        av = _av()
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoError(f"cannot read video {self.path}: " +
                             ("it is a folder" if self.path.is_dir() else "file does not exist"))
        try:
            self.container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise VideoError(f"cannot read video {self.path}: not a video FFmpeg can read ({_reason(exc)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise VideoError(f"cannot read video {self.path}: it has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.audio = self.container.streams.audio[0] if self.container.streams.audio else None
        codec = self.stream.codec_context
        self.width, self.height = codec.width, codec.height
        self.time_base = self.stream.time_base or Fraction(1, 90000)
        self.rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(25, 1)
        self.frames = self.stream.frames or 0  # 0: unknown
        if not self.frames and self.stream.duration and self.rate:
            self.frames = int(round(float(self.stream.duration * self.time_base * self.rate)))
        self.rotation = 0

    def __iter__(self) -> Iterator[Frame]:
        av = _av()
        index = 0
        try:
            for decoded in self.container.decode(self.stream):
                if index == 0:
                    self.rotation = int(getattr(decoded, "rotation", 0) or 0) % 360
                rgb = upright(decoded.to_ndarray(format="rgb24"), self.rotation)
                time = float(decoded.time) if decoded.time is not None else index / float(self.rate)
                yield Frame(rgb, decoded.pts, time, index)
                index += 1
        except av.error.FFmpegError as exc:
            if index == 0:
                raise VideoError(f"cannot read video {self.path}: {_reason(exc)}") from None
            raise VideoError(f"cannot read video {self.path}: it is truncated or corrupt after frame {index} "
                             f"({_reason(exc)})") from None
        if index == 0:
            raise VideoError(f"cannot read video {self.path}: it has no frames")

    def packets(self, stream) -> Iterator:
        """Demuxed packets of another stream (audio), for copying; a new pass over the file."""
        av = _av()
        with av.open(str(self.path)) as again:
            other = again.streams[stream.index]
            for packet in again.demux(other):
                if packet.dts is not None:
                    yield packet

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Pixels as the viewer sees them: ``rotation`` is counter-clockwise degrees (PyAV's)."""
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=turns)) if turns else rgb


def stored(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Back from :func:`upright` to the stored orientation."""
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=-turns)) if turns else rgb


def check_output_path(path: str | Path) -> Path:
    """Fail before any work if the output's type is unknown or its folder cannot be written."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_CODECS:
        ext = f"'{path.suffix}'" if path.suffix else "no extension"
        raise VideoError(f"cannot write {path}: unsupported video type ({ext}); use one of "
                         f"{', '.join(OUTPUT_CODECS)}")
    if not path.parent.is_dir():
        raise VideoError(f"cannot write {path}: folder {path.parent} does not exist")
    if path.is_dir():
        raise VideoError(f"cannot write {path}: a folder with that name exists")
    try:  # the folder's permission bits do not tell (root, read-only mounts): try
        probe = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.probe-")
        probe.close()
    except OSError as exc:
        raise VideoError(f"cannot write {path}: {describe_os_error(exc)}") from None
    return path


class VideoWriter:
    """Encode frames at given timestamps into ``path``, atomically; copy an audio stream."""

    def __init__(self, path: str | Path, width: int, height: int, time_base: Fraction, rate: Fraction,
                 rotation: int = 0, audio_from: VideoReader | None = None):
        av = _av()
        self.path = check_output_path(path)
        remove_stale_temps(self.path)
        self.tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        suffix = self.path.suffix.lower()
        try:
            self.container = av.open(str(self.tmp), "w", format=_format_for(suffix))
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoError(f"cannot write {self.path}: {_reason(exc)}") from None
        self.stream = self.container.add_stream(OUTPUT_CODECS[suffix], rate=rate)
        self.stream.width, self.stream.height = width, height
        # 4:2:0 needs even sides; odd sizes keep every pixel in 4:4:4 instead of being cropped
        self.stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        self.stream.time_base = time_base
        self.stream.codec_context.time_base = time_base
        self.stream.options = {"crf": str(H264_CRF)} if suffix != ".webm" else {"crf": "30", "b:v": "0"}
        if rotation:
            self.stream.set_display_rotation(rotation)
        self.rotation = rotation
        self.audio_in, self.audio_out = None, None
        if audio_from is not None and audio_from.audio is not None:
            allowed, codec = AUDIO_COPY[suffix], audio_from.audio.codec_context.name
            if allowed is None or codec in allowed:
                self.audio_in = audio_from
                self.audio_out = self.container.add_stream_from_template(audio_from.audio)
            else:
                warnings.warn(f"the audio ({codec}) cannot go into a {suffix} file untouched, so it is left out; "
                              f"write .mkv or .mp4 to keep it", VideoWarning, stacklevel=2)
        self.time_base = time_base
        self.count = 0
        self.last_pts = -1

    def write(self, rgb: np.ndarray, pts: int | None) -> None:
        """One upright frame; ``pts`` in the time base given (None: the next one)."""
        av = _av()
        frame = av.VideoFrame.from_ndarray(stored(rgb, self.rotation), format="rgb24")
        pts = self.last_pts + 1 if pts is None or pts <= self.last_pts else pts
        frame.pts, frame.time_base = pts, self.time_base
        self.last_pts = pts
        self._mux(self.stream.encode(frame))
        self.count += 1

    def _mux(self, packets) -> None:
        av = _av()
        try:
            self.container.mux(packets)
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoError(f"cannot write {self.path}: {_reason(exc)}") from None

    def finish(self) -> Path:
        """Flush, copy the audio, close, and rename the complete file into place."""
        self._mux(self.stream.encode())
        if self.audio_in is not None:
            for packet in self.audio_in.packets(self.audio_in.audio):
                packet.stream = self.audio_out
                self._mux(packet)
        self.container.close()
        try:
            os.replace(self.tmp, self.path)
        except OSError as exc:
            raise VideoError(f"cannot write {self.path}: {describe_os_error(exc)}") from None
        fsync_dir(self.path.parent)
        return self.path

    def abort(self) -> None:
        """Drop everything written so far (errors, Ctrl-C)."""
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - closing a broken container may fail any way; the file goes anyway
            pass
        self.tmp.unlink(missing_ok=True)


def _format_for(suffix: str) -> str:
    return {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}[suffix]


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())
