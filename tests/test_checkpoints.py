"""Model files: export, fp16, loading from run dirs, corrupt files."""

from __future__ import annotations

import json

import pytest
import torch

from semstyle.checkpoints import (
    average_generators,
    checkpoint_path,
    export_model,
    flatten_optimizer,
    load_generator,
    unflatten_optimizer,
)
from semstyle.errors import WeightsError
from semstyle.nn.generator import Generator
from semstyle.tensorfile import read_tensors, write_tensors

from .models_fixture import TINY_MODEL, tiny_model_dir


def test_export_and_load_round_trip(tmp_path):
    model_dir = tiny_model_dir(tmp_path / "m")
    generator, metadata = load_generator(model_dir)
    assert metadata["format"] == "semstyle-model"
    assert json.loads((model_dir / "config.json").read_text())["model"]["style_dim"] == TINY_MODEL.style_dim
    torch.manual_seed(0)
    assert generator.config == TINY_MODEL


def test_half_export_is_smaller_and_close(tmp_path):
    torch.manual_seed(0)
    g = Generator(TINY_MODEL)
    full = export_model(g, tmp_path / "full")
    half = export_model(g, tmp_path / "half", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, _ = load_generator(tmp_path / "half")
    for (name, a), b in zip(g.state_dict().items(), loaded.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-2, rtol=1e-2), name


def run_with_checkpoints(run_dir, seeds):
    """A run directory whose checkpoints hold generators initialised with ``seeds``."""
    generators = []
    for step, seed in zip(range(100, 100 * (len(seeds) + 1), 100), seeds):
        torch.manual_seed(seed)
        generators.append(Generator(TINY_MODEL))
        exported = export_model(generators[-1], run_dir / f"tmp_{step}")
        path = checkpoint_path(run_dir, step)
        path.parent.mkdir(parents=True, exist_ok=True)
        exported.rename(path)
    return generators


def test_average_generators_is_the_mean_of_the_weights(tmp_path):
    generators = run_with_checkpoints(tmp_path, [1, 2, 3])
    files = sorted((tmp_path / "checkpoints").glob("*.safetensors"))
    averaged, _ = average_generators(files)
    for name, value in averaged.state_dict().items():
        expected = torch.stack([g.state_dict()[name] for g in generators]).mean(0)
        assert torch.allclose(value, expected, atol=1e-6), name
    with pytest.raises(WeightsError):
        average_generators([])


def test_corrupt_or_foreign_model_files_raise_weights_error(tmp_path):
    garbage = tmp_path / "bad.safetensors"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(WeightsError, match="cannot read"):
        load_generator(garbage)
    foreign = write_tensors({"x": torch.zeros(2)}, tmp_path / "foreign.safetensors", {})
    with pytest.raises(WeightsError, match="not a semstyle model"):
        load_generator(foreign)
    with pytest.raises(WeightsError, match="not found"):
        load_generator(tmp_path / "missing.safetensors")
    with pytest.raises(WeightsError, match="no model.safetensors"):
        load_generator(tmp_path)


def test_optimizer_state_round_trip():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    tensors, text = flatten_optimizer("opt", opt.state_dict())
    restored = unflatten_optimizer("opt", tensors, text)
    fresh = torch.optim.Adam(model.parameters(), lr=1e-3)
    fresh.load_state_dict(restored)
    for pid, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            assert torch.equal(fresh.state_dict()["state"][pid][key], value)


def test_atomic_save_leaves_no_temp_files(tmp_path):
    write_tensors({"x": torch.ones(3)}, tmp_path / "a.safetensors", {"k": "v"})
    tensors, metadata = read_tensors(tmp_path / "a.safetensors")
    assert metadata == {"k": "v"} and torch.equal(tensors["x"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]
