"""Make docs/demo.jpg for the README: content | style | result, side by side.

Usage: .venv/bin/python scripts/demo_figure.py [--model PATH] [--out docs/demo.jpg]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

from semstyle import Stylizer
from semstyle.io import load_image, save_image

HEIGHT = 256
SHARED = "../shared/data"
PAIRS = [
    ("examples/chicago.jpg", "examples/starry_night.jpg"),
    (f"{SHARED}/content/tubingen.jpg", f"{SHARED}/styles/the_scream.jpg"),
    (f"{SHARED}/content/golden_gate.jpg", f"{SHARED}/styles/great_wave_off_kanagawa.jpg"),
]


def row(stylizer: Stylizer, content: str, style: str) -> Image.Image:
    result = stylizer.stylize(content, style, size=512)
    tiles = [load_image(content), load_image(style), result]
    tiles = [t.resize((round(t.width * HEIGHT / t.height), HEIGHT), Image.LANCZOS) for t in tiles]
    sheet = Image.new("RGB", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), HEIGHT), "white")
    x = 0
    for tile in tiles:
        sheet.paste(tile, (x, 0))
        x += tile.width + 8
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", default="docs/demo.jpg")
    args = parser.parse_args()
    stylizer = Stylizer(args.model, device="cpu")
    rows = [row(stylizer, c, s) for c, s in PAIRS]
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows) + 8 * (len(rows) - 1)),
                      "white")
    y = 0
    for r in rows:
        sheet.paste(r, (0, y))
        y += r.height + 8
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    print(save_image(sheet, args.out))


if __name__ == "__main__":
    main()
