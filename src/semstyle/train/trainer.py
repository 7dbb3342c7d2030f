"""One training step and the state around it: models, optimizers, EMA, checkpoints.

One step (see :meth:`Trainer.train_step`):

1. VGG features of a batch of content photos and a batch of paintings.
2. The generator's one forward pass stylizes the photos with the paintings' style vectors.
3. Discriminator update: paintings are real, stylized photos are fake.
4. Generator update: content + style + adversarial (+ style code, identity,
   TV) losses.

All randomness of a step (which images, crops, flips) comes from a generator
seeded with (seed, step, rank), so a resumed run sees exactly the batches the
uninterrupted run would have seen. Works on CPU, on CUDA with mixed precision,
and under ``torchrun`` with DistributedDataParallel.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .. import checkpoints as ckpt
from ..config import LossConfig, TrainConfig, to_dict
from ..devices import pick_device
from ..errors import ConfigError
from ..io.tensors import tensor_to_image
from ..io.write import save_image
from ..nn import losses
from ..nn.colour import colour_distribution_loss, histogram_loss
from ..nn.discriminator import MultiScaleDiscriminator
from ..nn.generator import Generator
from ..weights import load_encoder
from .augment import augment_styles
from .data import ImageBank
from .state import load_state, save_state, step_generator, warm_up
from .temporal import apply_warps, noisy, random_warps


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_runtime(config: TrainConfig) -> Runtime:
    """Pick the device; join the process group when started by torchrun."""
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(config.device)
    if world_size == 1:
        return Runtime(device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device(f"cuda:{local_rank}")
        torch.cuda.set_device(device)
    return Runtime(device, rank, world_size)


class GeneratorStep(nn.Module):
    """The generator's whole training forward in one ``forward`` call, so
    DistributedDataParallel sees (and synchronises) every parameter."""

    def __init__(self, generator: Generator, with_identity: bool):
        super().__init__()
        self.generator = generator
        self.with_identity = with_identity

    def forward(self, content_feats: dict[str, torch.Tensor], style_feats: dict[str, torch.Tensor],
                warped_feats: dict[str, torch.Tensor] | None = None) -> GeneratorOutputs:
        g = self.generator
        style_vec = g.style_vector(style_feats)
        result = g.run(content_feats, style_vec)
        reconstruction = g(content_feats, g.style_vector(content_feats)) if self.with_identity else None
        of_warped = g(warped_feats, style_vec) if warped_feats is not None else None
        return GeneratorOutputs(result.image, result.injected, reconstruction, style_vec,
                                result.target_mean[:, 0], result.target_std[:, 0], of_warped)


class EMA:
    """An exponential moving average of the generator's weights, the model to ship.

    Adversarial training never settles: the generator circles around a good solution, and
    checkpoints 250 steps apart of the default run range from 0.45 to 0.57 in benchmark style
    distance (MODEL_CARD.md). The average over the last few thousand steps is steadier than any
    one of them (the EMA generators of ProGAN/StyleGAN; Yazici et al., ICLR 2019). Early on the
    decay is lowered to (1 + n) / (10 + n) after n updates, so the average is not dominated by
    the random initial weights."""

    def __init__(self, generator: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"ema_decay must be between 0 and 1 (exclusive), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(generator).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, generator: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, current in zip(self.model.state_dict().values(), generator.state_dict().values()):
            if average.is_floating_point():
                average.lerp_(current.detach(), 1.0 - decay)
            else:
                average.copy_(current)


@dataclass
class GeneratorOutputs:
    """What one generator forward produces for the losses."""

    output: torch.Tensor
    injected: torch.Tensor
    reconstruction: torch.Tensor | None
    style_vec: torch.Tensor
    target_mean: torch.Tensor
    target_std: torch.Tensor
    of_warped: torch.Tensor | None = None  # G of the warped photo, for the temporal term


# --------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------

class Trainer:
    """Owns models, optimizers, data and the loop; saves and resumes checkpoints."""

    def __init__(self, config: TrainConfig, runtime: Runtime | None = None):
        validate(config)
        self.config = config
        self.runtime = runtime or setup_runtime(config)
        self.device = self.runtime.device
        self.run_dir = Path(config.out)
        self.step = 0
        self.content, self.styles, self.encoder = training_inputs(config, self.device)
        torch.manual_seed(config.seed)  # identical initial weights on every rank
        self.generator = Generator(config.model).to(self.device)
        if config.init_model:
            self._start_from(config.init_model)
        for part in config.freeze:
            getattr(self.generator, part).requires_grad_(False)
        self.discriminator = MultiScaleDiscriminator(config.model).to(self.device)
        self.ema = EMA(self.generator, config.ema_decay) if config.ema_decay > 0 else None
        self.g_step = GeneratorStep(self.generator, config.loss.identity_weight > 0)
        self.d_model: nn.Module = self.discriminator
        if self.runtime.world_size > 1:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.g_step = DistributedDataParallel(self.g_step, device_ids=device_ids)
            self.d_model = DistributedDataParallel(self.discriminator, device_ids=device_ids)
        trainable = [p for p in self.generator.parameters() if p.requires_grad]
        self.opt_g = torch.optim.Adam(trainable, lr=config.lr_g, betas=config.betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr_d, betas=config.betas)
        # adv_weight 0 (the no-adversarial ablation) trains no discriminator at all
        self.adversarial = config.loss.adv_weight > 0
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        loss = config.loss
        self.feature_taps = tuple(dict.fromkeys(
            (config.model.content_layer, *config.model.style_layers, *loss.content_layers, *loss.style_layers)))

    def _start_from(self, model: str) -> None:
        """Fine-tuning: the generator starts from a trained model's weights (same architecture)."""
        generator, _ = ckpt.load_generator(model)
        if generator.config != self.config.model:
            mine, theirs = to_dict(self.config.model), to_dict(generator.config)
            differs = sorted(k for k in mine if mine[k] != theirs[k])
            raise ConfigError(f"init_model {model} was built with other model settings ({', '.join(differs)}); "
                              f"set them as the model has them")
        self.generator.load_state_dict(generator.state_dict())

    def _amp_dtype(self) -> torch.dtype | None:
        if not (self.config.amp and self.device.type == "cuda"):
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

    def _autocast(self):
        return torch.autocast("cuda", dtype=self.amp_dtype, enabled=self.amp_dtype is not None) \
            if self.device.type == "cuda" else torch.autocast("cpu", enabled=False)

    # -- one step ----------------------------------------------------------

    def step_rng(self, step: int) -> torch.Generator:
        return step_generator(self.config.seed, step, self.runtime.rank)

    def train_step(self, step: int) -> dict[str, float]:
        cfg = self.config
        warm_up(self.opt_g, cfg.lr_g, step, cfg.warmup_steps)
        warm_up(self.opt_d, cfg.lr_d, step, cfg.warmup_steps)
        rng = self.step_rng(step)
        content = self.content.batch(cfg.batch_size, rng).to(self.device)
        style = augment_styles(self.styles.batch(cfg.batch_size, rng), cfg.style_augment, rng).to(self.device)
        with torch.no_grad(), self._autocast():
            content_feats = self.encoder(content, self.feature_taps)
            style_feats = self.encoder(style, self.feature_taps)
        warped_feats = self._warped_content(content, rng) if cfg.loss.temporal_weight > 0 else None

        with self._autocast():
            g_out = self.g_step(content_feats, style_feats, warped_feats)
        condition = g_out.style_vec.detach()

        d_terms = {}
        if self.adversarial:
            d_terms = self._discriminator_update(style, g_out.output.detach(), condition)
        g_terms = self._generator_update(g_out, content, style, content_feats, style_feats, condition)
        self.last_batch = (content, style, g_out.output.detach())
        return {**d_terms, **g_terms}

    def _warped_content(self, content: torch.Tensor, rng: torch.Generator) -> dict[str, torch.Tensor]:
        """VGG features of the photos moved by a small random warp, with noise (the temporal term)."""
        self.warps = random_warps(content.shape[0], rng)
        warped, self.warp_valid = apply_warps(content, self.warps)
        with torch.no_grad(), self._autocast():
            return self.encoder(noisy(warped, rng), (self.config.model.content_layer,))

    def _discriminator_update(self, real: torch.Tensor, fake: torch.Tensor,
                              condition: torch.Tensor) -> dict[str, float]:
        loss_cfg = self.config.loss
        self.opt_d.zero_grad(set_to_none=True)
        n = real.shape[0]
        use_r1 = loss_cfg.r1_weight > 0
        real_in = real.detach().requires_grad_(use_r1)
        with self._autocast():
            # one forward over real and fake: DDP needs one forward per backward
            logits = self.d_model(torch.cat([real_in, fake.to(real_in.dtype)]), torch.cat([condition, condition]))
            real_logits = [scale[:n].float() for scale in logits]
            fake_logits = [scale[n:].float() for scale in logits]
            d_adv = losses.discriminator_adversarial_loss(real_logits, fake_logits, loss_cfg.adv_kind)
        d_loss = d_adv
        terms = {"d_adv": d_adv.item()}
        if use_r1:
            r1 = losses.r1_penalty(real_logits, real_in)
            d_loss = d_loss + 0.5 * loss_cfg.r1_weight * r1
            terms["d_r1"] = r1.item()
        self.scaler.scale(d_loss).backward()
        self._clip(self.opt_d, self.discriminator)
        self.scaler.step(self.opt_d)
        self.scaler.update()
        terms["d_loss"] = d_loss.item()
        return terms

    def _generator_update(self, g_out: GeneratorOutputs, content, style, content_feats, style_feats,
                          condition) -> dict[str, float]:
        loss_cfg = self.config.loss
        layer = self.config.model.content_layer
        output = g_out.output
        self.opt_g.zero_grad(set_to_none=True)
        # D's weights need no gradient here; DDP, though, expects the same
        # parameters to take part in every backward, so it keeps them.
        freeze_d = self.runtime.world_size == 1
        self.discriminator.requires_grad_(not freeze_d)
        with self._autocast():
            output_feats = self.encoder(output, self.feature_taps)
            fake_logits = [scale.float() for scale in self.d_model(output, condition)] if self.adversarial else None
        output_feats = {k: v.float() for k, v in output_feats.items()}
        content_f = {k: v.float() for k, v in content_feats.items()}
        style_f = {k: v.float() for k, v in style_feats.items()}
        if loss_cfg.content_target == "injected":
            content_term = losses.injected_content_loss(output_feats[layer], g_out.injected.float())
        else:
            content_term = losses.content_loss(output_feats, content_f, loss_cfg.content_layers)
        terms = {
            "content": content_term,
            "style": losses.style_loss(output_feats, style_f, loss_cfg.style_layers, loss_cfg.style_kind),
            "style_code": losses.style_code_loss(g_out.target_mean, g_out.target_std, style_f[layer]),
        }
        weights = {"content": loss_cfg.content_weight, "style": loss_cfg.style_weight,
                   "style_code": loss_cfg.style_code_weight}
        if self.adversarial:
            terms["adv"] = losses.generator_adversarial_loss(fake_logits, loss_cfg.adv_kind)
            weights["adv"] = loss_cfg.adv_weight
        if g_out.reconstruction is not None:
            terms["identity"] = losses.identity_loss(g_out.reconstruction.float(), content)
            weights["identity"] = loss_cfg.identity_weight
        if g_out.of_warped is not None:
            warped_of, _ = apply_warps(output.float(), self.warps)
            terms["temporal"] = losses.temporal_loss(g_out.of_warped.float(), warped_of, self.warp_valid)
            weights["temporal"] = loss_cfg.temporal_weight
        if loss_cfg.colour_weight > 0:
            terms["colour"] = colour_distribution_loss(output.float(), style)
            weights["colour"] = loss_cfg.colour_weight
        if loss_cfg.histogram_weight > 0:
            terms["histogram"] = histogram_loss(output.float(), style)
            weights["histogram"] = loss_cfg.histogram_weight
        if loss_cfg.tv_weight > 0:
            terms["tv"] = losses.total_variation(output.float())
            weights["tv"] = loss_cfg.tv_weight
        g_loss = sum(weights[k] * v for k, v in terms.items())
        self.scaler.scale(g_loss).backward()
        self.discriminator.requires_grad_(True)
        self._clip(self.opt_g, self.generator)
        self.scaler.step(self.opt_g)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update(self.generator)
        return {"g_loss": g_loss.item(), **{k: v.item() for k, v in terms.items()}}

    def _clip(self, optimizer: torch.optim.Optimizer, model: nn.Module) -> None:
        """Cap the gradient norm so that one bad batch cannot throw the weights
        away: the first default-model run, without clipping, diverged
        suddenly at step ~3600 after a style-loss spike."""
        if self.config.grad_clip > 0:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), self.config.grad_clip)

    # -- checkpoints -------------------------------------------------------

    def _checkpointed(self) -> tuple[dict[str, nn.Module], dict[str, torch.optim.Optimizer]]:
        """The networks and optimizers a checkpoint holds, by their names in the file."""
        return ({"generator": self.generator, "discriminator": self.discriminator},
                {"optim_g": self.opt_g, "optim_d": self.opt_d})

    def save_checkpoint(self) -> Path | None:
        """Write the full training state atomically (main process only)."""
        if not self.runtime.is_main:
            return None
        return save_state(self.run_dir, self.step, self.config, *self._checkpointed(), self.ema,
                          {"scaler": json.dumps(self.scaler.state_dict())})

    def load_checkpoint(self, path: Path) -> None:
        self.step, metadata = load_state(path, *self._checkpointed(), self.ema)
        if "scaler" in metadata and self.scaler.is_enabled():
            self.scaler.load_state_dict(json.loads(metadata["scaler"]))

    # -- logging -----------------------------------------------------------

    def save_samples(self) -> Path | None:
        """A grid with one row per image: content | style | output."""
        if not self.runtime.is_main:
            return None
        return save_sample_grid(self.run_dir, self.step, self.last_batch)


def training_inputs(config: TrainConfig, device: torch.device) -> tuple[ImageBank, ImageBank, nn.Module]:
    """What every training run reads: the photos, the paintings and the frozen VGG encoder."""
    content = ImageBank(config.content_dir, config.size)
    styles = ImageBank(config.styles_dir, config.size)
    return content, styles, load_encoder(config.encoder_weights or None).to(device)


def save_sample_grid(run_dir: Path, step: int, columns: tuple[torch.Tensor, ...]) -> Path:
    """``samples/step_N.png``: one row per image (the first 4), one column per batch in ``columns``."""
    parts = [t[:4].float().cpu().clamp(0, 1) for t in columns]
    grid = torch.cat([torch.cat(row, dim=2) for row in zip(*parts)], dim=1)
    path = run_dir / "samples" / f"step_{step:07d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(tensor_to_image(grid), path)
    return path


POSITIVE = ("lr_g", "lr_d")
"""Training options that must be finite and above zero."""

FREEZABLE = ("style_encoder", "injection")
"""Generator parts a fine-tune can keep fixed (``freeze``): kept, the style-vector space stays the
one the fast model was distilled in, so vectors, blends and the shared ONNX style encoder carry over."""


def validate(config: TrainConfig) -> None:
    """Reject bad settings before any expensive work."""
    _check_finite(config, "")
    loss = config.loss
    if loss.adv_kind not in losses.ADVERSARIAL_KINDS:
        raise ConfigError(f"loss.adv_kind must be one of {losses.ADVERSARIAL_KINDS}, got {loss.adv_kind!r}")
    if loss.content_target not in ("injected", "photo"):
        raise ConfigError(f"loss.content_target must be 'injected' or 'photo', got {loss.content_target!r}")
    if loss.style_kind not in losses.STYLE_KINDS:
        raise ConfigError(f"loss.style_kind must be one of {losses.STYLE_KINDS}, got {loss.style_kind!r}")
    for name in fields(LossConfig):
        value = getattr(loss, name.name)
        if isinstance(value, float) and value < 0:
            raise ConfigError(f"loss.{name.name} must be 0 or more, got {value}")
    for name in POSITIVE:
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be above 0, got {getattr(config, name)}")
    if not all(0.0 <= b < 1.0 for b in config.betas):
        raise ConfigError(f"betas must be two numbers from 0 up to (not including) 1, got {list(config.betas)}")
    if config.grad_clip < 0:
        raise ConfigError(f"grad_clip must be 0 (off) or more, got {config.grad_clip}")
    if config.warmup_steps < 0:
        raise ConfigError(f"warmup_steps must be 0 (off) or more, got {config.warmup_steps}")
    if config.size < 32 or config.size % 8:
        raise ConfigError(f"size must be a multiple of 8 and at least 32, got {config.size}")
    if not 0.0 <= config.style_augment <= 1.0:
        raise ConfigError(f"style_augment is a probability from 0 (off) to 1, got {config.style_augment}")
    if not 0.0 <= config.ema_decay < 1.0:
        raise ConfigError(f"ema_decay must be at least 0 and below 1 (0 disables it), got {config.ema_decay}")
    for name in ("steps", "batch_size", "log_every", "sample_every", "checkpoint_every"):
        if getattr(config, name) < 1:
            raise ConfigError(f"{name} must be at least 1, got {getattr(config, name)}")
    light = "light" in (config.model.content_encoder, config.model.decoder)
    if light and not config.teacher:
        raise ConfigError("a light model is trained by distillation from a teacher: set teacher = MODEL")
    if config.teacher and not light:
        raise ConfigError("teacher is for distilling a light model: set model.content_encoder and "
                          "model.decoder to \"light\"")
    unknown = sorted(set(config.freeze) - set(FREEZABLE))
    if unknown:
        raise ConfigError(f"freeze: {', '.join(map(repr, unknown))} cannot be frozen; choose from {list(FREEZABLE)}")
    if config.freeze and not config.init_model:
        raise ConfigError("freeze keeps parts of a trained model: set init_model = MODEL")
    if not config.content_dir or not config.styles_dir:
        raise ConfigError("training needs a content folder and a styles folder")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and loss.r1_weight > 0:
        raise ConfigError("loss.r1_weight > 0 is not supported with several processes; set it to 0 under torchrun")


def _check_finite(config, prefix: str) -> None:
    """NaN and infinity in any number of the config (they would surface as a traceback from Adam)."""
    for field_ in fields(config):
        value = getattr(config, field_.name)
        name = prefix + field_.name
        if hasattr(value, "__dataclass_fields__"):
            _check_finite(value, name + ".")
        values = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
