"""Stylize with exported ONNX graphs (:mod:`semstyle.export.onnx`): onnxruntime, numpy and Pillow only.

The same steps as the PyTorch pipeline, in numpy at the edges: read and cap the image
(:func:`semstyle.geometry.fit_size`), pad it for the network (:func:`semstyle.geometry.network_padding`),
run ``stylize.onnx`` with the style vector (mixed with the photo's own below full strength),
crop, and preserve colours if asked (:mod:`semstyle.colour`). Nothing here imports torch.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from ..colour import ColourMoments, match_colours_array, preserve_color_array
from ..config import SHIPPED_MODELS
from ..errors import OptionError, WeightsError
from ..geometry import MIN_SIDE, fit_size, network_padding
from ..io.read import load_image
from ..pipeline.options import StylizeOptions
from ..pipeline.painting_colours import MomentCache, painting_moments
from ..pipeline.style_store import StyleStore, image_key
from ..pipeline.styles import ImageLike, StyleLike, is_collection, is_vector, weighted_styles

MANIFEST = "semstyle-onnx.json"
NUMPY_PADDING = {"reflect": "reflect", "replicate": "edge"}


def onnx_folder(model: str | Path | None) -> Path:
    """An ONNX model argument as a folder: None is the shipped default model's export, a
    shipped model's name that is not also a path here is its export, anything else a folder."""
    name = "default" if model is None else str(model)
    if name in SHIPPED_MODELS and (model is None or not Path(name).exists()):
        folder = Path(str(resources.files("semstyle") / "assets" / "onnx" / name))
        if not (folder / MANIFEST).is_file():
            raise WeightsError(f"this install has no ONNX export of the {name} model (semstyle/assets/onnx/{name}); "
                               f"build it with 'make onnx-assets' or pass a folder from 'semstyle export --onnx'")
        return folder
    return Path(model)


class OnnxStylizer:
    """``OnnxStylizer("fast").stylize("photo.jpg", "painting.jpg")`` -> PIL image.

    ``options`` (or keyword overrides of them) are the defaults of every call, as for
    :class:`~semstyle.stylizer.Stylizer`. It runs on the CPU; ``precision="int8"`` picks the
    folder's int8 stylize graph (``semstyle export --onnx --int8``; the shipped models have one:
    1.5x faster at 1024 px, 39 dB from float32), any other precision the float32 graph.

    ``folder``: a folder written by ``semstyle export --onnx``, or a shipped model's name
    (:data:`~semstyle.config.SHIPPED_MODELS`; default: ``default``). A manifest's ``style_encoder`` names the
    style-encoder graph relative to the folder: the shipped fast and default models share one,
    since the fast model is distilled with the default model's style encoder, frozen."""

    def __init__(self, folder: str | Path | None = None, options: StylizeOptions | None = None, *,
                 threads: int = 0, **overrides):
        self.options = (options or StylizeOptions()).replace(**overrides).validate()
        try:
            import onnxruntime as ort
        except ImportError:
            raise WeightsError("the ONNX backend needs onnxruntime: pip install \"semstyle[runtime]\"") from None

        self.folder = onnx_folder(folder)
        manifest = self.folder / MANIFEST
        if not manifest.is_file():
            raise WeightsError(f"{self.folder} holds no {MANIFEST}; export one with 'semstyle export --onnx'")
        try:
            self.manifest = json.loads(manifest.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise WeightsError(f"cannot read {manifest}: {str(exc).splitlines()[0]}") from None
        session = ort.SessionOptions()
        if threads:
            session.intra_op_num_threads = threads
        stylize_file = "stylize.onnx"
        if self.options.precision == "int8":
            stylize_file = self.manifest.get("int8", {}).get("stylize")
            if not stylize_file:
                raise OptionError("precision", f"int8 needs an int8 graph, and {self.folder} has none; "
                                  "export one with 'semstyle export --onnx --int8'")
        try:
            self.stylize_graph = ort.InferenceSession(str(self.folder / stylize_file), session,
                                                      providers=["CPUExecutionProvider"])
            encoder = self.folder / self.manifest.get("style_encoder", "style_encoder.onnx")
            self.store = StyleStore.for_encoder([encoder], "onnx:float32:cpu")
            self.colours = MomentCache()  # the paintings' colour moments, read once per stylizer
            self.encoder_graph = ort.InferenceSession(str(encoder), session,
                                                      providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise WeightsError(f"cannot load the ONNX graphs in {self.folder}: {str(exc).splitlines()[0]}") from None

    # -- images -------------------------------------------------------------

    @staticmethod
    def read(image: ImageLike, max_side: int | None, option: str, max_pixels: int) -> np.ndarray:
        img = image if isinstance(image, Image.Image) else load_image(image, min_size=MIN_SIDE, max_pixels=max_pixels)
        img = img.convert("RGB")
        size = fit_size(img.width, img.height, max_side, option)
        if size != img.size:
            img = img.resize(size, Image.LANCZOS)
        return (np.asarray(img, dtype=np.float32) / 255.0).transpose(2, 0, 1)[None].copy()

    @staticmethod
    def padded(array: np.ndarray, margin: int) -> tuple[np.ndarray, tuple[slice, slice]]:
        (left, right, top, bottom), crop, mode = network_padding(*array.shape[-2:], margin)
        pads = ((0, 0), (0, 0), (top, bottom), (left, right))
        return np.pad(array, pads, mode=NUMPY_PADDING[mode]) if any((left, right, top, bottom)) else array, crop

    # -- style vectors ------------------------------------------------------

    def encode(self, image: np.ndarray) -> np.ndarray:
        return self.encoder_graph.run(None, {"image": image})[0]

    def style_vector(self, style: StyleLike, options: StylizeOptions | None = None) -> np.ndarray:
        """One image or a weighted blend as a (1, D) vector."""
        opts = (options or self.options).validate()
        if opts.style_fit:
            raise OptionError("style_fit", "runs the decoder backwards, which needs the torch backend; fit a "
                                           "vector there (Stylizer.style_vector) and pass it as the style")
        if isinstance(style, np.ndarray):
            return style.astype(np.float32)
        if is_vector(style):
            return style.detach().cpu().numpy().astype(np.float32)
        styles = weighted_styles(style)
        if any(is_collection(s.image) for s in styles):
            raise OptionError("style", "a folder of paintings (a collection) needs the torch backend")
        total = sum(s.weight for s in styles)
        return sum(self._painting_vector(s.image, opts) * (s.weight / total) for s in styles).astype(np.float32)

    def _painting_vector(self, image: ImageLike, opts: StylizeOptions) -> np.ndarray:
        """One painting's vector, from the on-disk store when this encoder made it before."""
        key = image_key(image, opts.style_size)
        vector = None if key is None or self.store is None else self.store.get(key)
        if vector is None:
            vector = self.encode(self.read(image, opts.style_size, "style_size", opts.max_pixels))
            if key is not None and self.store is not None:
                self.store.put(key, vector)
        return vector

    def style_colours(self, style: StyleLike | np.ndarray, opts: StylizeOptions) -> ColourMoments | None:
        """The painting's colour moments, as :meth:`semstyle.pipeline.engine.StyleEngine.style_colours`
        (``None`` for a vector)."""
        return painting_moments(style, opts.style_size, lambda f: ColourMoments.of_pixels(
            self.read(f, opts.style_size, "style_size", opts.max_pixels)[0].reshape(3, -1)), self.colours)

    # -- stylization --------------------------------------------------------

    def stylize(self, content: ImageLike, style: StyleLike | np.ndarray, options: StylizeOptions | None = None,
                **overrides) -> Image.Image:
        """Global stylization, as :meth:`semstyle.stylizer.Stylizer.stylize` without regions or tiles."""
        opts = (options or self.options).replace(**overrides).validate()
        if opts.uses_regions:
            raise OptionError("backend", "onnx runs whole-image stylization only; use the torch backend for regions")
        vector = self.style_vector(style, opts)
        photo = self.read(content, opts.size, "size", opts.max_pixels)
        padded, (rows, cols) = self.padded(photo, opts.border_margin)
        if opts.strength < 1.0:
            vector = opts.strength * vector + (1.0 - opts.strength) * self.encode(padded)
        output = self.stylize_graph.run(None, {"image": padded, "style": vector.astype(np.float32)})[0]
        output = match_colours_array(np.clip(output[..., rows, cols], 0, 1), self.style_colours(style, opts),
                                     opts.painting_colours * opts.strength)
        if opts.preserve_colors:
            output = preserve_color_array(output, photo)
        pixels = np.clip(np.rint(output[0].transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(pixels)

