"""Checkpoints and model files, all safetensors (no pickle).

A *training checkpoint* (``RUN_DIR/checkpoints/step_000200.safetensors``)
holds generator, discriminator and both optimizer states as tensors, and the
step, configs and optimizer hyper-parameters as JSON metadata, so ``--resume``
continues exactly. A *model* is what inference needs: the generator's tensors
plus its ``ModelConfig`` (``model.safetensors`` + ``config.json``, also
embedded in the file's metadata). Every file is written to a temporary name
and renamed, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import ModelConfig, from_dict, to_dict
from .errors import WeightsError
from .models import Generator

CHECKPOINT_DIR = "checkpoints"
MODEL_FILE = "model.safetensors"


def atomic_save_safetensors(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; model files are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_safetensors(path: Path, prefix: str = "") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors (only those whose names start with ``prefix``) and metadata."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            names = [k for k in handle.keys() if k.startswith(prefix)]
            return {k: handle.get_tensor(k) for k in names}, dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"cannot read model file {path}: {str(exc).splitlines()[0]}") from None


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    start = len(prefix) + 1
    return {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def flatten_optimizer(prefix: str, state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], str]:
    """Split an optimizer state dict into tensors and a JSON string."""
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for param_id, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{param_id}.{name}"] = value
            else:
                plain.setdefault(str(param_id), {})[name] = value
    return tensors, json.dumps({"param_groups": state["param_groups"], "plain": plain})


def unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], text: str) -> dict[str, Any]:
    data = json.loads(text)
    state: dict[int, dict[str, Any]] = {}
    for key, value in unprefixed(prefix, tensors).items():
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = value
    for param_id, values in data["plain"].items():
        state.setdefault(int(param_id), {}).update(values)
    return {"state": state, "param_groups": data["param_groups"]}


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:07d}.safetensors"


def checkpoint_step(path: Path) -> int:
    """The step of a :func:`checkpoint_path` file, from its name."""
    return int(Path(path).stem.removeprefix("step_"))


def list_checkpoints(run_dir: Path) -> list[Path]:
    return sorted((Path(run_dir) / CHECKPOINT_DIR).glob("step_*.safetensors"))


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def remove_stale_temp_files(run_dir: Path) -> None:
    """Delete half-written checkpoints left by a process that was killed
    mid-write (SIGKILL cannot be caught); finished ones are never touched."""
    for stale in (Path(run_dir) / CHECKPOINT_DIR).glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints."""
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


def export_model(generator: Generator, out_dir: Path, half: bool = False, info: dict[str, str] | None = None) -> Path:
    """Write ``out_dir/model.safetensors`` + ``out_dir/config.json`` for inference."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = generator.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    model_json = json.dumps(to_dict(generator.config))
    metadata = {"format": "semstyle-model", "model_config": model_json, **(info or {})}
    path = atomic_save_safetensors(prefixed("generator", state), out_dir / MODEL_FILE, metadata)
    config_tmp = out_dir / ".config.json.tmp"
    config_tmp.write_text(json.dumps({"model": to_dict(generator.config), **(info or {})}, indent=2) + "\n")
    os.replace(config_tmp, out_dir / "config.json")
    return path


def average_generators(files: list[Path], device: str | torch.device = "cpu") -> tuple[Generator, dict[str, str]]:
    """One generator whose weights are the mean of several checkpoints' (Polyak averaging).

    Adversarial training never settles on a point: the generator circles around a good
    solution, and 250 steps apart its checkpoints differ visibly in how strongly they stylize.
    The mean of the last few is a steadier model than any one of them (Yazici et al., "The
    Unusual Effectiveness of Averaging in GAN Training", ICLR 2019), at no training cost.
    Returns the generator and the metadata of the newest file."""
    if not files:
        raise WeightsError("no checkpoints to average")
    generators = [load_generator(f, device) for f in files]
    first, metadata = generators[0][0], generators[-1][1]
    if any(g.config != first.config for g, _ in generators):
        raise WeightsError("cannot average checkpoints of different model configurations")
    states = [g.state_dict() for g, _ in generators]
    mean = {k: torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else states[-1][k]
            for k, v in states[0].items()}
    first.load_state_dict(mean)
    return first, metadata


def resolve_model_file(path: str | Path) -> Path:
    """A run directory means its latest checkpoint; a model directory its model.safetensors."""
    path = Path(path)
    if path.is_dir():
        if (path / MODEL_FILE).is_file():
            return path / MODEL_FILE
        latest = latest_checkpoint(path)
        if latest is None:
            raise WeightsError(f"{path} holds no {MODEL_FILE} and no checkpoints/step_*.safetensors")
        return latest
    if not path.is_file():
        raise WeightsError(f"model not found: {path}")
    return path


EMA_PREFIX = "generator_ema"
"""Checkpoint tensors of the generator's moving average (``ema_decay`` > 0), next to ``generator``."""


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> tuple[Generator, dict[str, str]]:
    """Load a generator from a model file/dir, a checkpoint or a run directory.

    A checkpoint with a moving average of the weights (``ema_decay``) gives the average, the
    model to use; ``metadata["weights"]`` then says ``"ema"``."""
    file = resolve_model_file(path)
    # a checkpoint also holds D and optimizers: read only the generator tensors to use
    tensors, metadata = read_safetensors(file, prefix=EMA_PREFIX + ".")
    if tensors:
        tensors, metadata = prefixed("generator", unprefixed(EMA_PREFIX, tensors)), {**metadata, "weights": "ema"}
    else:
        tensors, metadata = read_safetensors(file, prefix="generator.")
    config_text = metadata.get("model_config")
    if config_text is None and (file.parent / "config.json").is_file():
        config_text = json.dumps(json.loads((file.parent / "config.json").read_text())["model"])
    if config_text is None:
        raise WeightsError(f"{file} has no model configuration; it is not a semstyle model")
    generator = Generator(from_dict(ModelConfig, json.loads(config_text)))
    state = {k: v.float() for k, v in unprefixed("generator", tensors).items()}
    try:
        generator.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsError(f"{file} does not fit its configuration: {str(exc).splitlines()[0]}") from None
    return generator.to(device).eval(), metadata
