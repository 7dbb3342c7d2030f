"""The shipped "balanced" model: the default model's style encoder, injection and decoder fed by
the fast model's light encoder instead of VGG (scripts/make_balanced_model.py; its quality and
speed are in MODEL_CARD.md). No training made it, so the tests check the composition itself."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from semstyle import Stylizer
from semstyle.checkpoints import load_generator
from semstyle.config import SHIPPED_MODELS
from semstyle.nn.generator import LIGHT_TAP, Decoder
from semstyle.pipeline.engine import default_model_path
from tests.helpers import data_dir


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].half(), b[k].half()) for k in a)


def test_balanced_is_the_default_decoder_on_the_fast_encoder():
    assert "balanced" in SHIPPED_MODELS
    (balanced, _), (default, _), (fast, _) = (load_generator(default_model_path(n))
                                              for n in ("balanced", "default", "fast"))
    assert isinstance(balanced.decoder, Decoder) and balanced.content_tap == LIGHT_TAP
    for part in ("style_encoder", "injection", "decoder"):
        assert _same(getattr(balanced, part).state_dict(), getattr(default, part).state_dict()), part
    assert _same(balanced.content_encoder.state_dict(), fast.content_encoder.state_dict())


def test_the_script_rebuilds_the_shipped_file(tmp_path):
    from scripts import make_balanced_model

    assert make_balanced_model.main(["-o", str(tmp_path / "balanced")]) == 0
    (rebuilt, _), (shipped, _) = load_generator(tmp_path / "balanced"), load_generator(default_model_path("balanced"))
    assert _same(rebuilt.state_dict(), shipped.state_dict())


def test_balanced_stylizes_a_photo_by_name():
    photo = Image.open(data_dir("content") / "tubingen.jpg").convert("RGB")
    photo.thumbnail((160, 160))
    painting = data_dir("styles") / "starry_night.jpg"
    out = Stylizer("balanced").stylize(photo, painting)
    assert out.size == photo.size
    diff = np.abs(np.asarray(out, dtype=float) - np.asarray(photo, dtype=float)).mean()
    assert diff > 10  # painted, not the photo back
