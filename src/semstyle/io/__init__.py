"""Image files in and out: the only place that touches Pillow's file IO.

``read`` (decoding anything users have, safely), ``tensors`` (image <-> tensor),
``write`` (atomic saving) and ``provenance`` (the generated-media label).
The names below are the public API; modules inside semstyle import the
submodules directly. The tensor conversions are imported on first use, so that
reading and writing images works without PyTorch (the ONNX runtime).
"""

from .provenance import DIGITAL_SOURCE_TYPE, XMP_NAMESPACE, Provenance, read_provenance
from .read import (
                   DEFAULT_MAX_PIXELS,
                   IMAGE_EXTENSIONS,
                   ImageSource,
                   expand_mode,
                   list_images,
                   load_image,
                   read_raw_image,
)
from .write import OUTPUT_FORMATS, ensure_writable, save_image

__all__ = ["DEFAULT_MAX_PIXELS", "DIGITAL_SOURCE_TYPE", "IMAGE_EXTENSIONS", "ImageSource", "OUTPUT_FORMATS",
           "Provenance", "XMP_NAMESPACE", "ensure_writable", "expand_mode", "image_to_tensor", "list_images",
           "load_image", "read_provenance", "read_raw_image", "save_image", "tensor_to_image"]


def __getattr__(name: str):
    if name in ("image_to_tensor", "tensor_to_image"):
        from . import tensors

        return getattr(tensors, name)
    raise AttributeError(f"module 'semstyle.io' has no attribute {name!r}")
