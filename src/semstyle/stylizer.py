"""The Python API: :class:`Stylizer`, behind ``semstyle stylize`` and (later) the HTTP API.

Every call builds one :class:`~semstyle.pipeline.options.StylizeOptions`,
validates it once, reads the images, and runs the engine's one forward pass
(:mod:`semstyle.pipeline.engine`) -- globally, or region by region through
:mod:`semstyle.semantic.compose`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .errors import OptionError
from .io.provenance import Provenance
from .io.tensors import tensor_to_image
from .io.write import save_image
from .pipeline.engine import StyleEngine
from .pipeline.options import DEFAULTS, ENGINE_OPTIONS, StylizeOptions
from .pipeline.prepare import match_colours, preserve_color
from .pipeline.styles import ImageLike, StyleLike, style_names
from .pipeline.tiles import stylize_tiled, tile_side
from .semantic.auto import AutoLabels
from .semantic.compose import find_auto_labels, stylize_regions
from .video.frames import FrameStylizer, Progress, VideoResult, stylize_frames, stylize_video
from .video.options import VideoOptions
from .video.schedule import Keyframe, StyleSchedule


class Stylizer:
    """Stylize images with a trained semstyle model.

    >>> s = Stylizer()                                    # shipped default model
    >>> s.stylize("photo.jpg", "starry_night.jpg", strength=0.8).save("out.png")
    >>> s.stylize("photo.jpg", [("a.jpg", 0.7), ("b.jpg", 0.3)])  # blend two styles

    ``options`` (or keyword overrides of them) are this Stylizer's defaults
    for every call (:class:`~semstyle.pipeline.options.StylizeOptions`);
    ``device`` and ``precision`` among them are fixed here, when the model
    is loaded. ``precision``: ``auto`` (bfloat16 where the CPU or GPU runs it
    natively: about 2.5x faster on a CPU with AVX-512 BF16, pixel values within
    about 1/255 of float32 on average), ``fp32`` or ``bf16``.
    """

    def __new__(cls, model: str | Path | None = None, options: StylizeOptions | None = None, *,
                backend: str = "torch", **kwargs: Any):
        """``backend="onnx"`` gives an :class:`~semstyle.runtime.onnx.OnnxStylizer` instead: whole-image
        stylization with onnxruntime and exported graphs (``model``: a shipped model's name or a
        folder from ``semstyle export --onnx``)."""
        if backend == "onnx":
            from .runtime.onnx import OnnxStylizer

            kwargs.pop("encoder_weights", None)  # the exported graphs hold VGG's weights
            return OnnxStylizer(model, options, **kwargs)
        if backend != "torch":
            raise OptionError("backend", f"backend must be 'torch' or 'onnx', got {backend!r}")
        return super().__new__(cls)

    def __init__(self, model: str | Path | None = None, options: StylizeOptions | None = None, *,
                 backend: str = "torch", encoder_weights: str | Path | None = None, **overrides: Any):
        self.options = (options or StylizeOptions()).replace(**overrides).validate()
        self.engine = StyleEngine.load(model, self.options.device, self.options.precision, encoder_weights,
                                       compile=self.options.compile)

    @property
    def config(self):
        """The model's architecture (:class:`~semstyle.config.ModelConfig`)."""
        return self.engine.config

    @property
    def model_path(self) -> Path:
        return self.engine.model_path

    def resolve_options(self, options: StylizeOptions | None = None, **overrides: Any) -> StylizeOptions:
        """The options of one call: ``options`` (default: this Stylizer's) with
        ``overrides``, validated. Device, precision and compile are this Stylizer's: left at
        their defaults they are taken from it, set to something else they are an error."""
        chosen = (options or self.options).replace(**overrides)
        for name in ENGINE_OPTIONS:
            if getattr(chosen, name) == getattr(DEFAULTS, name) and name not in overrides:
                chosen = chosen.replace(**{name: getattr(self.options, name)})
        chosen = chosen.validate()
        for name in ENGINE_OPTIONS:
            if getattr(chosen, name) != getattr(self.options, name):
                raise OptionError(name, f"is fixed when the Stylizer is made ({getattr(self.options, name)}); "
                                        f"make a Stylizer with {name}={getattr(chosen, name)!r} instead")
        return chosen

    def style_vector(self, style: StyleLike, style_size: int | None = None,
                     style_fit: int | None = None) -> torch.Tensor:
        """One style image, or a list of ``(image, weight)`` pairs blended by
        normalised weights, as a (1, style_dim) vector, reusable as ``style``;
        ``style_size`` and ``style_fit`` default to this Stylizer's options."""
        overrides = {name: value for name, value in (("style_size", style_size), ("style_fit", style_fit))
                     if value is not None}
        options = self.resolve_options(**overrides)
        return self.engine.encode_style(style, options.style_size, options.max_pixels, options.style_fit)

    def stylize(self, content: ImageLike, style: StyleLike | None, options: StylizeOptions | None = None, *,
                on_progress: Callable[[int, int], None] | None = None, **overrides: Any) -> Image.Image:
        """Stylize ``content``; returns an RGB image the size of the content
        (after ``size`` caps its longer side; default cap 1024 px). ``style``
        is an image, a blend (a list of images or ``(image, weight)`` pairs) or
        a vector from :meth:`style_vector`; ``None`` with ``regions`` styles
        only the regions. Keyword arguments override single options
        (``strength=0.6``, ``mask="sky.png"``, ``labels=(a, b)``, ``refine=20``...).

        Outside every stylized area (``feather`` px and more away) and inside
        protected areas the output is bit-identical to the (resized) input.

        ``on_progress(step, total)`` reports the long part, ``refine``: called with
        ``(0, refine)`` as refinement starts and after each of its steps (an
        exception it raises stops the work there and propagates).
        """
        opts = self.resolve_options(options, **overrides)
        content_t = self.engine.read(content, opts.size, "size", opts.max_pixels)
        if opts.uses_regions or style is None:
            return stylize_regions(self.engine, content_t, style, opts, on_progress)
        vector = self.engine.encode_style(style, opts.style_size, opts.max_pixels, opts.style_fit)
        side = tile_side(opts.tile, *content_t.shape[-2:])
        if side:
            output = stylize_tiled(self.engine, content_t, vector, side, strength=opts.strength,
                                   border_margin=opts.border_margin)
        else:
            output = self.engine.stylize(content_t, vector, strength=opts.strength, border_margin=opts.border_margin)
        output = match_colours(output, self.engine.style_colours(style, opts.style_size, opts.max_pixels),
                               opts.painting_colours * opts.strength)
        if opts.preserve_colors:
            output = preserve_color(output, content_t)
        return tensor_to_image(output)

    def auto_regions(self, content: ImageLike, style: ImageLike, k: int, options: StylizeOptions | None = None,
                     seed: int = 0, **overrides: Any) -> AutoLabels:
        """The label maps ``auto_regions=k`` would find (to inspect, edit, or pass
        back as ``labels=(found.content, found.style)``)."""
        opts = self.resolve_options(options, **overrides)
        return find_auto_labels(self.engine, content, style, k, opts, seed)

    def provenance(self, style_names_: list[str]) -> Provenance:
        path = self.model_path
        return Provenance(styles=list(style_names_), model=str(path.name or path))

    def stylize_file(self, content: str | Path, style: StyleLike | None, output: str | Path, *,
                     metadata: bool = True, options: StylizeOptions | None = None, **overrides: Any) -> Path:
        """Stylize one file and write it atomically, with provenance metadata."""
        opts = self.resolve_options(options, **overrides)
        result = self.stylize(content, style, opts)
        names = style_names(style) + [name for entry in opts.regions for name in style_names(entry[1])]
        return save_image(result, output, provenance=self.provenance(names) if metadata else None)

    # -- video ----------------------------------------------------------------

    def style_schedule(self, style: StyleLike | Mapping[float, StyleLike] | StyleSchedule,
                       options: StylizeOptions | None = None) -> StyleSchedule:
        """One style for a whole clip, or ``{seconds: style}`` keyframes interpolated in style-vector space."""
        if isinstance(style, StyleSchedule):
            return style
        opts = self.resolve_options(options)
        def keyframe(seconds: float, one: StyleLike) -> Keyframe:
            return Keyframe(seconds, self.engine.encode_style(one, opts.style_size, opts.max_pixels, opts.style_fit),
                            self.engine.style_colours(one, opts.style_size, opts.max_pixels))

        if isinstance(style, Mapping):
            return StyleSchedule([keyframe(float(t), s) for t, s in style.items()])
        return StyleSchedule([keyframe(0.0, style)])

    def stylize_video(self, source: str | Path, output: str | Path,
                      style: StyleLike | Mapping[float, StyleLike] | StyleSchedule,
                      options: StylizeOptions | None = None, *, video: VideoOptions | None = None,
                      on_progress: Callable[[Progress], None] | None = None, **overrides: Any) -> VideoResult:
        """Stylize a video file (anything FFmpeg reads) into ``output`` (.mp4, .mov, .mkv, .webm),
        keeping size, timestamps, rotation and audio; temporally steady (``video``:
        :class:`~semstyle.video.frames.VideoOptions`). Written atomically."""
        opts = self.resolve_options(options, **overrides)
        return stylize_video(self.engine, source, output, self.style_schedule(style, opts), opts,
                             video or VideoOptions(), on_progress)

    def stylize_frames(self, frames: Iterable[np.ndarray], style: StyleLike | Mapping[float, StyleLike],
                       options: StylizeOptions | None = None, *, video: VideoOptions | None = None,
                       rate: float = 25.0, **overrides: Any) -> Iterator[np.ndarray]:
        """Your own frames (RGB uint8 arrays, in order, ``rate`` per second) -> stylized frames, one at a time."""
        opts = self.resolve_options(options, **overrides)
        return stylize_frames(self.engine, frames, self.style_schedule(style, opts), opts, video or VideoOptions(),
                              rate)

    def frame_stylizer(self, style: StyleLike | Mapping[float, StyleLike], options: StylizeOptions | None = None,
                       *, video: VideoOptions | None = None, **overrides: Any) -> FrameStylizer:
        """A callable ``(rgb_frame, seconds) -> stylized frame`` that carries the temporal state
        from frame to frame (``semstyle live`` runs one)."""
        opts = self.resolve_options(options, **overrides)
        return FrameStylizer(self.engine, self.style_schedule(style, opts), opts, video or VideoOptions())
