"""Make docs/semantic.jpg for the README: what semantic transfer does, row by row.

1. content | content labels | style | style labels | global transfer | label-matched | + refine
2. content | automatic labels (content) | style | automatic labels (style) | global | auto regions
3. doodle | style | style labels | painted (semstyle paint)

Usage: .venv/bin/python scripts/semantic_figure.py [--model PATH] [--out docs/semantic.jpg]
(about 5 minutes on 2 CPU cores, most of it the painting).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image, ImageDraw

from semstyle import Stylizer
from semstyle.io import save_image
from semstyle.semantic.paint import paint

HEIGHT = 200
CAPTION = 16
GAP = 6
SEMANTIC = Path("../shared/data/semantic")


def fit(img: Image.Image) -> Image.Image:
    img = img.convert("RGB")
    return img.resize((round(img.width * HEIGHT / img.height), HEIGHT), Image.LANCZOS)


def strip(tiles: list[tuple[str, Image.Image]]) -> Image.Image:
    tiles = [(text, fit(img)) for text, img in tiles]
    sheet = Image.new("RGB", (sum(t.width for _, t in tiles) + GAP * (len(tiles) - 1), HEIGHT + CAPTION), "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for text, tile in tiles:
        draw.text((x + 2, 2), text, fill="black")
        sheet.paste(tile, (x, CAPTION))
        x += tile.width + GAP
    return sheet


def label_row(stylizer: Stylizer, pair: str) -> Image.Image:
    content, style = SEMANTIC / f"{pair}_content.jpg", SEMANTIC / f"{pair}_style.jpg"
    labels = (SEMANTIC / f"{pair}_content_mask.png", SEMANTIC / f"{pair}_style_mask.png")
    options = dict(size=384, style_size=384)
    return strip([
        ("content", Image.open(content)), ("content labels", Image.open(labels[0])),
        ("style", Image.open(style)), ("style labels", Image.open(labels[1])),
        ("global transfer", stylizer.stylize(content, style, **options)),
        ("label-matched", stylizer.stylize(content, style, labels=labels, **options)),
        ("+ refine 30", stylizer.stylize(content, style, labels=labels, refine=30, **options)),
    ])


def auto_row(stylizer: Stylizer, pair: str, k: int) -> Image.Image:
    content, style = SEMANTIC / f"{pair}_content.jpg", SEMANTIC / f"{pair}_style.jpg"
    options = dict(size=384, style_size=384)
    found = stylizer.auto_regions(content, style, k, **options)
    return strip([
        ("content", Image.open(content)), (f"auto labels (K={k})", Image.fromarray(found.content)),
        ("style", Image.open(style)), ("auto labels", Image.fromarray(found.style)),
        ("global transfer", stylizer.stylize(content, style, **options)),
        ("auto regions", stylizer.stylize(content, style, auto_regions=k, **options)),
    ])


def doodle_row(stylizer: Stylizer, pair: str) -> Image.Image:
    doodle, style = SEMANTIC / f"{pair}_content_mask.png", SEMANTIC / f"{pair}_style.jpg"
    style_labels = SEMANTIC / f"{pair}_style_mask.png"
    result = paint(doodle, style, style_labels, size=384, encoder=stylizer.engine.encoder)
    print(f"painted {pair} in {result.seconds:.0f} s")
    return strip([("doodle", Image.open(doodle)), ("style", Image.open(style)),
                  ("style labels", Image.open(style_labels)), ("semstyle paint", result.image)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", default="docs/semantic.jpg")
    args = parser.parse_args()
    stylizer = Stylizer(args.model, device="cpu")
    rows = [label_row(stylizer, "gogh_portrait"), auto_row(stylizer, "wct2_pyramid", 4),
            doodle_row(stylizer, "monet_coastline_doodle")]
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows) + GAP * (len(rows) - 1)),
                      "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height + GAP
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    print(save_image(sheet, args.out, quality=88))


if __name__ == "__main__":
    main()
