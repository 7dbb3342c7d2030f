"""Choosing style fitting's step size and step count on training photos and paintings, never quality.py's.

``--style-fit N`` runs N Adam steps on a painting's style vector (:mod:`semstyle.pipeline.style_fit`).
This prints, for each learning rate given and each step count along one fit's trajectory, the median
style distance and HED edge F1 (quality.py's metrics) of the stylized photos, on photos of
``data/train_photos`` and ``../shared/data/content`` with four training paintings that are not among
quality.py's six, so the shipped step size is not tuned on the benchmark that then judges it.

Colour matching is off for every row (a vector carries no colours), so the numbers are comparable
between rows, not with quality.py's tables.

    python benchmarks/fit_sweep.py 0.02 0.05 0.1 --steps 5 10 20 40
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from PIL import Image

from benchmarks.common import fit_longer_side
from benchmarks.sweep_setup import add_sweep_options, sweep_tools

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ("data/train_photos/kphotoalbum__bar55.jpg", "data/train_photos/lxqt-themes__butterfly.jpg",
          "../shared/data/content/door_arch.jpg")
PAINTINGS = ("girl_with_a_pearl_earring.jpg", "contrast_of_forms.jpg", "water_lilies_1919.jpg",
             "van_gogh_self_portrait_1889.jpg")
"""Training paintings outside quality.py's STYLE_FILES, and photos outside its scikit-image set."""


def main(argv: list[str] | None = None) -> None:
    from semstyle.pipeline.style_fit import fit_style_vector

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rates", nargs="+", type=float, help="Adam learning rates, e.g. 0.02 0.05 0.1")
    p.add_argument("--steps", type=int, nargs="+", default=[5, 10, 20, 40], help="step counts to score")
    add_sweep_options(p, size=384)
    args = p.parse_args(argv)
    stylizer, scorer = sweep_tools(args)
    engine = stylizer.engine
    photos = [fit_longer_side(Image.open(ROOT / path).convert("RGB"), args.size) for path in PHOTOS]
    rows: dict[tuple[float, int], list[dict]] = {}
    seconds: dict[float, list[float]] = {rate: [] for rate in args.rates}
    for painting in PAINTINGS:
        style_path = ROOT / "../shared/data/styles" / painting
        style = fit_longer_side(Image.open(style_path).convert("RGB"), args.size)
        plain = stylizer.style_vector(style_path, style_size=args.size)
        pixels = engine.read(style_path, args.size, "style_size")
        vectors: dict[tuple[float, int], torch.Tensor] = {(0.0, 0): plain}
        for rate in args.rates:
            def keep(done: int, vector: torch.Tensor, rate: float = rate) -> None:
                if done in args.steps:
                    vectors[(rate, done)] = vector
            start = time.perf_counter()
            fit_style_vector(engine.generator, engine.encoder, pixels, plain, max(args.steps), engine.autocast,
                             learning_rate=rate, on_step=keep)
            seconds[rate].append(time.perf_counter() - start)
        for photo in photos:
            reference = scorer.reference(photo, style)
            for key, vector in vectors.items():
                out = stylizer.stylize(photo, vector, size=args.size, colour_match=0)
                rows.setdefault(key, []).append(scorer.score(out, reference))
        print(f"{Path(painting).stem}: done", flush=True)

    def median(items: list[dict], key: str) -> float:
        return statistics.median(item[key] for item in items)

    print(f"\n{'learning rate':>13} {'steps':>5} {'style dist':>10} {'edge F1':>8} {'content':>8}")
    for (rate, steps), items in sorted(rows.items()):
        print(f"{rate:>13g} {steps:>5} {median(items, 'style_distance'):>10.3f} {median(items, 'edge_f1'):>8.3f} "
              f"{median(items, 'content_distance'):>8.3f}")
    for rate, times in seconds.items():
        print(f"lr {rate:g}: {statistics.median(times):.1f} s for {max(args.steps)} steps (median per painting)")


if __name__ == "__main__":
    main()
