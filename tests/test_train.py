"""Training: losses logged, checkpoints, exact resume, SIGKILL, Ctrl-C, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from semstyle import checkpoints as ckpt
from semstyle.config import LossConfig, ModelConfig, TrainConfig
from semstyle.errors import ConfigError
from semstyle.nn.discriminator import MultiScaleDiscriminator
from semstyle.nn.generator import Generator
from semstyle.tensorfile import read_tensors
from semstyle.train.data import ImageBank
from semstyle.train.loop import train
from semstyle.train.trainer import EMA, Trainer, validate

from .helpers import data_dir, make_image_folder

TINY_MODEL = ModelConfig(style_dim=16, decoder_width=32, disc_channels=8, disc_scales=2)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    content = make_image_folder(data_dir("content"), root / "content", 3)
    styles = make_image_folder(data_dir("styles"), root / "styles", 3)
    return content, styles


def tiny_config(folders, out: Path, steps: int, **changes) -> TrainConfig:
    content, styles = folders
    values = dict(content_dir=str(content), styles_dir=str(styles), out=str(out), steps=steps, size=32,
                  batch_size=2, checkpoint_every=2, sample_every=2, log_every=1, model=TINY_MODEL)
    values.update(changes)
    return TrainConfig(**values)


def generator_state(path: Path) -> dict[str, torch.Tensor]:
    tensors, _ = read_tensors(path)
    return ckpt.unprefixed("generator", tensors)


def test_training_logs_losses_and_writes_checkpoints_and_samples(folders, tmp_path):
    last = train(tiny_config(folders, tmp_path / "run", 4, keep_checkpoints=1), progress=False)
    assert last == ckpt.checkpoint_path(tmp_path / "run", 4)
    assert ckpt.list_checkpoints(tmp_path / "run") == [last]  # older ones pruned
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    for key in ("d_loss", "g_loss", "content", "style", "adv", "identity"):
        assert all(key in r and r[key] == r[key] for r in records)
    assert sorted(p.name for p in (tmp_path / "run" / "samples").glob("*.png")) == [
        "step_0000002.png", "step_0000004.png"]
    assert any((tmp_path / "run" / "tensorboard").iterdir())
    assert json.loads((tmp_path / "run" / "config.json").read_text())["steps"] == 4


@pytest.mark.slow
def test_generator_learns_on_a_fixed_batch(folders, tmp_path):
    """Loss terms must fall when training: the parts are wired together."""
    config = tiny_config(folders, tmp_path / "run", 30, checkpoint_every=100, sample_every=100, lr_g=1e-3)
    train(config, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    first = sum(r["identity"] for r in records[:5]) / 5
    last = sum(r["identity"] for r in records[-5:]) / 5
    assert last < first


def test_resume_continues_exactly(folders, tmp_path):
    straight = train(tiny_config(folders, tmp_path / "a", 4), progress=False)
    train(tiny_config(folders, tmp_path / "b", 2), progress=False)
    resumed = train(tiny_config(folders, tmp_path / "b", 4), resume=True, progress=False)
    a, b = generator_state(straight), generator_state(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("kind", ["bce", "nonsat", "hinge"])
def test_each_adversarial_kind_trains(folders, tmp_path, kind):
    loss = LossConfig(adv_kind=kind, r1_weight=1.0 if kind == "hinge" else 0.0, tv_weight=0.1)
    train(tiny_config(folders, tmp_path / kind, 1, loss=loss), progress=False)
    record = json.loads((tmp_path / kind / "log.jsonl").read_text().splitlines()[-1])
    assert "adv" in record and "d_adv" in record
    if kind == "hinge":
        assert record["d_r1"] >= 0 and "tv" in record


def test_no_adversarial_ablation_trains_no_discriminator(folders, tmp_path):
    """adv_weight 0 is the ablation of issue 4: G learns from content and
    style alone, and D is neither run nor updated."""
    last = train(tiny_config(folders, tmp_path / "run", 2, loss=LossConfig(adv_weight=0.0)), progress=False)
    record = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert "adv" not in record and "d_loss" not in record and record["style"] > 0
    torch.manual_seed(0)  # D as the Trainer initialises it: seed, then G, then D
    Generator(TINY_MODEL)
    initial = MultiScaleDiscriminator(TINY_MODEL)
    trained = ckpt.unprefixed("discriminator", read_tensors(last)[0])
    for key, value in initial.state_dict().items():
        assert torch.equal(value, trained[key]), key


def test_ema_is_a_moving_average_with_warm_up():
    torch.manual_seed(0)
    generator = Generator(TINY_MODEL)
    ema = EMA(generator, decay=0.9)
    name, start = next(iter(generator.state_dict().items()))
    start = start.clone()
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(1.0)
    ema.update(generator)                       # first update: decay min(0.9, 2/11)
    expected = start + (1 - 2 / 11) * 1.0
    assert torch.allclose(ema.model.state_dict()[name], expected, atol=1e-6)
    for _ in range(200):
        ema.update(generator)                   # converges to the (now constant) weights
    assert torch.allclose(ema.model.state_dict()[name], start + 1.0, atol=1e-4)
    assert not any(p.requires_grad for p in ema.model.parameters())
    with pytest.raises(ConfigError, match="ema_decay"):
        EMA(generator, decay=1.0)


def test_ema_weights_are_checkpointed_resumed_and_exported(folders, tmp_path):
    """With ema_decay the checkpoint holds the average next to the raw weights, resume
    continues it exactly, and loading a checkpoint (stylize, export) gives the average."""
    straight = train(tiny_config(folders, tmp_path / "a", 4, ema_decay=0.9), progress=False)
    train(tiny_config(folders, tmp_path / "b", 2, ema_decay=0.9), progress=False)
    resumed = train(tiny_config(folders, tmp_path / "b", 4, ema_decay=0.9), resume=True, progress=False)
    a, b = (ckpt.unprefixed(ckpt.EMA_PREFIX, read_tensors(p)[0]) for p in (straight, resumed))
    assert a.keys() == generator_state(straight).keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    loaded, metadata = ckpt.load_generator(straight)
    assert metadata["weights"] == "ema"
    raw = generator_state(straight)
    assert all(torch.equal(v, a[k]) for k, v in loaded.state_dict().items())
    assert any(not torch.equal(raw[k], a[k]) for k in a)
    with pytest.raises(ConfigError, match="ema_decay"):
        validate(tiny_config(folders, tmp_path, 1, ema_decay=1.5))


def test_existing_run_is_not_overwritten_without_resume(folders, tmp_path):
    train(tiny_config(folders, tmp_path / "run", 2), progress=False)
    before = ckpt.latest_checkpoint(tmp_path / "run").read_bytes()
    with pytest.raises(ConfigError, match="already holds checkpoints; resume"):
        train(tiny_config(folders, tmp_path / "run", 4), progress=False)
    assert ckpt.latest_checkpoint(tmp_path / "run").read_bytes() == before


@pytest.mark.slow
def test_resume_rewrites_log_from_the_checkpoint(folders, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(folders, run, 3, checkpoint_every=2), progress=False)  # checkpoints at 2 and 3
    (run / "checkpoints" / "step_0000003.safetensors").unlink()  # as if killed before step 3's checkpoint
    train(tiny_config(folders, run, 4), resume=True, progress=False)
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_bad_settings_are_rejected_before_work(folders, tmp_path):
    with pytest.raises(ConfigError, match="adv_kind"):
        validate(tiny_config(folders, tmp_path, 1, loss=LossConfig(adv_kind="wgan")))
    with pytest.raises(ConfigError, match="multiple of 8"):
        validate(tiny_config(folders, tmp_path, 1, size=30))


def test_image_bank_crops_are_deterministic_per_seed(folders):
    bank = ImageBank(folders[0], 32)
    first = bank.batch(3, torch.Generator().manual_seed(5))
    again = bank.batch(3, torch.Generator().manual_seed(5))
    other = bank.batch(3, torch.Generator().manual_seed(6))
    assert first.shape == (3, 3, 32, 32)
    assert torch.equal(first, again) and not torch.equal(first, other)


def _cli_train(folders, out: Path, steps: int, *extra: str) -> list[str]:
    content, styles = folders
    return [sys.executable, "-m", "semstyle.cli", "train", "--content", str(content), "--styles", str(styles),
            "--out", str(out), "--steps", str(steps), "--size", "32", "--batch-size", "2", "--no-progress",
            "--set", "checkpoint_every=1", "--set", "log_every=1", "--set", "model.decoder_width=32",
            "--set", "model.style_dim=16", "--set", "model.disc_channels=8", "--set", "threads=1", *extra]


def _wait_for_checkpoint(run: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not ckpt.list_checkpoints(run):
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.2)


@pytest.mark.slow
def test_sigkill_then_resume_finishes(folders, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(_cli_train(folders, run, 200), stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(run, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = int(read_tensors(ckpt.latest_checkpoint(run))[1]["step"])
    assert killed_at < 200
    result = subprocess.run(_cli_train(folders, run, killed_at + 2, "--resume"), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert not list((run / "checkpoints").glob(".*.tmp"))  # a write cut by the kill is cleaned up
    _, metadata = read_tensors(ckpt.latest_checkpoint(run))
    assert int(metadata["step"]) == killed_at + 2


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_exits_130(folders, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(_cli_train(folders, run, 10_000, "--set", "checkpoint_every=1000"),
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "log.jsonl").exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "--resume" in stderr and "Traceback" not in stderr
    assert ckpt.latest_checkpoint(run) is not None


@pytest.mark.slow
def test_ddp_with_two_cpu_processes(folders, tmp_path):
    pytest.importorskip("torch.distributed")
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
               "-m", "semstyle.cli", *_cli_train(folders, run, 2)[3:]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    _, metadata = read_tensors(ckpt.latest_checkpoint(run))
    assert metadata["step"] == "2"
    assert len((run / "log.jsonl").read_text().splitlines()) == 2  # only rank 0 logs


# --------------------------------------------------------------------------
# The temporal term (video stability) and fine-tuning
# --------------------------------------------------------------------------

def test_identity_warp_changes_nothing_and_small_warps_move_pixels():
    from semstyle.train.temporal import apply_warps, random_warps

    image = torch.rand(2, 3, 32, 40)
    identity = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(2, 2, 3)
    same, valid = apply_warps(image, identity)
    assert torch.allclose(same, image, atol=1e-5) and bool(valid.all())
    warps = random_warps(2, torch.Generator().manual_seed(0))
    moved, valid = apply_warps(image, warps)
    assert not torch.allclose(moved, image, atol=1e-2)
    assert 0.7 < float(valid.mean()) < 1.0  # a border comes in from outside, most stays
    assert torch.equal(warps, random_warps(2, torch.Generator().manual_seed(0)))  # from the step's generator


def test_temporal_loss_by_hand():
    from semstyle.nn.losses import temporal_loss

    a = torch.zeros(1, 3, 2, 2)
    b = torch.ones(1, 3, 2, 2)
    valid = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    assert float(temporal_loss(a, a, valid)) == 0.0
    assert float(temporal_loss(a, b, valid)) == pytest.approx(1.0)  # mean over the valid half


def test_training_with_the_temporal_term_logs_it(folders, tmp_path):
    last = train(tiny_config(folders, tmp_path / "run", 2, loss=LossConfig(temporal_weight=5.0)), progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all("temporal" in r and r["temporal"] >= 0 for r in records)
    assert last.is_file()


def test_a_finetune_can_keep_the_style_space_fixed(folders, tmp_path):
    """freeze = style_encoder, injection: after real steps those parts are the model's, bit for bit
    (vectors stay valid for the fast model distilled in that space); the decoder has learned."""
    from .models_fixture import tiny_model_dir

    model = tiny_model_dir(tmp_path / "model", seed=5)
    start, _ = ckpt.load_generator(model)
    config = tiny_config(folders, tmp_path / "run", 2, init_model=str(model), freeze=("style_encoder", "injection"))
    trainer = Trainer(config)
    for step in (1, 2):
        trainer.train_step(step)
    before, after = start.state_dict(), trainer.generator.state_dict()
    frozen = [k for k in after if k.startswith(("style_encoder.", "injection."))]
    assert frozen and all(torch.equal(after[k], before[k]) for k in frozen)
    assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith("decoder."))
    for bad, needle in [(dict(freeze=("decoder",)), "'decoder' cannot be frozen"),
                        (dict(freeze=("injection",), init_model=""), "set init_model")]:
        with pytest.raises(ConfigError, match=needle):
            Trainer(tiny_config(folders, tmp_path / "bad", 1, **{"init_model": str(model), **bad}))


def test_finetune_starts_from_the_models_weights(folders, tmp_path):
    from .models_fixture import tiny_model_dir

    model = tiny_model_dir(tmp_path / "model", seed=5)
    config = tiny_config(folders, tmp_path / "run", 1, init_model=str(model))
    trainer = Trainer(config)
    expected, _ = ckpt.load_generator(model)
    assert all(torch.equal(v, expected.state_dict()[k]) for k, v in trainer.generator.state_dict().items())
    with pytest.raises(ConfigError, match="other model settings.*decoder_width"):
        Trainer(
            tiny_config(folders, tmp_path / "run2", 1, init_model=str(model),
                        model=ModelConfig(style_dim=16, decoder_width=64, disc_channels=8)))
