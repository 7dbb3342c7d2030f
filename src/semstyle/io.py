"""Reading and writing image files: the only place that touches Pillow's file IO.

Why a module of its own: users feed semstyle whatever they have (phone JPEGs
rotated by an EXIF tag, 16-bit scans, CMYK print files, PNGs with alpha,
truncated downloads), and the network needs one thing: an upright 8-bit sRGB
image. Everything that can go wrong on the way in becomes one
:class:`~semstyle.errors.ImageError` with a one-line message naming the file;
everything that merely *differs* (mode, bit depth, colour profile,
orientation) is converted instead of rejected.

On the way out, files are written atomically (temp file, fsync, rename) so an
interrupted run never leaves a half-written image where a good one was, and
generated images are labelled as such (IPTC ``trainedAlgorithmicMedia`` in
XMP) unless the caller opts out. Resizing is deliberately *not* done here.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import stat
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Union
from xml.sax.saxutils import escape

import numpy as np
import torch
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ConfigError, ImageError

PathLike = Union[str, os.PathLike]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
"""Extensions :func:`list_images` picks up (compared case-insensitively)."""

OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
"""Output extension -> Pillow format; the extension alone decides the format."""

DEFAULT_MAX_PIXELS = 178_956_970
"""Pillow's own hard limit (2 x ``Image.MAX_IMAGE_PIXELS``): ~537 MB as RGB."""

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
"""IPTC code that marks an image as made by a trained model (used by C2PA, Google, Adobe)."""

XMP_NAMESPACE = "urn:x-semstyle:xmp:1.0/"
"""Namespace of semstyle's own XMP properties (style names, model)."""

_SUPPORTED_OUTPUTS = ", ".join(OUTPUT_FORMATS)

# Exceptions Pillow raises on bad data; decoders are not consistent about them.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError,
                  TypeError, KeyError, ZeroDivisionError)

# Modes each encoder takes as is; anything else is converted to RGB first.
_SAVE_MODES = {
    "PNG": ("RGB", "RGBA", "L", "LA", "P", "1"),
    "JPEG": ("RGB", "L"),
    "WEBP": ("RGB", "RGBA"),
}

_EXIF_SOFTWARE = 0x0131
_EXIF_DESCRIPTION = 0x010E

# Guards the temporary changes to Pillow's module-level limits in _strict_pillow.
_PILLOW_LOCK = threading.RLock()


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

def load_image(path: PathLike, *, min_size: int = 16,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Read any supported image file as an upright 8-bit sRGB ``RGB`` image.

    Rejects (with :class:`ImageError`) what cannot be trusted: missing,
    empty, truncated or corrupt files, non-images, images with more than
    ``max_pixels`` pixels (decompression bombs) and images whose shorter side
    is below ``min_size``. Converts what merely differs: EXIF orientation,
    embedded ICC profiles, alpha (composited onto white), palettes, CMYK,
    1-bit, 16-bit and float data. File metadata is dropped, since it no
    longer describes the converted pixels.
    """
    path = Path(path)
    _check_input_file(path)
    img = _decode(path, min_size=min_size, max_pixels=max_pixels)
    img = _apply_orientation(img)
    img = _to_rgb8(_to_srgb(expand_mode(img)))
    img.info = {}
    return img


def read_raw_image(path: PathLike, *, what: str = "image", max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode an image file as stored, for masks and label maps: EXIF
    orientation applied and exotic modes expanded (:func:`expand_mode`), but
    no colour management and no alpha compositing, because there the exact
    values and the alpha channel carry meaning. The same checks and one-line
    :class:`ImageError` s as :func:`load_image`, worded ``cannot read <what> <path>: ...``."""
    path = Path(path)
    try:
        _check_input_file(path)
        img = _decode(path, min_size=1, max_pixels=max_pixels)
    except ImageError as exc:
        if what == "image":
            raise
        raise ImageError(str(exc).replace("cannot read image", f"cannot read {what}", 1)) from None
    return expand_mode(_apply_orientation(img))


def _check_input_file(path: Path) -> None:
    """Give the precise reason up front; Pillow's errors for these are vague."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ImageError(f"cannot read image {path}: file does not exist") from None
    except OSError as exc:
        raise ImageError(f"cannot read image {path}: {_one_line(exc.strerror or exc)}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"cannot read image {path}: it is a folder, not an image file")
    if info.st_size == 0:
        raise ImageError(f"cannot read image {path}: file is empty (0 bytes)")


@contextlib.contextmanager
def _strict_pillow(max_pixels: int) -> Iterator[None]:
    """Decode with our pixel limit and without truncated-image padding.

    Pillow keeps both settings in module globals; they are set for the
    duration of one decode only (under a lock, so concurrent loads in threads
    see consistent values) and restored afterwards. The bomb *warning* is
    turned into an error so it cannot slip past as a log line.
    """
    with _PILLOW_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = max_pixels, False
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _decode(path: Path, *, min_size: int, max_pixels: int) -> Image.Image:
    """Open and fully decode, so truncation fails here rather than later."""
    try:
        with _strict_pillow(max_pixels), Image.open(path) as img:
            _check_dimensions(path, img.size, min_size, max_pixels)
            img.load()
            return img
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"cannot read image {path}: more than {max_pixels:,} pixels "
                         f"(possible decompression bomb); if you trust the file, "
                         f"raise max_pixels") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"cannot read image {path}: not an image file, or a format "
                         f"Pillow cannot read") from exc
    except PermissionError as exc:
        raise ImageError(f"cannot read image {path}: permission denied") from exc
    except _DECODE_ERRORS as exc:
        raise ImageError(f"cannot read image {path}: file is truncated or corrupt "
                         f"({_one_line(exc)}); re-export or re-download it") from exc


def _check_dimensions(path: Path, size: tuple[int, int], min_size: int, max_pixels: int) -> None:
    """Check the header's size before decoding: cheap, and the decode may be huge."""
    width, height = size
    if width * height > max_pixels:
        raise ImageError(f"cannot read image {path}: {width}x{height} is more than "
                         f"{max_pixels:,} pixels (possible decompression bomb); if you "
                         f"trust the file, raise max_pixels")
    if min(width, height) < min_size:
        raise ImageError(f"cannot read image {path}: {width}x{height} is too small; "
                         f"the shorter side must be at least {min_size} px")


def _apply_orientation(img: Image.Image) -> Image.Image:
    """Rotate as the camera intended; a broken EXIF block is not worth failing over."""
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except _DECODE_ERRORS:
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


def _to_rgb8(img: Image.Image) -> Image.Image:
    """Final step to RGB: alpha is composited onto white, the usual page colour."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if img.mode.startswith("I") or img.mode in ("F", "P", "PA", "1", "La", "RGBa"):
        return _to_rgb8(expand_mode(img))
    try:
        return img.convert("RGB")
    except ValueError as exc:
        raise ImageError(f"cannot convert image mode {img.mode} to RGB") from exc


# --------------------------------------------------------------------------
# Tensors
# --------------------------------------------------------------------------

def image_to_tensor(img: Image.Image) -> torch.Tensor:
    """(1, 3, H, W) float32 in 0..1: the layout every model in semstyle takes."""
    rgb = _to_rgb8(img)
    array = np.array(rgb, dtype=np.uint8)  # a copy: torch wants writable memory
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)


def tensor_to_image(tensor: torch.Tensor) -> Image.Image:
    """Back to an 8-bit RGB image; out-of-range and NaN values are clamped, not wrapped."""
    t = tensor.detach()
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"expected a (1,3,H,W) or (3,H,W) tensor, got shape {tuple(tensor.shape)}")
    t = torch.nan_to_num(t.float().cpu(), nan=0.0).clamp(0.0, 1.0)
    array = t.mul(255.0).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(array)


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


# --------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------

def _default_version() -> str:
    """Imported lazily so that this module does not depend on package init order."""
    from . import __version__
    return __version__


def _utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Provenance:
    """What made an output image; written into it so the label travels with the file.

    Regulators and platforms (EU AI Act, C2PA, IPTC) expect generated images
    to say so in machine-readable form; XMP is what viewers and stock sites read.
    """

    software: str = "semstyle"
    version: str = field(default_factory=_default_version)
    styles: list[str] = field(default_factory=list)
    model: str = ""
    created: str = field(default_factory=_utc_now)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def creator_tool(self) -> str:
        """``"semstyle 0.1.0"``: the form XMP and EXIF expect for the software field."""
        return f"{self.software} {self.version}".strip()

    @property
    def description(self) -> str:
        """Human-readable one-liner, shown by viewers that ignore XMP."""
        styles = ", ".join(self.styles) if self.styles else "unnamed style images"
        return f"Generated by {self.creator_tool} (style transfer) from style images: {styles}"

    def to_xmp(self) -> str:
        """A complete XMP packet (x:xmpmeta / rdf:RDF) describing this output."""
        styles = "".join(f"<rdf:li>{_xml(s)}</rdf:li>" for s in self.styles)
        extras = "".join(
            f'<rdf:li rdf:parseType="Resource"><semstyle:key>{_xml(k)}</semstyle:key>'
            f"<semstyle:value>{_xml(v)}</semstyle:value></rdf:li>"
            for k, v in self.extra.items())
        return (
            '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
            '  <rdf:Description rdf:about=""\n'
            '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
            '    xmlns:dc="http://purl.org/dc/elements/1.1/"\n'
            '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
            f'    xmlns:semstyle="{XMP_NAMESPACE}">\n'
            f"   <xmp:CreatorTool>{_xml(self.creator_tool)}</xmp:CreatorTool>\n"
            f"   <xmp:CreateDate>{_xml(self.created)}</xmp:CreateDate>\n"
            f"   <Iptc4xmpExt:DigitalSourceType>{DIGITAL_SOURCE_TYPE}</Iptc4xmpExt:DigitalSourceType>\n"
            '   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
            f"{_xml(self.description)}</rdf:li></rdf:Alt></dc:description>\n"
            f"   <semstyle:Styles><rdf:Seq>{styles}</rdf:Seq></semstyle:Styles>\n"
            f"   <semstyle:Model>{_xml(self.model)}</semstyle:Model>\n"
            f"   <semstyle:Extra><rdf:Bag>{extras}</rdf:Bag></semstyle:Extra>\n"
            "  </rdf:Description>\n"
            " </rdf:RDF>\n"
            "</x:xmpmeta>\n"
            '<?xpacket end="w"?>'
        )


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(value: object) -> str:
    """Escape for XML text and attributes; drop characters XML 1.0 cannot hold at all."""
    text = _XML_INVALID.sub("", str(value))
    return escape(text, {'"': "&quot;", "'": "&apos;"})


def read_provenance(path: PathLike) -> dict[str, str]:
    """The provenance fields of a saved image, to check what a file claims about itself.

    Returns ``format``, ``xmp``, ``software`` and ``description``; a missing
    field is an empty string, never an error.
    """
    path = Path(path)
    _check_input_file(path)
    try:
        with Image.open(path) as img:
            exif = img.getexif()
            xmp = img.info.get("xmp", b"")
            return {
                "format": img.format or "",
                "xmp": xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else str(xmp),
                "software": str(img.info.get("Software") or exif.get(_EXIF_SOFTWARE, "")),
                "description": str(img.info.get("Description") or exif.get(_EXIF_DESCRIPTION, "")),
            }
    except UnidentifiedImageError as exc:
        raise ImageError(f"cannot read image {path}: not an image file") from exc
    except (Image.DecompressionBombError, *_DECODE_ERRORS) as exc:
        raise ImageError(f"cannot read metadata of {path}: {_one_line(exc)}") from exc


# --------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------

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
    if not 1 <= quality <= 100:
        raise ConfigError(f"JPEG/WebP quality must be between 1 and 100, got {quality}")
    fmt = OUTPUT_FORMATS[path.suffix.lower()]
    if img.mode not in _SAVE_MODES[fmt]:
        img = _to_rgb8(img)
    params = _encoder_params(fmt, provenance, quality)
    try:
        _atomic_write(path, lambda fp: img.save(fp, format=fmt, **params))
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot write {path}: {_one_line(exc)}") from exc
    return path


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
    exif[_EXIF_SOFTWARE] = provenance.creator_tool
    exif[_EXIF_DESCRIPTION] = provenance.description
    return exif


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write via a temp file in the same folder, then rename over ``path``.

    The rename is atomic on one file system, so readers see the old file or
    the complete new one, never a partial one. On any failure, Ctrl-C
    included, the temp file is removed and ``path`` is left untouched.
    """
    tmp = tempfile.NamedTemporaryFile(delete=False, dir=path.parent,
                                      prefix="." + path.name, suffix=".tmp")
    try:
        with tmp:
            write(tmp)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp.name, _new_file_mode(path))
        os.replace(tmp.name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        raise
    _fsync_dir(path.parent)


def _new_file_mode(path: Path) -> int:
    """Keep an existing file's permissions; else what open() would give (mkstemp uses 0600)."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    return 0o666 & ~_umask()


def _umask() -> int:
    """Read the umask without setting it where /proc allows (setting it is process-wide)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself; not possible (nor needed) on Windows."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _one_line(exc: BaseException) -> str:
    """Exception text squeezed onto one line, for one-line user messages."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
