"""Video: real clips through PyAV (the shared carphone clip, and clips made here with audio,
odd sizes, variable frame rate and rotation), the CLI, bad input, Ctrl-C, style schedules."""

from __future__ import annotations

import fractions
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from semstyle import Stylizer
from semstyle.video.container import VideoReader
from semstyle.video.options import VideoOptions

from .helpers import assert_one_line_error, data_dir, run_cli


@pytest.fixture(scope="module")
def carphone() -> Path:
    return data_dir("video") / "carphone.mp4"


def make_clip(path: Path, size=(64, 48), frames=12, rate=25, audio=True, pts=None, rotation=0, seed=0) -> Path:
    """A real encoded clip: moving noise texture, optionally a sine-tone AAC track,
    explicit timestamps (variable frame rate) and a display rotation."""
    rng = np.random.default_rng(seed)
    width, height = size
    texture = rng.integers(0, 256, (height * 2, width * 2, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        stream.time_base = fractions.Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=44100) if audio else None
        for i in range(frames):
            y, x = i % height, i % width
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[y:y + height, x:x + width]),
                                               format="rgb24")
            frame.pts, frame.time_base = (pts[i] if pts else i * 1000 // rate), fractions.Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if sound is not None:
            samples = int(44100 * frames / rate)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)[None]
            chunk = 1024
            for start in range(0, samples, chunk):
                piece = av.AudioFrame.from_ndarray(tone[:, start:start + chunk], format="fltp", layout="mono")
                piece.sample_rate, piece.pts = 44100, start
                out.mux(sound.encode(piece))
            out.mux(sound.encode())
    return path


def probe(path: Path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        decoded = list(container.decode(video))
        info = {"size": (video.codec_context.width, video.codec_context.height), "frames": len(decoded),
                "times": [round(float(f.time), 4) for f in decoded], "rotation": decoded[0].rotation,
                "codec": video.codec_context.name, "audio": None}
    with av.open(str(path)) as container:
        if container.streams.audio:
            audio = container.streams.audio[0]
            info["audio"] = (audio.codec_context.name, sum(p.size for p in container.demux(audio)))
    return info


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def video_cmd(source, out, model, *extra) -> list:
    return ["video", source, "-o", out, "--model", model, *extra]


# --------------------------------------------------------------------------
# What comes out
# --------------------------------------------------------------------------

def test_real_clip_keeps_size_rate_timestamps_and_frames(carphone, model, style, tmp_path, capsys):
    out = tmp_path / "car.mp4"
    code, stdout, err = run_cli(video_cmd(carphone, out, model, "--style", style, "--no-progress"), capsys)
    assert code == 0, err
    assert stdout.strip() == str(out) and err == ""
    before, after = probe(carphone), probe(out)
    assert after["size"] == before["size"] == (176, 144)
    assert after["frames"] == before["frames"] == 120
    assert after["times"] == before["times"]
    assert after["codec"] == "h264"
    first_in, first_out = decoded_frames(carphone)[0], decoded_frames(out)[0]
    assert np.abs(first_in.astype(int) - first_out).mean() > 5 and first_out.std() > 5  # stylized, not blank


def test_odd_size_variable_rate_and_audio_are_kept(model, style, tmp_path, capsys):
    clip = make_clip(tmp_path / "odd.mov", size=(75, 49), frames=10, pts=[0, 40, 80, 200, 240, 400, 440, 480, 600,
                                                                            640])
    out = tmp_path / "odd_out.mp4"
    code, _, err = run_cli(video_cmd(clip, out, model, "--style", style, "--no-progress"), capsys)
    assert code == 0, err
    before, after = probe(clip), probe(out)
    assert after["size"] == (75, 49) and after["frames"] == 10
    assert after["times"] == before["times"]  # variable frame rate: the same irregular timestamps
    assert after["audio"] == before["audio"]  # the same codec, the same bytes
    code, _, err = run_cli(video_cmd(clip, tmp_path / "mute.mp4", model, "--style", style, "--no-audio",
                                     "--no-progress"), capsys)
    assert code == 0, err
    assert probe(tmp_path / "mute.mp4")["audio"] is None


def test_webm_out_and_audio_it_cannot_hold(model, style, tmp_path, capsys):
    clip = make_clip(tmp_path / "a.mp4", frames=6)
    out = tmp_path / "a.webm"
    code, _, err = run_cli(video_cmd(clip, out, model, "--style", style, "--no-progress"), capsys)
    assert code == 0, err
    assert probe(out)["codec"] == "vp9" and probe(out)["frames"] == 6
    assert err.strip() == ("semstyle: warning: the audio (aac) cannot go into a .webm file untouched, so it is "
                           "left out; write .mkv or .mp4 to keep it")


def test_rotation_is_kept(model, style, tmp_path, capsys):
    clip = make_clip(tmp_path / "phone.mp4", size=(64, 48), frames=5, audio=False, rotation=90)
    out = tmp_path / "phone_out.mp4"
    code, _, err = run_cli(video_cmd(clip, out, model, "--style", style, "--no-progress"), capsys)
    assert code == 0, err
    assert probe(out)["rotation"] == 90 and probe(out)["size"] == (64, 48)
    with VideoReader(out) as reader:
        assert next(iter(reader)).rgb.shape == (64, 48, 3)  # upright: portrait


def test_size_caps_the_longer_side(carphone, model, style, tmp_path, capsys):
    out = tmp_path / "small.mp4"
    code, _, err = run_cli(video_cmd(carphone, out, model, "--style", style, "--size", "88", "--no-progress"),
                           capsys)
    assert code == 0, err
    assert probe(out)["size"] == (88, 72)


def test_style_schedule_moves_between_styles(model, style, tmp_path):
    """Frame 0 is in the first style, the last frame in the second; in between, a mix."""
    from PIL import Image

    other = tmp_path / "other.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(other)
    stylizer = Stylizer(model, device="cpu", precision="fp32")
    frames = [np.full((48, 64, 3), 120, np.uint8) + np.arange(64, dtype=np.uint8)[None, :, None]] * 11
    still = VideoOptions(smooth_stats=0.0, flow_blend=0.0)
    scheduled = list(stylizer.stylize_frames(frames, {0.0: style, 1.0: other}, video=still, rate=10))
    only_a = list(stylizer.stylize_frames(frames[:1], style, video=still))[0]
    only_b = list(stylizer.stylize_frames(frames[:1], other, video=still))[0]
    assert np.abs(scheduled[0].astype(int) - only_a).max() <= 1
    assert np.abs(scheduled[10].astype(int) - only_b).max() <= 1
    middle = scheduled[5].astype(int)
    assert np.abs(middle - only_a).mean() > 1 and np.abs(middle - only_b).mean() > 1


def test_schedule_on_the_command_line(carphone, model, style, tmp_path, capsys):
    from PIL import Image

    other = tmp_path / "other.png"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(other)
    out = tmp_path / "sched.mp4"
    code, _, err = run_cli(video_cmd(carphone, out, model, "--style", f"{style}@0s", "--style", f"{other}@2s",
                                     "--size", "64", "--no-progress"), capsys)
    assert code == 0, err
    code, _, err = run_cli(video_cmd(carphone, out, model, "--style", f"{style}@0s", "--style", other), capsys)
    assert_one_line_error(code, err, "give every style a time")


# --------------------------------------------------------------------------
# Bad input: one line, exit 2, no file
# --------------------------------------------------------------------------

def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        sound = out.add_stream("aac", rate=44100)
        piece = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        piece.sample_rate, piece.pts = 44100, 0
        out.mux(sound.encode(piece))
        out.mux(sound.encode())
    return path


def _no_frames(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.mux(stream.encode())
    return path


@pytest.mark.parametrize("case,needle", [
    ("text", "not a video FFmpeg can read"),
    ("truncated", "cannot read video"),
    ("audio_only", "has no video stream"),
    ("no_frames", "cannot read video"),
    ("missing", "file does not exist"),
])
def test_bad_input_videos(carphone, model, style, tmp_path, capsys, case, needle):
    path = tmp_path / f"{case}.mp4"
    if case == "text":
        path.write_text("this is not a video\n" * 100)
    elif case == "truncated":
        path.write_bytes(carphone.read_bytes()[:3000])
    elif case == "audio_only":
        _audio_only(path)
    elif case == "no_frames":
        _no_frames(path)
    out = tmp_path / "out.mp4"
    code, _, err = run_cli(video_cmd(path, out, model, "--style", style, "--no-progress"), capsys)
    assert_one_line_error(code, err, needle)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".out"))) == []


@pytest.mark.parametrize("target,needle", [
    ("out.avi", "unsupported video type ('.avi')"),
    ("out.gif", "unsupported video type"),
    ("missing/out.mp4", "does not exist"),
])
def test_outputs_it_cannot_write(carphone, model, style, tmp_path, capsys, target, needle):
    code, _, err = run_cli(video_cmd(carphone, tmp_path / target, model, "--style", style), capsys)
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / target).exists()


def test_read_only_output_folder(carphone, model, style, capsys):
    code, _, err = run_cli(video_cmd(carphone, "/sys/out.mp4", model, "--style", style), capsys)
    assert_one_line_error(code, err, "cannot write /sys/out.mp4")
    assert not Path("/sys/out.mp4").exists()


@pytest.mark.parametrize("flag,value,needle", [
    ("--smooth-stats", "1", "--smooth-stats must be below 1"),
    ("--flow-blend", "nan", "--flow-blend must be between 0 and 1"),
    ("--strength", "-1", "--strength must be between 0 and 1"),
])
def test_bad_video_numbers(carphone, model, style, tmp_path, capsys, flag, value, needle):
    code, _, err = run_cli(video_cmd(carphone, tmp_path / "o.mp4", model, "--style", style, flag, value), capsys)
    assert_one_line_error(code, err, needle)


FRAMES_BEFORE_SIGNAL = 5  # of the clip's 400: the interrupt lands in the frame loop, far from its end


@pytest.mark.slow
def test_ctrl_c_leaves_no_partial_file(model, style, tmp_path):
    """Ctrl-C in the middle of a clip: exit 130, no output and no temp file. The signal waits for the
    progress bar to count frames, so it never lands in start-up (importing torch, loading the model)
    nor after the last frame: the test does not race the machine's speed."""
    import re
    import threading

    clip = make_clip(tmp_path / "long.mp4", size=(160, 120), frames=400, audio=False)
    out = tmp_path / "out.mp4"
    proc = subprocess.Popen([sys.executable, "-m", "semstyle.cli", *map(str, video_cmd(clip, out, model, "--style",
                                                                                          style))],
                            stderr=subprocess.PIPE, text=True)
    err, counted = [], threading.Event()

    def read_stderr() -> None:
        for chunk in iter(lambda: proc.stderr.read(1), ""):
            err.append(chunk)
            done = re.findall(r"(\d+)/400", "".join(err[-200:]))
            if done and int(done[-1]) >= FRAMES_BEFORE_SIGNAL:
                counted.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    assert counted.wait(timeout=180), "".join(err)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    reader.join(timeout=10)
    text = "".join(err)
    assert proc.returncode == 130 and "Traceback" not in text, text
    assert not out.exists() and not list(tmp_path.glob(".out.mp4*"))


# --------------------------------------------------------------------------
# semstyle live: a file played at its own rate, served as MJPEG on loopback
# --------------------------------------------------------------------------

def _read_mjpeg_frames(url: str, count: int) -> list:
    """``count`` JPEG parts of a multipart MJPEG stream, decoded."""
    import io
    import urllib.request

    from PIL import Image

    frames = []
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace; boundary=")
        while len(frames) < count:
            line = response.readline()
            assert line, "stream ended early"
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
                response.readline()  # blank line
                frames.append(Image.open(io.BytesIO(response.read(length))).convert("RGB"))
    return frames


@pytest.mark.slow
def test_live_serves_a_stylized_mjpeg_stream_and_reports_fps(model, style, tmp_path):
    import urllib.request

    clip = make_clip(tmp_path / "clip.mp4", size=(96, 64), frames=250, rate=25, audio=False)
    proc = subprocess.Popen([sys.executable, "-m", "semstyle.cli", "live", str(clip), "--style", str(style),
                             "--model", str(model), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read()
        page = urllib.request.urlopen(url, timeout=10).read().decode()
        assert '<img src=/stream' in page
        frames = _read_mjpeg_frames(url + "stream", 3)
        assert all(f.size == (96, 64) for f in frames)
        source = decoded_frames(clip)[0]
        assert np.abs(np.asarray(frames[0]).astype(int) - source).mean() > 5  # stylized, not the input
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130) and "Traceback" not in err, err
    assert "fps" in err


def test_live_ends_with_the_file_and_says_what_it_achieved(model, style, tmp_path, capsys):
    clip = make_clip(tmp_path / "short.mp4", size=(64, 48), frames=10, rate=20, audio=False)
    code, out, err = run_cli(["live", clip, "--style", style, "--model", model, "--port", "0"], capsys)
    assert code == 0, err
    assert out.startswith("http://127.0.0.1:")
    summary = err.strip().splitlines()[-1]
    assert summary.startswith("semstyle: live:") and "fps achieved" in summary and "of 10 read" in summary


@pytest.mark.parametrize("argv,needle", [
    (["nowhere.mp4"], "camera index or a video file"),
    (["CLIP", "--port", "70000"], "--port must be from 0 to 65535"),
    (["CLIP", "--no-stream"], "add --window"),
    (["CLIP", "--duration", "0"], "--duration must be"),
])
def test_live_bad_arguments(model, style, tmp_path, capsys, argv, needle):
    clip = make_clip(tmp_path / "c.mp4", frames=3, audio=False)
    argv = [str(clip) if a == "CLIP" else a for a in argv]
    code, _, err = run_cli(["live", *argv, "--style", style, "--model", model], capsys)
    assert_one_line_error(code, err, needle)


def test_flow_at_a_smaller_size_still_warps_the_full_frame():
    """Flow and its check at half size (``flow_size``), the previous frame warped at full size: a
    photo moved by 6 px comes back where it went, away from the newly visible border."""
    from semstyle.io.read import load_image
    from semstyle.video.temporal import FlowBlender, flow_input, motion_between, warp

    photo = np.asarray(load_image(data_dir("content") / "golden_gate.jpg").resize((280, 180)))
    before, after = photo[10:170, 6:262], photo[10:170, 0:256]   # the scene moves 6 px to the right
    blender = FlowBlender(0.6, flow_size=128)
    small_before, small_after = flow_input(before, 128), flow_input(after, 128)
    assert small_after.shape == (80, 128)
    back, consistent = motion_between(blender.dis, small_before, small_after, before.shape[:2])
    warped = warp(before, back)
    assert warped.shape == before.shape and warped.dtype == np.uint8 and consistent.shape == before.shape[:2]
    inner = (slice(12, -12), slice(16, -12))
    error = np.abs(warped[inner].astype(float) - after[inner]).mean()
    assert error < 0.4 * np.abs(before[inner].astype(float) - after[inner]).mean(), error
    assert consistent[inner].mean() > 0.8
    first = blender(before, before)
    second = blender(after, np.zeros_like(after))   # where consistent, 60% of the warped previous frame
    assert first is before and second.dtype == np.uint8
    assert abs(second[inner].mean() - 0.6 * consistent[inner].mean() * after[inner].mean()) < 8


@pytest.mark.parametrize("value", [0, 16, 640.5, True])
def test_flow_size_must_be_whole_pixels(value):
    from semstyle.errors import OptionError

    with pytest.raises(OptionError, match="flow_size"):
        VideoOptions(flow_size=value).validate()


def test_flow_preset_is_one_of_opencvs(style, model, capsys):
    from PIL import Image

    from semstyle.errors import OptionError
    from semstyle.video.options import FLOW_PRESETS
    from semstyle.video.temporal import FlowBlender, flow_input, motion_between

    with pytest.raises(OptionError, match="flow_preset"):
        VideoOptions(flow_preset="slow").validate()
    clip = data_dir("video") / "carphone.mp4"
    code, _, err = run_cli(["live", clip, "--style", style, "--model", model, "--flow-preset", "slow"], capsys)
    assert code == 2 and "invalid choice" in err
    for preset in FLOW_PRESETS:  # each is a real OpenCV preset that finds the motion
        blender = FlowBlender(preset=preset)
        frame = np.asarray(Image.open(data_dir("content") / "chicago.jpg").convert("RGB").resize((320, 240)))
        moved = np.ascontiguousarray(np.roll(frame, 4, axis=1))
        back, consistent = motion_between(blender.dis, flow_input(frame), flow_input(moved), frame.shape[:2])
        assert abs(np.median(back[..., 0]) + 4) < 1 and consistent.mean() > 0.5


def test_live_fps_counts_from_the_first_stylized_frame():
    """The first frame also pays start-up; 11 frames over 2 s after it are 5 fps."""
    from semstyle.video.live import LiveStats

    assert LiveStats(read=30, shown=11, seconds=2.0).fps == 5.0
    assert LiveStats(shown=1, seconds=0.0).fps == 0.0


def test_the_flow_thread_ends_with_its_stylizer(model):
    """Each frame stylizer (one per live session in the server) owns one flow thread, which must
    not outlive it."""
    import gc
    import threading

    def flow_threads() -> set:
        return {t for t in threading.enumerate() if t.name.startswith("semstyle-flow")}

    before = flow_threads()
    stylizer = Stylizer(model, precision="fp32").frame_stylizer(data_dir("styles") / "starry_night.jpg",
                                                               style_size=64)
    frame = np.zeros((48, 64, 3), np.uint8)
    stylizer(frame, 0.0)
    stylizer(frame, 0.04)
    mine = flow_threads() - before
    assert len(mine) == 1
    del stylizer
    gc.collect()
    for thread in mine:
        thread.join(timeout=5)
        assert not thread.is_alive()
