"""The fast model's light encoder and decoder (``ModelConfig.content_encoder = decoder = "light"``).

The default model spends its time in two places: VGG up to relu3_1 and VGG's mirror as the
decoder, about 110 thousand multiply-adds per pixel each. The fast model replaces both with
small networks distilled from the default model (:mod:`semstyle.train.distill`): the light
encoder learns to map a photo onto VGG's relu3_1 features, the light decoder to turn the
injected features into the default model's output. The style encoder and the injection are
the teacher's own, frozen, so the two share one style-vector space: a vector, a blend or a
schedule made for one works with the other (the shipped fast model is distilled from the shipped
default model, v0.3: ``configs/fast_v2.toml``; after a default model's fine-tune moves its style
encoder, the fast model must be distilled again).

Both are plain convolutions with zero padding (the engine pads the image with a reflected
margin and crops it off, so zero borders never show) and in-place ReLUs: nothing a compiler
or onnxruntime cannot fuse.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .modulation import FeatureModulation

INPUT_MEAN, INPUT_SCALE = 0.45, 4.0
"""RGB 0..1 is centred and scaled to about -2..2 before the first convolution."""

FEATURE_SCALE = 32.0
"""About the RMS of VGG's relu3_1 on the caffe-scaled input (30 on a typical photo). The light
encoder's last layer is multiplied by it and the light decoder's first divided by it, so both
networks work at unit scale inside: at the features' own scale the first distillation run's
decoder collapsed to a flat colour within 250 steps."""


def _conv(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, gain: str = "relu") -> nn.Conv2d:
    """He-initialised (variance-preserving before a ReLU): with PyTorch's default init the signal
    fell 20-fold through the decoder's five layers and distillation learnt only the mean colour."""
    conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2)
    nn.init.kaiming_normal_(conv.weight, nonlinearity=gain)
    nn.init.zeros_(conv.bias)
    return conv


def _identity_conv(channels: int) -> nn.Conv2d:
    """A 3x3 convolution that starts as the identity (Dirac weights, zero bias). On the output of a
    ReLU, ReLU(identity(x)) is x, so a decoder with these extra layers is at first exactly the
    decoder without them: a student grown from an earlier fast model (``init_model``) starts from
    that model's pictures instead of from the noise a He-initialised layer would add."""
    conv = nn.Conv2d(channels, channels, 3, padding=1)
    nn.init.dirac_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class LightEncoder(nn.Module):
    """RGB in 0..1 -> features shaped like VGG's relu3_1 (``out_channels`` at a quarter of the
    size): two strided convolutions down, two at the quarter size, a 1x1 out. About 7 thousand
    multiply-adds per pixel at ``width`` 32, against VGG's 112 thousand."""

    def __init__(self, out_channels: int = 256, width: int = 32):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            _conv(3, w, stride=2), nn.ReLU(inplace=True),
            _conv(w, 2 * w, stride=2), nn.ReLU(inplace=True),
            _conv(2 * w, 2 * w), nn.ReLU(inplace=True),
            _conv(2 * w, 2 * w), nn.ReLU(inplace=True),
            _conv(2 * w, out_channels, kernel=1, gain="linear"),
        )

    output_gain = FEATURE_SCALE
    """The features are ``output_gain * projection(hidden)``."""

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.projection(self.hidden(rgb)) * self.output_gain

    def hidden(self, rgb: torch.Tensor) -> torch.Tensor:
        """The last hidden layer, (N, 2 * width, H/4, W/4): the features are a linear projection of
        it, so inference can fold that projection into the injection (:mod:`semstyle.nn.fold`)."""
        return self.body[:-1]((rgb - INPUT_MEAN) * INPUT_SCALE)

    @property
    def projection(self) -> nn.Conv2d:
        """The 1x1 convolution from :meth:`hidden` to the features (before ``output_gain``)."""
        return self.body[-1]


class LightDecoder(nn.Module):
    """Injected relu3_1-shaped features -> RGB: a 1x1 and a 3x3 convolution at a quarter size, one
    3x3 at half size (``half_convs`` of them), one at full size and the RGB projection; nearest
    upsampling, as in the default decoder (no checkerboards). About 13 thousand multiply-adds per
    pixel at ``width`` 32, 2.3 thousand more for each extra half-size convolution.

    The style vector reaches it as a colour shift of the output (``modulate``), after the last
    convolution. Inside the network it is a trap: with FiLM (scale and shift) or a shift alone at
    each size, distillation learnt within 250 steps to switch its own signal off (a ReLU's input
    pushed below zero) and paint a flat, style-coloured image; with nothing, the student stayed
    grey, the mean of the styles, while it learnt to read colour from the injected features."""

    def __init__(self, style_dim: int, in_channels: int = 256, width: int = 32, modulate: bool = True,
                 subpixel: bool = False, half_convs: int = 1):
        super().__init__()
        w = width
        stages = [
            nn.ModuleList([_conv(in_channels, 2 * w, kernel=1), _conv(2 * w, 2 * w)]),
            nn.ModuleList([_conv(2 * w, w)] + [_identity_conv(w) for _ in range(half_convs - 1)]),
        ]
        if subpixel:
            # the full-size stage as a sub-pixel convolution (Shi et al. 2016): 2x2 RGB pixels per
            # half-size position; the thin full-size layers took 40% of the time for 25% of the work
            self.to_rgb = _conv(w, 3 * 4, gain="linear")
            self.shuffle: nn.Module = nn.PixelShuffle(2)
        else:
            stages.append(nn.ModuleList([_conv(w, w // 2)]))
            self.to_rgb = _conv(w // 2, 3, gain="linear")
            self.shuffle = nn.Identity()
        self.stages = nn.ModuleList(stages)
        nn.init.constant_(self.to_rgb.bias, 0.5)  # start at mid-grey, the middle of 0..1
        self.colour = FeatureModulation(style_dim, 3, scale=False) if modulate else None

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the decoder's weights (bfloat16 for fast inference, else float32)."""
        return self.to_rgb.weight.dtype

    input_gain = 1.0 / FEATURE_SCALE
    """:attr:`entry` reads ``input_gain * features``."""

    @property
    def entry(self) -> nn.Conv2d:
        """The first layer, a 1x1 convolution: linear in the injected features, so inference can
        fold the injection into it (:mod:`semstyle.nn.fold`)."""
        return self.stages[0][0]

    def convolutions(self) -> list[nn.Conv2d]:
        """Every convolution in the order the signal passes them, the RGB projection last."""
        return [conv for stage in self.stages for conv in stage] + [self.to_rgb]

    @torch.no_grad()
    def widen_from(self, narrower: LightDecoder, rng: torch.Generator, spread: float = 0.1) -> None:
        """Take a narrower decoder of the same layout so that this one paints exactly its pictures
        (Net2WiderNet, Chen et al. 2016): each extra channel of a hidden layer copies a random
        existing one, and the next convolution's weights from a channel and its copies are split
        between them in random shares that sum to one. A wider student thus starts where the
        earlier fast model is instead of from noise, and the unequal shares let the copies
        diverge as it trains (equal ones would get equal gradients forever)."""
        mine, theirs = self.convolutions(), narrower.convolutions()
        if len(mine) != len(theirs) or any(a.kernel_size != b.kernel_size for a, b in zip(mine, theirs)) \
                or mine[0].in_channels != theirs[0].in_channels or mine[-1].out_channels != theirs[-1].out_channels:
            raise ValueError("widen_from needs a decoder of the same layout (stages, kernels, input and output)")
        if any(a.out_channels < b.out_channels for a, b in zip(mine, theirs)):
            raise ValueError("widen_from takes a narrower decoder, not a wider one")
        picks = shares = None  # which old channel each input channel of the current layer copies, and its share
        for index, (wide, narrow) in enumerate(zip(mine, theirs)):
            weight, bias = narrow.weight.float(), narrow.bias.float()
            if picks is not None:
                weight = weight[:, picks.to(weight.device)] * shares.to(weight.device).view(1, -1, 1, 1)
            if index < len(mine) - 1:
                extra = torch.randint(narrow.out_channels, (wide.out_channels - narrow.out_channels,), generator=rng)
                picks = torch.cat([torch.arange(narrow.out_channels), extra])
                shares = _random_shares(picks, narrow.out_channels, spread, rng)
                weight, bias = weight[picks.to(weight.device)], bias[picks.to(weight.device)]
            wide.weight.copy_(weight)
            wide.bias.copy_(bias)
        if self.colour is not None and narrower.colour is not None:
            self.colour.load_state_dict(narrower.colour.state_dict())

    def forward(self, feat: torch.Tensor, styles: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """As :meth:`semstyle.nn.generator.Decoder.forward`."""
        return self.from_entry(self.entry(feat * self.input_gain), styles, masks)

    def from_entry(self, entry: torch.Tensor, styles: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """The rest of :meth:`forward`, from :attr:`entry`'s output (before its ReLU)."""
        x = F.relu(entry, inplace=True)
        for i, convs in enumerate(self.stages):
            if i > 0:
                x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            for conv in convs[1:] if i == 0 else convs:
                x = F.relu(conv(x), inplace=True)
        rgb = self.shuffle(self.to_rgb(x))
        return rgb if self.colour is None else self.colour(rgb, styles, masks)


def _random_shares(picks: torch.Tensor, groups: int, spread: float, rng: torch.Generator) -> torch.Tensor:
    """For each entry of ``picks`` (a group index), a positive share; the shares of a group sum to one."""
    raw = (1.0 + spread * torch.randn(len(picks), generator=rng)).clamp(min=0.1)
    totals = torch.zeros(groups).index_add_(0, picks, raw)
    return raw / totals[picks]
