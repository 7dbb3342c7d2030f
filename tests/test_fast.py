"""The fast model: light encoder and decoder, distillation from a teacher, and its use everywhere."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from semstyle import checkpoints as ckpt
from semstyle.config import SHIPPED_MODELS, LossConfig, ModelConfig, TrainConfig
from semstyle.errors import ConfigError
from semstyle.nn.generator import LIGHT_HIDDEN_TAP, LIGHT_TAP, Generator
from semstyle.pipeline.engine import default_model_path, resolve_model_path
from semstyle.stylizer import Stylizer
from semstyle.tensorfile import read_tensors
from semstyle.train.loop import train

from .helpers import data_dir, make_image_folder
from .models_fixture import TINY_MODEL, tiny_model_dir

TINY_LIGHT = ModelConfig(style_dim=16, decoder_width=32, disc_channels=8, content_encoder="light",
                         decoder="light", light_width=8)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return (make_image_folder(data_dir("content"), root / "content", 3),
            make_image_folder(data_dir("styles"), root / "styles", 3))


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    return tiny_model_dir(tmp_path_factory.mktemp("teacher"))


def distill_config(folders, mentor: Path, out: Path, steps: int, **changes) -> TrainConfig:
    content, styles = folders
    values = dict(content_dir=str(content), styles_dir=str(styles), out=str(out), steps=steps, size=32,
                  batch_size=2, checkpoint_every=2, sample_every=2, log_every=1, teacher=str(mentor),
                  model=TINY_LIGHT, lr_g=1e-3, amp=False)
    values.update(changes)
    return TrainConfig(**values)


def test_light_encoder_features_have_the_shape_of_vggs_content_layer(vgg):
    generator = Generator(TINY_LIGHT).eval()
    image = torch.rand(1, 3, 40, 56)
    with torch.no_grad():
        light = generator.features(vgg, image, (LIGHT_TAP,))
        both = generator.features(vgg, image, generator.taps)
        reference = vgg(image, ("relu3_1",))["relu3_1"]
    assert set(light) == {LIGHT_TAP}  # no VGG at full strength
    assert light[LIGHT_TAP].shape == reference.shape == (1, 256, 10, 14)
    assert set(both) == {LIGHT_TAP, *TINY_LIGHT.style_layers}  # below full strength: VGG for the own vector
    with torch.no_grad():
        assert generator(light, torch.randn(1, 16)).shape == (1, 3, 40, 56)


@pytest.mark.parametrize("subpixel", [False, True], ids=["conv", "subpixel"])
def test_the_folded_injection_gives_the_unfolded_image(vgg, subpixel):
    """Inference folds projection, AdaIN and the decoder's entry into one small convolution
    (nn/fold.py): the same image as the path training runs, for one style, regions with their
    own or shared statistics, statistics given from elsewhere, and a batch."""
    torch.manual_seed(0)
    generator = Generator(dataclasses.replace(TINY_LIGHT, light_subpixel=subpixel)).eval()
    with torch.no_grad():
        generator.injection.affine.weight.normal_(0, 0.3)
        generator.decoder.colour.affine.weight.normal_(0, 0.3)
    assert generator.inference_tap == LIGHT_HIDDEN_TAP
    image = torch.rand(2, 3, 40, 56)
    masks = torch.zeros(1, 2, 40, 56)
    masks[:, 0, :, :30] = 1
    masks[:, 1] = 1 - masks[:, 0]
    styles = torch.randn(2, 16)
    with torch.no_grad():
        plain = generator.features(vgg, image, (LIGHT_TAP,))
        folded = generator.features(vgg, image, (LIGHT_HIDDEN_TAP,))
        assert set(folded) == {LIGHT_HIDDEN_TAP}
        for a, b in zip(generator.content_stats(plain, masks), generator.content_stats(folded, masks)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        thumbnail = generator.content_stats(generator.features(vgg, image[:1, :, ::2, ::2], (LIGHT_TAP,)))
        cases = [dict(), dict(masks=masks), dict(masks=masks, region_norm=False), dict(stats=thumbnail)]
        for options in cases:
            style = torch.randn(2, 2, 16) if "masks" in options else styles
            want = generator.run(plain, style, **options)
            got = generator.run(folded, style, **options)
            assert want.injected is not None and got.injected is None  # never made
            torch.testing.assert_close(got.image, want.image, rtol=1e-4, atol=1e-4)
        assert want.image.std() > 0.05  # a real picture, not a flat one matched


def test_light_settings_are_validated():
    with pytest.raises(ConfigError, match="content_encoder"):
        ModelConfig(content_encoder="resnet")
    with pytest.raises(ConfigError, match="relu3_1"):
        ModelConfig(content_encoder="light", content_layer="relu4_1")
    with pytest.raises(ConfigError, match="light_width"):
        ModelConfig(decoder="light", light_width=6)


def test_a_light_model_is_trained_only_by_distillation(folders, teacher, tmp_path):
    with pytest.raises(ConfigError, match="distillation from a teacher"):
        train(distill_config(folders, teacher, tmp_path / "a", 1, teacher=""), progress=False)
    with pytest.raises(ConfigError, match="teacher is for distilling"):
        train(distill_config(folders, teacher, tmp_path / "b", 1, model=TINY_MODEL), progress=False)


def test_distillation_learns_the_teacher_and_keeps_its_style_space(folders, teacher, tmp_path):
    last = train(distill_config(folders, teacher, tmp_path / "run", 30, checkpoint_every=30, sample_every=30),
                 progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    for key in ("features", "pixels", "g_loss"):  # edges start low: a blank first output has none
        assert sum(r[key] for r in records[-5:]) < sum(r[key] for r in records[:5]), key
    student, _ = ckpt.load_generator(last)
    mentor, _ = ckpt.load_generator(teacher)
    assert student.content_encoder is not None
    for part in ("style_encoder", "injection"):  # frozen copies: one style-vector space for both models
        for (name, mine), theirs in zip(getattr(student, part).state_dict().items(),
                                        getattr(mentor, part).state_dict().values()):
            assert torch.equal(mine, theirs), f"{part}.{name}"
    assert (tmp_path / "run" / "samples" / "step_0000030.png").is_file()


@pytest.mark.parametrize("term", ["perceptual", "gram"])
def test_distillation_with_a_texture_term_logs_it(folders, teacher, tmp_path, term):
    config = distill_config(folders, teacher, tmp_path / "run", 2,
                            loss=LossConfig(**{f"distill_{term}_weight": 1.0}))
    assert train(config, progress=False).is_file()
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(records) == 2 and all(r[term] > 0 for r in records)
    other = {"perceptual": "gram", "gram": "perceptual"}[term]
    assert all(other not in r for r in records)  # a term weighted 0 is not computed


def test_a_student_grown_by_half_size_convolutions_starts_with_the_earlier_pictures(folders, teacher, tmp_path,
                                                                                    vgg):
    """Extra half-size decoder convolutions start as the identity: a student grown from an
    earlier fast model (init_model) paints that model's pictures before it trains a step."""
    earlier = train(distill_config(folders, teacher, tmp_path / "earlier", 2), progress=False)
    grown = dataclasses.replace(TINY_LIGHT, light_half_convs=3)
    config = distill_config(folders, teacher, tmp_path / "next", 1, model=grown, init_model=str(earlier))
    from semstyle.train.distill import Distiller
    distiller = Distiller(config)
    assert {"decoder.stages.1.1.weight", "decoder.stages.1.2.bias"} <= set(distiller.started_fresh)
    student = distiller.generator.eval()
    before, _ = ckpt.load_generator(earlier)
    image, styles = torch.rand(2, 3, 40, 56), torch.randn(2, 16)
    with torch.no_grad():
        old = before.eval()(before.features(vgg, image, (LIGHT_TAP,)), styles)
        new = student(student.features(vgg, image, (LIGHT_TAP,)), styles)
    assert torch.allclose(new, old, atol=1e-5)
    with pytest.raises(ConfigError, match="light_half_convs"):
        dataclasses.replace(TINY_LIGHT, light_half_convs=0)


def test_a_wider_decoder_grown_from_a_narrower_one_paints_its_pictures(vgg):
    """LightDecoder.widen_from (Net2WiderNet): extra channels copy existing ones and the next layer
    splits their weights, so the widened decoder's image is the narrower one's, in both layouts."""
    for layout in ({"light_subpixel": True}, {"light_subpixel": False, "light_half_convs": 2}):
        torch.manual_seed(0)
        narrow = Generator(dataclasses.replace(TINY_LIGHT, **layout)).eval()
        wide = Generator(dataclasses.replace(TINY_LIGHT, light_decoder_width=16, **layout)).eval()
        wide.load_state_dict({k: v for k, v in narrow.state_dict().items() if not k.startswith("decoder.")},
                             strict=False)
        assert wide.widen_decoder_from(narrow, torch.Generator().manual_seed(1))
        assert wide.decoder.entry.out_channels == 32 and narrow.decoder.entry.out_channels == 16
        image, styles = torch.rand(2, 3, 40, 56), torch.randn(2, 16)
        with torch.no_grad():
            want = narrow(narrow.features(vgg, image, (LIGHT_TAP,)), styles)
            got = wide(wide.features(vgg, image, (LIGHT_TAP,)), styles)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        entry, following = wide.decoder.entry.weight, wide.decoder.stages[0][1].weight
        for j in range(16, 32):  # each extra channel copies one of the 16, and takes another share of it
            original = next(i for i in range(16) if torch.equal(entry[j], entry[i]))
            assert not torch.allclose(following[:, j], following[:, original])
    assert not narrow.widen_decoder_from(wide, torch.Generator())  # not wider: nothing to grow
    assert not Generator(dataclasses.replace(TINY_LIGHT, light_decoder_width=16)).widen_decoder_from(
        Generator(dataclasses.replace(TINY_LIGHT, light_half_convs=2)), torch.Generator())  # another layout
    with pytest.raises(ValueError, match="narrower"):
        narrow.decoder.widen_from(wide.decoder, torch.Generator())
    with pytest.raises(ValueError, match="same layout"):
        Generator(TINY_LIGHT).decoder.widen_from(narrow.decoder, torch.Generator())
    with pytest.raises(ConfigError, match="light_decoder_width"):
        dataclasses.replace(TINY_LIGHT, light_decoder_width=10)


def test_distillation_widens_an_earlier_students_decoder(folders, teacher, tmp_path, vgg):
    """init_model with a narrower decoder of the same layout: the student starts with its pictures."""
    earlier = train(distill_config(folders, teacher, tmp_path / "earlier", 2), progress=False)
    wider = dataclasses.replace(TINY_LIGHT, light_decoder_width=12)
    from semstyle.train.distill import Distiller
    distiller = Distiller(distill_config(folders, teacher, tmp_path / "next", 1, model=wider,
                                         init_model=str(earlier)))
    assert distiller.started_fresh == []
    student, (before, _) = distiller.generator.eval(), ckpt.load_generator(earlier)
    image, styles = torch.rand(1, 3, 40, 56), torch.randn(1, 16)
    with torch.no_grad():
        old = before.eval()(before.features(vgg, image, (LIGHT_TAP,)), styles)
        new = student(student.features(vgg, image, (LIGHT_TAP,)), styles)
    torch.testing.assert_close(new, old, rtol=1e-5, atol=1e-5)
    assert student.decoder.entry.out_channels == 24


def test_distillation_resumes_exactly(folders, teacher, tmp_path):
    """Also across the learning-rate warm-up: its rate is a function of the step alone."""
    changes = {"ema_decay": 0.9, "warmup_steps": 3}
    straight = train(distill_config(folders, teacher, tmp_path / "a", 4, **changes), progress=False)
    train(distill_config(folders, teacher, tmp_path / "b", 2, **changes), progress=False)
    resumed = train(distill_config(folders, teacher, tmp_path / "b", 4, **changes), resume=True,
                    progress=False)
    a, b = read_tensors(straight)[0], read_tensors(resumed)[0]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_distillation_starts_the_student_from_an_earlier_fast_model(folders, teacher, tmp_path):
    """A new teacher's student starts from the last fast model (init_model): every tensor of the
    same name and shape, the changed decoder stage fresh, the teacher's style encoder kept."""
    earlier = train(distill_config(folders, teacher, tmp_path / "earlier", 2), progress=False)
    subpixel = dataclasses.replace(TINY_LIGHT, light_subpixel=True)
    config = distill_config(folders, teacher, tmp_path / "next", 1, model=subpixel, init_model=str(earlier))
    from semstyle.train.distill import Distiller
    student = Distiller(config)
    before, _ = ckpt.load_generator(earlier)
    old, new = before.state_dict(), student.generator.state_dict()
    assert torch.equal(new["content_encoder.body.0.weight"], old["content_encoder.body.0.weight"])
    assert torch.equal(new["decoder.stages.0.1.weight"], old["decoder.stages.0.1.weight"])
    assert "decoder.to_rgb.weight" in student.started_fresh  # 12 sub-pixel outputs, not 3
    mentor, _ = ckpt.load_generator(teacher)
    assert torch.equal(new["injection.affine.weight"], mentor.state_dict()["injection.affine.weight"])
    with pytest.raises(ConfigError, match="not a fast"):
        Distiller(dataclasses.replace(config, init_model=str(teacher)))


def test_a_gan_checkpoint_is_not_resumed_as_distillation(folders, teacher, tmp_path):
    run = tmp_path / "run"
    gan = distill_config(folders, teacher, run, 2, teacher="", model=TINY_MODEL)
    train(gan, progress=False)
    with pytest.raises(ConfigError, match="not a checkpoint of a distillation run"):
        train(distill_config(folders, teacher, run, 4), resume=True, progress=False)


@pytest.fixture(scope="module", params=[False, True], ids=["conv", "subpixel"])
def light_model(folders, teacher, tmp_path_factory, request):
    """A distilled light model, with the full-size decoder stage as a convolution or as a sub-pixel one."""
    run = tmp_path_factory.mktemp("light") / "run"
    model = dataclasses.replace(TINY_LIGHT, light_subpixel=request.param)
    return train(distill_config(folders, teacher, run, 2, model=model), progress=False)


def test_a_light_model_stylizes_any_size_at_any_strength(light_model, photo, style):
    stylizer = Stylizer(light_model, precision="fp32")
    full = stylizer.stylize(photo, style)
    half = stylizer.stylize(photo, style, strength=0.5)
    odd = stylizer.stylize(Image.open(photo).resize((67, 45)), style)
    assert full.size == half.size == Image.open(photo).size
    assert odd.size == (67, 45)
    assert full.tobytes() != half.tobytes()


def test_a_light_model_exports_to_onnx_and_matches(light_model, photo, style, tmp_path):
    pytest.importorskip("onnxruntime")
    from semstyle.export.onnx import export_onnx
    from semstyle.runtime.onnx import OnnxStylizer

    folder = export_onnx(light_model, tmp_path / "onnx")  # verified against eager inside
    eager = Stylizer(light_model, precision="fp32").stylize(photo, style)
    onnx = OnnxStylizer(folder).stylize(photo, style)
    worst = max(abs(a - b) for a, b in zip(eager.tobytes(), onnx.tobytes()))
    assert worst <= 2


def test_shipped_models_are_found_by_name(tmp_path, monkeypatch):
    assert resolve_model_path(None) == default_model_path() == resolve_model_path("default")
    assert resolve_model_path("fast") == default_model_path("fast")
    assert "fast" in SHIPPED_MODELS
    monkeypatch.chdir(tmp_path)
    (tmp_path / "fast").mkdir()  # a folder of that name here is the user's
    assert resolve_model_path("fast") == Path("fast")


def test_a_folder_of_paintings_is_one_style_from_pooled_statistics(model, photo, tmp_path):
    """--style DIR (an artist collection): the vector of the paintings' pooled VGG statistics, each
    painting weighing alike; one painting alone gives its own vector; cached like a file."""
    import shutil

    from semstyle.nn.stats import pooled_mean_std

    folder = tmp_path / "van_gogh"
    folder.mkdir()
    names = ["starry_night.jpg", "bedroom_in_arles.jpg", "starry_night_over_the_rhone.jpg"]
    for name in names:
        shutil.copy(data_dir("styles") / name, folder / name)
    stylizer = Stylizer(model, precision="fp32")
    engine = stylizer.engine
    collection = engine.encode_style(str(folder), 64)
    vectors = torch.cat([engine.encode_style(str(folder / n), 64) for n in names])
    assert collection.shape == (1, 16)
    assert not torch.allclose(collection, vectors.mean(0, keepdim=True), atol=1e-4)  # not the plain mean
    hits = engine.style_cache.hits
    assert torch.equal(engine.encode_style(str(folder), 64), collection) and engine.style_cache.hits == hits + 1
    single = tmp_path / "one"
    single.mkdir()
    shutil.copy(folder / names[0], single / names[0])
    assert torch.allclose(engine.encode_style(str(single), 64), vectors[:1], atol=1e-5)
    one, two = (torch.tensor([0.0]), torch.tensor([1.0])), (torch.tensor([2.0]), torch.tensor([1.0]))
    mean, std = pooled_mean_std([one, two])
    assert torch.allclose(mean, torch.tensor([1.0])) and torch.allclose(std, torch.tensor([2.0]).sqrt(), atol=1e-4)
    assert stylizer.stylize(photo, str(folder), style_size=64).size == Image.open(photo).size
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="no images in"):
        stylizer.stylize(photo, str(tmp_path / "empty"))


@pytest.mark.slow
def test_compiled_networks_give_the_eager_result(model, photo, style, tmp_path, monkeypatch):
    """compile=True (--compile): torch.compile of VGG and the decoder, the same pixels as eager."""
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    eager = Stylizer(model, precision="fp32")
    compiled = Stylizer(model, precision="fp32", compile=True)
    with pytest.raises(Exception, match="compile is fixed when the Stylizer is made"):
        eager.stylize(photo, style, compile=True)
    first = compiled.stylize(photo, style)
    again = compiled.stylize(photo, style)
    reference = eager.stylize(photo, style)
    assert again.tobytes() == first.tobytes()
    worst = max(abs(a - b) for a, b in zip(reference.tobytes(), first.tobytes()))
    assert worst <= 1


def test_warm_up_raises_the_learning_rate_linearly_then_holds_it():
    from semstyle.train.state import warm_up
    from semstyle.train.trainer import validate

    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    rates = []
    for step in range(6):
        warm_up(optimizer, 0.4, step, 4)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4])
    warm_up(optimizer, 0.4, 0, 0)  # 0: off, the rate is left as it is
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.4)
    with pytest.raises(ConfigError, match="warmup_steps"):
        validate(TrainConfig(content_dir="c", styles_dir="s", warmup_steps=-1))
