"""semstyle: GAN-based semantic image style transfer.

``from semstyle import Stylizer, StylizeOptions`` is the main entry point;
both are imported lazily so that ``semstyle --help`` does not pay for
importing PyTorch.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if sys.platform.startswith("linux"):
    # PyTorch's CPU allocator reads this once, at its first allocation: large tensors then get
    # 2 MiB-aligned memory advised as transparent huge pages. Every forward pass allocates maps of
    # up to 143 MB (64 channels at 1058 x 1058 in bfloat16 at 1024 px) that glibc takes fresh from
    # the kernel, so without it one 1024 px pass faults in ~300k 4 KiB pages. Measured with
    # benchmarks/speed.py on this project's 2-core machine (same run order, 0 then 1): minor page
    # faults 2.36 M -> 0.14 M per process; default model 1.82 -> 1.51 s at 1024 px, 0.28 -> 0.22 s
    # at 384 px; fast model 0.18 -> 0.13 s at 1024 px; peak memory at 3840 x 2160 1.11 -> 1.04 GiB.
    # Only when torch is imported after semstyle; THP_MEM_ALLOC_ENABLE=0 in the environment opts out.
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

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
