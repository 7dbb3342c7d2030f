"""Style vectors kept on disk between processes, for the torch engine and the ONNX runtime alike.

Encoding a painting (VGG up to relu4_1 at 512 px) is half of a whole ``semstyle stylize
--backend onnx --model fast`` process (0.50 of 1.13 s) and more than stylizing the photo;
people run one painting over many photos, one process each. So each vector is also written
to ``$SEMSTYLE_HOME/style_vectors/<encoder>/<image>.npy``, keyed by

* what encodes: the model's and VGG's weight files (path, size, modification time: a new
  or retrained model gets new entries) and the precision it runs in, and
* what is encoded: the SHA-256 of the style image's bytes (or a PIL image's pixels, or a
  collection's names and bytes) and the size it is read at.

A cache never decides whether stylization works: a file it cannot read is encoded again (and
replaced), a folder it cannot write is skipped. No torch and no safetensors here: the ONNX
runtime's torch-free install uses it, so a vector is a plain ``.npy`` array, read with
``allow_pickle=False`` (never a pickle).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ImageError
from ..files import atomic_write_bytes, semstyle_home, sha256_file
from ..io.read import list_images
from .styles import is_collection

MAX_ENTRIES = 4096
"""Vectors kept per encoder (2 KiB each); the oldest are removed beyond it."""

DISABLE_VARIABLE = "SEMSTYLE_STYLE_CACHE"
"""Set to ``0`` to keep style vectors in memory only."""


def image_key(image, style_size: int) -> str | None:
    """What is encoded, as a string: an image's content and the size it is read at; None when the
    file cannot be read (reading it properly then reports the problem)."""
    if isinstance(image, Image.Image):
        content = hashlib.sha256(f"{image.mode}{image.size}".encode() + image.tobytes()).hexdigest()
    elif is_collection(image):  # its images' names and bytes
        try:
            parts = [f"{p.name}:{sha256_file(p)}" for p in list_images(image)]
        except (OSError, ImageError):
            return None
        content = "collection:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()
    else:
        try:
            content = sha256_file(image)
        except OSError:
            return None
    return f"{content}:{style_size}"


def encoder_identity(files: Iterable[str | os.PathLike], precision: str) -> str | None:
    """What encodes, as a digest of its weight files' paths, sizes and modification times and
    the precision; None when a file is missing (then nothing goes to disk)."""
    parts = [precision]
    for file in files:
        try:
            info = os.stat(file)
        except OSError:
            return None
        parts.append(f"{Path(file).resolve()}:{info.st_size}:{info.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


class StyleStore:
    """The on-disk vectors of one encoder (:func:`encoder_identity`)."""

    def __init__(self, identity: str, root: Path | None = None):
        self.folder = (root or semstyle_home() / "style_vectors") / identity

    @classmethod
    def for_encoder(cls, files: Iterable[str | os.PathLike], precision: str) -> StyleStore | None:
        """A store for these weight files, or None when disabled (``SEMSTYLE_STYLE_CACHE=0``)
        or a file is missing."""
        if os.environ.get(DISABLE_VARIABLE, "1") == "0":
            return None
        identity = encoder_identity(files, precision)
        return None if identity is None else cls(identity)

    def _path(self, key: str) -> Path:
        return self.folder / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".npy")

    def get(self, key: str) -> np.ndarray | None:
        """The stored (1, D) float32 vector, or None."""
        path = self._path(key)
        try:
            data = path.read_bytes()
        except OSError:  # not stored, or not readable
            return None
        try:
            vector = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, EOFError, OSError):
            with contextlib.suppress(OSError):
                path.unlink()  # damaged: encoded again and replaced
            return None
        return vector if vector.ndim == 2 and vector.dtype == np.float32 else None

    def put(self, key: str, vector: np.ndarray) -> None:
        """Store a (1, D) vector, atomically; a folder that cannot be written is skipped."""
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(vector, dtype=np.float32), allow_pickle=False)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self._path(key), buffer.getvalue())
            self._prune()
        except OSError:
            return

    def _prune(self) -> None:
        entries = list(self.folder.glob("*.npy"))
        if len(entries) <= MAX_ENTRIES:
            return
        entries.sort(key=lambda p: p.stat().st_mtime_ns)
        for old in entries[:len(entries) - MAX_ENTRIES]:
            old.unlink(missing_ok=True)
