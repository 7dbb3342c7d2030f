#!/usr/bin/env python
"""Where a distilled fast model loses style: its light encoder or its light decoder?

The fast model (issue 13) is a light encoder that imitates VGG's relu3_1 and a light decoder
distilled from the default model's. Both share the default model's style encoder and injection,
so the parts swap: the teacher's decoder can read the student's features and the student's
decoder can read VGG's. For quality.py's pairs this prints the style distance (relative Gram
error, ``benchmarks/metrics.py``) of four pictures per pair, all made the same way (no margin,
no colour matching, float32):

* ``teacher``: VGG relu3_1 -> the default decoder (the default model itself);
* ``student``: light encoder -> light decoder (the fast model itself);
* ``teacher decoder, student encoder``: where the light encoder alone leaves the picture;
* ``student decoder, VGG encoder``: where the light decoder alone leaves it.

and the light encoder's relative error against relu3_1. The part whose swap costs the most is
the one to grow. Run from the repository root::

    .venv/bin/python benchmarks/swap_parts.py --threads 2            # shipped default and fast
    .venv/bin/python benchmarks/swap_parts.py --student models/fast_v4 --size 256 --pairs 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common

COLUMNS = ("teacher", "student", "teacher decoder, student encoder", "student decoder, VGG encoder")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="default", help="the default model: a shipped name or a path")
    parser.add_argument("--student", default="fast", help="the fast model distilled from it")
    parser.add_argument("--size", type=int, default=384, help="longer side of the photos in px (default 384)")
    parser.add_argument("--style-size", type=int, default=512, help="longer side of the paintings (default 512)")
    parser.add_argument("--pairs", type=int, default=12, help="quality.py's first N pairs (default 12)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from benchmarks import metrics
    from benchmarks.quality import pair_list
    from semstyle.io import image_to_tensor
    from semstyle.nn.generator import LIGHT_TAP
    from semstyle.pipeline.engine import StyleEngine

    if args.threads:
        torch.set_num_threads(args.threads)
    teacher = StyleEngine.load(args.teacher, device="cpu", precision="fp32")
    student = StyleEngine.load(args.student, device="cpu", precision="fp32")
    if student.generator.content_tap != LIGHT_TAP or teacher.generator.content_tap != "relu3_1":
        raise SystemExit("--student must be a fast model (light encoder) and --teacher inject at relu3_1")
    vgg = teacher.encoder
    rows, distances, feature_errors = [], {c: [] for c in COLUMNS}, []
    with torch.no_grad():
        for photo, painting in pair_list(args.pairs):
            content = image_to_tensor(common.fit_longer_side(common.content_photo(photo), args.size))
            style = image_to_tensor(common.fit_longer_side(common.style_image(painting), args.style_size))
            vector = teacher.style_vector(style)
            vgg_feats = vgg(content, ("relu3_1",))["relu3_1"]
            light_feats = student.generator.features(vgg, content, (LIGHT_TAP,))[LIGHT_TAP].float()
            pictures = {
                COLUMNS[0]: teacher.generator({"relu3_1": vgg_feats}, vector),
                COLUMNS[1]: student.generator({LIGHT_TAP: light_feats}, vector),
                COLUMNS[2]: teacher.generator({"relu3_1": light_feats}, vector),
                COLUMNS[3]: student.generator({LIGHT_TAP: vgg_feats}, vector),
            }
            style_feats = vgg(style, metrics.STYLE_LAYERS)
            for column, picture in pictures.items():
                feats = vgg(picture.float().clamp(0, 1), metrics.METRIC_TAPS)
                distances[column].append(metrics.style_distance(feats, style_feats).item())
            feature_errors.append(metrics.relative_error(light_feats, vgg_feats).item())
            rows.append([f"{photo} x {Path(painting).stem}", *(distances[c][-1] for c in COLUMNS),
                         feature_errors[-1]])
    rows.append(["median", *(common.median(distances[c]) for c in COLUMNS), common.median(feature_errors)])
    common.print_table(f"Style distance at {args.size} px (lower is better), parts swapped",
                       ["pair", *COLUMNS, "encoder rel. error"], rows, sections=[len(rows) - 1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
