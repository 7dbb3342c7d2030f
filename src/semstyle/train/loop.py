"""The training loop: resume, checkpoints, logging, Ctrl-C, one run per folder at a time."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path

from .. import checkpoints as ckpt
from ..config import TrainConfig, apply_override, from_dict, load_toml, save_json
from ..errors import ConfigError
from ..files import atomic_write_text, exclusive_lock
from ..io.read import load_image
from ..io.tensors import image_to_tensor
from .distill import Distiller
from .trainer import Trainer

LOCK_FILE = ".lock"
"""In the run folder: held by the one ``semstyle train`` working on it."""


class _TensorBoard:
    """TensorBoard scalars when the tensorboard package is installed."""

    def __init__(self, log_dir: Path, enabled: bool):
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.writer = SummaryWriter(str(log_dir))
            except ImportError:
                print("semstyle: tensorboard is not installed; losses go to log.jsonl only", file=sys.stderr)

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer:
            for name, value in values.items():
                self.writer.add_scalar(f"loss/{name}", value, step)

    def image(self, path: Path, step: int) -> None:
        if self.writer:
            self.writer.add_image("samples", image_to_tensor(load_image(path))[0], step)

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def train(config: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Run (or resume) training; returns the last checkpoint's path.

    Ctrl-C or SIGTERM finishes the current step, writes a checkpoint and
    raises KeyboardInterrupt (a second Ctrl-C stops mid-step, still writing a
    checkpoint); a SIGKILL loses at most ``checkpoint_every`` steps.
    ``resume`` continues from the run folder's latest checkpoint (the folder
    must exist). A second process training into the same folder is refused.
    """
    run_dir = Path(config.out)
    if resume and not run_dir.is_dir():
        raise ConfigError(f"nothing to resume: {run_dir} does not exist (drop resume to start a new run)")
    latest = ckpt.latest_checkpoint(run_dir)
    if latest is not None and not resume:
        raise ConfigError(f"{run_dir} already holds checkpoints; resume to continue that run "
                          f"or choose another output folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    # under torchrun the processes of one run share the folder; only the main one holds the lock
    main_process = int(os.environ.get("RANK", "0")) == 0
    with exclusive_lock(run_dir / LOCK_FILE, f"the training run {run_dir}") if main_process else nullcontext():
        return _train_locked(config, run_dir, progress, resume)


def _train_locked(config: TrainConfig, run_dir: Path, progress: bool, resume: bool) -> Path:
    latest = ckpt.latest_checkpoint(run_dir)  # again, under the lock
    if resume and latest is None:
        print(f"semstyle: note: {run_dir} holds no checkpoint yet; starting at step 0", file=sys.stderr)
    trainer = Distiller(config) if config.teacher else Trainer(config)
    _report_skipped(trainer)
    if latest is not None:
        trainer.load_checkpoint(latest)
    if trainer.runtime.is_main:
        ckpt.remove_stale_temp_files(run_dir)
        _truncate_log(run_dir / "log.jsonl", trainer.step)
        save_json(config, run_dir / "config.json")
    board = _TensorBoard(run_dir / "tensorboard", trainer.runtime.is_main)
    bar = _progress_bar(trainer, progress)
    stop = _StopFlag()
    last_path = None
    try:
        while trainer.step < config.steps and not stop.requested:
            terms = trainer.train_step(trainer.step)
            trainer.step += 1
            if not all(math.isfinite(v) for v in terms.values()):
                raise FloatingPointError(f"non-finite loss at step {trainer.step}: {terms}")
            _log(trainer, terms, board, bar)
            if trainer.step % config.sample_every == 0 or trainer.step == config.steps:
                sample = trainer.save_samples()
                if sample:
                    board.image(sample, trainer.step)
            if trainer.step % config.checkpoint_every == 0 or trainer.step == config.steps:
                last_path = trainer.save_checkpoint()
    except KeyboardInterrupt:
        stop.requested = True
    finally:
        if stop.requested and trainer.step > 0:
            last_path = trainer.save_checkpoint()
        stop.restore()
        if bar is not None:
            bar.close()  # before any message, so no line lands in the middle of the bar
        board.close()
    if stop.requested:
        if trainer.runtime.is_main and trainer.step > 0:
            print(f"semstyle: stopped at step {trainer.step}; checkpoint saved, continue with --resume",
                  file=sys.stderr)
        raise KeyboardInterrupt
    return last_path or ckpt.latest_checkpoint(run_dir)


def _report_skipped(trainer: Trainer) -> None:
    """Unreadable training images are skipped, and said so: how many, and which."""
    if not trainer.runtime.is_main:
        return
    for bank in (trainer.content, trainer.styles):
        if bank.skipped:
            shown = "; ".join(bank.skipped[:5]) + (f"; and {len(bank.skipped) - 5} more"
                                                  if len(bank.skipped) > 5 else "")
            print(f"semstyle: warning: skipped {len(bank.skipped)} unreadable image(s) in {bank.folder} "
                  f"(training on the other {len(bank.images)}): {shown}", file=sys.stderr)


def _truncate_log(path: Path, step: int) -> None:
    """Drop log records past the checkpoint being resumed: those steps are
    about to be trained again, and the log should read as one run."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def _progress_bar(trainer: Trainer, enabled: bool):
    if not (enabled and trainer.runtime.is_main):
        return None
    from tqdm import tqdm
    return tqdm(total=trainer.config.steps, initial=trainer.step, desc="train", dynamic_ncols=True)


def _log(trainer: Trainer, terms: dict[str, float], board: _TensorBoard, bar) -> None:
    if bar is not None:
        bar.update(1)
    if trainer.step % trainer.config.log_every and trainer.step != trainer.config.steps:
        return
    if not trainer.runtime.is_main:
        return
    board.scalars(terms, trainer.step)
    record = {"step": trainer.step, "time": round(time.time(), 3), **{k: round(v, 6) for k, v in terms.items()}}
    with open(trainer.run_dir / "log.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")
    if bar is not None:
        shown = ("d_loss", "g_loss", "content", "style", "adv", "identity")
        bar.set_postfix({k: f"{terms[k]:.3g}" for k in shown if k in terms})


class _StopFlag:
    """Ctrl-C (SIGINT) and SIGTERM set a flag: the loop finishes the current
    step, checkpoints and exits. A KeyboardInterrupt raised at an arbitrary
    point instead can land inside TensorBoard's writer while it holds a lock,
    and the final flush then waits forever. A second Ctrl-C does raise
    KeyboardInterrupt at once, for a user who will not wait for the step."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._previous: dict[int, object] = {}
        try:
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        except ValueError:  # not the main thread: keep the default behaviour
            pass

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}


def load_train_config(path: str | None, overrides: list[str], **cli_values) -> TrainConfig:
    """Defaults <- TOML file <- explicit CLI options <- ``--set key=value``."""
    data = load_toml(path) if path else {}
    for key, value in cli_values.items():
        if value is not None:
            data[key] = value
    for assignment in overrides:
        apply_override(data, assignment)
    return from_dict(TrainConfig, data)
