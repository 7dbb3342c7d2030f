"""Choosing refinement's loss weights on training photos and paintings, never quality.py's pairs.

``--refine N``'s loss is the painting's VGG statistics, plus an anchor to the feed-forward draft's
relu3_1 features (``REFINE_ANCHOR_WEIGHT``), plus a content term to the photo's features
(``REFINE_CONTENT_WEIGHT`` at ``REFINE_CONTENT_LAYER``). This prints, for each weighting given,
the median style distance and HED edge F1 after N steps (the metrics of quality.py) on photos from
``data/train_photos`` and ``../shared/data/content`` with paintings of ``../shared/data/styles``, so
the defaults are not tuned on the benchmark that then judges them.

    python benchmarks/refine_sweep.py 1,0 0.5,1 1,2 --steps 20      # anchor,content[,layer]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import fit_longer_side
from benchmarks.sweep_setup import add_sweep_options, sweep_tools

ROOT = Path(__file__).resolve().parent.parent
PAIRS = (("data/train_photos/kphotoalbum__bar55.jpg", "contrast_of_forms.jpg"),
         ("../shared/data/content/door_arch.jpg", "girl_against_wheat_background.jpg"),
         ("data/train_photos/lxqt-themes__butterfly.jpg", "girl_with_a_pearl_earring.jpg"))
"""Training photos and paintings (the paintings are in the training set too, as quality.py's seen ones)."""


def weighting(text: str) -> tuple[float, float, str]:
    """``anchor,content[,layer]`` -> (anchor weight, content weight, layer)."""
    parts = text.split(",")
    if len(parts) not in (2, 3):
        raise argparse.ArgumentTypeError(f"expected anchor,content[,layer], got {text!r}")
    return float(parts[0]), float(parts[1]), parts[2] if len(parts) == 3 else "relu3_1"


def main(argv: list[str] | None = None) -> None:
    from semstyle.io import image_to_tensor, tensor_to_image
    from semstyle.semantic.refine import refine_regions

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("weightings", nargs="+", type=weighting, help="anchor,content[,layer], e.g. 0.5,1")
    p.add_argument("--steps", type=int, default=20, help="L-BFGS steps (default 20)")
    add_sweep_options(p, size=512)
    args = p.parse_args(argv)
    stylizer, scorer = sweep_tools(args)
    engine = stylizer.engine
    drafts, rows = [], {w: [] for w in args.weightings}
    for photo_path, painting in PAIRS:
        style_path = ROOT / "../shared/data/styles" / painting
        photo = fit_longer_side(Image.open(ROOT / photo_path).convert("RGB"), args.size)
        style = fit_longer_side(Image.open(style_path).convert("RGB"), args.size)
        draft = stylizer.stylize(photo, style_path, size=args.size, style_size=args.size)
        reference = scorer.reference(photo, style)
        drafts.append(scorer.score(draft, reference))
        draft_t, content_t, style_t = image_to_tensor(draft), image_to_tensor(photo), image_to_tensor(style)
        for anchor, content, layer in args.weightings:
            start = time.perf_counter()
            with engine.autocast():
                out = refine_regions(engine.encoder, engine.config.style_layers, draft_t,
                                     np.zeros(draft_t.shape[-2:], np.int64), style_t,
                                     np.zeros(style_t.shape[-2:], np.int64), np.array([True]), args.steps,
                                     content=content_t, anchor_weight=anchor, content_weight=content,
                                     content_layer=layer)
            scores = scorer.score(tensor_to_image(out), reference)
            scores["seconds"] = time.perf_counter() - start
            rows[(anchor, content, layer)].append(scores)
            print(f"{Path(photo_path).stem} x {Path(painting).stem}: anchor {anchor} content {content} {layer}: "
                  f"style {scores['style_distance']:.3f} edge F1 {scores['edge_f1']:.3f}", flush=True)

    def median(items: list[dict], key: str) -> float:
        return statistics.median(item[key] for item in items)

    print(f"\n{'weighting':<28} {'style dist':>10} {'edge F1':>8} {'seconds':>8}")
    print(f"{'draft (no refinement)':<28} {median(drafts, 'style_distance'):>10.3f} {median(drafts, 'edge_f1'):>8.3f}")
    for (anchor, content, layer), items in rows.items():
        print(f"{f'anchor {anchor}, content {content} {layer}':<28} {median(items, 'style_distance'):>10.3f} "
              f"{median(items, 'edge_f1'):>8.3f} {median(items, 'seconds'):>8.1f}")


if __name__ == "__main__":
    main()
