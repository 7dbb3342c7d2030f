"""Semantic benchmark (issue 5): does each region take the style of its own label?

For the 9 content/style pairs of ``../shared/data/semantic/`` (label maps included), every
method stylizes the content, and :func:`semstyle.semantic.label_match` checks each content
label (> 0.5% of the image): are the output region's VGG statistics (mean/std at
relu1_1..relu4_1) nearest to the same-label region of the style, rather than to any other
label's? The **label-match rate** is matched labels / labels. Methods:

* ``global``: plain transfer, one style vector for the whole image (no labels): the baseline.
* ``semantic``: label-matched transfer with the given maps, feed-forward only.
* ``refined``: ``semantic`` plus ``--refine`` L-BFGS steps on the result.
* ``auto``: automatic regions (``--auto-regions K``, K = the pair's number of labels, at most
  8), no maps given; judged against the *given* maps, so it measures how well the clusters
  found agree with the human labels as well as the transfer.
* ``paint``: ``semstyle paint`` on the doodle pairs (no photo), judged the same way.

Doodle pairs have no photo; for the feed-forward methods the doodle itself is the content image
(as in the acceptance test). Images are read with their longer side at ``--size``.

    .venv/bin/python benchmarks/semantic.py                  # 256 px, refine 20, paint 100 steps
    .venv/bin/python benchmarks/semantic.py --size 128 --paint-steps 10   # quick look

Writes ``semantic.json`` and ``semantic_sheet.png`` (rows = pairs; content, labels, style,
style labels, then one column per method) to ``--out`` (default ``benchmarks/results/``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402

SEMANTIC_DIR = common.REPO.parent / "shared" / "data" / "semantic"
METHODS = ("global", "semantic", "refined", "auto", "paint")


def pair_names(folder: Path = SEMANTIC_DIR) -> list[str]:
    """Every pair of the folder: names with both a content and a style label map."""
    return sorted(p.name[: -len("_content_mask.png")] for p in folder.glob("*_content_mask.png")
                  if (folder / p.name.replace("_content_mask", "_style_mask")).exists())


class Pair:
    """One pair's images and label maps at the benchmark size."""

    def __init__(self, name: str, stylizer, size: int, folder: Path = SEMANTIC_DIR):
        from semstyle.semantic.labels import find_palette, label_indices
        from semstyle.semantic.masks import label_colours

        self.name = name
        self.content_map, self.style_map = folder / f"{name}_content_mask.png", folder / f"{name}_style_mask.png"
        self.style_path = folder / f"{name}_style.jpg"
        photo = folder / f"{name}_content.jpg"
        self.is_doodle = not photo.exists()
        self.content = common.fit_longer_side(Image.open(self.content_map if self.is_doodle else photo).convert("RGB"),
                                              size)
        self.style = common.fit_longer_side(Image.open(self.style_path).convert("RGB"), size)
        content_rgb, style_rgb = label_colours(self.content_map), label_colours(self.style_map)
        self.palette = find_palette(content_rgb, style_rgb)
        self.content_labels = label_indices(content_rgb, self.palette, self.content.size)
        self.style_labels = label_indices(style_rgb, self.palette, self.style.size)

    def label_image(self, labels) -> Image.Image:
        return Image.fromarray(self.palette[labels])


def run_method(method: str, pair: Pair, stylizer, args) -> Image.Image | None:
    labels = (pair.content_map, pair.style_map)
    size = max(pair.style.size)
    if method == "global":
        return stylizer.stylize(pair.content, pair.style, style_size=size)
    if method == "semantic":
        return stylizer.stylize(pair.content, pair.style, labels=labels, style_size=size)
    if method == "refined":
        return stylizer.stylize(pair.content, pair.style, labels=labels, style_size=size, refine=args.refine)
    if method == "auto":
        k = min(8, max(2, len(set(pair.content_labels.ravel().tolist()))))
        return stylizer.stylize(pair.content, pair.style, auto_regions=k, style_size=size)
    if method == "paint":
        if not pair.is_doodle or args.paint_steps < 1:
            return None
        from semstyle.semantic.paint import paint

        return paint(pair.content_map, pair.style, pair.style_map, size=max(pair.content.size),
                     style_size=size, steps=args.paint_steps, encoder=stylizer.engine.encoder).image
    raise ValueError(method)


def score(output: Image.Image, pair: Pair, stylizer) -> dict[str, Any]:
    from semstyle.io import image_to_tensor
    from semstyle.semantic.evaluate import label_match
    from semstyle.semantic.labels import colour_name

    matches = label_match(stylizer.engine.encoder, stylizer.config.style_layers, image_to_tensor(output),
                          pair.content_labels, image_to_tensor(pair.style), pair.style_labels, pair.palette)
    return {"matched": sum(m.matched for m in matches), "labels": len(matches),
            "wrong": [f"{colour_name(m.colour)}->{colour_name(m.nearest)}" for m in matches if not m.matched]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="semstyle model (default: the shipped one)")
    p.add_argument("--size", type=int, default=256, help="longer side of every image in px (default 256)")
    p.add_argument("--refine", type=int, default=20, help="refinement steps of the 'refined' method (default 20)")
    p.add_argument("--paint-steps", type=int, default=100,
                   help="L-BFGS steps per level of 'paint' on the doodle pairs (default 100; 0 skips it)")
    p.add_argument("--pairs", nargs="*", help="pair names (default: all in ../shared/data/semantic)")
    p.add_argument("--out", type=Path, default=common.DEFAULT_OUT, help="output folder (default benchmarks/results/)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    p.add_argument("--tile", type=int, default=160, help="tile size of the contact sheet in px (default 160)")
    args = p.parse_args(argv)
    if args.size < 32:
        p.error("--size must be at least 32")
    if args.refine < 1:
        p.error("--refine must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from semstyle.stylizer import Stylizer

    torch.set_num_threads(args.threads)
    names = args.pairs or pair_names()
    if not names:
        print(f"no semantic pairs found in {SEMANTIC_DIR}", file=sys.stderr)
        return 2
    stylizer = Stylizer(args.model, device="cpu")
    print(f"semantic benchmark: {len(names)} pairs at {args.size} px, refine {args.refine}, "
          f"paint {args.paint_steps} steps/level, {args.threads} threads", flush=True)
    records, sheet_rows = [], []
    for name in names:
        pair = Pair(name, stylizer, args.size)
        record: dict[str, Any] = {"pair": name, "size": list(pair.content.size), "results": {}}
        row = [("content" if not pair.is_doodle else "doodle", pair.content),
               ("labels", pair.label_image(pair.content_labels)), ("style", pair.style),
               ("style labels", pair.label_image(pair.style_labels))]
        for method in METHODS:
            start = time.perf_counter()
            output = run_method(method, pair, stylizer, args)
            seconds = time.perf_counter() - start
            if output is None:
                row.append((method, None))
                continue
            record["results"][method] = {**score(output, pair, stylizer), "seconds": seconds}
            row.append((method, output))
            res = record["results"][method]
            print(f"{name}: {method} {res['matched']}/{res['labels']} in {seconds:.1f} s", flush=True)
        records.append(record)
        sheet_rows.append(row)

    totals = {m: [sum(r["results"][m]["matched"] for r in records if m in r["results"]),
                  sum(r["results"][m]["labels"] for r in records if m in r["results"])] for m in METHODS}
    rows = [[r["pair"], *(f"{r['results'][m]['matched']}/{r['results'][m]['labels']}" if m in r["results"] else None
                          for m in METHODS)] for r in records]
    rows.append(["all labels", *(f"{a}/{b} ({a / b:.0%})" if b else None for a, b in totals.values())])
    rows.append(["median seconds", *(common.median([r["results"][m]["seconds"] for r in records if m in r["results"]])
                                     if totals[m][1] else None for m in METHODS)])
    common.print_table(f"Label-match rate at {args.size} px (labels whose region is nearest its own style region)",
                       ["pair", *METHODS], rows, sections=[len(records)])
    args.out.mkdir(parents=True, exist_ok=True)
    sheet_path = args.out / "semantic_sheet.png"
    common.contact_sheet(sheet_rows, args.tile).save(sheet_path)
    json_path = common.write_json({
        "benchmark": "semantic",
        "config": {"size": args.size, "refine": args.refine, "paint_steps": args.paint_steps,
                   "threads": args.threads, "model": args.model or "default"},
        "environment": common.environment(),
        "pairs": records,
        "totals": {m: {"matched": a, "labels": b} for m, (a, b) in totals.items()},
    }, args.out / "semantic.json")
    print(f"wrote {json_path} and {sheet_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
