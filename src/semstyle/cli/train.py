"""``semstyle train``: train (or resume) a model."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .common import ensure_weights

TRAIN_FLAGS = ("content_dir", "styles_dir", "out", "steps", "size", "batch_size", "device", "encoder_weights",
               "init_model")


def add_parser(commands) -> None:
    p = commands.add_parser("train", help="train a model (content + style + adversarial losses)")
    p.add_argument("--content", dest="content_dir", help="folder of content photos")
    p.add_argument("--styles", dest="styles_dir", help="folder of style paintings (D's real set)")
    p.add_argument("--out", help="run directory for checkpoints, samples and logs")
    p.add_argument("--steps", type=int, help="total training steps")
    p.add_argument("--size", type=int, help="training crop size in px")
    p.add_argument("--batch-size", dest="batch_size", type=int)
    p.add_argument("--device", help="cpu, cuda or auto")
    p.add_argument("--encoder-weights", dest="encoder_weights", help="VGG weights file (default: the cache)")
    p.add_argument("--finetune", dest="init_model", metavar="MODEL",
                   help="start the generator from this model (run directory, model dir or file)")
    p.add_argument("--config", help="TOML config file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set loss.adv_kind=hinge")
    p.add_argument("--resume", action="store_true", help="continue from the run directory's latest checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..train.loop import load_train_config, train
    from ..train.trainer import validate

    config = load_train_config(args.config, args.overrides, **{k: getattr(args, k) for k in TRAIN_FLAGS})
    validate(config)
    check_run_folder(Path(config.out), args.resume)
    ensure_weights(config.encoder_weights or None)
    print(train(config, resume=args.resume, progress=not args.no_progress))
    return 0


def check_run_folder(run_dir: Path, resume: bool) -> None:
    """The library's checks of :func:`~semstyle.train.loop.train`, in the command line's words."""
    from ..checkpoints import latest_checkpoint

    if resume and not run_dir.is_dir():
        raise ConfigError(f"--resume: {run_dir} does not exist; nothing to resume (drop --resume to start a run)")
    if not resume and latest_checkpoint(run_dir) is not None:
        raise ConfigError(f"{run_dir} already holds checkpoints; pass --resume to continue that run "
                          f"or choose another --out")
