"""semstyle: GAN-based semantic image style transfer.

``from semstyle import Stylizer, StylizeOptions`` is the main entry point;
both are imported lazily so that ``semstyle --help`` does not pay for
importing PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["OnnxStylizer", "Stylizer", "StylizeOptions", "__version__"]

if TYPE_CHECKING:
    from .pipeline.options import StylizeOptions
    from .runtime.onnx import OnnxStylizer
    from .stylizer import Stylizer


def __getattr__(name: str):
    if name == "Stylizer":
        try:
            from .stylizer import Stylizer
        except ImportError as exc:
            if exc.name != "torch":
                raise
            raise ImportError("semstyle.Stylizer needs PyTorch: pip install \"semstyle[torch]\"; without it, "
                              "semstyle.OnnxStylizer stylizes with the shipped ONNX models "
                              "(pip install \"semstyle[runtime]\")", name="torch") from None
        return Stylizer
    if name == "OnnxStylizer":
        from .runtime.onnx import OnnxStylizer

        return OnnxStylizer
    if name == "StylizeOptions":
        from .pipeline.options import StylizeOptions

        return StylizeOptions
    raise AttributeError(f"module 'semstyle' has no attribute {name!r}")
