#!/usr/bin/env python
"""Artist collections (issue 12): which aggregate of a painter's works stands for the painter.

``--style DIR`` turns a folder of one painter's paintings into one style vector. Judged here
against a painting held back from the folder (leave one out: every painting of the painter is
held back once): the photos are stylized with the vector of the *other* paintings, and the result
is compared with the held-back one, quality.py's style distance (relative Gram error, VGG16) and
colour distance. Aggregates:

* ``mixture``: the vector of the statistics of all the paintings' VGG features together;
* ``typical``: the vector of the mean of their statistics in the style encoder's log space;
* ``mean``: the plain mean of the paintings' vectors (a blend of equal weights);
* ``nearest``: the one painting whose vector is nearest that mean (a stand-in for "pick one").

Painters with at least ``--min-works`` paintings among ../shared/data/styles/ (with 2, holding one
back leaves one: every aggregate is then that painting, shown for the record).

A model fine-tuned on a collection (``configs/collection_finetune.toml``) is judged on the one
painting it never saw: ``--held-back starry_night_over_the_rhone.jpg --model default --model
models/van_gogh`` (its export) gives a row per model and aggregate for that painting alone.

Run: ``.venv/bin/python benchmarks/artists.py --threads 2`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import common, metrics  # noqa: E402

PAINTERS = {
    "van Gogh": ["starry_night.jpg", "starry_night_over_the_rhone.jpg", "bedroom_in_arles.jpg",
                 "van_gogh_self_portrait_1889.jpg", "girl_against_wheat_background.jpg"],
    "Monet": ["haystacks_monet.jpg", "water_lilies_1919.jpg"],
    "Cezanne": ["basket_of_apples.jpg", "card_players.jpg"],
}
"""The painters with several works among the shared paintings (see ../shared/data/SOURCES.md)."""
AGGREGATES = ("mixture", "typical", "mean", "nearest")


def aggregate_vectors(engine: Any, folder: Path, names: list[str], style_size: int) -> dict[str, Any]:
    import torch

    vectors = torch.cat([engine.encode_style(str(folder / n), style_size) for n in names])
    mean = vectors.mean(0, keepdim=True)
    nearest = vectors[int((vectors - mean).norm(dim=1).argmin())][None]
    return {"mixture": engine.collection_vector(folder, style_size, pooling="mixture"),
            "typical": engine.collection_vector(folder, style_size, pooling="typical"), "mean": mean,
            "nearest": nearest}


def leave_one_out(stylizer: Any, scorer: Any, painter: str, works: list[str], photos: list[Any],
                  args: argparse.Namespace, work: Path, model: str) -> list[dict[str, Any]]:
    rows = []
    for held in [args.held_back] if args.held_back else works:
        folder = work / f"{painter}_without_{Path(held).stem}"
        folder.mkdir(exist_ok=True)
        rest = [w for w in works if w != held]
        for name in rest:
            shutil.copy(common.STYLES_DIR / name, folder / name)
        vectors = aggregate_vectors(stylizer.engine, folder, rest, args.size)
        target = common.fit_longer_side(common.style_image(held), args.size)
        for photo_name, photo in photos:
            for how, vector in vectors.items():
                output = stylizer.stylize(photo, vector, size=args.size)
                rows.append({"model": model, "painter": painter, "held_back": held, "photo": photo_name,
                             "aggregate": how, **scorer(output, target)})
        print(f"  {model}, {painter}: held back {held}", flush=True)
    return rows


def make_scorer(device: Any):
    import torch

    from semstyle.io import image_to_tensor
    from semstyle.weights import load_encoder

    encoder = load_encoder().to(device)

    @torch.no_grad()
    def score(output, style) -> dict[str, float]:
        out_t, style_t = image_to_tensor(output).to(device), image_to_tensor(style).to(device)
        feats = encoder(out_t, metrics.STYLE_LAYERS)
        style_feats = encoder(style_t, metrics.STYLE_LAYERS)
        return {"style_distance": metrics.style_distance(feats, style_feats).item(),
                "color_distance": metrics.color_distance(out_t, style_t).item()}

    return score


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", default=[],
                   help="semstyle model; repeatable, a row each (default: the shipped default)")
    p.add_argument("--held-back", help="judge on this painting alone (its painter's other works are the collection)")
    p.add_argument("--size", type=int, default=384, help="longer side of photos, paintings and outputs (default 384)")
    p.add_argument("--photos", type=int, default=len(common.CONTENT_PHOTOS), help="evaluation photos to use")
    p.add_argument("--min-works", type=int, default=2, help="painters with at least this many works (default 2)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads (default: all cores)")
    p.add_argument("--out", type=Path, default=common.DEFAULT_OUT, help="output folder (default benchmarks/results/)")
    args = p.parse_args(argv)
    if args.size < 32 or not 1 <= args.photos <= len(common.CONTENT_PHOTOS) or args.min_works < 2:
        p.error("--size at least 32, --photos 1..%d, --min-works at least 2" % len(common.CONTENT_PHOTOS))
    if args.held_back and not any(args.held_back in works for works in PAINTERS.values()):
        p.error(f"--held-back must be one of the painters' works, got {args.held_back!r}")
    args.model = args.model or ["default"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from semstyle import Stylizer

    torch.set_num_threads(args.threads)
    photos = [(name, common.fit_longer_side(common.content_photo(name), args.size))
              for name in common.CONTENT_PHOTOS[:args.photos]]
    rows: list[dict[str, Any]] = []
    painters = {p: w for p, w in PAINTERS.items()
                if len(w) >= args.min_works and (not args.held_back or args.held_back in w)}
    scorer = None
    with tempfile.TemporaryDirectory(prefix="semstyle-collections-") as tmp:
        for model in args.model:
            stylizer = Stylizer(model)
            scorer = scorer or make_scorer(stylizer.engine.device)
            for painter, works in painters.items():
                rows += leave_one_out(stylizer, scorer, painter, works, photos, args, Path(tmp), model)
    table = []
    for painter in dict.fromkeys(r["painter"] for r in rows):
        for model in args.model:
            for how in AGGREGATES:
                mine = [r for r in rows if r["painter"] == painter and r["aggregate"] == how and r["model"] == model]
                table.append([painter, model, how, len(mine), common.median([r["style_distance"] for r in mine]),
                              common.median([r["color_distance"] for r in mine])])
    common.print_table(f"Collections: leave one painting out, distance of the results to it ({args.size} px, "
                       f"medians over held-back paintings x photos)",
                       ["painter", "model", "aggregate", "n", "style dist ↓", "colour dist ↓"], table,
                       sections=list(range(len(AGGREGATES), len(table), len(AGGREGATES))), text_columns=3)
    path = common.write_json({"benchmark": "artists", "config": {**vars(args), "out": str(args.out)},
                              "environment": common.environment(), "rows": rows}, args.out / "artists.json")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
