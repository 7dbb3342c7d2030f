"""The engine: the loaded networks on one device, and the one tensor-level stylization.

:meth:`StyleEngine.stylize` is what every caller runs -- the Python API's
global transfer, regions, label-matched and automatic-region transfer, and
later tiles and video frames:

1. pad the content (and its region masks) by a reflected margin to a multiple of 8;
2. VGG features of the padded content, in the engine's precision;
3. :meth:`semstyle.nn.generator.Generator.run`: style vectors, strength,
   normalisation statistics, injection, decoding;
4. crop the margin, clamp to 0..1, float32.

Style images become vectors with :meth:`StyleEngine.style_vector` (a tensor)
or :meth:`StyleEngine.encode_style` (files, PIL images and blends).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import torch

from ..checkpoints import MODEL_FILE, load_generator
from ..colour import ColourMoments
from ..config import SHIPPED_MODELS
from ..devices import autocast, pick_device, resolve_precision
from ..errors import OptionError, WeightsError
from ..io.read import DEFAULT_MAX_PIXELS, list_images
from ..nn.generator import Generator, NormStats
from ..nn.vgg import VGGEncoder
from ..weights import default_weights_path, load_encoder, semstyle_home
from .lru import LruMemo
from .options import BORDER_MARGIN, DEFAULT_STYLE_SIZE
from .painting_colours import MomentCache, painting_moments
from .prepare import image_tensor, pad_for_network
from .style_fit import FIT_RECIPE, fit_style_vector
from .style_store import StyleStore, image_key
from .styles import StyleLike, is_collection, weighted_styles


class StyleCache:
    """Style vectors by the SHA-256 of the style image's bytes (a file's, or a PIL image's
    pixels) and the size it is read at (:func:`~semstyle.pipeline.style_store.image_key`),
    newest :data:`SIZE` kept in memory and, with a ``store``, every one on disk for the next
    process too. Encoding a 512 px style image costs more than stylizing a 384 px photo, and
    users reuse the same paintings."""

    SIZE = 64

    def __init__(self, store: StyleStore | None = None):
        self.vectors: LruMemo[torch.Tensor] = LruMemo(self.SIZE)
        self.colours = MomentCache(self.SIZE)  # colour matching's, same keys
        self.store = store
        self.hits = self.misses = 0
        self.lock = threading.Lock()  # guards the counts; the memos lock themselves

    key = staticmethod(image_key)

    def get(self, key: str | None, device: torch.device | None = None) -> torch.Tensor | None:
        vector = self.vectors.lookup(key)
        if vector is None and key is not None and self.store is not None:
            stored = self.store.get(key)
            if stored is not None:
                vector = torch.from_numpy(stored).to(device or "cpu")
                self.vectors.remember(key, vector)
        with self.lock:
            if vector is None:
                self.misses += 1
            else:
                self.hits += 1
        return vector

    def put(self, key: str | None, vector: torch.Tensor) -> None:
        if key is None:
            return
        self.vectors.remember(key, vector)
        if self.store is not None:
            self.store.put(key, vector.detach().float().cpu().numpy())


def default_model_path(name: str = "default") -> Path:
    """A model shipped inside the package (``semstyle/assets/NAME``)."""
    return Path(str(resources.files("semstyle") / "assets" / name))


def resolve_model_path(model: str | Path | None) -> Path:
    """A model argument as a path: None is the shipped default model, a shipped model's name
    (:data:`SHIPPED_MODELS`) that is not also a path here is that model, anything else a path."""
    if model is None:
        return default_model_path()
    if str(model) in SHIPPED_MODELS and not Path(model).exists():
        return default_model_path(str(model))
    return Path(model)


def style_store_for(model: Path, encoder_weights: str | Path | None, precision: str) -> StyleStore | None:
    """The on-disk style vectors of a model folder or file with these VGG weights; none for a
    run directory, whose newest checkpoint changes while it trains."""
    model_file = model / MODEL_FILE if model.is_dir() else model
    if not model_file.is_file():
        return None
    return StyleStore.for_encoder([model_file, encoder_weights or default_weights_path()], precision)


def compile_networks(encoder: VGGEncoder, generator: Generator) -> None:
    """torch.compile (inductor) of the heavy parts, in place: VGG and the generator's convolutional
    networks. One graph per image size (``dynamic=False``: fixed shapes let inductor pick the best
    convolution kernels); the compiled code is cached on disk in the semstyle cache
    (``inductor/``), so a later process compiles the same size in seconds rather than tens."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(semstyle_home() / "inductor"))
    encoder.compile(dynamic=False)
    generator.compile_networks()


class StyleEngine:
    """A generator and the frozen VGG encoder on one device, in one precision.

    ``precision`` bfloat16 keeps the decoder's weights in bfloat16
    (:meth:`~semstyle.nn.generator.Generator.use_decoder_dtype`) and runs VGG
    and the injection under autocast; float32 is exact.
    """

    def __init__(self, generator: Generator, encoder: VGGEncoder, device: torch.device, dtype: torch.dtype,
                 model_path: Path | None = None, model_info: dict[str, str] | None = None, compile: bool = False,
                 style_store: StyleStore | None = None):
        self.device, self.dtype = device, dtype
        self.model_path, self.model_info = model_path, model_info or {}
        self.style_cache = StyleCache(style_store)
        # channels-last (NHWC) is the layout oneDNN's and cuDNN's fastest convolutions use
        self.encoder = encoder.to(device).to(memory_format=torch.channels_last)
        self.generator = generator.to(device).eval().to(memory_format=torch.channels_last)
        if dtype == torch.bfloat16:
            self.generator.use_decoder_dtype(torch.bfloat16)
        if compile:
            compile_networks(self.encoder, self.generator)

    @classmethod
    def load(cls, model: str | Path | None = None, device: str = "auto", precision: str = "auto",
             encoder_weights: str | Path | None = None, compile: bool = False) -> StyleEngine:
        """A trained model: a shipped one's name (:data:`SHIPPED_MODELS`; default: ``default``),
        a run directory, a checkpoint or a model folder."""
        torch_device = pick_device(device)
        dtype = resolve_precision(precision, torch_device)
        path = resolve_model_path(model)
        if path.parent == default_model_path().parent and not any(path.glob("*.safetensors")):
            raise WeightsError(f"no {path.name} model is shipped in this install; train one with "
                               "'semstyle train' and pass it as the model")
        generator, info = load_generator(path, torch_device)
        store = style_store_for(path, encoder_weights, f"{dtype}:{torch_device.type}")
        return cls(generator, load_encoder(encoder_weights), torch_device, dtype, path, info, compile, store)

    @property
    def config(self):
        return self.generator.config

    def autocast(self):
        """Mixed precision when the engine runs in bfloat16 (a no-op for float32)."""
        return autocast(self.device, self.dtype)

    # -- style vectors ------------------------------------------------------

    @torch.no_grad()
    def style_vector(self, style: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        """A style image (1, 3, H, W) in 0..1 -> its vector (1, D); with masks (1, K, H, W)
        at the image's size, one vector per region (1, K, D)."""
        with self.autocast():
            feats = self.encoder(style.to(self.device), self.config.style_layers)
        return self.generator.style_vector(feats, None if masks is None else masks.to(self.device))

    def encode_style(self, style: StyleLike, style_size: int = DEFAULT_STYLE_SIZE,
                     max_pixels: int = DEFAULT_MAX_PIXELS, fit_steps: int = 0) -> torch.Tensor:
        """One style image, or a list of images / ``(image, weight)`` pairs blended by
        normalised weights, as a (1, D) vector; a tensor is taken as a vector already.
        Vectors are cached by the image's content (:class:`StyleCache`): the same painting
        is encoded once per process however it is passed. ``fit_steps``: each painting's
        vector fitted to this model's decoder (:mod:`semstyle.pipeline.style_fit`), cached under
        its own key; a collection's vector is used as it is."""
        if fit_steps and self.config.decoder == "light":
            raise OptionError("style_fit", "is for models with the default decoder: with the fast model's light "
                                           "decoder it moved unseen paintings further away (MODEL_CARD.md)")
        if torch.is_tensor(style):
            return style.to(self.device)
        styles = weighted_styles(style)
        total = sum(s.weight for s in styles)
        vector = None
        for entry in styles:
            part = self._painting_vector(entry.image, style_size, max_pixels)
            if fit_steps and not is_collection(entry.image):
                part = self._fitted_vector(entry.image, part, style_size, max_pixels, fit_steps)
            part = part * (entry.weight / total)
            vector = part if vector is None else vector + part
        return vector

    def _painting_vector(self, image, style_size: int, max_pixels: int) -> torch.Tensor:
        """One painting's (or collection's) vector, from the cache when it was made before."""
        key = self.style_cache.key(image, style_size)
        vector = self.style_cache.get(key, self.device)
        if vector is None:
            vector = self.collection_vector(image, style_size, max_pixels) if is_collection(image) \
                else self.style_vector(self.read(image, style_size, "style_size", max_pixels))
            self.style_cache.put(key, vector)
        return vector

    def _fitted_vector(self, image, vector: torch.Tensor, style_size: int, max_pixels: int,
                       steps: int) -> torch.Tensor:
        """The painting's vector after ``steps`` of style fitting, from the cache when fitted before."""
        key = self.style_cache.key(image, style_size)
        key = None if key is None else f"{key}:{FIT_RECIPE}:{steps}"
        fitted = self.style_cache.get(key, self.device)
        if fitted is None:
            painting = self.read(image, style_size, "style_size", max_pixels)
            fitted = fit_style_vector(self.generator, self.encoder, painting, vector, steps, self.autocast)
            self.style_cache.put(key, fitted)
        return fitted

    @torch.no_grad()
    def collection_vector(self, folder: str | Path, style_size: int = DEFAULT_STYLE_SIZE,
                          max_pixels: int = DEFAULT_MAX_PIXELS, pooling: str = "mixture") -> torch.Tensor:
        """A folder of one painter's works as one style (1, D): the vector of the paintings'
        pooled VGG statistics (:meth:`~semstyle.nn.generator.Generator.collection_vector`).
        Judged against a painting held back from the folder (benchmarks/artists.py, van Gogh's
        five works, 384 px), ``mixture`` pooling is closer than the mean of the paintings'
        vectors in colour (0.615 vs 0.655) and level in style (0.641 vs 0.644)."""
        per_image = []
        for file in list_images(folder):  # none is an ImageError saying so
            with self.autocast():
                feats = self.encoder(self.read(file, style_size, "style_size", max_pixels), self.config.style_layers)
            per_image.append(self.generator.style_stats(feats))
        return self.generator.collection_vector(per_image, pooling)

    def style_colours(self, style: StyleLike, style_size: int = DEFAULT_STYLE_SIZE,
                      max_pixels: int = DEFAULT_MAX_PIXELS) -> ColourMoments | None:
        """The RGB moments colour matching moves an output to: the painting's as read for its
        vector (at ``style_size``), a blend's mixture by its weights, a collection's by equal
        weights; ``None`` for a style vector, which carries no colours."""
        return painting_moments(style, style_size,
                                lambda f: self.colour_moments(self.read(f, style_size, "style_size", max_pixels)),
                                self.style_cache.colours)

    @staticmethod
    def colour_moments(image: torch.Tensor) -> ColourMoments:
        """The RGB moments of a (1, 3, H, W) image tensor."""
        return ColourMoments.of_pixels(image[0].flatten(1).double().cpu().numpy())

    def read(self, image, max_side: int | None, option: str = "size",
             max_pixels: int = DEFAULT_MAX_PIXELS) -> torch.Tensor:
        """An image file or PIL image as a (1, 3, H, W) tensor on the engine's device."""
        return image_tensor(image, max_side, option, max_pixels).to(self.device)

    # -- stylization --------------------------------------------------------

    @torch.no_grad()
    def stylize(self, content: torch.Tensor, style: torch.Tensor, *, strength: float = 1.0,
                masks: torch.Tensor | None = None, stats: NormStats | Callable[[NormStats], NormStats] | None = None,
                region_norm: bool = True, border_margin: int = BORDER_MARGIN) -> torch.Tensor:
        """(N, 3, H, W) in 0..1 -> stylized (N, 3, H, W) float32 in 0..1, any H and W.

        ``style`` is (1 or N, D), or (1 or N, K, D) with ``masks`` (1 or N, K, H, W) at
        the content's size, summing to 1 per pixel. ``stats``: the normalisation statistics
        to use (see :meth:`~semstyle.nn.generator.Generator.content_stats`; a thumbnail's for
        tiles), or a function from this image's own to the ones to use (a moving average over
        video frames), computed in the same pass.
        """
        # the photo's own style vector (deeper VGG layers) is only needed below full strength
        tap = self.generator.inference_tap
        taps = (tap, *self.config.style_layers) if strength < 1.0 else (tap,)
        feats, masks, (rows, cols) = self._features(content, masks, taps, border_margin)
        if callable(stats):
            stats = stats(self.generator.content_stats(feats, masks, region_norm))
        output = self.generator(feats, style.to(self.device), masks=masks, strength=strength, stats=stats,
                                region_norm=region_norm, fold=True)
        return output[..., rows, cols].float().clamp(0, 1)

    @torch.no_grad()
    def own_vector(self, content: torch.Tensor, border_margin: int = BORDER_MARGIN) -> torch.Tensor:
        """The photo's own style vector (1, D), as :meth:`stylize` computes it below full strength
        (over the padded image), to share it across tiles."""
        feats, _, _ = self._features(content, None, self.config.style_layers, border_margin)
        return self.generator.style_vector(feats)

    @torch.no_grad()
    def content_stats(self, content: torch.Tensor, masks: torch.Tensor | None = None, region_norm: bool = True,
                      border_margin: int = BORDER_MARGIN) -> NormStats:
        """The normalisation statistics :meth:`stylize` would compute for ``content``, to
        share them (``stats=``) across tiles of one image or frames of one video."""
        feats, masks, _ = self._features(content, masks, (self.generator.inference_tap,), border_margin)
        return self.generator.content_stats(feats, masks, region_norm)

    def _features(self, content: torch.Tensor, masks: torch.Tensor | None, taps: tuple[str, ...],
                  border_margin: int) -> tuple[dict[str, torch.Tensor], torch.Tensor | None, tuple[slice, slice]]:
        """Features of the padded content (VGG's, or the light encoder's), its masks padded alike, and the crop back.
        Statistics are taken over the margin too: on these VGG weights some channels fire only
        near a border, and dropping it moves the photo's own vector far from what the model was
        trained on."""
        padded, crop = pad_for_network(content.to(self.device), border_margin)
        padded = padded.contiguous(memory_format=torch.channels_last)
        if masks is not None:
            masks = pad_for_network(masks.to(self.device), border_margin)[0]
        with self.autocast():
            feats = self.generator.features(self.encoder, padded, taps)
        return feats, masks, crop
