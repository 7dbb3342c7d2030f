"""Inference: stylize photos with a trained generator.

:class:`Stylizer` is the Python API behind ``semstyle stylize``. A style is
reduced to one style vector; strength and multi-style blends are weighted sums
of style vectors (strength 0 is the photo's own vector, i.e. the photo), so
every mix happens in feature space, never as a pixel blend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Union

import torch
import torch.nn.functional as F
from PIL import Image

from .checkpoints import load_generator
from .encoders import VGGEncoder
from .errors import ConfigError, WeightsError
from .io import Provenance, image_to_tensor, load_image, save_image, tensor_to_image

ImageLike = Union[str, Path, Image.Image]
DEFAULT_MAX_SIDE = 1024
DEFAULT_STYLE_SIZE = 512
MIN_SIDE = 32


def default_model_path() -> Path:
    """The model shipped inside the package (``semstyle/assets/default``)."""
    return Path(str(resources.files("semstyle") / "assets" / "default"))


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but no CUDA GPU is available; use --device cpu")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}; use cpu, cuda or auto")
    return torch.device(name)


PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(name: str, device: torch.device) -> torch.dtype:
    """The compute dtype for inference. ``auto`` is bfloat16 where the hardware
    runs it natively (CUDA GPUs that support it; CPUs with AVX-512 BF16 or AMX,
    through oneDNN), float32 elsewhere: bf16 halves the memory traffic of the
    convolutions, and a stylized image does not need float32's precision.
    ``bf16`` forces it (slow on CPUs without native support), ``fp32`` is exact."""
    if name not in PRECISIONS:
        raise ConfigError(f"unknown precision {name!r}; use {', '.join(PRECISIONS)}")
    if name == "fp32":
        return torch.float32
    if name == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if torch.backends.mkldnn.is_available() and _cpu_has_native_bf16() else torch.float32


def _cpu_has_native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def check_strength(strength: float) -> float:
    if not 0.0 <= strength <= 1.0:
        raise ConfigError(f"strength must be between 0 and 1, got {strength}")
    return float(strength)


def fit_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """Scale (width, height) down so the longer side is at most ``max_side``."""
    cap = DEFAULT_MAX_SIDE if max_side is None else max_side
    longer = max(width, height)
    if longer <= cap:
        return width, height
    scale = cap / longer
    return max(1, round(width * scale)), max(1, round(height * scale))


def preserve_color(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Keep the content's colours: luminance from the stylized image, chroma
    (YIQ I and Q) from the content (Gatys et al. 2016, "luminance-only transfer")."""
    to_yiq = stylized.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    from_yiq = torch.linalg.inv(to_yiq)
    y_out = torch.einsum("ij,njhw->nihw", to_yiq, stylized)
    yiq_content = torch.einsum("ij,njhw->nihw", to_yiq, content)
    mixed = torch.cat([y_out[:, :1], yiq_content[:, 1:]], dim=1)
    return torch.einsum("ij,njhw->nihw", from_yiq, mixed).clamp(0, 1)


def check_size(size: int | None) -> int | None:
    if size is not None and size < MIN_SIDE:
        raise ConfigError(f"--size must be at least {MIN_SIDE}, got {size}")
    return size


def image_tensor(image: ImageLike, max_side: int | None) -> torch.Tensor:
    """A file or PIL image as a (1, 3, H, W) tensor in 0..1, its longer side
    capped at ``max_side`` (``None``: :data:`DEFAULT_MAX_SIDE`), Lanczos-resized."""
    img = image if isinstance(image, Image.Image) else load_image(image, min_size=MIN_SIDE)
    if img.mode != "RGB":
        img = img.convert("RGB")
    if min(img.size) < MIN_SIDE:
        raise ConfigError(f"image is {img.width}x{img.height}; the shorter side must be at least {MIN_SIDE} px")
    width, height = fit_size(img.width, img.height, max_side)
    if (width, height) != img.size:
        img = img.resize((width, height), Image.LANCZOS)
    return image_to_tensor(img)


BORDER_MARGIN = 16
"""Pixels of reflected image added on every side before the networks run, cropped after.

Without them the zero padding of VGG's and the decoder's convolutions paints a visible frame
along the border: the median colour step between the outer 3 px and the next 8 px, over 8
photo x painting pairs at 384 px, is 7.3 (of 255) with no margin and 2.4 with 16 px (the
photos themselves: 3.4); with 8 px most of the frame stays (for the step-8,000 model: 7.7,
6.2 with 8 px, 1.6 with 16 to 32 px). At 1024 px, 16 px add 6% more pixels (1.68 s -> 1.83 s
warm on the project's 2-core CPU, in separate runs)."""


def pad_for_network(t: torch.Tensor, margin: int = BORDER_MARGIN,
                    multiple: int = 8) -> tuple[torch.Tensor, tuple[slice, slice]]:
    """Reflect-pad (N, C, H, W) by ``margin`` on every side (less for tiny images) and then to a
    multiple of ``multiple`` (8 for VGG's three poolings up to relu4_1).

    Returns the padded tensor and the (rows, columns) slices that crop a same-size
    output back to the input's pixels."""
    h, w = t.shape[-2:]
    margin = max(0, min(margin, min(h, w) - multiple))  # reflection needs padding < size
    pad_h, pad_w = (-(h + 2 * margin)) % multiple, (-(w + 2 * margin)) % multiple
    padded = F.pad(t, (margin, margin + pad_w, margin, margin + pad_h), mode="reflect") \
        if margin or pad_h or pad_w else t
    return padded, (slice(margin, margin + h), slice(margin, margin + w))


@dataclass
class WeightedStyle:
    image: ImageLike
    weight: float = 1.0


class Stylizer:
    """Stylize images with a trained semstyle model.

    >>> s = Stylizer()                                    # shipped default model
    >>> s.stylize("photo.jpg", "starry_night.jpg", strength=0.8).save("out.png")
    >>> s.stylize("photo.jpg", [("a.jpg", 0.7), ("b.jpg", 0.3)])  # blend two styles

    ``precision``: ``auto`` (bfloat16 where the CPU or GPU runs it natively:
    about 2.5x faster on a CPU with AVX-512 BF16, pixel values within about
    1/255 of float32 on average), ``fp32`` or ``bf16``. ``border_margin``:
    reflected pixels around the image while the networks run (see
    :data:`BORDER_MARGIN`; 0 shows the frame zero padding leaves).
    """

    def __init__(self, model: str | Path | None = None, device: str = "auto",
                 encoder_weights: str | Path | None = None, precision: str = "auto",
                 border_margin: int = BORDER_MARGIN):
        self.device = pick_device(device)
        self.border_margin = border_margin
        self.dtype = resolve_precision(precision, self.device)
        self.model_path = Path(model) if model else default_model_path()
        if model is None and not any(self.model_path.glob("*.safetensors")):
            raise WeightsError("no default model is shipped in this install; train one with "
                               "'semstyle train' and pass --model RUN_DIR")
        self.generator, self.model_info = load_generator(self.model_path, self.device)
        self.config = self.generator.config
        self.encoder = VGGEncoder.pretrained(encoder_weights).to(self.device)
        # channels-last (NHWC) is the layout oneDNN's and cuDNN's fastest convolutions use
        self.encoder.to(memory_format=torch.channels_last)
        self.generator.to(memory_format=torch.channels_last)
        if self.dtype == torch.bfloat16:
            # bf16 weights run the decoder twice as fast as autocast's per-call casts
            # (measured at 1024 px); the style encoder and injection stay float32
            self.generator.decoder.to(torch.bfloat16)
        self._taps = tuple(dict.fromkeys((self.config.content_layer, *self.config.style_layers)))

    # -- style vectors ------------------------------------------------------

    def _as_tensor(self, image: ImageLike, max_side: int | None) -> torch.Tensor:
        return image_tensor(image, max_side).to(self.device)

    @torch.no_grad()
    def style_vector(self, style: ImageLike | Sequence, style_size: int = DEFAULT_STYLE_SIZE) -> torch.Tensor:
        """One style image, or a list of ``(image, weight)`` pairs blended by
        normalised weights, as a (1, style_dim) vector."""
        styles = _weighted_styles(style)
        total = sum(s.weight for s in styles)
        vector = None
        for entry in styles:
            with self._autocast():
                feats = self.encoder(self._as_tensor(entry.image, style_size), self.config.style_layers)
            part = self.generator.style_vector(feats) * (entry.weight / total)
            vector = part if vector is None else vector + part
        return vector

    # -- stylization --------------------------------------------------------

    @torch.no_grad()
    def stylize(self, content: ImageLike, style: ImageLike | Sequence | torch.Tensor, *,
                strength: float = 1.0, size: int | None = None, preserve_colors: bool = False,
                style_size: int = DEFAULT_STYLE_SIZE, mask=None, feather: float = 8.0, protect=None,
                regions=None, labels=None, palette="auto", auto_regions: int | None = None,
                refine: int = 0) -> Image.Image:
        """Stylize ``content``; returns an RGB image the size of the content
        (after ``size`` caps its longer side; default cap 1024 px).

        Semantic options (see :mod:`semstyle.semantic`):

        * ``mask``: a mask image (path, PIL image or array); the style goes only
          into its white area, with a soft edge ``feather`` px wide outside it.
        * ``protect``: a mask or a list of masks whose area stays exactly as the input.
        * ``regions``: ``[(mask, style), (mask, style, strength), ...]``, each
          area in its own style, painted in order over the base style (whose area
          is ``mask`` or, without one, the whole image; ``style=None`` for none).
        * ``labels``: ``(content_label_map, style_label_map)``, colour-coded maps
          (DPST / neural-doodle format): each content label takes the style of the
          same-colour region of the style image. ``palette``: ``"auto"`` (dominant
          colours), ``"dpst"`` or a list of RGB triples.
        * ``auto_regions``: without label maps, find this many regions (2 to 8)
          in both images by clustering deep VGG features, pair them by
          similarity and transfer label by label as with ``labels``
          (:func:`semstyle.semantic.auto_label_maps` returns the maps).
        * ``refine``: with ``labels`` or ``auto_regions``, this many L-BFGS
          steps on the result pull each region's VGG statistics onto its
          style region's (:func:`semstyle.semantic.refine_regions`; slower).

        Outside every stylized area (``feather`` px and more away) and inside
        protected areas the output is bit-identical to the (resized) input.
        """
        if any(option is not None for option in (mask, protect, regions, labels, auto_regions)) or refine:
            from .semantic import stylize_semantic

            return stylize_semantic(self, content, style, strength=strength, size=size,
                                    preserve_colors=preserve_colors, style_size=style_size, mask=mask,
                                    feather=feather, protect=protect, regions=regions, labels=labels,
                                    palette=palette, auto_regions=auto_regions, refine=refine)
        strength = check_strength(strength)
        check_size(size)
        style_vec = style if torch.is_tensor(style) else self.style_vector(style, style_size)
        content_t = self._as_tensor(content, size)
        output = self.stylize_tensor(content_t, style_vec.to(self.device), strength)
        if preserve_colors:
            output = preserve_color(output, content_t)
        return tensor_to_image(output)

    @torch.no_grad()
    def stylize_tensor(self, content: torch.Tensor, style_vec: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """(N,3,H,W) in 0..1 -> stylized (N,3,H,W) float32 in 0..1, any H and W.

        The image is reflect-padded by ``border_margin`` and to a multiple of 8
        (three VGG poolings) and cropped back (:func:`pad_for_network`), so odd
        sizes come out exactly as they went in, without a frame. Computed in the
        Stylizer's ``precision`` (bfloat16 where the hardware has it).
        """
        padded, (rows, cols) = pad_for_network(content, self.border_margin)
        padded = padded.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            # the photo's own style vector (deeper VGG layers) is only needed below full strength
            feats = self.encoder(padded, self._taps if strength < 1.0 else (self.config.content_layer,))
            vector = style_vec.expand(content.shape[0], -1)
            if strength < 1.0:
                # over the margin too: on these VGG weights some channels fire only near a border,
                # and dropping it moves the photo's own vector far from what the model was trained on
                own = self.generator.style_vector(feats)
                vector = strength * vector + (1.0 - strength) * own
            injected = self.generator.inject(feats[self.config.content_layer].float(), vector)
        output = self.generator.decoder(injected.to(self.dtype), vector.to(self.dtype))
        return output[..., rows, cols].float().clamp(0, 1)

    def _autocast(self):
        """Mixed precision when ``precision`` chose bfloat16 (a no-op for fp32)."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16)

    def provenance(self, style_names: Sequence[str]) -> Provenance:
        return Provenance(styles=list(style_names), model=str(self.model_path.name or self.model_path))

    def stylize_file(self, content: str | Path, style: ImageLike | Sequence, output: str | Path, *,
                     metadata: bool = True, **options) -> Path:
        """Stylize one file and write it atomically, with provenance metadata."""
        result = self.stylize(content, style, **options)
        names = style_names(style) + [name for entry in options.get("regions") or [] for name in style_names(entry[1])]
        return save_image(result, output, provenance=self.provenance(names) if metadata else None)


def _weighted_styles(style: ImageLike | Sequence) -> list[WeightedStyle]:
    if isinstance(style, (str, Path, Image.Image)):
        return [WeightedStyle(style, 1.0)]
    styles = [s if isinstance(s, WeightedStyle) else WeightedStyle(*s) if isinstance(s, tuple) else WeightedStyle(s)
              for s in style]
    if not styles:
        raise ConfigError("at least one style image is needed")
    if any(s.weight < 0 for s in styles) or sum(s.weight for s in styles) <= 0:
        raise ConfigError("style weights must be non-negative and not all zero")
    return styles


def style_names(style: ImageLike | Sequence | torch.Tensor | None) -> list[str]:
    """File names of a style or blend, for provenance metadata (none for a
    precomputed vector; "image" for an in-memory one)."""
    if style is None or torch.is_tensor(style):
        return []
    return [Path(str(s.image)).name if not isinstance(s.image, Image.Image) else "image"
            for s in _weighted_styles(style)]


def parse_style_arg(text: str) -> WeightedStyle:
    """``path`` or ``path:weight`` (the weight is split off only when it is a number)."""
    path, sep, weight = text.rpartition(":")
    if sep and path:
        try:
            return WeightedStyle(path, float(weight))
        except ValueError:
            pass
    return WeightedStyle(text, 1.0)
