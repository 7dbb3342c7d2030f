"""``semstyle export`` (a run's checkpoint -> a model folder) and ``semstyle weights`` (the VGG16 cache)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError


def add_export_parser(commands) -> None:
    p = commands.add_parser("export", help="turn a run's checkpoint into a model directory for inference")
    p.add_argument("run", help="run directory or checkpoint file; with --onnx also a model folder, a shipped "
                   "model's name, or 'shipped': every shipped model into one folder (the package's ONNX files)")
    p.add_argument("-o", "--output", required=True, help="model directory to write (new, or an existing model)")
    p.add_argument("--half", action="store_true", help="store weights as float16 (half the size)")
    p.add_argument("--onnx", action="store_true",
                   help="write ONNX graphs (stylize.onnx, style_encoder.onnx) for onnxruntime instead, checked "
                        "against PyTorch")
    p.add_argument("--encoder-weights", help="with --onnx: VGG weights (default: the cache)")
    p.add_argument("--int8", action="store_true",
                   help="with --onnx: also an int8 stylize graph (stylize_int8.onnx) for --precision int8 "
                        "(the shipped models always get one)")
    p.add_argument("--average", type=int, default=1, metavar="N",
                   help="average the generator weights of the run's newest N checkpoints (default 1: the newest "
                        "alone); steadier than any single checkpoint of adversarial training")
    p.set_defaults(func=run_export)


def add_weights_parser(commands) -> None:
    p = commands.add_parser("weights", help="manage the pretrained VGG16 weights")
    p.add_argument("action", choices=["fetch", "path"], help="fetch: download, convert and check; path: print")
    p.add_argument("--force", action="store_true", help="fetch again even if cached")
    p.set_defaults(func=run_weights)


def run_weights(args) -> int:
    from ..weights import default_weights_path, fetch_weights

    print(default_weights_path() if args.action == "path" else fetch_weights(force=args.force))
    return 0


def run_export(args) -> int:
    from ..checkpoints import average_generators, checkpoint_step, export_model, list_checkpoints, load_generator

    if args.average < 1:
        raise ConfigError(f"--average must be at least 1, got {args.average}")
    if args.onnx:
        from ..export.onnx import export_onnx

        if args.average != 1 or args.half:
            raise ConfigError("--onnx exports a model as it is; export with --average/--half first, then --onnx")
        if args.int8 and args.run == "shipped":
            raise ConfigError("--int8 is implied for 'shipped'")
        if args.run == "shipped":
            from ..export.onnx import export_shipped

            for folder in export_shipped(args.output):
                print(folder)
            return 0
        print(export_onnx(args.run, Path(args.output), args.encoder_weights, int8=args.int8))
        return 0
    if args.int8:
        raise ConfigError("--int8 goes with --onnx")
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
