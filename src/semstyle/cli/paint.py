"""``semstyle paint``: a label doodle painted in a painting's style, by optimisation."""

from __future__ import annotations

import sys
from pathlib import Path

from ..pipeline.options import DEFAULTS
from .common import add_runtime_flags, ensure_weights, progress, say, warnings_as_lines


def add_parser(commands) -> None:
    from ..semantic.paint_defaults import DEFAULT_LEVELS, DEFAULT_SIZE, DEFAULT_STEPS

    p = commands.add_parser("paint", help="paint a label doodle in a painting's style (optimisation, minutes)")
    p.add_argument("doodle", help="colour-coded label map to paint (e.g. sky white, sea blue)")
    p.add_argument("--style", required=True, help="the painting")
    p.add_argument("--style-labels", required=True, metavar="PNG",
                   help="label map of the painting, in the doodle's colours")
    p.add_argument("-o", "--output", required=True, help="output image file")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE, help="longer side in px (default %(default)s)")
    p.add_argument("--style-size", type=int, default=DEFAULTS.style_size,
                   help="longer side the painting is read at (default %(default)s)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help="L-BFGS iterations per level (default %(default)s); more is finer, slower")
    p.add_argument("--levels", type=int, default=DEFAULT_LEVELS,
                   help="sizes painted coarse to fine, halving (default %(default)s)")
    p.add_argument("--label-palette", default=DEFAULTS.palette, metavar="auto|dpst|RRGGBB,...",
                   help="label colours")
    p.add_argument("--seed", type=int, default=0, help="seed of the starting noise")
    p.add_argument("--init", choices=["fill", "model"], default="fill",
                   help="start from the regions' mean colours plus noise (fill, default) or from the model's "
                        "label-matched stylization of that fill (model)")
    p.add_argument("--model", help="with --init model: the model (default: the shipped one)")
    add_runtime_flags(p, DEFAULTS)
    p.add_argument("--no-metadata", action="store_true", help="do not embed provenance metadata")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    """Paint a doodle; prints the output path, then its time on stderr. Ctrl-C
    stops early, saves the picture so far and exits 130."""
    from ..devices import pick_device
    from ..io.provenance import Provenance
    from ..io.write import ensure_writable, save_image
    from ..pipeline.engine import StyleEngine
    from ..pipeline.palette import parse_palette
    from ..semantic.masks import read_mask_image
    from ..semantic.paint import check_inputs, paint
    from ..weights import load_encoder

    check_inputs(args.size, args.style_size, args.steps, args.levels)
    parse_palette(args.label_palette)
    read_mask_image(args.doodle, "doodle")
    read_mask_image(args.style_labels, "style label map")
    out = ensure_writable(args.output)
    device = pick_device(args.device)
    ensure_weights(args.encoder_weights)
    engine = StyleEngine.load(args.model, args.device, "fp32", args.encoder_weights) if args.init == "model" else None
    encoder = engine.encoder if engine is not None else load_encoder(args.encoder_weights)
    bar = progress(args.steps * args.levels, "paint", not args.no_progress)
    try:
        with warnings_as_lines():
            result = paint(args.doodle, args.style, args.style_labels, palette=args.label_palette, size=args.size,
                           style_size=args.style_size, steps=args.steps, levels=args.levels, seed=args.seed,
                           encoder=encoder, device=device, engine=engine,
                           on_step=lambda i, loss: bar.update(1) or bar.set_postfix(loss=f"{loss:.4f}"))
    finally:
        bar.close()
    model = "semstyle paint (optimisation, no trained model)" if engine is None else \
        f"semstyle paint (optimisation from {Path(str(engine.model_path)).name})"
    provenance = None if args.no_metadata else Provenance(
        styles=[Path(args.style).name], model=model,
        extra={"doodle": Path(args.doodle).name, "iterations": str(result.iterations)})
    print(save_image(result.image, out, provenance=provenance))
    print(f"semstyle: painted {result.image.width}x{result.image.height} in {result.seconds:.1f} s "
          f"({result.iterations} iterations, {result.evaluations} evaluations, loss {result.losses[0]:.4f} -> "
          f"{result.losses[-1]:.4f})", file=sys.stderr)
    if result.interrupted:
        say(f"semstyle: interrupted after {result.iterations} iterations; saved the picture so far")
        return 130
    return 0
