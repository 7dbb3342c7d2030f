"""Reading image files: whatever users have, as an upright 8-bit sRGB image.

Why a module of its own: users feed semstyle whatever they have (phone JPEGs
rotated by an EXIF tag, 16-bit scans, CMYK print files, PNGs with alpha,
truncated downloads, decompression bombs), and the network needs one thing:
an upright 8-bit sRGB image. Everything that can go wrong on the way in
becomes one :class:`~semstyle.errors.ImageError` with a one-line message
naming the file; everything that merely *differs* (mode, bit depth, colour
profile, orientation) is converted instead of rejected.

Decoding takes no lock and changes none of Pillow's module-level settings, so
a multi-threaded server decodes uploads in parallel. The bomb guard is our
own check of the header's size before any pixel is decoded (Pillow reads
only the header on ``open``); Pillow's own limit stays in place above it.
Its ``DecompressionBombWarning`` (for images between its two limits, which
our check has already judged) and its corrupt-EXIF warnings (the EXIF block
is optional; we skip a broken one) are filtered out, without
``warnings.catch_warnings``, which is not thread-safe.
"""

from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path
from typing import IO, Union

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from ..errors import ImageError

PathLike = Union[str, os.PathLike]
ImageSource = Union[str, os.PathLike, bytes, IO[bytes]]
"""A file path, the file's bytes, or a binary file object (an upload)."""

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
"""Extensions :func:`list_images` picks up (compared case-insensitively)."""

DEFAULT_MAX_PIXELS = 178_956_970
"""Pillow's own hard limit (2 x ``Image.MAX_IMAGE_PIXELS``): ~537 MB as RGB. Lower limits
can be asked for per call; Pillow refuses anything above this anyway."""

# Exceptions Pillow raises on bad data; decoders are not consistent about them.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError,
                 TypeError, KeyError, ZeroDivisionError)



def _silence_pillow_noise() -> None:
    """Pillow's bomb warning (our own check has judged the size already) and its
    corrupt-EXIF warnings (the block is optional; a broken one is skipped) are not for
    our users' stderr. Filters are (re)installed, never saved and restored: inserting
    an identical filter is idempotent, while ``catch_warnings`` is not thread-safe.
    Re-installed on every decode because test runners and apps reset the filters."""
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", message=r"(?i).*(corrupt|truncated).*exif", category=UserWarning)


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

def load_image(source: ImageSource, *, min_size: int = 16,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read any supported image (a path, its bytes or a binary file object) as an
    upright 8-bit sRGB ``RGB`` image.

    Rejects (with :class:`ImageError`) what cannot be trusted: missing,
    empty, truncated or corrupt files, non-images, images with more than
    ``max_pixels`` pixels (decompression bombs) and images whose shorter side
    is below ``min_size``. Converts what merely differs: EXIF orientation,
    embedded ICC profiles, alpha (composited onto white), palettes, CMYK,
    1-bit, 16-bit and float data. File metadata is dropped, since it no
    longer describes the converted pixels.
    """
    img = _decode(source, min_size=min_size, max_pixels=max_pixels)
    img = _apply_orientation(img)
    img = to_rgb8(_to_srgb(expand_mode(img)))
    img.info = {}
    return img


def read_raw_image(source: ImageSource, *, what: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode an image as stored, for masks and label maps: EXIF
    orientation applied and exotic modes expanded (:func:`expand_mode`), but
    no colour management and no alpha compositing, because there the exact
    values and the alpha channel carry meaning. The same checks and one-line
    :class:`ImageError` s as :func:`load_image`, worded ``cannot read <what> <path>: ...``."""
    try:
        img = _decode(source, min_size=1, max_pixels=max_pixels)
    except ImageError as exc:
        if what == "image":
            raise
        raise ImageError(str(exc).replace("cannot read image", f"cannot read {what}", 1)) from None
    return expand_mode(_apply_orientation(img))


def source_name(source: ImageSource) -> str:
    """How messages name an image: its path, or what kind of in-memory data it is."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "(uploaded bytes)"
    return str(getattr(source, "name", "(file object)"))


def check_input_file(path: Path) -> None:
    """Give the precise reason up front; Pillow's errors for these are vague."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ImageError(f"cannot read image {path}: file does not exist") from None
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {one_line(exc.strerror or exc)}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"cannot read image {path}: it is a folder, not an image file")
    if info.st_size == 0:
        raise ImageError(f"cannot read image {path}: file is empty (0 bytes)")


def _open_source(source: ImageSource):
    """A path (checked first) or a file object Pillow can read."""
    if isinstance(source, (str, os.PathLike)):
        check_input_file(Path(source))
        return Path(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise ImageError(f"cannot read image {source_name(source)}: it is empty (0 bytes)")
        return io.BytesIO(bytes(source))
    return source


def _decode(source: ImageSource, *, min_size: int, max_pixels: int) -> Image.Image:
    """Open and fully decode, so truncation fails here rather than later."""
    name = source_name(source)
    _silence_pillow_noise()
    try:
        with Image.open(_open_source(source)) as img:
            _check_dimensions(name, img.size, min_size, max_pixels)
            img.load()
            return img
    except Image.DecompressionBombError as exc:
        raise ImageError(f"cannot read image {name}: more than {max_pixels:,} pixels "
                         f"(possible decompression bomb)") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"cannot read image {name}: not an image file, or a format "
                         f"Pillow cannot read") from exc
    except PermissionError as exc:
        raise ImageError(f"cannot read image {name}: permission denied") from exc
    except DECODE_ERRORS as exc:
        raise ImageError(f"cannot read image {name}: file is truncated or corrupt "
                         f"({one_line(exc)}); re-export or re-download it") from exc


def _check_dimensions(name: str, size: tuple[int, int], min_size: int, max_pixels: int) -> None:
    """Check the header's size before decoding: cheap, and the decode may be huge."""
    width, height = size
    if width * height > max_pixels:
        raise ImageError(f"cannot read image {name}: {width}x{height} is more than "
                         f"{max_pixels:,} pixels (possible decompression bomb)")
    if min(width, height) < min_size:
        raise ImageError(f"cannot read image {name}: {width}x{height} is too small; "
                         f"the shorter side must be at least {min_size} px")

def _apply_orientation(img: Image.Image) -> Image.Image:
    """Rotate as the camera intended; a broken EXIF block is not worth failing over."""
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except DECODE_ERRORS:
        pass
    return img


def expand_mode(img: Image.Image) -> Image.Image:
    """Bring exotic modes to L, LA, RGB, RGBA or CMYK, keeping the full tonal range."""
    mode = img.mode
    if mode.startswith("I"):
        return _sixteen_bit_to_l(img)
    if mode == "F":
        return _float_to_l(img)
    if mode == "P":
        return img.convert("RGBA" if "transparency" in img.info else "RGB")
    if mode in ("PA", "La", "RGBa"):
        return img.convert("RGBA")
    if mode == "1":
        return img.convert("L")
    return img


def _sixteen_bit_to_l(img: Image.Image) -> Image.Image:
    """Scale 0..65535 to 0..255; Pillow's convert('L') would clip at 255 instead.

    Mode ``I`` (32-bit) is read as 16-bit too, since that is what Pillow
    produces for 16-bit PNGs and TIFFs; values outside 0..65535 are clipped.
    """
    data = np.asarray(img).astype(np.float64)
    scaled = np.clip(data, 0, 65535) / 257.0
    return _l_image(scaled, img)


def _float_to_l(img: Image.Image) -> Image.Image:
    """Float images are 0..1 by convention (numpy, HDR tools) or 0..255 (Pillow).

    If no value exceeds 1 the image is taken as 0..1, otherwise as 0..255.
    NaN becomes black.
    """
    data = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=255.0, neginf=0.0)
    if data.size and data.max() <= 1.0:
        data = data * 255.0
    return _l_image(data, img)


def _l_image(values: np.ndarray, like: Image.Image) -> Image.Image:
    """An 8-bit grayscale image from 0..255 floats, keeping ``like``'s metadata."""
    out = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8))
    out.info = dict(like.info)
    return out


def _to_srgb(img: Image.Image) -> Image.Image:
    """Apply an embedded ICC profile, so e.g. Adobe RGB or CMYK files keep their colours.

    If the profile is unreadable or does not fit the image mode, the pixels are
    used as they are: slightly off colours beat refusing the image.
    """
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK", "L"):
        return img
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(img, source, _srgb_profile(), outputMode=out_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return img
    if converted is None:  # pragma: no cover - only when inPlace=True
        return img
    converted.info = {k: v for k, v in img.info.items() if k != "icc_profile"}
    return converted


_SRGB: ImageCms.ImageCmsProfile | None = None


def _srgb_profile() -> ImageCms.ImageCmsProfile:
    """Built once: creating a profile is cheap, but not free per image."""
    global _SRGB
    if _SRGB is None:
        _SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return _SRGB


def to_rgb8(img: Image.Image) -> Image.Image:
    """Final step to RGB: alpha is composited onto white, the usual page colour."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode.startswith("I") or img.mode in ("F", "P", "PA", "1", "La", "RGBa"):
        return to_rgb8(expand_mode(img))
    try:
        return img.convert("RGB")
    except ValueError as exc:
        raise ImageError(f"cannot convert image mode {img.mode} to RGB") from exc


# --------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------

def list_images(folder: PathLike) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name, for batch runs.

    Hidden files are skipped: macOS leaves ``._photo.jpg`` companions that
    have an image extension but are not images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        reason = "is not a folder" if folder.exists() else "does not exist"
        raise ImageError(f"cannot list images in {folder}: folder {reason}")
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
                   and p.is_file())
    if not files:
        raise ImageError(f"no images in {folder}: expected files ending in "
                         f"{', '.join(IMAGE_EXTENSIONS)}")
    return files


def one_line(exc: BaseException | str) -> str:
    """Exception text squeezed onto one line, for one-line user messages."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
