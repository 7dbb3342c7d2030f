"""Configuration as dataclasses: one place that lists every knob.

Following pytorch-CycleGAN-and-pix2pix's separation of options from models,
models and training read a config object, never global state. A config can be
read from a TOML file and overridden field by field from the command line
(``--set loss.adv_weight=0.5``); it is saved next to checkpoints as JSON so a
trained model always knows how it was built.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError
from .files import atomic_write_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STYLE_DIM = 512
"""Size of the style vector every model produces (documented in the README)."""

SHIPPED_MODELS = ("default", "fast", "balanced")
"""Models shipped inside the package (``semstyle/assets/NAME``, their ONNX exports in
``semstyle/assets/onnx/NAME``), by name: ``--model fast``, ``Stylizer("balanced")``."""


@dataclass
class ModelConfig:
    """Architecture of the generator and discriminator."""

    style_dim: int = STYLE_DIM
    content_layer: str = "relu3_1"
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    decoder_width: int = 256
    modulate_decoder: bool = True
    disc_scales: int = 2
    disc_channels: int = 64
    disc_conditional: bool = True
    content_encoder: str = "vgg"  # vgg: the frozen VGG's content layer | light: a small learned one (fast model)
    decoder: str = "mirror"  # mirror: VGG's mirror | light: the fast model's small decoder
    light_width: int = 32  # base width of the light encoder and decoder
    light_subpixel: bool = False  # the light decoder's full-size stage as a sub-pixel convolution (faster)
    light_half_convs: int = 1  # 3x3 convolutions at the light decoder's half size (extra ones start as identity)
    light_decoder_width: int = 0  # base width of the light decoder alone; 0: light_width

    def __post_init__(self):
        if self.content_encoder not in CONTENT_ENCODERS:
            raise ConfigError(f"model.content_encoder must be one of {CONTENT_ENCODERS}, got {self.content_encoder!r}")
        if self.decoder not in DECODERS:
            raise ConfigError(f"model.decoder must be one of {DECODERS}, got {self.decoder!r}")
        light = self.content_encoder == "light" or self.decoder == "light"
        if light and self.content_layer != "relu3_1":
            raise ConfigError(f"the light encoder and decoder work at relu3_1, not {self.content_layer}")
        if self.light_width < 8 or self.light_width % 4:
            raise ConfigError(f"model.light_width must be a multiple of 4 and at least 8, got {self.light_width}")
        if self.light_decoder_width and (self.light_decoder_width < 8 or self.light_decoder_width % 4):
            raise ConfigError("model.light_decoder_width must be 0 (light_width) or a multiple of 4 and at least 8, "
                              f"got {self.light_decoder_width}")
        if self.light_half_convs < 1:
            raise ConfigError(f"model.light_half_convs must be at least 1, got {self.light_half_convs}")

    @property
    def decoder_light_width(self) -> int:
        """The light decoder's base width: ``light_decoder_width``, or ``light_width`` when that is 0."""
        return self.light_decoder_width or self.light_width


CONTENT_ENCODERS = ("vgg", "light")
DECODERS = ("mirror", "light")


@dataclass
class LossConfig:
    """Weights and kinds of the generator's and discriminator's loss terms."""

    content_weight: float = 1.0
    content_target: str = "injected"  # injected (AdaIN target) | photo (normalised features of the photo)
    content_layers: tuple[str, ...] = ("relu4_1",)
    style_weight: float = 10.0
    style_kind: str = "mean_std"  # mean_std | gram | both
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    adv_weight: float = 0.1
    adv_kind: str = "bce"  # bce (standard minimax) | nonsat | hinge
    r1_weight: float = 0.0
    tv_weight: float = 0.0
    identity_weight: float = 1.0
    style_code_weight: float = 1.0
    temporal_weight: float = 0.0  # G(warp(x)) = warp(G(x)) for small random warps (video stability); 0: off
    colour_weight: float = 0.0  # sliced Wasserstein distance of output's and painting's Lab colours; 0: off
    histogram_weight: float = 0.0  # 1 - Bhattacharyya coefficient of soft joint RGB histograms; 0: off
    # distillation (train.teacher set): student output vs teacher output in L1, plus these
    distill_feature_weight: float = 1.0  # light encoder vs VGG's relu3_1 (normalised, relative MSE)
    distill_edge_weight: float = 1.0  # image gradients of student vs teacher output (keeps edges sharp)
    distill_perceptual_weight: float = 0.0  # VGG relu1_1..relu3_1 of student vs teacher output (texture); 0: off
    distill_gram_weight: float = 0.0  # Gram matrices of VGG relu1_2, relu2_2, relu3_1, student vs teacher; 0: off


@dataclass
class TrainConfig:
    """Everything one training run needs; saved with its checkpoints."""

    content_dir: str = ""
    styles_dir: str = ""
    out: str = "runs/default"
    steps: int = 1000
    size: int = 256
    batch_size: int = 4
    style_augment: float = 0.0  # probability that a painting is recoloured (hue rotation / channel order); 0: off
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    warmup_steps: int = 0  # learning rates rise linearly over this many steps (fine-tunes); 0: from the start
    betas: tuple[float, float] = (0.5, 0.999)
    grad_clip: float = 10.0  # max gradient norm for G and D; 0 disables
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision where the hardware runs it natively (bf16 CPUs, CUDA); else float32
    workers: int = 0
    threads: int = 0
    log_every: int = 10
    sample_every: int = 100
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    ema_decay: float = 0.0  # exponential moving average of G's weights, e.g. 0.999; 0 keeps none
    encoder_weights: str = ""
    init_model: str = ""  # start G from this model's weights (fine-tuning); D and optimizers start fresh
    freeze: tuple[str, ...] = ()  # generator parts kept as init_model has them: style_encoder, injection
    teacher: str = ""  # distil this model into a light one (model.content_encoder/decoder = "light"); no GAN
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)


T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a (nested) config dataclass from plain data, rejecting unknown keys."""
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} option(s): {', '.join(sorted(unknown))}")
    values = {}
    for name, value in data.items():
        default = getattr(cls(), name)
        if is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"option {name} must be a section (table), got {value!r}")
            values[name] = from_dict(type(default), value)
        else:
            values[name] = _coerce(name, value, default)
    return cls(**values)


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Give a value the type of the field's default (TOML lists -> tuples)."""
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"option {name} must be a list")
        if name == "betas" and (len(value) != 2 or not all(isinstance(v, (int, float)) for v in value)):
            raise ConfigError(f"option betas must be two numbers, got {value!r}")
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"option {name} must be true or false, got {value!r}")
        return value
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"option {name} must be a string, got {value!r}")
    if isinstance(default, (int, float)) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"option {name} must be a number, got {value!r}")
    if isinstance(default, int) and isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"option {name} must be an integer, got {value!r}")
    return type(default)(value) if default is not None else value


def load_toml(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b=value`` (value parsed as TOML, else taken as a string)."""
    key, sep, raw = assignment.partition("=")
    raw = raw.strip()
    if not sep or not key.strip():
        raise ConfigError(f"override {assignment!r} must look like section.option=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    *parents, leaf = key.strip().split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {assignment!r}: {part} is not a section")
    node[leaf] = value


def save_json(config: Any, path: Path) -> Path:
    """Write a config next to the checkpoints it made, atomically."""
    return atomic_write_text(path, json.dumps(to_dict(config), indent=2) + "\n")
