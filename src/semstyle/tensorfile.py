"""The one reader and writer of safetensors files (models, checkpoints, VGG weights).

safetensors holds tensors and a string-to-string metadata header and nothing
executable, so a file a user gives us can be read without running its code
(which pickle cannot promise). Writes go through :func:`semstyle.files.atomic_write`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from .errors import WeightsError
from .files import atomic_write_bytes


def read_tensors(path: str | Path, prefix: str = "", what: str = "model file") -> tuple[dict[str, torch.Tensor],
                                                                                         dict[str, str]]:
    """Tensors whose names start with ``prefix``, and the metadata. A missing,
    unreadable or malformed file is one :class:`WeightsError` naming ``what``."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            names = [k for k in handle.keys() if k.startswith(prefix)]
            return {k: handle.get_tensor(k) for k in names}, dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsError(f"cannot read {what} {path}: not a valid safetensors file ({reason})") from None


def write_tensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str]) -> Path:
    """Write atomically; the folder must exist."""
    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    return atomic_write_bytes(path, data)


def non_finite_tensors(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of floating-point tensors holding NaN or infinity (a diverged or damaged model)."""
    return [name for name, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
