"""The generator: style encoder, style injection, decoder, and the one forward pass.

Data flow (see the README's diagram)::

    style image --VGG--> features --StyleEncoder--> style vector (ModelConfig.style_dim)
    content image --VGG--> content layer --StyleInjection(vector)--> Decoder(vector) --> image

Everything that changes the look of the image flows through the style vector,
so strength and multi-style blending are plain interpolation of vectors.
:meth:`Generator.run` is the only place this path is written: training,
global inference, regions, label-matched and automatic-region transfer (and
later tiles and video frames) all call it. It is region-aware: K style vectors
with K soft masks that sum to 1 per pixel (the global case is K = 1 and no
masks), each module resizing the masks to its own feature maps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .fold import ChannelAffine, conv_after_affine, folded_entry, projected_stats
from .light import LightDecoder, LightEncoder
from .modulation import FeatureModulation, blend_regions, per_region
from .stats import pooled_mean_std, region_mean_std, resize_masks

LIGHT_TAP = "light"
"""The feature key of the light encoder's output (the fast model's stand-in for VGG's content layer)."""

LIGHT_HIDDEN_TAP = "light_hidden"
"""The feature key of the light encoder's last hidden layer: given it instead of :data:`LIGHT_TAP`,
:meth:`Generator.run` folds the injection into the light decoder's entry (:mod:`semstyle.nn.fold`)."""

VGG_CHANNELS = {"relu1": 64, "relu2": 128, "relu3": 256, "relu4": 512, "relu5": 512}

NormStats = tuple[torch.Tensor, torch.Tensor]
"""Content normalisation statistics (mean, std), each (N, K, C) or (N, 1, C) at the content layer."""


def tap_channels(tap: str) -> int:
    """Channel count of a VGG tap such as ``relu3_1``."""
    return VGG_CHANNELS[tap.split("_")[0]]


class StyleEncoder(nn.Module):
    """VGG features of a style image -> one style vector (per region, with masks).

    Input is the per-channel mean and std at several VGG layers (log-scaled,
    since they span orders of magnitude); an MLP compresses them into a
    fixed-size vector that a user can blend, store and inject anywhere.
    """

    def __init__(self, layers: tuple[str, ...], style_dim: int):
        super().__init__()
        self.layers = layers
        in_dim = 2 * sum(tap_channels(t) for t in layers)
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, 1024), nn.LeakyReLU(0.2),
            nn.Linear(1024, style_dim),
        )

    def forward(self, feats: Mapping[str, torch.Tensor], masks: torch.Tensor | None = None) -> torch.Tensor:
        """(N, D) for the whole image; with masks (N or 1, K, H, W), (N, K, D): one vector per region."""
        vectors = self.from_stats(self.layer_stats(feats, masks))
        return vectors[:, 0] if masks is None else vectors

    def layer_stats(self, feats: Mapping[str, torch.Tensor],
                    masks: torch.Tensor | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """What the vector is computed from: per style layer, (mean, std) each (N, K, C)."""
        return [region_mean_std(feats[tap], masks) for tap in self.layers]

    def from_stats(self, stats: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Per-layer statistics (:meth:`layer_stats`, or pooled over a collection) -> (N, K, D)."""
        flat = []
        for mean, std in stats:
            flat += [torch.log1p(mean), torch.log(std)]
        return self.mlp(torch.cat(flat, dim=-1))


class StyleInjection(nn.Module):
    """AdaIN driven by the style vector.

    The content features are instance-normalised (removing the photo's own
    feature statistics) and then given the mean and std that the style vector
    predicts. Zero-initialised weights start every channel at mean 0, std 1;
    training's style-code loss (``losses.style_code_loss``) then teaches the
    vector to carry the style's own statistics, so injection behaves like
    AdaIN from early on.
    """

    def __init__(self, style_dim: int, channels: int):
        super().__init__()
        self.affine = nn.Linear(style_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def target_stats(self, styles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-channel (mean, std) each style vector asks for: (N, K, D) -> (N, K, C) each."""
        log_std, new_mean = self.affine(styles).float().chunk(2, dim=-1)
        return new_mean, log_std.clamp(-8.0, 8.0).exp()

    def forward(self, feat: torch.Tensor, styles: torch.Tensor, stats: NormStats | None = None,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        """Content features (N, C, h, w) re-styled by style vectors (N, D) or (N, K, D);
        ``stats`` default to the features' own over the whole image."""
        stats = stats if stats is not None else region_mean_std(feat, None)
        return self.apply_targets(feat, stats, self.target_stats(per_region(styles)), weights)

    @staticmethod
    def apply_targets(feat: torch.Tensor, stats: NormStats, targets: NormStats,
                      weights: torch.Tensor | None) -> torch.Tensor:
        """Each region's AdaIN result, blended by its mask: content features
        (N, C, h, w), their statistics ``stats`` and the ``targets``, (N, K, C)
        each (a K of 1 broadcasts), masks (N, K, h, w) or None."""
        scale, shift = StyleInjection.adain_affine(stats, targets)
        # (feat - mean) / std * new_std + new_mean as one multiply-add: one pass over the
        # features instead of four
        parts = [torch.addcmul(shift[:, k, :, None, None], feat, scale[:, k, :, None, None])
                 for k in range(scale.shape[1])]
        return blend_regions(parts, weights)

    @staticmethod
    def adain_affine(stats: NormStats, targets: NormStats) -> tuple[torch.Tensor, torch.Tensor]:
        """AdaIN as a per-channel ``scale * feat + shift``: (N, K, C) each, float32, from the
        content's statistics (a K of 1 serves every region) and each region's targets."""
        (mean, std), (new_mean, new_std) = stats, targets
        scale = new_std / std.float()
        return scale, new_mean - mean.float() * scale


def _conv(in_ch: int, out_ch: int) -> nn.Sequential:
    """3x3 conv with reflection padding: no zero borders for the eye to see."""
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(in_ch, out_ch, 3))


class Decoder(nn.Module):
    """Mirror of VGG up to the injection layer (relu4_1 or relu3_1): nearest
    upsampling + conv, never transposed convolutions, whose uneven overlap
    draws checkerboards. The first conv of each resolution is modulated by
    the style vector(s)."""

    def __init__(self, style_dim: int, width: int = 256, modulate: bool = True, in_channels: int = 512,
                 level: int = 4):
        super().__init__()
        w1, w2, w4 = width, width // 2, width // 4
        if level == 4:
            plan = [[(in_channels, w1)], [(w1, w1), (w1, w1), (w1, w1), (w1, w2)], [(w2, w2), (w2, w4)], [(w4, w4)]]
        elif level == 3:
            plan = [[(in_channels, w2)], [(w2, w2), (w2, w4)], [(w4, w4)]]
        else:
            raise ValueError(f"the decoder supports injection at relu3_1 or relu4_1, not level {level}")
        self.stages = nn.ModuleList([nn.ModuleList([_conv(i, o) for i, o in stage]) for stage in plan])
        self.modulations = nn.ModuleList(
            [FeatureModulation(style_dim, stage[0][1]) for stage in plan] if modulate else []
        )
        self.to_rgb = _conv(w4, 3)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the decoder's weights (bfloat16 for fast inference, else float32)."""
        return self.to_rgb[1].weight.dtype

    def forward(self, feat: torch.Tensor, styles: torch.Tensor, masks: torch.Tensor | None = None,
                entry: ChannelAffine | None = None) -> torch.Tensor:
        """Injected features and (N, D) or (N, K, D) style vectors (masks as in
        :class:`FeatureModulation`) -> RGB.

        ``entry``: the injection itself as a per-channel (scale, shift), for one image with one
        style (N = K = 1, no masks): ``feat`` is then the content before injection, and AdaIN
        and every FiLM are folded into the convolution after them (:func:`conv_after_affine`),
        the same image without four passes over the largest maps."""
        folding = entry is not None
        x, pending = feat, entry
        for i, convs in enumerate(self.stages):
            for j, conv in enumerate(convs):
                # each new resolution starts with a 2x nearest upsampling, fused with the conv's pad
                x = F.relu(conv_after_affine(conv, x, pending, upsample=i > 0 and j == 0), inplace=True)
                pending = None
                if j == 0 and self.modulations:
                    if folding:
                        pending = self.modulations[i].channel_affine(styles)
                    else:
                        x = self.modulations[i](x, styles, masks)
        return conv_after_affine(self.to_rgb, x, pending)


@dataclass
class GeneratorPass:
    """Everything one forward pass computed: the image, and what the losses need."""

    image: torch.Tensor        # (N, 3, H, W), about 0..1 (not clamped)
    injected: torch.Tensor | None  # the decoder's input: content features after AdaIN, float32 (None: folded)
    styles: torch.Tensor       # (N, K, D): the style vectors used, after strength mixing
    target_mean: torch.Tensor  # (N, K, C): what the injection asked of each region
    target_std: torch.Tensor


class Generator(nn.Module):
    """Style encoder + injection + decoder: VGG features of a photo and style
    vector(s) in, an RGB image out.

    The frozen VGG encoder is kept outside, so checkpoints hold only what
    training changes and any VGG-compatible encoder can feed it.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        channels = tap_channels(config.content_layer)
        self.style_encoder = StyleEncoder(config.style_layers, config.style_dim)
        self.injection = StyleInjection(config.style_dim, channels)
        self.content_encoder = LightEncoder(channels, config.light_width) if config.content_encoder == "light" \
            else None
        if config.decoder == "light":
            self.decoder = LightDecoder(config.style_dim, channels, config.decoder_light_width, config.modulate_decoder,
                                        config.light_subpixel, config.light_half_convs)
        else:
            self.decoder = Decoder(config.style_dim, config.decoder_width, config.modulate_decoder, channels,
                                   level=int(config.content_layer[4]))

    def widen_decoder_from(self, narrower: Generator, rng: torch.Generator) -> bool:
        """Start a light decoder wider than ``narrower``'s, of the same layout, as that decoder
        widened function-preservingly (:meth:`~semstyle.nn.light.LightDecoder.widen_from`); False,
        and nothing changed, where the two decoders are not such a pair."""
        mine, theirs = self.config, narrower.config
        light = mine.decoder == theirs.decoder == "light"
        layout = ("light_subpixel", "light_half_convs")
        same_layout = all(getattr(mine, name) == getattr(theirs, name) for name in layout)
        if not (light and same_layout) or mine.decoder_light_width <= theirs.decoder_light_width:
            return False
        self.decoder.widen_from(narrower.decoder, rng)
        return True

    def use_decoder_dtype(self, dtype: torch.dtype) -> Generator:
        """Keep the decoder's (and a light encoder's) weights in ``dtype`` (bfloat16 runs them twice
        as fast as autocast's per-call casts, measured at 1024 px); the style encoder and the
        injection stay float32. :meth:`run` feeds the decoder in its own dtype."""
        self.decoder.to(dtype)
        if self.content_encoder is not None:
            self.content_encoder.to(dtype)
        return self

    def compile_networks(self) -> None:
        """torch.compile the decoder and a light encoder in place (see
        :func:`semstyle.pipeline.engine.compile_networks`); the style encoder and the injection
        are small and stay eager."""
        self.decoder.compile(dynamic=False)
        if self.content_encoder is not None:
            self.content_encoder.compile(dynamic=False)

    @property
    def content_tap(self) -> str:
        """The feature :meth:`run` injects into: VGG's content layer, or :data:`LIGHT_TAP`."""
        return self.config.content_layer if self.content_encoder is None else LIGHT_TAP

    @property
    def inference_tap(self) -> str:
        """The content feature inference asks for: :data:`LIGHT_HIDDEN_TAP` when the light encoder
        feeds the light decoder (the folded path, same image, a fraction of the time), else
        :attr:`content_tap`. Training asks for :attr:`content_tap`: its losses read the features."""
        folds = self.content_encoder is not None and isinstance(self.decoder, LightDecoder)
        return LIGHT_HIDDEN_TAP if folds else self.content_tap

    def _folds(self, feats: Mapping[str, torch.Tensor]) -> bool:
        """Whether :meth:`run` takes the folded path: the light encoder's hidden layer is given, not its features."""
        return LIGHT_HIDDEN_TAP in feats and self.content_tap not in feats

    def features(self, vgg: nn.Module, rgb: torch.Tensor, taps: tuple[str, ...]) -> dict[str, torch.Tensor]:
        """The features ``taps`` of an image (N, 3, H, W) in 0..1: VGG's from ``vgg``, and
        :data:`LIGHT_TAP` or :data:`LIGHT_HIDDEN_TAP` from the light encoder, in its own dtype.
        VGG runs only when a VGG tap is asked for: the fast model at full strength needs none."""
        light = {LIGHT_TAP, LIGHT_HIDDEN_TAP}
        vgg_taps = tuple(t for t in taps if t not in light)
        feats = vgg(rgb, vgg_taps) if vgg_taps else {}
        if light & set(taps):
            encoder = self.content_encoder
            if encoder is None:
                raise ValueError("this model has no light encoder")
            hidden = encoder.hidden(rgb.to(next(encoder.parameters()).dtype))
            if LIGHT_HIDDEN_TAP in taps:
                feats[LIGHT_HIDDEN_TAP] = hidden
            if LIGHT_TAP in taps:
                feats[LIGHT_TAP] = encoder.projection(hidden) * encoder.output_gain
        return feats

    @property
    def taps(self) -> tuple[str, ...]:
        """The taps :meth:`run` may read: the content tap, and VGG's style layers for strength < 1."""
        return tuple(dict.fromkeys((self.content_tap, *self.config.style_layers)))

    def style_vector(self, feats: Mapping[str, torch.Tensor], masks: torch.Tensor | None = None) -> torch.Tensor:
        """Stage 0, the style image's side: its VGG features -> (N, D), or (N, K, D) per masked region."""
        return self.style_encoder(feats, masks)

    def style_vector_state(self) -> dict[str, torch.Tensor]:
        """The weights that turn VGG features into a style vector (the style encoder's): two
        models with equal ones read and write the same style vectors."""
        return self.style_encoder.state_dict()

    def style_stats(self, feats: Mapping[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A style image's VGG features -> the statistics its vector is made of (per style layer,
        (mean, std) each (1, 1, C)): small, so a collection need not hold every painting's features."""
        return self.style_encoder.layer_stats(feats)

    def collection_vector(self, per_image: list[list[tuple[torch.Tensor, torch.Tensor]]],
                          pooling: str = "mixture") -> torch.Tensor:
        """Stage 0 for a collection (one painter's works as one style): each painting's
        :meth:`style_stats` -> (1, D), each painting weighing alike. ``pooling``: ``mixture``,
        the statistics of all their features together (:func:`~semstyle.nn.stats.pooled_mean_std`:
        the spread between paintings counts as texture), or ``typical``, the mean of their
        statistics in the encoder's log space (a typical painting's: geometric means of stds)."""
        layers = range(len(per_image[0]))
        if pooling == "mixture":
            pooled = [pooled_mean_std([stats[layer] for stats in per_image]) for layer in layers]
        elif pooling == "typical":
            pooled = [(torch.stack([stats[layer][0] for stats in per_image]).log1p().mean(0).expm1(),
                       torch.stack([stats[layer][1] for stats in per_image]).log().mean(0).exp()) for layer in layers]
        else:
            raise ValueError(f"pooling must be 'mixture' or 'typical', got {pooling!r}")
        return self.style_encoder.from_stats(pooled)[:, 0]

    def content_stats(self, feats: Mapping[str, torch.Tensor], masks: torch.Tensor | None = None,
                      region_norm: bool = True) -> NormStats:
        """The content layer's normalisation statistics, (N, K, C) per region with masks
        and ``region_norm``, else (N, 1, C) over the whole image. Computed elsewhere
        (a thumbnail for tiles, smoothed over frames for video) they are ``stats=`` of :meth:`run`."""
        masks = masks if region_norm else None
        if self._folds(feats):
            return projected_stats(feats[LIGHT_HIDDEN_TAP], self.content_encoder, masks)
        return region_mean_std(feats[self.content_tap], masks)

    def forward(self, feats: Mapping[str, torch.Tensor], style: torch.Tensor, **options) -> torch.Tensor:
        """The stylized image; see :meth:`run` for the options."""
        return self.run(feats, style, **options).image

    def run(self, feats: Mapping[str, torch.Tensor], style: torch.Tensor, *, masks: torch.Tensor | None = None,
            strength: float = 1.0, stats: NormStats | None = None, region_norm: bool = True,
            fold: bool = False) -> GeneratorPass:
        """The data path: content features -> injection of the style vector(s) -> decoder -> image.

        ``feats``: features of the content (:meth:`features`: the content tap; VGG's
        style layers too when ``strength`` < 1). ``style``: (N, D), or (N, K, D) with
        ``masks`` (N or 1, K, H, W) that sum to 1 per pixel, at any resolution.
        ``strength`` mixes each vector with the content's own (of its region):
        0 gives the photo back. ``stats``: normalisation statistics of the
        content computed elsewhere (see :meth:`content_stats`); by default the
        content's own, per region when ``region_norm``. ``fold``: inference may skip
        making the injected features (:class:`Decoder`'s ``entry``; one image, one style):
        the result's ``injected`` is then None.
        """
        folded = self._folds(feats)
        content = feats[LIGHT_HIDDEN_TAP] if folded else feats[self.content_tap]
        if masks is not None:
            masks = masks.expand(content.shape[0], -1, -1, -1).float()
        # 1. one style vector per region: (N, K, D)
        styles = per_region(style).expand(content.shape[0], -1, -1)
        # 2. strength: a mix in style-vector space with the content's own vector of each region
        if strength < 1.0:
            own = per_region(self.style_vector(feats, masks))
            styles = strength * styles + (1.0 - strength) * own
        # 3. the content's normalisation statistics (given, or its own per region)
        stats = stats if stats is not None else self.content_stats(feats, masks, region_norm)
        # 4. injection: AdaIN to each region's target statistics, blended by the masks
        targets = self.injection.target_stats(styles)
        weights = None if masks is None else resize_masks(masks, content.shape[-2:])
        dtype = self.decoder.dtype
        decoder_masks = None if masks is None else masks.to(dtype)
        if folded:  # 4-5 in one: the injection folded into the light decoder's entry
            entry = folded_entry(content, self.content_encoder, self.decoder,
                                 *self.injection.adain_affine(stats, targets), weights)
            return GeneratorPass(self.decoder.from_entry(entry, styles.to(dtype), decoder_masks), None, styles,
                                 *targets)
        if fold and masks is None and content.shape[0] == 1 and isinstance(self.decoder, Decoder):
            scale, shift = self.injection.adain_affine(stats, targets)
            image = self.decoder(feats[self.content_tap].to(dtype), styles.to(dtype), entry=(scale[0, 0], shift[0, 0]))
            return GeneratorPass(image, None, styles, *targets)
        injected = self.injection.apply_targets(content.float(), stats, targets, weights)
        # 5. decoding, with FiLM per region, in the decoder's own precision
        image = self.decoder(injected.to(dtype), styles.to(dtype), decoder_masks)
        return GeneratorPass(image, injected, styles, *targets)
