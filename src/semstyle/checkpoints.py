"""Checkpoints and model files, all safetensors (no pickle).

A *training checkpoint* (``RUN_DIR/checkpoints/step_000200.safetensors``)
holds generator, discriminator and both optimizer states as tensors, and the
step, configs and optimizer hyper-parameters as JSON metadata, so ``--resume``
continues exactly. A *model* is what inference needs: the generator's tensors
plus its ``ModelConfig`` (``model.safetensors`` + ``config.json``, also
embedded in the file's metadata). Every file is written atomically
(:mod:`semstyle.files`), and an exported model folder appears whole or not at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .config import ModelConfig, from_dict, to_dict
from .errors import ConfigError, WeightsError
from .files import atomic_write_text, describe_os_error, staged_folder
from .nn.generator import Generator
from .tensorfile import non_finite_tensors, read_tensors, write_tensors

CHECKPOINT_DIR = "checkpoints"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"

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


def write_checkpoint(tensors: dict[str, torch.Tensor], run_dir: Path, step: int, metadata: dict[str, str]) -> Path:
    """Write one training checkpoint atomically (its folder is created)."""
    path = checkpoint_path(run_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_tensors(tensors, path, metadata)


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
    """Write ``out_dir/model.safetensors`` + ``out_dir/config.json`` for inference.

    A new folder is staged next to ``out_dir`` and renamed into place, so a
    failure (full disk, Ctrl-C) leaves no folder at all; an existing model
    folder gets each file replaced atomically. Any other existing path is refused."""
    out_dir = Path(out_dir)
    _check_export_target(out_dir)
    state = generator.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    metadata = {"format": "semstyle-model", "model_config": json.dumps(to_dict(generator.config)), **(info or {})}
    config_text = json.dumps({"model": to_dict(generator.config), **(info or {})}, indent=2) + "\n"
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        if out_dir.is_dir():
            write_tensors(prefixed("generator", state), out_dir / MODEL_FILE, metadata)
            atomic_write_text(out_dir / CONFIG_FILE, config_text)
            return out_dir / MODEL_FILE
        with staged_folder(out_dir) as stage:
            write_tensors(prefixed("generator", state), stage / MODEL_FILE, metadata)
            atomic_write_text(stage / CONFIG_FILE, config_text)
    except OSError as exc:
        raise WeightsError(f"cannot write model folder {out_dir}: {describe_os_error(exc)}") from None
    return out_dir / MODEL_FILE


def _check_export_target(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"cannot export to {out_dir}: a file of that name exists; choose a new folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MODEL_FILE).is_file():
        raise ConfigError(f"cannot export to {out_dir}: the folder is not empty and holds no {MODEL_FILE}; "
                          f"choose a new folder")
    parent = out_dir.parent
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"cannot export to {out_dir}: {parent} is not a folder")


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
    tensors, metadata = read_tensors(file, prefix=EMA_PREFIX + ".")
    if tensors:
        tensors, metadata = prefixed("generator", unprefixed(EMA_PREFIX, tensors)), {**metadata, "weights": "ema"}
    else:
        tensors, metadata = read_tensors(file, prefix="generator.")
    generator = Generator(_model_config(file, metadata))
    state = {k: v.float() for k, v in unprefixed("generator", tensors).items()}
    broken = non_finite_tensors(state)
    if broken:
        raise WeightsError(f"{file} holds NaN or infinite weights ({len(broken)} tensors, e.g. {broken[0]}); "
                           f"the training run diverged or the file is damaged")
    try:
        generator.load_state_dict(state)
    except RuntimeError as exc:
        raise WeightsError(f"{file} does not fit its configuration: {str(exc).splitlines()[0]}") from None
    return generator.to(device).eval(), metadata


def _model_config(file: Path, metadata: dict[str, str]) -> ModelConfig:
    """The model's configuration: embedded in the file, else its folder's config.json."""
    text, source = metadata.get("model_config"), f"{file} (embedded model_config)"
    if text is None:
        config_path = file.parent / CONFIG_FILE
        if not config_path.is_file():
            raise WeightsError(f"{file} has no model configuration (none embedded, no {CONFIG_FILE} beside it); "
                               f"it is not a semstyle model")
        source = str(config_path)
        try:
            data = json.loads(config_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WeightsError(f"cannot read {config_path}: not valid JSON ({str(exc).splitlines()[0]})") from None
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
            raise WeightsError(f"{config_path} has no \"model\" section; it is not a semstyle model config")
        text = json.dumps(data["model"])
    try:
        return from_dict(ModelConfig, json.loads(text))
    except (json.JSONDecodeError, ConfigError, TypeError, ValueError) as exc:
        raise WeightsError(f"bad model configuration in {source}: {str(exc).splitlines()[0]}") from None
