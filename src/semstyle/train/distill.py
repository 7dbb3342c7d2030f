"""Distillation: train the fast model to reproduce a teacher model (``TrainConfig.teacher``).

The student is a :class:`~semstyle.nn.generator.Generator` with the light encoder and decoder
(:mod:`semstyle.nn.light`). It takes the teacher's style encoder and injection, frozen, so
both models read the same style vectors; only the light encoder and decoder learn:

* the light encoder's features onto VGG's relu3_1 of the same photo, and the features after
  injection onto the teacher's (what each decoder actually reads), in relative squared error;
* the student's image onto the teacher's, in L1 and in L1 of the image gradients (edges), and
  (``distill_perceptual_weight``) in VGG's early features (the strokes), and
  (``distill_gram_weight``) in their Gram matrices (the kind of strokes, wherever they are).

Photos suffice: the styles are vectors of crops of the training paintings at several scales,
of the photos themselves (the identity end of the strength slider), and random mixes of two
(the blends users make), all encoded once at the start. No discriminator is involved: the
teacher's output already is the adversarially trained look.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .. import checkpoints as ckpt
from ..config import TrainConfig
from ..devices import resolve_precision
from ..errors import ConfigError
from ..nn.generator import LIGHT_TAP, Generator
from ..nn.losses import gram_style_loss, relative_mse
from .state import load_state, save_state, step_generator, warm_up
from .trainer import EMA, save_sample_grid, setup_runtime, training_inputs, validate

CROPS_PER_PAINTING = 12
CROPS_PER_PHOTO = 2
PHOTO_STYLE_SHARE = 0.15  # of samples whose style is a photo's own vector (strength near 0)
MIX_SHARE = 0.5  # of samples whose style is a random mix of two vectors
ENCODE_BATCH = 8
PERCEPTUAL_LAYERS = ("relu1_1", "relu2_1", "relu3_1")
GRAM_LAYERS = ("relu1_2", "relu2_2", "relu3_1")
STUDENT_PARTS = ("content_encoder.", "decoder.")
"""Prefixes of the tensors distillation trains (the light encoder and decoder)."""


def edge_l1(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical image differences: sharp edges, not only right colours."""
    dx = (student[..., :, 1:] - student[..., :, :-1]) - (teacher[..., :, 1:] - teacher[..., :, :-1])
    dy = (student[..., 1:, :] - student[..., :-1, :]) - (teacher[..., 1:, :] - teacher[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()


class Distiller:
    """The fast model's training: the same interface to the loop as :class:`~semstyle.train.trainer.Trainer`."""

    def __init__(self, config: TrainConfig):
        validate_distillation(config)
        self.config = config
        self.runtime = setup_runtime(config)
        self.device = self.runtime.device
        self.run_dir = Path(config.out)
        self.step = 0
        self.content, self.styles, self.encoder = training_inputs(config, self.device)
        self.teacher, _ = ckpt.load_generator(config.teacher, self.device)
        self.teacher.requires_grad_(False)
        torch.manual_seed(config.seed)
        self.generator = Generator(config.model).to(self.device)
        self.started_fresh: list[str] = []  # the student's tensors init_model had no match for
        if config.init_model:
            self._start_student_from(config.init_model)
        self._share_style_space()
        trainable = [p for p in self.generator.parameters() if p.requires_grad]
        self.opt_g = torch.optim.Adam(trainable, lr=config.lr_g, betas=config.betas)
        self.ema = EMA(self.generator, config.ema_decay) if config.ema_decay > 0 else None
        # bfloat16 only where the hardware runs it natively: emulated (a CPU without AVX-512 BF16
        # or AMX) the style bank alone took over ten minutes instead of one
        self.amp = config.amp and resolve_precision("auto", self.device) == torch.bfloat16
        self.style_bank = self._encode_style_bank()

    def _share_style_space(self) -> None:
        """The teacher's style encoder and injection, frozen: one style-vector space for both models."""
        teacher, student = self.teacher.config, self.generator.config
        for name in ("style_dim", "style_layers", "content_layer"):
            if getattr(teacher, name) != getattr(student, name):
                raise ConfigError(f"model.{name} must be the teacher's ({getattr(teacher, name)!r}) to distil it")
        for part in ("style_encoder", "injection"):
            mine = getattr(self.generator, part)
            mine.load_state_dict(getattr(self.teacher, part).state_dict())
            mine.requires_grad_(False)

    def _start_student_from(self, model: str) -> None:
        """The light encoder and decoder start from an earlier fast model (``init_model``): a new
        teacher's student need not relearn VGG's relu3_1 (the encoder's target does not depend on
        the teacher) nor most of the decoder. Every tensor whose name and shape match is taken; the
        rest (a decoder stage the new architecture changed) starts fresh. The style encoder and
        injection still come from the teacher. A wider decoder of the same layout is grown from the
        earlier one (:meth:`~semstyle.nn.generator.Generator.widen_decoder_from`)."""
        earlier, _ = ckpt.load_generator(model, self.device)
        if earlier.config.content_encoder != "light" or earlier.config.decoder != "light":
            raise ConfigError(f"init_model {model} is not a fast (light) model, so it cannot start the student")
        mine = {name: t for name, t in self.generator.state_dict().items() if name.startswith(STUDENT_PARTS)}
        taken = {name: tensor for name, tensor in earlier.state_dict().items()
                 if name in mine and mine[name].shape == tensor.shape}
        if not taken:
            raise ConfigError(f"init_model {model} shares no layer with this student's architecture")
        self.generator.load_state_dict(taken, strict=False)
        if self.generator.widen_decoder_from(earlier, torch.Generator().manual_seed(self.config.seed + 29)):
            taken.update({name: t for name, t in mine.items() if name.startswith("decoder.")})
        self.started_fresh = sorted(name for name in mine if name not in taken)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    @torch.no_grad()
    def _encode_style_bank(self) -> torch.Tensor:
        """Style vectors of random crops of every painting and of some photos, encoded once:
        (M, D), the photos' last, ``self.photo_vectors`` of them."""
        rng = torch.Generator().manual_seed(self.config.seed + 17)
        vectors = []
        for bank, crops in ((self.styles, CROPS_PER_PAINTING), (self.content, CROPS_PER_PHOTO)):
            total = len(bank.images) * crops
            for start in range(0, total, ENCODE_BATCH):
                images = bank.batch(min(ENCODE_BATCH, total - start), rng).to(self.device)
                with self._autocast():
                    feats = self.encoder(images, self.teacher.config.style_layers)
                vectors.append(self.teacher.style_vector(feats).float())
        self.photo_vectors = len(self.content.images) * CROPS_PER_PHOTO
        return torch.cat(vectors)

    def sample_styles(self, count: int, rng: torch.Generator) -> torch.Tensor:
        """(count, D): paintings' vectors, photos' own, and mixes of two."""
        paintings = len(self.style_bank) - self.photo_vectors
        picks = torch.randint(paintings, (count,), generator=rng)
        photo = torch.rand(count, generator=rng) < PHOTO_STYLE_SHARE
        picks[photo] = paintings + torch.randint(self.photo_vectors, (int(photo.sum()),), generator=rng)
        vectors = self.style_bank[picks]
        others = self.style_bank[torch.randint(paintings, (count,), generator=rng)]
        mix = (torch.rand(count, generator=rng) < MIX_SHARE).float() * torch.rand(count, generator=rng)
        return torch.lerp(vectors, others, mix[:, None].to(vectors.device))

    def step_rng(self, step: int) -> torch.Generator:
        return step_generator(self.config.seed, step)

    def train_step(self, step: int) -> dict[str, float]:
        cfg, loss_cfg = self.config, self.config.loss
        warm_up(self.opt_g, cfg.lr_g, step, cfg.warmup_steps)
        rng = self.step_rng(step)
        content = self.content.batch(cfg.batch_size, rng).to(self.device)
        styles = self.sample_styles(cfg.batch_size, rng)
        with torch.no_grad(), self._autocast():
            teacher_feats = self.encoder(content, (cfg.model.content_layer,))
            target = self.teacher.run(teacher_feats, styles)
        tap = self.generator.content_tap
        with self._autocast():
            feats = self.generator.features(self.encoder, content, (tap,))
            result = self.generator.run(feats, styles)
        image, wanted = result.image.float(), target.image.float()
        features = relative_mse(result.injected.float(), target.injected.float())
        if tap == LIGHT_TAP:
            features = features + relative_mse(feats[tap].float(), teacher_feats[cfg.model.content_layer].float())
        terms = {
            "features": features,
            "pixels": (image - wanted).abs().mean(),
            "edges": edge_l1(image, wanted),
        }
        total = (loss_cfg.distill_feature_weight * terms["features"] + terms["pixels"]
                 + loss_cfg.distill_edge_weight * terms["edges"])
        for name, term in self._texture_terms(image, wanted).items():
            terms[name] = term
            total = total + getattr(loss_cfg, f"distill_{name}_weight") * term
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.generator.parameters(), cfg.grad_clip)
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update(self.generator)
        self.last_batch = (content, wanted.detach(), image.detach())
        return {"g_loss": total.item(), **{k: v.item() for k, v in terms.items()}}

    def _texture_terms(self, image: torch.Tensor, wanted: torch.Tensor) -> dict[str, torch.Tensor]:
        """The terms read in VGG's early layers of the student's and the teacher's images, from one
        VGG pass each:

        * ``perceptual``: relative squared error position by position (relu1_1..relu3_1). Pixel L1
          alone lets the student blur the teacher's strokes into their average colour, which the
          style metrics (Gram matrices of these very layers) read as lost style.
        * ``gram``: relative Gram-matrix error (relu1_2, relu2_2, relu3_1; the first two are the
          style metric's own layers, and all three lie on the way to relu3_1, so they cost no
          extra VGG layer). Where a small student cannot put every stroke where the teacher did,
          this still asks for strokes of the same kind, instead of their position-wise average."""
        weights = self.config.loss
        wanted_terms = {name: layers for name, layers in (("perceptual", PERCEPTUAL_LAYERS), ("gram", GRAM_LAYERS))
                        if getattr(weights, f"distill_{name}_weight") > 0}
        if not wanted_terms:
            return {}
        taps = sorted({tap for layers in wanted_terms.values() for tap in layers})
        with torch.no_grad(), self._autocast():
            reference = self.encoder(wanted.clamp(0, 1), taps)
        with self._autocast():
            mine = self.encoder(image, taps)
        mine = {tap: feat.float() for tap, feat in mine.items()}
        reference = {tap: feat.float() for tap, feat in reference.items()}
        terms = {}
        if "perceptual" in wanted_terms:
            terms["perceptual"] = sum(relative_mse(mine[t], reference[t]) for t in PERCEPTUAL_LAYERS)
        if "gram" in wanted_terms:
            terms["gram"] = gram_style_loss(mine, reference, GRAM_LAYERS)
        return terms

    # -- checkpoints (train.state: the Trainer's format, which load_generator and export read) --

    def _checkpointed(self) -> tuple[dict[str, torch.nn.Module], dict[str, torch.optim.Optimizer]]:
        """The network and optimizer a checkpoint holds (no discriminator), by their names in the file."""
        return {"generator": self.generator}, {"optim_g": self.opt_g}

    def save_checkpoint(self) -> Path:
        return save_state(self.run_dir, self.step, self.config, *self._checkpointed(), self.ema,
                          {"kind": "distillation"})

    def load_checkpoint(self, path: Path) -> None:
        self.step, _ = load_state(path, *self._checkpointed(), self.ema, kind="distillation")

    def save_samples(self) -> Path:
        """A grid with one row per image: photo | teacher | student."""
        return save_sample_grid(self.run_dir, self.step, self.last_batch)


def validate_distillation(config: TrainConfig) -> None:
    """The Trainer's checks (a light student goes with a teacher), and one process."""
    validate(config)
    if not config.teacher:
        raise ConfigError("distillation needs a teacher model (teacher = ...)")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("distillation runs in one process; start it without torchrun")
