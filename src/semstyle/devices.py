"""Where and in what precision the networks run: the one device picker.

torch is imported inside the functions that need it, so that checking option
names stays possible in a torch-free install (the ONNX runtime)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from .errors import OptionError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16", "int8")


def check_device_name(name: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (whether it exists is checked by :func:`pick_device`)."""
    if not isinstance(name, str) or not (name in ("auto", "cpu", "cuda") or
                                         (name.startswith("cuda:") and name[5:].isdigit())):
        raise OptionError("device", f"must be cpu, cuda, cuda:N or auto, got {name!r}")
    return name


def check_precision_name(name: str) -> str:
    """``auto``, ``fp32``, ``bf16`` or ``int8`` (the ONNX backend's int8 graph only)."""
    if name not in PRECISIONS:
        raise OptionError("precision", f"must be one of {', '.join(PRECISIONS)}, got {name!r}")
    return name


def pick_device(name: str = "auto") -> torch.device:
    """The torch device for ``name``; ``auto`` is the first CUDA GPU if there is one."""
    import torch

    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise OptionError("device", f"is {name}, but no CUDA GPU is available; use cpu")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """The compute dtype for inference. ``auto`` is bfloat16 where the hardware
    runs it natively (CUDA GPUs that support it; CPUs with AVX-512 BF16 or AMX,
    through oneDNN), float32 elsewhere: bf16 halves the memory traffic of the
    convolutions, and a stylized image does not need float32's precision.
    ``bf16`` forces it (slow on CPUs without native support), ``fp32`` is exact."""
    import torch

    check_precision_name(name)
    if name == "int8":
        raise OptionError("precision", "int8 runs on the ONNX backend (--backend onnx, OnnxStylizer); "
                          "PyTorch runs auto, fp32 or bf16")
    if name == "fp32":
        return torch.float32
    if name == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if torch.backends.mkldnn.is_available() and _cpu_has_native_bf16() else torch.float32


def _cpu_has_native_bf16() -> bool:
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(device: torch.device, dtype: torch.dtype):
    """Mixed precision when ``dtype`` is a 16-bit type; a no-op context for float32."""
    import torch

    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
