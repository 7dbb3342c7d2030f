"""semstyle: GAN-based semantic image style transfer.

``from semstyle import Stylizer`` is the main entry point; it is imported
lazily so that ``semstyle --help`` does not pay for importing PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Stylizer", "__version__"]

if TYPE_CHECKING:
    from .stylize import Stylizer


def __getattr__(name: str):
    if name == "Stylizer":
        from .stylize import Stylizer

        return Stylizer
    raise AttributeError(f"module 'semstyle' has no attribute {name!r}")
