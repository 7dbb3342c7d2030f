"""``semstyle stylize``: photos (files or folders) in a painting's style, globally or by region.

Everything is checked before the model loads: the options (one
:class:`~semstyle.pipeline.options.StylizeOptions`, its defaults the flags'
defaults), the style arguments, every mask and label map, and the outputs
(writable, and no two inputs writing the same file).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
from pathlib import Path

from ..errors import ConfigError, ImageError, OptionError, SemstyleError
from ..pipeline.options import DEFAULTS, MAX_AUTO_REGIONS, StylizeOptions
from ..pipeline.styles import WeightedStyle
from .common import (
    MODEL_HELP,
    add_runtime_flags,
    add_style_fit_flag,
    ensure_weights,
    flag_message,
    say,
    warnings_as_lines,
)

SUPPORTED_OUTPUTS = (".png", ".jpg", ".jpeg", ".webp")


def add_parser(commands) -> None:
    d = DEFAULTS
    p = commands.add_parser("stylize", help="stylize photos with a painting's style")
    p.add_argument("content", nargs="+", help="content image(s) or a folder of images")
    p.add_argument("--style", action="append", required=True, metavar="IMAGE[:WEIGHT]",
                   help="style image; repeat to blend styles, e.g. --style a.jpg:0.7 --style b.jpg:0.3")
    p.add_argument("-o", "--output", required=True, help="output file, or folder for several inputs")
    p.add_argument("--model", help=MODEL_HELP + "; with --backend onnx, a folder from 'semstyle export --onnx'")
    p.add_argument("--backend", choices=["auto", "torch", "onnx"], default="auto",
                   help="torch, or onnx: onnxruntime with exported graphs (the shipped models' own, or a "
                        "folder from 'semstyle export --onnx'), no PyTorch needed; auto (default): torch when "
                        "it is installed, else onnx")
    p.add_argument("--size", type=int, default=d.size, help="cap the longer side in px (default: keep the size, "
                   "up to 1024)")
    p.add_argument("--style-size", type=int, default=d.style_size,
                   help="longer side the style image is read at (default %(default)s)")
    p.add_argument("--strength", type=float, default=d.strength, help="0 = photo, 1 = full style (default %(default)s)")
    add_style_fit_flag(p, d)
    p.add_argument("--preserve-color", dest="preserve_colors", action="store_true", default=d.preserve_colors,
                   help="keep the photo's colours")
    p.add_argument("--colour-match", type=float, default=d.colour_match, metavar="X",
                   help="move the result's colour mean and spread this far to the painting's (0-1, default "
                   "%(default)s; with label maps region by region)")
    add_runtime_flags(p, d)
    p.add_argument("--precision", default=d.precision, choices=["auto", "fp32", "bf16", "int8"],
                   help="auto (default): bfloat16 where the CPU/GPU runs it natively, else float32; int8: the ONNX "
                        "backend's int8 graph (implies --backend onnx)")
    p.add_argument("--border-margin", type=int, default=d.border_margin,
                   help="reflected pixels around the image while the networks run (default %(default)s)")
    p.add_argument("--max-pixels", type=int, default=d.max_pixels,
                   help="refuse input images with more pixels (default %(default)s)")
    p.add_argument("--tile", default=d.tile, metavar="auto|PX|off", type=_tile_arg,
                   help="run large images in overlapping tiles of PX (auto, default: 1024 px tiles above 2048 px)")
    p.add_argument("--no-metadata", action="store_true", help="do not embed provenance metadata")
    _add_semantic_flags(p, d)
    p.set_defaults(func=run)


def _add_semantic_flags(p, d: StylizeOptions) -> None:
    g = p.add_argument_group("semantic style transfer (masks, regions, label maps)")
    g.add_argument("--mask", metavar="PNG", help="stylize only the white area of this mask (>= 128 grey, or alpha)")
    g.add_argument("--feather", type=float, default=d.feather, metavar="PX",
                   help="soft edge width outside masks and protected areas, in px (default %(default)s; 0 = hard)")
    g.add_argument("--region", dest="regions", action="append", default=[], metavar="MASK=STYLE[:STRENGTH]",
                   help="paint this mask's area in its own style (repeatable; later over earlier)")
    g.add_argument("--protect", action="append", default=[], metavar="MASK",
                   help="keep this mask's area exactly as the input (repeatable)")
    g.add_argument("--content-labels", metavar="PNG",
                   help="colour-coded label map of the content (with --style-labels)")
    g.add_argument("--style-labels", metavar="PNG", help="colour-coded label map of the style image: each content "
                   "label takes the style of the same-colour style region")
    g.add_argument("--label-palette", dest="palette", default=d.palette, metavar="auto|dpst|RRGGBB,...",
                   help="label colours: auto (colours covering > 0.5%%, default), dpst, or a hex list")
    g.add_argument("--auto-regions", type=int, default=d.auto_regions, metavar="K",
                   help=f"no label maps: find K regions (2-{MAX_AUTO_REGIONS}) in both images from deep features, "
                   "pair them and transfer region by region")
    g.add_argument("--region-contrast", type=float, default=d.region_contrast, metavar="X",
                   help="with labels: push the regions' styles apart by this fraction (0-2; default 0.75 with "
                   "label maps, 0 with --auto-regions), against the blending of neighbouring regions")
    g.add_argument("--colour-by-image", dest="colour_by_region", action="store_false", default=d.colour_by_region,
                   help="with label maps: match the whole image's colours to the painting's, not region by region "
                   "(what --auto-regions does)")
    g.add_argument("--refine", type=int, default=d.refine, metavar="STEPS",
                   help="final render: optimise the result for STEPS L-BFGS steps so its VGG statistics match the "
                   "painting's (each region's its style region's with label maps or --auto-regions), anchored to "
                   "the feed-forward result (slower; 10-50 is typical)")
    g.add_argument("--save-labels", metavar="PATH",
                   help="with --auto-regions: write the label maps found to PATH_content.png and PATH_style.png")


def _tile_arg(text: str) -> int | str | None:
    if text in ("auto", "off"):
        return None if text == "off" else "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, off or a number of px, got {text!r}") from None


# --------------------------------------------------------------------------
# Arguments -> options
# --------------------------------------------------------------------------

def parse_style_arg(text: str) -> WeightedStyle:
    """``path`` or ``path:weight``. The part after the last ':' is the weight when it is a
    number, or when the path without it names an existing file (``a.jpg:abc`` is a bad weight,
    not a missing file); otherwise the whole text is the path (``C:photo.jpg``)."""
    path, sep, weight = text.rpartition(":")
    if not (sep and path):
        return WeightedStyle(text, 1.0)
    try:
        value = float(weight)
    except ValueError:
        if Path(path).is_file() and not Path(text).exists():
            raise ConfigError(f"--style {text}: the weight {weight!r} is not a number") from None
        return WeightedStyle(text, 1.0)
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"--style {text}: the weight must be a finite number, 0 or more")
    return WeightedStyle(path, value)


def parse_region_arg(text: str) -> tuple[str, str, float]:
    """``MASK=STYLE[:STRENGTH]`` -> (mask path, style path, strength). The mask
    path ends at the first '='; a trailing ``:number`` is the strength."""
    mask, sep, style = text.partition("=")
    if not sep or not mask or not style:
        raise ConfigError(f"--region expects MASK=STYLE[:STRENGTH], got {text!r}")
    parsed = parse_style_arg(style)
    if not 0.0 <= parsed.weight <= 1.0:
        raise ConfigError(f"--region {text}: the strength must be between 0 and 1")
    return mask, str(parsed.image), parsed.weight


def options_from_args(args) -> StylizeOptions:
    """The flags as one validated StylizeOptions (a bad value names its flag)."""
    if bool(args.content_labels) != bool(args.style_labels):
        raise ConfigError("--content-labels and --style-labels go together; give both")
    options = StylizeOptions(
        strength=args.strength, size=args.size, style_size=args.style_size, preserve_colors=args.preserve_colors,
        device=args.device, precision=args.precision, compile=args.compile,
        border_margin=args.border_margin, max_pixels=args.max_pixels,
        tile=args.tile,
        mask=args.mask, feather=args.feather, protect=tuple(args.protect),
        regions=tuple(parse_region_arg(text) for text in args.regions),
        labels=(args.content_labels, args.style_labels) if args.content_labels else None,
        palette=args.palette, auto_regions=args.auto_regions, refine=args.refine, style_fit=args.style_fit,
        region_contrast=args.region_contrast, colour_match=args.colour_match,
        colour_by_region=args.colour_by_region)
    if args.save_labels and args.auto_regions is None:
        raise ConfigError("--save-labels writes the maps that --auto-regions finds; give --auto-regions K")
    return options.validate()


def check_mask_files(options: StylizeOptions) -> None:
    """Read every mask and label map once, so a bad file fails before the model loads."""
    from ..semantic.masks import read_mask_image

    files = [(options.mask, "mask"), *((m, "region mask") for m, _, _ in options.regions),
             *((m, "protect mask") for m in options.protect)]
    if options.labels:
        files += [(options.labels[0], "content label map"), (options.labels[1], "style label map")]
    for path, what in files:
        if path:
            read_mask_image(path, what)


# --------------------------------------------------------------------------
# Inputs and outputs
# --------------------------------------------------------------------------

def content_files(inputs: list[str]) -> list[Path]:
    from ..io.read import list_images

    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        files.extend(list_images(path) if path.is_dir() else [path])
    return files


def output_paths(contents: list[Path], output: str, many: bool) -> list[Path]:
    """One output file, or one file per input inside an output folder; two inputs
    that would write the same file are an error, before any work."""
    out = Path(output)
    if not many and not out.is_dir():
        return [out]
    if out.exists() and not out.is_dir():
        raise ConfigError(f"several inputs need an output folder, but {out} is a file")
    if not out.exists() and out.suffix.lower() in SUPPORTED_OUTPUTS:
        raise ConfigError(f"several inputs need an output folder, but {out} names an image file; "
                          f"give a folder, e.g. -o {out.with_suffix('')}")
    names: dict[Path, Path] = {}
    for path in contents:
        suffix = path.suffix.lower() if path.suffix.lower() in SUPPORTED_OUTPUTS else ".png"
        target = out / f"{path.stem}{suffix}"
        if target in names:
            raise ConfigError(f"{names[target]} and {path} would both be written to {target}; "
                              f"rename one of them or stylize them separately")
        names[target] = path
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageError(f"cannot create output folder {out}: {exc.strerror}") from None
    return list(names)


# --------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------

def run(args) -> int:
    from ..io.write import ensure_writable, save_image
    from ..pipeline.styles import style_names, weighted_styles

    styles = weighted_styles([parse_style_arg(s) for s in args.style])
    options = options_from_args(args)
    contents = content_files(args.content)
    many = len(contents) > 1 or any(Path(c).is_dir() for c in args.content)
    if options.by_labels and len(styles) != 1:
        raise ConfigError("--style-labels and --auto-regions need exactly one --style image, not a blend")
    for flag, value in (("--content-labels", options.labels), ("--save-labels", args.save_labels)):
        if value and many:
            raise ConfigError(f"{flag} describes one content image; give one input, not several")
    check_mask_files(options)
    outputs = [ensure_writable(out) for out in output_paths(contents, args.output, many)]
    if options.precision == "int8" and args.backend == "torch":
        raise ConfigError("--precision int8 runs on the ONNX backend; drop --backend torch")
    if options.precision == "int8" or chosen_backend(args.backend) == "onnx":
        return _run_onnx(args, styles, options, contents, outputs)
    from ..semantic.auto import label_map_paths
    from ..stylizer import Stylizer

    label_outputs = [ensure_writable(p) for p in label_map_paths(args.save_labels)] if args.save_labels else []
    ensure_weights(args.encoder_weights)
    stylizer = Stylizer(args.model, options, encoder_weights=args.encoder_weights)
    style = _style_argument(stylizer, styles, options)
    names = style_names(styles) + [name for _, region_style, _ in options.regions for name in style_names(region_style)]
    failures = 0
    for content, out in zip(contents, outputs):
        try:
            with warnings_as_lines():
                per_image = _found_labels(stylizer, content, style, options, label_outputs) if label_outputs \
                    else options
                result = stylizer.stylize(content, style, per_image)
            save_image(result, out, provenance=None if args.no_metadata else stylizer.provenance(names))
            print(out)
        except OptionError as exc:
            if exc.option in ("size", "style_size", "image") and many:
                failures += 1
                say(f"semstyle: error: {content}: {flag_message(exc)}")
                continue
            raise
        except SemstyleError as exc:
            failures += 1
            say(f"semstyle: error: {exc}")
    return 2 if failures else 0


def _style_argument(stylizer, styles: list, options: StylizeOptions):
    """What every image is stylized with: the style list itself, not its vector, since colour
    matching reads the paintings' colours (the engine encodes each painting once per process all
    the same: its style cache), or with label matching the one painting (a blend is refused by
    name there)."""
    if options.by_labels:
        return styles[0].image
    return styles


def torch_installed() -> bool:
    """Whether PyTorch can be imported, without importing it (that alone takes a second or two)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except ValueError:  # sys.modules["torch"] is None: imports of torch are blocked
        return False


def chosen_backend(backend: str) -> str:
    """``auto`` is torch where it is installed, else onnx: a light install (``semstyle[runtime]``) just works."""
    return backend if backend != "auto" else ("torch" if torch_installed() else "onnx")


def _run_onnx(args, styles, options: StylizeOptions, contents: list[Path], outputs: list[Path]) -> int:
    """--backend onnx: the same inputs and outputs, onnxruntime instead of PyTorch (never imported)."""
    from ..io.provenance import Provenance
    from ..io.write import save_image
    from ..pipeline.styles import style_names
    from ..runtime.onnx import OnnxStylizer

    if options.uses_regions:
        raise ConfigError("--backend onnx stylizes whole images; masks, regions and labels need --backend torch"
                          + ("" if torch_installed() else " (PyTorch: pip install \"semstyle[torch]\")"))
    stylizer = OnnxStylizer(args.model, precision=options.precision)
    # the style list, not its vector: colour matching reads the paintings' colours (the vector
    # is read from the on-disk style store after the first image)
    vector = styles if options.painting_colours > 0 else stylizer.style_vector(styles, options)
    provenance = None if args.no_metadata else Provenance(styles=style_names(styles),
                                                          model=f"{stylizer.folder.name} (onnx)")
    failures = 0
    for content, out in zip(contents, outputs):
        try:
            save_image(stylizer.stylize(content, vector, options), out, provenance=provenance)
            print(out)
        except SemstyleError as exc:
            failures += 1
            say(f"semstyle: error: {flag_message(exc) if isinstance(exc, OptionError) else exc}")
    return 2 if failures else 0


def _found_labels(stylizer, content, style, options: StylizeOptions, paths: list[Path]) -> StylizeOptions:
    """--save-labels: find the automatic label maps, write them, and return
    options that stylize with exactly those maps, with automatic regions' look (no region
    contrast, the whole image's colours matched), so the picture is the one --auto-regions
    alone makes."""
    from PIL import Image

    from ..io.write import save_image

    found = stylizer.auto_regions(content, style, options.auto_regions, options)
    for array, path in zip((found.content, found.style), paths):
        print(save_image(Image.fromarray(array), path))
    return options.replace(auto_regions=None, labels=(found.content, found.style), palette=found.palette,
                           region_contrast=options.label_contrast, colour_by_region=options.colours_per_region)
