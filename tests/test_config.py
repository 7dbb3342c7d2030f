"""Config dataclasses: defaults, TOML/dict loading, type checks, overrides, JSON round trip."""

from __future__ import annotations

import json

import pytest

from semstyle.config import (
    STYLE_DIM,
    LossConfig,
    ModelConfig,
    TrainConfig,
    apply_override,
    from_dict,
    load_toml,
    save_json,
    to_dict,
)
from semstyle.errors import ConfigError, SemstyleError

from .helpers import REPO


def test_defaults_build_and_nest():
    cfg = TrainConfig()
    assert isinstance(cfg.model, ModelConfig)
    assert isinstance(cfg.loss, LossConfig)
    assert cfg.model.style_dim == STYLE_DIM
    assert cfg.loss.adv_kind == "bce"
    assert cfg.loss.style_kind == "mean_std"
    assert isinstance(cfg.betas, tuple) and len(cfg.betas) == 2
    # each config gets its own nested objects (default_factory, not a shared instance)
    other = TrainConfig()
    other.model.style_dim = 7
    assert cfg.model.style_dim == STYLE_DIM
    # an empty dict gives the defaults
    assert from_dict(TrainConfig, {}) == TrainConfig()


def test_config_error_is_a_user_error():
    assert issubclass(ConfigError, SemstyleError)


def test_from_dict_with_toml_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'steps = 50\n'
        'lr_g = 1\n'
        'betas = [0.0, 0.99]\n'
        'content_dir = "data/content"\n'
        'amp = false\n'
        '\n'
        '[model]\n'
        'style_dim = 64\n'
        'style_layers = ["relu1_1", "relu3_1"]\n'
        'disc_conditional = false\n'
        '\n'
        '[loss]\n'
        'adv_kind = "hinge"\n'
        'adv_weight = 0.5\n'
        'content_layers = ["relu4_1", "relu5_1"]\n'
    )
    cfg = from_dict(TrainConfig, load_toml(path))
    assert cfg.steps == 50 and isinstance(cfg.steps, int)
    assert cfg.lr_g == 1.0 and isinstance(cfg.lr_g, float)  # TOML int -> float field
    assert cfg.betas == (0.0, 0.99)  # TOML list -> tuple
    assert cfg.content_dir == "data/content"
    assert cfg.amp is False
    assert cfg.model == ModelConfig(style_dim=64, style_layers=("relu1_1", "relu3_1"), disc_conditional=False)
    assert cfg.loss.adv_kind == "hinge"
    assert cfg.loss.adv_weight == 0.5
    assert cfg.loss.content_layers == ("relu4_1", "relu5_1")
    # untouched fields keep their defaults
    assert cfg.size == TrainConfig().size
    assert cfg.loss.style_weight == LossConfig().style_weight


@pytest.mark.parametrize("data, name", [
    ({"stepz": 10}, "stepz"),
    ({"model": {"style_dimension": 8}}, "style_dimension"),
    ({"loss": {"adv_kind": "bce", "gan_kind": "hinge"}}, "gan_kind"),
])
def test_unknown_keys_are_rejected(data, name):
    with pytest.raises(ConfigError, match=name):
        from_dict(TrainConfig, data)


@pytest.mark.parametrize("data, name", [
    ({"steps": "many"}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"lr_g": "fast"}, "lr_g"),
    ({"amp": 1}, "amp"),
    ({"amp": "yes"}, "amp"),
    ({"betas": 0.5}, "betas"),
    ({"model": {"style_layers": "relu1_1"}}, "style_layers"),
    ({"model": {"modulate_decoder": "true"}}, "modulate_decoder"),
    ({"loss": {"adv_weight": [0.5]}}, "adv_weight"),
])
def test_wrong_types_are_rejected(data, name):
    with pytest.raises(ConfigError, match=name):
        from_dict(TrainConfig, data)


def test_integral_float_is_accepted_for_int_option():
    cfg = from_dict(TrainConfig, {"steps": 20.0})
    assert cfg.steps == 20 and isinstance(cfg.steps, int)


def test_bool_is_rejected_for_number_option():
    with pytest.raises(ConfigError, match="steps"):
        from_dict(TrainConfig, {"steps": True})


def test_non_string_is_rejected_for_string_option():
    with pytest.raises(ConfigError, match="adv_kind"):
        from_dict(TrainConfig, {"loss": {"adv_kind": 5}})


def test_section_that_is_not_a_table_is_rejected():
    with pytest.raises(ConfigError, match="model"):
        from_dict(TrainConfig, {"model": 5})


def test_apply_override_parses_values():
    data: dict = {}
    apply_override(data, "loss.adv_weight=0.5")
    apply_override(data, "steps=20")
    apply_override(data, "loss.adv_kind=hinge")  # not valid TOML: taken as a string
    apply_override(data, 'model.style_layers=["relu1_1", "relu2_1"]')
    apply_override(data, "amp=false")
    apply_override(data, 'out="runs/quoted"')
    assert data == {
        "loss": {"adv_weight": 0.5, "adv_kind": "hinge"},
        "steps": 20,
        "model": {"style_layers": ["relu1_1", "relu2_1"]},
        "amp": False,
        "out": "runs/quoted",
    }
    assert isinstance(data["steps"], int) and isinstance(data["loss"]["adv_weight"], float)
    cfg = from_dict(TrainConfig, data)
    assert cfg.loss.adv_weight == 0.5
    assert cfg.loss.adv_kind == "hinge"
    assert cfg.steps == 20
    assert cfg.model.style_layers == ("relu1_1", "relu2_1")
    assert cfg.amp is False
    assert cfg.out == "runs/quoted"


def test_apply_override_on_top_of_toml(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("steps = 5\n[loss]\nadv_weight = 0.1\nstyle_weight = 3.0\n")
    data = load_toml(path)
    apply_override(data, "loss.adv_weight=0.25")
    apply_override(data, "steps=7")
    cfg = from_dict(TrainConfig, data)
    assert (cfg.steps, cfg.loss.adv_weight, cfg.loss.style_weight) == (7, 0.25, 3.0)


@pytest.mark.parametrize("assignment", ["steps", "=5", "  =5", ""])
def test_apply_override_malformed(assignment):
    with pytest.raises(ConfigError):
        apply_override({}, assignment)


def test_apply_override_into_a_non_section():
    data = {"steps": 20}
    with pytest.raises(ConfigError, match="steps"):
        apply_override(data, "steps.inner=1")


def test_override_with_unknown_key_fails_when_built():
    data: dict = {}
    apply_override(data, "loss.adv_wieght=0.5")
    with pytest.raises(ConfigError, match="adv_wieght"):
        from_dict(TrainConfig, data)


def test_load_toml_missing_file(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not found"):
        load_toml(missing)


def test_load_toml_invalid(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("steps = = 3\n[loss\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(path)


def test_save_json_round_trip(tmp_path):
    cfg = TrainConfig(steps=33, betas=(0.1, 0.9), device="cpu",
                      model=ModelConfig(style_dim=16, style_layers=("relu2_1",), disc_scales=3),
                      loss=LossConfig(adv_kind="nonsat", r1_weight=2.5, content_layers=("relu3_1", "relu4_1")))
    path = tmp_path / "config.json"
    save_json(cfg, path)
    raw = json.loads(path.read_text())
    assert raw == json.loads(json.dumps(to_dict(cfg)))
    assert raw["model"]["style_dim"] == 16 and raw["loss"]["adv_kind"] == "nonsat"
    back = from_dict(TrainConfig, raw)
    assert back == cfg
    assert isinstance(back.betas, tuple) and isinstance(back.model.style_layers, tuple)


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.toml")))
def test_every_config_in_the_repository_is_valid(name):
    """configs/*.toml are what people train with: each must build and pass the trainer's checks."""
    from semstyle.config import TrainConfig, from_dict, load_toml
    from semstyle.train.trainer import validate

    validate(from_dict(TrainConfig, load_toml(REPO / "configs" / name)))
