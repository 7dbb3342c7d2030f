"""A training run's whole state in one checkpoint, written and read the same way by every kind of
run (GAN training, distillation): networks, their EMA, optimizers, the RNG and the step.

The file format (``semstyle-checkpoint``; pinned by the checkpoint tests) is what
:func:`semstyle.checkpoints.load_generator` and ``semstyle export`` read, so a distilled model and a
trained one ship the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import checkpoints as ckpt
from ..config import TrainConfig, to_dict
from ..errors import ConfigError
from ..tensorfile import read_tensors

FORMAT = "semstyle-checkpoint"


def warm_up(optimizer: torch.optim.Optimizer, base_lr: float, step: int, warmup_steps: int) -> None:
    """Linear learning-rate warm-up over ``warmup_steps`` (0: none). A fine-tune's fresh Adam moves
    every weight by about the learning rate at its first step, whatever the gradient: the fast
    model's Gram term jumped 160-fold at step 2 without it. A pure function of the step, so a
    resumed run uses the same rates."""
    if warmup_steps <= 0:
        return
    scale = min(1.0, (step + 1) / warmup_steps)
    for group in optimizer.param_groups:
        group["lr"] = base_lr * scale


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """The randomness of one training step, a pure function of (seed, step, rank): a resumed run
    draws exactly the batches the uninterrupted one would have."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 1009 + rank)


def save_state(run_dir: Path, step: int, config: TrainConfig, modules: Mapping[str, nn.Module],
               optimizers: Mapping[str, torch.optim.Optimizer], ema: Any = None,
               metadata: Mapping[str, str] | None = None) -> Path:
    """Write one checkpoint atomically and prune the old ones. ``modules`` by tensor prefix
    ("generator" first: the model to export), ``optimizers`` by metadata key ("optim_g"), ``ema``
    an object with ``model`` and ``updates`` (or None)."""
    tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
    meta = {"format": FORMAT, "step": str(step), "model_config": json.dumps(to_dict(config.model)),
            "train_config": json.dumps(to_dict(config)), **(metadata or {})}
    for prefix, module in modules.items():
        tensors.update(ckpt.prefixed(prefix, module.state_dict()))
    if ema is not None:
        tensors.update(ckpt.prefixed(ckpt.EMA_PREFIX, ema.model.state_dict()))
        meta["ema_updates"] = str(ema.updates)
    for key, optimizer in optimizers.items():
        flat, meta[key] = ckpt.flatten_optimizer(key, optimizer.state_dict())
        tensors.update(flat)
    path = ckpt.write_checkpoint(tensors, run_dir, step, meta)
    ckpt.prune_checkpoints(run_dir, config.keep_checkpoints)
    return path


def load_state(path: Path, modules: Mapping[str, nn.Module], optimizers: Mapping[str, torch.optim.Optimizer],
               ema: Any = None, kind: str | None = None) -> tuple[int, dict[str, str]]:
    """Restore what :func:`save_state` wrote into the given objects; returns (step, metadata).
    ``kind`` is the metadata's run kind the checkpoint must have ("distillation"; None: a GAN
    run's, which has none). A run that had no EMA before starts it from the current weights."""
    tensors, metadata = read_tensors(path, what="checkpoint")
    if metadata.get("format") != FORMAT or metadata.get("kind") != kind:
        what = f"a {kind} run" if kind else "a semstyle training run"
        raise ConfigError(f"{path} is not a checkpoint of {what}")
    for prefix, module in modules.items():
        module.load_state_dict(ckpt.unprefixed(prefix, tensors))
    if ema is not None:
        ema.model.load_state_dict(ckpt.unprefixed(ckpt.EMA_PREFIX, tensors) or modules["generator"].state_dict())
        ema.updates = int(metadata.get("ema_updates", metadata["step"]))
    for key, optimizer in optimizers.items():
        optimizer.load_state_dict(ckpt.unflatten_optimizer(key, tensors, metadata[key]))
    torch.set_rng_state(tensors["rng.torch"])
    return int(metadata["step"]), metadata
