"""StylizeOptions: every option of a stylization, every default written once, validated once.

The command line, the Python API (and the coming HTTP API) all build a
:class:`StylizeOptions` and call :meth:`StylizeOptions.validate` before any
work; the CLI reads its defaults from this class. Errors are
:class:`~semstyle.errors.OptionError` s naming the parameter
(``strength must be between 0 and 1, got 2``), which the CLI rewrites to its
flag. What needs the images themselves (a size cap that would leave a
too-thin image, a mask file that cannot be read) is checked when they are read.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image

from ..devices import check_device_name, check_precision_name
from ..errors import OptionError
from ..geometry import MIN_SIDE
from ..io.read import DEFAULT_MAX_PIXELS
from .palette import parse_palette

MaskLike = Union[str, Path, Image.Image, np.ndarray]
"""A mask or label map: a file, a PIL image or an array (bool, 0..1 floats or 0..255)."""


DEFAULT_STYLE_SIZE = 512
"""The longer side a style image is read at."""

DEFAULT_FEATHER = 8.0
"""Width in px of the soft edge outside a mask (and outside a protected area)."""

MAX_AUTO_REGIONS = 8
"""Most clusters ``auto_regions`` makes (matching tries every pairing, K! of them)."""

BORDER_MARGIN = 16
"""Pixels of reflected image added on every side before the networks run, cropped after.

Without them the zero padding of VGG's and the decoder's convolutions paints a visible frame
along the border: the median colour step between the outer 3 px and the next 8 px, over 8
photo x painting pairs at 384 px, is 7.3 (of 255) with no margin and 2.4 with 16 px (the
photos themselves: 3.4); with 8 px most of the frame stays (for the step-8,000 model: 7.7,
6.2 with 8 px, 1.6 with 16 to 32 px). At 1024 px, 16 px add 6% more pixels (1.68 s -> 1.83 s
warm on the project's 2-core CPU, in separate runs)."""

MAX_BORDER_MARGIN = 256

LABEL_MAP_CONTRAST = 0.75
"""``region_contrast`` with label maps. On the 9 semantic pairs (256 px, no refinement, colours
matched per region) 40 of 46 labels came out nearest their own style region without contrast,
42 at 0.75, 41 at 1 and at 1.5; without colour matching 35 at 0 and 39 at 0.5 and at 1. One
label more or less is within the noise of these 9 pairs."""

MAX_REGION_CONTRAST = 2.0
"""Beyond this, label-matched regions' vectors leave the range the model was trained on."""

MAX_STYLE_FIT = 500
"""Most style-fitting steps (``style_fit``); beyond a few dozen the vector only fits the two
reference photos better."""

MIN_TILE = 128
"""Smallest tile side: below it the overlap and context are most of every tile."""


@dataclass(frozen=True)
class StylizeOptions:
    """How to stylize. Build it with keywords, check it with :meth:`validate`.

    Look: ``strength`` (0 = the photo, 1 = the full style; a mix of style
    vectors, not of pixels), ``preserve_colors`` (luminance-only transfer).
    Sizes: ``size`` caps the content's longer side (``None``: keep it, up to
    :data:`DEFAULT_MAX_SIDE`); ``style_size`` is the style image's longer side;
    ``max_pixels`` refuses larger input files (decompression bombs).
    Running: ``device`` (auto, cpu, cuda, cuda:N), ``precision`` (auto: bfloat16
    where the hardware runs it natively; fp32; bf16), ``border_margin``
    (:data:`BORDER_MARGIN`), ``tile`` (``"auto"``: images whose longer side is
    over 2048 px run in overlapping 1024 px tiles that share one set of
    statistics, in bounded memory; a number of px; ``None``: never).
    ``compile``: torch.compile the networks (faster for many images of one size, such
    as video frames; each new size compiles first, tens of seconds).
    ``device``, ``precision`` and ``compile`` are fixed when a Stylizer is made.
    Regions (see :mod:`semstyle.semantic`): ``mask`` (stylize only its white
    area, with a soft edge ``feather`` px wide outside it), ``protect`` (masks
    kept exactly as the input), ``regions`` (``[(mask, style), (mask, style,
    strength)]``, each area in its own style, painted in order), ``labels``
    (``(content_label_map, style_label_map)``: each content label takes the
    style of the same-colour style region; ``palette``: auto, dpst or colours),
    ``auto_regions`` (find that many regions, 2-8, and pair them),
    ``refine`` (L-BFGS steps on label-matched results), ``region_norm``
    (normalise each region's content by its own statistics), ``region_contrast``
    (0-2: how far label-matched regions' style vectors are pushed apart, against the
    decoder's blending of neighbours; ``None``: :data:`LABEL_MAP_CONTRAST` with label maps, 0
    with automatic regions).
    Colours: ``colour_match`` (0-1: how far the output's RGB mean and spread move to the
    painting's, :mod:`semstyle.colour`; with label maps each region's to its style region's,
    :mod:`semstyle.semantic.colours`; automatic regions match the whole image, as their
    borders follow clusters of coarse features rather than the objects' edges and a colour
    change there shows as a halo; ``colour_by_region`` True or False overrides that choice);
    ``preserve_colors`` turns it off.
    Style: ``style_fit`` (Adam steps that fit each painting's style vector to this model's decoder,
    :mod:`semstyle.pipeline.style_fit`; 0 = the style encoder's vector as it is; 20 is typical:
    closer to the painting, seconds once per painting, then cached).
    """

    strength: float = 1.0
    size: int | None = None
    style_size: int = DEFAULT_STYLE_SIZE
    preserve_colors: bool = False
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    border_margin: int = BORDER_MARGIN
    max_pixels: int = DEFAULT_MAX_PIXELS
    tile: int | str | None = "auto"
    mask: MaskLike | None = None
    feather: float = DEFAULT_FEATHER
    protect: Sequence[MaskLike] = ()
    regions: Sequence[tuple] = ()
    labels: tuple[MaskLike, MaskLike] | None = None
    palette: Any = "auto"
    auto_regions: int | None = None
    refine: int = 0
    style_fit: int = 0
    region_norm: bool = True
    colour_match: float = 1.0
    colour_by_region: bool | None = None
    region_contrast: float | None = None

    def replace(self, **changes: Any) -> StylizeOptions:
        """A copy with some options changed; unknown names are an error naming them."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise OptionError(unknown[0], f"is not a stylize option (known: {', '.join(sorted(known))})")
        return dataclasses.replace(self, **changes)

    @property
    def by_labels(self) -> bool:
        """Label-matched transfer: label maps given, or automatic regions."""
        return self.labels is not None or self.auto_regions is not None

    @property
    def label_contrast(self) -> float:
        """``region_contrast`` as label-matched transfer uses it: ``None`` means
        :data:`LABEL_MAP_CONTRAST` with label maps, 0 with automatic regions (resolved here, at
        use, not in :meth:`validate`: a Stylizer's options are validated before a call adds labels)."""
        if self.region_contrast is not None:
            return float(self.region_contrast)
        return LABEL_MAP_CONTRAST if self.labels is not None else 0.0

    @property
    def colours_per_region(self) -> bool:
        """``colour_by_region`` as used: ``None`` means per region with label maps, the whole
        image with automatic regions (whose borders are not the objects' edges)."""
        return self.labels is not None if self.colour_by_region is None else bool(self.colour_by_region)

    @property
    def painting_colours(self) -> float:
        """How far outputs move to the painting's colours: ``colour_match``, or 0 when
        ``preserve_colors`` keeps the photo's (callers scale it by the strength they use)."""
        return 0.0 if self.preserve_colors else float(self.colour_match)

    @property
    def uses_regions(self) -> bool:
        """Anything beyond one style over the whole image."""
        return bool(self.mask is not None or self.protect or self.regions or self.by_labels or self.refine)

    def validate(self) -> StylizeOptions:
        """Check every value once; returns the options in canonical form (``protect`` and
        ``regions`` as tuples, each region with its strength). Raises OptionError."""
        check_fraction("strength", self.strength)
        check_side("size", self.size, allow_none=True)
        check_side("style_size", self.style_size)
        check_flag("preserve_colors", self.preserve_colors)
        check_flag("region_norm", self.region_norm)
        if self.colour_by_region is not None:
            check_flag("colour_by_region", self.colour_by_region)
        if self.region_contrast is not None:
            check_range("region_contrast", self.region_contrast, 0.0, MAX_REGION_CONTRAST)
        check_fraction("colour_match", self.colour_match)
        check_flag("compile", self.compile)
        check_device_name(self.device)
        check_precision_name(self.precision)
        check_count("border_margin", self.border_margin, 0, MAX_BORDER_MARGIN)
        check_count("max_pixels", self.max_pixels, 1, DEFAULT_MAX_PIXELS)
        check_pixels("feather", self.feather)
        if self.tile is not None and self.tile != "auto":
            check_count("tile", self.tile, MIN_TILE, 1 << 16)
        check_count("refine", self.refine, 0, 10_000)
        check_count("style_fit", self.style_fit, 0, MAX_STYLE_FIT)
        if self.auto_regions is not None:
            check_count("auto_regions", self.auto_regions, 2, MAX_AUTO_REGIONS)
        if self.labels is not None and (not isinstance(self.labels, (tuple, list)) or len(self.labels) != 2):
            raise OptionError("labels", "must be a pair (content label map, style label map)")
        if self.labels is not None and self.auto_regions is not None:
            raise OptionError("auto_regions", "finds label maps itself; give {labels} or auto regions, not both")
        parse_palette(self.palette)
        return dataclasses.replace(self, protect=as_tuple(self.protect), regions=region_entries(self.regions),
                                   refine=int(self.refine), style_fit=int(self.style_fit),
                                   border_margin=int(self.border_margin),
                                   colour_match=float(self.colour_match))


DEFAULTS = StylizeOptions()
"""The defaults, for the command line's help and its argument parser."""

ENGINE_OPTIONS = ("device", "precision", "compile")
"""Options fixed when a model is loaded (a Stylizer is made), not per call."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_fraction(name: str, value: Any) -> float:
    """A finite number from 0 to 1 (strengths)."""
    return check_range(name, value, 0.0, 1.0)


def check_range(name: str, value: Any, low: float, high: float) -> float:
    """A finite number from ``low`` to ``high``."""
    if not _is_number(value) or not low <= float(value) <= high:
        raise OptionError(name, f"must be between {low:g} and {high:g}, got {value!r}")
    return float(value)


def check_count(name: str, value: Any, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``."""
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) != int(value) \
            or not low <= int(value) <= high:
        raise OptionError(name, f"must be a whole number from {low} to {high:,}, got {value!r}")
    return int(value)


def check_side(name: str, value: Any, allow_none: bool = False) -> int | None:
    """An image side in px, at least :data:`MIN_SIDE`."""
    if value is None and allow_none:
        return None
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) != int(value) \
            or int(value) < MIN_SIDE:
        raise OptionError(name, f"must be a whole number of pixels, at least {MIN_SIDE}, got {value!r}")
    return int(value)


def check_pixels(name: str, value: Any) -> float:
    """A finite distance in px, 0 or more."""
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) < 0:
        raise OptionError(name, f"must be a number of pixels, 0 or more, got {value!r}")
    return float(value)


def check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise OptionError(name, f"must be true or false, got {value!r}")
    return bool(value)


def as_tuple(value: Any) -> tuple:
    """One mask or several, as a tuple."""
    if value is None:
        return ()
    if isinstance(value, (str, Path, Image.Image, np.ndarray)):
        return (value,)
    return tuple(value)


def region_entries(regions: Any) -> tuple[tuple[Any, Any, float], ...]:
    """``regions`` as ``(mask, style, strength)`` triples, strengths checked."""
    entries = []
    for entry in as_tuple(regions):
        if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3):
            raise OptionError("regions", "must be a list of (mask, style) or (mask, style, strength)")
        strength = check_fraction("region strength", entry[2]) if len(entry) == 3 else 1.0
        entries.append((entry[0], entry[1], strength))
    return tuple(entries)
