"""Error replies: JSON ``{"error": "..."}`` with a 4xx status (never a traceback), and the image formats."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from ..errors import ImageError, OptionError, SemstyleError

FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg"), "jpg": ("JPEG", "image/jpeg"),
           "webp": ("WEBP", "image/webp")}
"""``format`` -> (Pillow's format name, media type)."""

BUSY_RETRY_S = 2


class ApiError(Exception):
    """Raised anywhere in a request (a form dependency too); the app answers ``error(status, message)``."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def busy(what: str = "every worker and queue place is taken", retry_s: int = BUSY_RETRY_S) -> ApiError:
    return ApiError(503, f"busy: {what}; try again shortly", {"Retry-After": str(retry_s)})


def from_library(exc: SemstyleError) -> ApiError:
    """The reply to a user error the library raised: 422 a bad option, 415 not an image, else 400."""
    if isinstance(exc, OptionError):
        return ApiError(422, str(exc))
    if isinstance(exc, ImageError) and "not an image" in str(exc):
        return ApiError(415, str(exc))
    return ApiError(400, str(exc))
