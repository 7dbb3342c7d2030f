"""Command-line interface: ``semstyle stylize | train | export | weights``.

Exit codes: 0 success, 2 bad input or usage (one line on stderr, no
traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import ConfigError, ImageError, SemstyleError

SUPPORTED_OUTPUTS = (".png", ".jpg", ".jpeg", ".webp")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in one line with exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="semstyle", description="GAN-based semantic image style transfer.")
    parser.add_argument("--version", action="version", version=f"semstyle {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_stylize(commands)
    _add_paint(commands)
    _add_train(commands)
    _add_export(commands)
    _add_weights(commands)
    return parser


def _add_stylize(commands) -> None:
    p = commands.add_parser("stylize", help="stylize photos with a painting's style")
    p.add_argument("content", nargs="+", help="content image(s) or a folder of images")
    p.add_argument("--style", action="append", required=True, metavar="IMAGE[:WEIGHT]",
                   help="style image; repeat to blend styles, e.g. --style a.jpg:0.7 --style b.jpg:0.3")
    p.add_argument("-o", "--output", required=True, help="output file, or folder for several inputs")
    p.add_argument("--model", help="trained model: run directory (latest checkpoint), model dir or .safetensors")
    p.add_argument("--size", type=int, help="cap the longer side in px (default: keep size up to 1024)")
    p.add_argument("--style-size", type=int, default=512, help="longer side the style image is read at")
    p.add_argument("--strength", type=float, default=1.0, help="0 = photo, 1 = full style (default 1)")
    p.add_argument("--preserve-color", action="store_true", help="keep the photo's colours")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--encoder-weights", help="VGG weights file (converted .safetensors or torchvision .pth)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto (default): bfloat16 where the CPU/GPU runs it natively, else float32")
    p.add_argument("--no-metadata", action="store_true", help="do not embed provenance metadata")
    _add_semantic_options(p)
    p.set_defaults(func=cmd_stylize)


def _add_semantic_options(p) -> None:
    g = p.add_argument_group("semantic style transfer (masks, regions, label maps)")
    g.add_argument("--mask", metavar="PNG", help="stylize only the white area of this mask (>= 128 grey, or alpha)")
    g.add_argument("--feather", type=float, default=8.0, metavar="PX",
                   help="soft edge width outside masks and protected areas, in px (default 8; 0 = hard)")
    g.add_argument("--region", dest="regions", action="append", default=[], metavar="MASK=STYLE[:STRENGTH]",
                   help="paint this mask's area in its own style (repeatable; later over earlier)")
    g.add_argument("--protect", action="append", default=[], metavar="MASK",
                   help="keep this mask's area exactly as the input (repeatable)")
    g.add_argument("--content-labels", metavar="PNG", help="colour-coded label map of the content (with --style-labels)")
    g.add_argument("--style-labels", metavar="PNG", help="colour-coded label map of the style image: each content "
                   "label takes the style of the same-colour style region")
    g.add_argument("--label-palette", default="auto", metavar="auto|dpst|RRGGBB,...",
                   help="label colours: auto (colours covering > 0.5%%, default), dpst, or a hex list")
    g.add_argument("--auto-regions", type=int, metavar="K",
                   help="no label maps: find K regions (2-8) in both images from deep features, pair them and "
                   "transfer region by region")
    g.add_argument("--refine", type=int, default=0, metavar="STEPS",
                   help="with label maps or --auto-regions: optimise the result for STEPS L-BFGS steps so each "
                   "region's statistics match its style region's (slower; 20-50 is typical)")
    g.add_argument("--save-labels", metavar="PATH",
                   help="with --auto-regions: write the label maps found to PATH_content.png and PATH_style.png")


def _add_paint(commands) -> None:
    from .paint import DEFAULT_LEVELS, DEFAULT_SIZE, DEFAULT_STEPS

    p = commands.add_parser("paint", help="paint a label doodle in a painting's style (optimisation, minutes)")
    p.add_argument("doodle", help="colour-coded label map to paint (e.g. sky white, sea blue)")
    p.add_argument("--style", required=True, help="the painting")
    p.add_argument("--style-labels", required=True, metavar="PNG",
                   help="label map of the painting, in the doodle's colours")
    p.add_argument("-o", "--output", required=True, help="output image file")
    p.add_argument("--size", type=int, default=DEFAULT_SIZE, help=f"longer side in px (default {DEFAULT_SIZE})")
    p.add_argument("--style-size", type=int, default=512, help="longer side the painting is read at")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"L-BFGS iterations per level (default {DEFAULT_STEPS}); more is finer, slower")
    p.add_argument("--levels", type=int, default=DEFAULT_LEVELS,
                   help=f"sizes painted coarse to fine, halving (default {DEFAULT_LEVELS})")
    p.add_argument("--label-palette", default="auto", metavar="auto|dpst|RRGGBB,...", help="label colours")
    p.add_argument("--seed", type=int, default=0, help="seed of the starting noise")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--encoder-weights", help="VGG weights file (converted .safetensors or torchvision .pth)")
    p.add_argument("--no-metadata", action="store_true", help="do not embed provenance metadata")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_paint)


def _add_train(commands) -> None:
    p = commands.add_parser("train", help="train a model (content + style + adversarial losses)")
    p.add_argument("--content", dest="content_dir", help="folder of content photos")
    p.add_argument("--styles", dest="styles_dir", help="folder of style paintings (D's real set)")
    p.add_argument("--out", help="run directory for checkpoints, samples and logs")
    p.add_argument("--steps", type=int, help="total training steps")
    p.add_argument("--size", type=int, help="training crop size in px")
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--device", help="cpu, cuda or auto")
    p.add_argument("--encoder-weights", dest="encoder_weights", help="VGG weights file (default: the cache)")
    p.add_argument("--config", help="TOML config file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set loss.adv_kind=hinge")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)


def _add_export(commands) -> None:
    p = commands.add_parser("export", help="turn a run's checkpoint into a model directory for inference")
    p.add_argument("run", help="run directory or checkpoint file")
    p.add_argument("-o", "--output", required=True, help="model directory to write")
    p.add_argument("--half", action="store_true", help="store weights as float16 (half the size)")
    p.add_argument("--average", type=int, default=1, metavar="N",
                   help="average the generator weights of the run's newest N checkpoints (default 1: the newest "
                        "alone); steadier than any single checkpoint of adversarial training")
    p.set_defaults(func=cmd_export)


def _add_weights(commands) -> None:
    p = commands.add_parser("weights", help="manage the pretrained VGG16 weights")
    p.add_argument("action", choices=["fetch", "path"], help="fetch: download, convert and check; path: print")
    p.add_argument("--force", action="store_true", help="fetch again even if cached")
    p.set_defaults(func=cmd_weights)


# --------------------------------------------------------------------------

def cmd_weights(args) -> int:
    from .encoders import default_weights_path, fetch_weights

    if args.action == "path":
        print(default_weights_path())
        return 0
    print(fetch_weights(force=args.force))
    return 0


def cmd_train(args) -> int:
    from .train import load_train_config, train

    names = ("content_dir", "styles_dir", "out", "steps", "size", "batch_size", "device", "encoder_weights")
    values = {k: getattr(args, k) for k in names}
    config = load_train_config(args.config, args.overrides, **values)
    path = train(config, resume=args.resume, progress=not args.no_progress)
    print(path)
    return 0


def cmd_export(args) -> int:
    from .checkpoints import average_generators, checkpoint_step, export_model, list_checkpoints, load_generator

    if args.average < 1:
        raise ConfigError(f"--average must be at least 1, got {args.average}")
    if args.average == 1:
        generator, metadata = load_generator(args.run)
        info = {"source_step": metadata.get("step", ""), **({"weights": "ema"} if metadata.get("weights") else {})}
    else:
        files = list_checkpoints(Path(args.run)) if Path(args.run).is_dir() else []
        if len(files) < args.average:
            raise ConfigError(f"--average {args.average} needs a run directory with at least that many "
                              f"checkpoints; {args.run} has {len(files)}")
        files = files[-args.average:]
        generator, metadata = average_generators(files)
        info = {"source_step": metadata.get("step", ""),
                "averaged_steps": ",".join(str(checkpoint_step(f)) for f in files)}
    print(export_model(generator, Path(args.output), half=args.half, info=info))
    return 0


def _content_files(inputs: list[str]) -> list[Path]:
    from .io import list_images

    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        files.extend(list_images(path) if path.is_dir() else [path])
    return files


def _output_paths(contents: list[Path], output: str, many: bool) -> list[Path]:
    """One output file, or one file per input inside an output folder."""
    out = Path(output)
    if not many and not out.is_dir():
        return [out]
    if out.exists() and not out.is_dir():
        raise ConfigError(f"several inputs need an output folder, but {out} is a file")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageError(f"cannot create output folder {out}: {exc.strerror}") from None
    names = []
    for path in contents:
        suffix = path.suffix.lower() if path.suffix.lower() in SUPPORTED_OUTPUTS else ".png"
        names.append(out / f"{path.stem}{suffix}")
    return names


def _semantic_options(args, many: bool) -> dict:
    """Check the semantic options (and read every mask once, so a bad file
    fails before the model loads); keyword arguments for Stylizer.stylize."""
    from .semantic import (check_auto_regions, check_feather, check_refine, parse_palette, parse_region_arg,
                           read_mask_image)

    check_feather(args.feather)
    parse_palette(args.label_palette)
    if bool(args.content_labels) != bool(args.style_labels):
        raise ConfigError("--content-labels and --style-labels go together; give both")
    if args.content_labels and many:
        raise ConfigError("--content-labels describes one content image; give one input, not several")
    if args.auto_regions is not None:
        check_auto_regions(args.auto_regions)
        if args.content_labels:
            raise ConfigError("--auto-regions finds label maps itself; give it or --content-labels, not both")
    check_refine(args.refine, bool(args.content_labels) or args.auto_regions is not None)
    if args.save_labels and args.auto_regions is None:
        raise ConfigError("--save-labels writes the maps that --auto-regions finds; give --auto-regions K")
    if args.save_labels and many:
        raise ConfigError("--save-labels writes the maps of one content image; give one input, not several")
    regions = [parse_region_arg(text) for text in args.regions]
    for path, what in [(args.mask, "mask"), *((m, "region mask") for m, _, _ in regions),
                       *((m, "protect mask") for m in args.protect),
                       (args.content_labels, "content label map"), (args.style_labels, "style label map")]:
        if path:
            read_mask_image(path, what)
    options: dict = {}
    if args.mask:
        options["mask"] = args.mask
    if regions:
        options["regions"] = regions
    if args.protect:
        options["protect"] = list(args.protect)
    if args.content_labels:
        options["labels"] = (args.content_labels, args.style_labels)
        options["palette"] = args.label_palette
    if args.auto_regions is not None:
        options["auto_regions"] = args.auto_regions
    if args.refine:
        options["refine"] = args.refine
    if options:
        options["feather"] = args.feather
    return options


def _print_semantic_warnings(caught) -> None:
    """Our SemanticWarnings as one stderr line each; other warnings as usual."""
    import warnings

    from .semantic import SemanticWarning

    for w in caught:
        if issubclass(w.category, SemanticWarning):
            print(f"semstyle: warning: {w.message}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _found_labels(stylizer, content, style, args, paths, semantic: dict) -> dict:
    """--save-labels: find the automatic label maps, write them, and return
    the options that stylize with exactly those maps."""
    from PIL import Image

    from .io import save_image
    from .semantic import auto_label_maps

    found = auto_label_maps(stylizer, content, style, args.auto_regions, size=args.size, style_size=args.style_size)
    for array, path in zip((found.content, found.style), paths):
        print(save_image(Image.fromarray(array), path))
    options = {k: v for k, v in semantic.items() if k != "auto_regions"}
    return {**options, "labels": (found.content, found.style), "palette": found.palette}


def cmd_stylize(args) -> int:
    import warnings

    from .io import ensure_writable, save_image
    from .semantic import label_map_paths
    from .stylize import Stylizer, check_strength, parse_style_arg, style_names

    check_strength(args.strength)
    styles = [parse_style_arg(s) for s in args.style]
    contents = _content_files(args.content)
    many = len(contents) > 1 or any(Path(c).is_dir() for c in args.content)
    semantic = _semantic_options(args, many)
    by_labels = "labels" in semantic or "auto_regions" in semantic
    if by_labels and len(styles) != 1:
        raise ConfigError("--style-labels and --auto-regions need exactly one --style image, not a blend")
    outputs = _output_paths(contents, args.output, many)
    for out in outputs:
        ensure_writable(out)
    label_outputs = label_map_paths(args.save_labels) if args.save_labels else ()
    for out in label_outputs:
        ensure_writable(out)
    stylizer = Stylizer(args.model, device=args.device, encoder_weights=args.encoder_weights,
                        precision=args.precision)
    style_vec = stylizer.style_vector(styles, args.style_size)
    names = style_names(styles) + [name for _, style, _ in semantic.get("regions", []) for name in style_names(style)]
    failures = 0
    for content, out in zip(contents, outputs):
        try:
            if semantic:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    if label_outputs:
                        semantic = _found_labels(stylizer, content, styles[0].image, args, label_outputs,
                                                 semantic)
                    result = stylizer.stylize(content, styles[0].image if by_labels else style_vec,
                                              strength=args.strength, size=args.size,
                                              preserve_colors=args.preserve_color, style_size=args.style_size,
                                              **semantic)
                _print_semantic_warnings(caught)
                save_image(result, out, provenance=None if args.no_metadata else stylizer.provenance(names))
                print(out)
                continue
            result = stylizer.stylize(content, style_vec, strength=args.strength, size=args.size,
                                      preserve_colors=args.preserve_color)
            save_image(result, out, provenance=None if args.no_metadata else stylizer.provenance(names))
            print(out)
        except SemstyleError as exc:
            failures += 1
            print(f"semstyle: error: {exc}", file=sys.stderr)
    return 2 if failures else 0


def cmd_paint(args) -> int:
    """Paint a doodle; prints the output path, then its time on stderr. Ctrl-C
    stops early, saves the picture so far and exits 130."""
    import warnings

    from .encoders import VGGEncoder
    from .io import Provenance, ensure_writable, save_image
    from .paint import paint
    from .semantic import parse_palette, read_mask_image
    from .stylize import MIN_SIDE, check_size, pick_device

    check_size(args.size)
    if args.style_size < MIN_SIDE:
        raise ConfigError(f"--style-size must be at least {MIN_SIDE}, got {args.style_size}")
    for name in ("steps", "levels"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be at least 1, got {getattr(args, name)}")
    parse_palette(args.label_palette)
    read_mask_image(args.doodle, "doodle")
    read_mask_image(args.style_labels, "style label map")
    out = ensure_writable(args.output)
    device = pick_device(args.device)
    encoder = VGGEncoder.pretrained(args.encoder_weights)
    bar = _progress(args.steps * args.levels, "paint", not args.no_progress)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = paint(args.doodle, args.style, args.style_labels, palette=args.label_palette, size=args.size,
                       style_size=args.style_size, steps=args.steps, levels=args.levels, seed=args.seed,
                       encoder=encoder,
                       device=device, on_step=lambda i, loss: bar.update(1) or bar.set_postfix(loss=f"{loss:.4f}"))
    bar.close()
    _print_semantic_warnings(caught)
    provenance = None if args.no_metadata else Provenance(
        styles=[Path(args.style).name], model="semstyle paint (optimisation, no trained model)",
        extra={"doodle": Path(args.doodle).name, "iterations": str(result.iterations)})
    print(save_image(result.image, out, provenance=provenance))
    print(f"semstyle: painted {result.image.width}x{result.image.height} in {result.seconds:.1f} s "
          f"({result.iterations} iterations, {result.evaluations} evaluations, loss {result.losses[0]:.4f} -> "
          f"{result.losses[-1]:.4f})", file=sys.stderr)
    if result.interrupted:
        print(f"semstyle: interrupted after {result.iterations} iterations; saved the picture so far",
              file=sys.stderr)
        return 130
    return 0


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, dynamic_ncols=True, disable=not enabled)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage error (2), --help or --version (0)
        return int(exc.code or 0)
    try:
        return args.func(args)
    except SemstyleError as exc:
        print(f"semstyle: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("semstyle: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
