"""semstyle: GAN-based semantic image style transfer.

``from semstyle import Stylizer, StylizeOptions`` is the main entry point;
both are imported lazily so that ``semstyle --help`` does not pay for
importing PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Stylizer", "StylizeOptions", "__version__"]

if TYPE_CHECKING:
    from .pipeline.options import StylizeOptions
    from .stylizer import Stylizer


def __getattr__(name: str):
    if name == "Stylizer":
        from .stylizer import Stylizer

        return Stylizer
    if name == "StylizeOptions":
        from .pipeline.options import StylizeOptions

        return StylizeOptions
    raise AttributeError(f"module 'semstyle' has no attribute {name!r}")
