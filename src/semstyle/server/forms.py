"""The multipart form of ``POST /v1/stylize`` (and its job twin), read and checked once.

Everything a request can get wrong is found here, before any work is queued: a missing or
unknown style, images that are not images, options the options object refuses. Each problem is
an :class:`~semstyle.server.replies.ApiError` (a 4xx JSON reply).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import File, Form, UploadFile
from PIL import Image

from ..errors import SemstyleError
from ..gallery import SAFE_ID, GalleryStyle
from ..io.provenance import Provenance
from ..io.read import load_image, read_raw_image
from ..io.write import encode_image
from ..pipeline.options import DEFAULTS, StylizeOptions
from ..stylizer import Stylizer
from .replies import FORMATS, ApiError, from_library


@dataclass
class StylizeRequest:
    content: Image.Image
    style: Path | Image.Image
    options: StylizeOptions
    style_name: str
    format: str                  # png | jpeg | webp

    @property
    def media_type(self) -> str:
        return FORMATS[self.format][1]

    def encode(self, result: Image.Image, model: str) -> bytes:
        """The reply's bytes, with provenance metadata."""
        return encode_image(result, FORMATS[self.format][0], Provenance(styles=[self.style_name], model=model))


def check_style(style: UploadFile | None, style_id: str | None, gallery: dict[str, GalleryStyle]) -> None:
    """A request names exactly one style: an upload or a gallery id the gallery has."""
    if (style is None) == (style_id is None):
        raise ApiError(422, "give one of style (a file) or style_id (from /v1/styles)")
    if style_id is not None and (not SAFE_ID.match(style_id) or style_id not in gallery):
        raise ApiError(404, f"no style {style_id!r} in the gallery")


async def read_style(style: UploadFile | None, style_id: str | None,
                     gallery: dict[str, GalleryStyle]) -> Path | Image.Image:
    check_style(style, style_id, gallery)
    try:
        return gallery[style_id].path if style_id else load_image(await style.read(), min_size=32)
    except SemstyleError as exc:
        raise from_library(exc) from None


async def _upload_image(upload: UploadFile | None) -> Image.Image | None:
    """A mask or label map as stored (values matter), through the same guarded decoder as photos."""
    return None if upload is None else read_raw_image(await upload.read(), what=upload.filename or "upload")


def stylize_form(gallery: dict[str, GalleryStyle], stylizer: Stylizer):
    """The FastAPI dependency that turns the form into a :class:`StylizeRequest` (or an ApiError)."""

    async def read(content: UploadFile = File(...), style: UploadFile | None = File(None),
                   style_id: str | None = Form(None), strength: float = Form(1.0), size: int | None = Form(None),
                   style_size: int = Form(512), preserve_color: bool = Form(False),
                   mask: UploadFile | None = File(None), protect: UploadFile | None = File(None),
                   content_labels: UploadFile | None = File(None), style_labels: UploadFile | None = File(None),
                   auto_regions: int | None = Form(None), refine: int = Form(0),
                   style_fit: int = Form(DEFAULTS.style_fit),
                   region_contrast: float | None = Form(DEFAULTS.region_contrast),
                   colour_match: float = Form(DEFAULTS.colour_match),
                   format: str = Form("png")) -> StylizeRequest:
        if format.lower() not in FORMATS:
            raise ApiError(422, f"format must be one of png, jpeg, webp, got {format!r}")
        check_style(style, style_id, gallery)
        if (content_labels is None) != (style_labels is None):
            raise ApiError(422, "content_labels and style_labels go together; give both")
        try:
            content_img = load_image(await content.read(), min_size=32)
            style_img = await read_style(style, style_id, gallery)
            labels = (await _upload_image(content_labels), await _upload_image(style_labels)) if content_labels \
                else None
            options = StylizeOptions(strength=strength, size=size, style_size=style_size,
                                     preserve_colors=preserve_color, mask=await _upload_image(mask),
                                     protect=(await _upload_image(protect),) if protect else (), labels=labels,
                                     auto_regions=auto_regions, refine=refine, style_fit=style_fit,
                                     region_contrast=region_contrast, colour_match=colour_match,
                                     device=stylizer.options.device, precision=stylizer.options.precision).validate()
        except SemstyleError as exc:
            raise from_library(exc) from None
        name = style_id or style.filename or "uploaded style"
        return StylizeRequest(content_img, style_img, options, name, "jpeg" if format.lower() == "jpg"
                              else format.lower())

    return read
