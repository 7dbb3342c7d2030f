"""Writing image files atomically, labelled as generated media unless asked not to."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import ConfigError, ImageError
from ..files import atomic_write, describe_os_error
from .provenance import EXIF_DESCRIPTION, EXIF_SOFTWARE, Provenance
from .read import PathLike, one_line, to_rgb8

OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
"""Output extension -> Pillow format; the extension alone decides the format."""

_SUPPORTED_OUTPUTS = ", ".join(OUTPUT_FORMATS)

# Modes each encoder takes as is; anything else is converted to RGB first.
_SAVE_MODES = {
    "PNG": ("RGB", "RGBA", "L", "LA", "P", "1"),
    "JPEG": ("RGB", "L"),
    "WEBP": ("RGB", "RGBA"),
}


def ensure_writable(path: PathLike) -> Path:
    """Fail before an expensive run, not after it, if the output cannot be written."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_FORMATS:
        ext = f"'{path.suffix}'" if path.suffix else "no extension"
        raise ImageError(f"cannot write {path}: unsupported output type ({ext}); "
                         f"use one of {_SUPPORTED_OUTPUTS}")
    parent = path.parent
    if not parent.exists():
        raise ImageError(f"cannot write {path}: folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise ImageError(f"cannot write {path}: {parent} is not a folder")
    if path.is_dir():
        raise ImageError(f"cannot write {path}: a folder with that name exists")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ImageError(f"cannot write {path}: folder {parent} is not writable")
    if path.exists() and not os.access(path, os.W_OK):
        raise ImageError(f"cannot write {path}: the file exists and is read-only")
    return path


def save_image(img: Image.Image, path: PathLike, *, provenance: Provenance | None = None,
               quality: int = 95) -> Path:
    """Write ``img`` atomically as PNG, JPEG or WebP (by extension) and return the path.

    With ``provenance`` the file is labelled as AI-generated (XMP plus EXIF
    or PNG text); without it no metadata at all is written. ``quality``
    (1..100) applies to JPEG and WebP.
    """
    path = ensure_writable(path)
    fmt = OUTPUT_FORMATS[path.suffix.lower()]
    try:
        atomic_write(path, lambda fp: _encode(img, fp, fmt, provenance, quality))
    except OSError as exc:
        raise ImageError(f"cannot write {path}: {describe_os_error(exc)}") from None
    except ValueError as exc:
        raise ImageError(f"cannot write {path}: {one_line(exc)}") from None
    return path


def encode_image(img: Image.Image, fmt: str, provenance: Provenance | None = None, quality: int = 95) -> bytes:
    """The bytes :func:`save_image` would write, in Pillow format ``fmt`` (PNG, JPEG, WEBP): for HTTP replies."""
    buffer = io.BytesIO()
    _encode(img, buffer, fmt, provenance, quality)
    return buffer.getvalue()


def _encode(img: Image.Image, handle, fmt: str, provenance: Provenance | None, quality: int) -> None:
    if not 1 <= quality <= 100:
        raise ConfigError(f"JPEG/WebP quality must be between 1 and 100, got {quality}")
    if img.mode not in _SAVE_MODES[fmt]:
        img = to_rgb8(img)
    img.save(handle, format=fmt, **_encoder_params(fmt, provenance, quality))


def _encoder_params(fmt: str, provenance: Provenance | None, quality: int) -> dict[str, Any]:
    """Pillow save options; ICC/comment are passed empty so nothing leaks from ``img.info``."""
    params: dict[str, Any] = {"icc_profile": None}
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = quality
    if fmt == "JPEG":
        params["comment"] = None
    if provenance is None:
        return params
    if fmt == "PNG":
        params["pnginfo"] = _png_info(provenance)
    else:
        params["xmp"] = provenance.to_xmp().encode("utf-8")
        params["exif"] = _exif(provenance).tobytes()
    return params


def _png_info(provenance: Provenance) -> Any:
    """PNG keeps XMP in an iTXt chunk with the keyword Adobe defined for it."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", provenance.to_xmp(), zip=False)
    info.add_text("Software", provenance.creator_tool)
    info.add_text("Description", provenance.description)
    return info


def _exif(provenance: Provenance) -> Image.Exif:
    """EXIF for viewers that ignore XMP; EXIF strings are ASCII, so others become '?'."""
    exif = Image.Exif()
    exif[EXIF_SOFTWARE] = provenance.creator_tool
    exif[EXIF_DESCRIPTION] = provenance.description
    return exif
