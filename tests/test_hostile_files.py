"""Hostile input around files: training runs, exports, full and read-only disks, killed writers.

Real processes, real signals, a real file-size limit for a full disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image

from semstyle import checkpoints as ckpt
from semstyle.files import atomic_write_bytes, remove_stale_temps
from semstyle.io import save_image

from .helpers import assert_one_line_error, data_dir, make_image_folder, run_cli

pytestmark = pytest.mark.slow

TINY = ["--set", "model.style_dim=16", "--set", "model.decoder_width=32", "--set", "model.disc_channels=8"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return (make_image_folder(data_dir("content"), root / "content", 3),
            make_image_folder(data_dir("styles"), root / "styles", 3))


def train_args(folders, out: Path, steps: int, *extra: str) -> list[str]:
    content, styles = folders
    return ["train", "--content", str(content), "--styles", str(styles), "--out", str(out), "--steps", str(steps),
            "--size", "32", "--batch-size", "2", *TINY, *extra]


def cli_process(argv: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "semstyle.cli", *argv], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, **kwargs)


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------

@pytest.mark.parametrize("assignment,needle", [
    ("lr_g=nan", "lr_g must be a finite number"),
    ("lr_d=inf", "lr_d must be a finite number"),
    ("lr_g=0", "lr_g must be above 0"),
    ("loss.style_weight=-1", "loss.style_weight must be 0 or more"),
    ("loss.adv_weight=nan", "loss.adv_weight must be a finite number"),
    ("betas=[1.5, 0.9]", "betas must be two numbers"),
    ("grad_clip=-1", "grad_clip must be 0 (off) or more"),
])
def test_bad_training_numbers_are_refused_before_work(folders, tmp_path, capsys, assignment, needle):
    code, _, err = run_cli(train_args(folders, tmp_path / "run", 2, "--set", assignment), capsys)
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "run").exists()


def test_resume_of_a_missing_folder_is_refused(folders, tmp_path, capsys):
    code, _, err = run_cli(train_args(folders, tmp_path / "nowhere", 2, "--resume"), capsys)
    assert_one_line_error(code, err, "--resume", "does not exist")
    assert not (tmp_path / "nowhere").exists()


def test_second_training_on_one_folder_is_refused(folders, tmp_path, capsys):
    run = tmp_path / "run"
    first = cli_process(train_args(folders, run, 100_000, "--no-progress", "--set", "checkpoint_every=100000"))
    try:
        deadline = time.time() + 120
        while not (run / "log.jsonl").exists():  # the first run holds the lock and trains
            assert first.poll() is None and time.time() < deadline, first.stderr.read()
            time.sleep(0.2)
        code, _, err = run_cli(train_args(folders, run, 5, "--resume"), capsys)
        assert_one_line_error(code, err, "in use by another process", f"pid {first.pid}")
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=120)
    assert first.returncode == 130
    # the lock went with the process: resuming now works
    code, out, err = run_cli(train_args(folders, run, ckpt.checkpoint_step(ckpt.latest_checkpoint(run)) + 1,
                                        "--resume", "--no-progress"), capsys)
    assert code == 0, err


def test_unreadable_training_images_are_reported(folders, tmp_path):
    content, styles = folders
    broken = tmp_path / "content"
    broken.mkdir()
    for path in content.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    (broken / "truncated.jpg").write_bytes(next(content.iterdir()).read_bytes()[:300])
    (broken / "empty.png").write_bytes(b"")
    proc = cli_process(train_args((broken, styles), tmp_path / "run", 2))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    lines = err.split("\n")
    warning = [line for line in lines if "semstyle: warning: skipped 2 unreadable image(s)" in line]
    assert len(warning) == 1, err
    assert warning[0].startswith("semstyle: warning") and "%|" not in warning[0]  # not inside the bar
    assert "empty.png" in warning[0] and "truncated.jpg" in warning[0]


# --------------------------------------------------------------------------
# Exports
# --------------------------------------------------------------------------

def test_export_onto_an_existing_file(model, tmp_path, capsys):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    code, _, err = run_cli(["export", model, "-o", target], capsys)
    assert_one_line_error(code, err, "a file of that name exists")
    assert target.read_text() == "keep me"


def test_export_into_a_foreign_folder(model, tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"x")
    code, _, err = run_cli(["export", model, "-o", folder], capsys)
    assert_one_line_error(code, err, "not empty and holds no model.safetensors")
    assert [p.name for p in folder.iterdir()] == ["holiday.jpg"]


def test_export_to_a_read_only_place(model, capsys):
    code, _, err = run_cli(["export", model, "-o", "/sys/semstyle-export"], capsys)
    assert_one_line_error(code, err, "cannot write model folder /sys/semstyle-export")
    assert not Path("/sys/semstyle-export").exists()


def test_export_onto_a_full_disk_leaves_nothing(model, tmp_path):
    """A file-size limit makes every large write fail as on a full disk (EFBIG instead of
    ENOSPC): one line, exit 2, and no folder -- not even an empty one."""
    code = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        from semstyle.cli import main
        sys.exit(main(["export", {str(model)!r}, "-o", {str(tmp_path / "exported")!r}]))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert_one_line_error(result.returncode, result.stderr, "cannot write model folder", "file too large")
    assert list(tmp_path.iterdir()) == []


def test_export_replaces_an_existing_model_atomically(model, tmp_path, capsys):
    code, _, err = run_cli(["export", model, "-o", tmp_path / "m"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["export", model, "-o", tmp_path / "m", "--half"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "model.safetensors"]


# --------------------------------------------------------------------------
# Killed writers
# --------------------------------------------------------------------------

def test_temp_file_of_a_killed_writer_is_cleaned_up(tmp_path):
    """SIGKILL mid-write leaves the hidden temporary file; the next write of the same
    output removes it (its writer is gone), and never touches a live writer's."""
    target = tmp_path / "out.png"
    writer = textwrap.dedent(f"""
        import time
        from semstyle.files import atomic_write
        def slow(handle):
            handle.write(b"partial data")
            handle.flush()
            time.sleep(60)
        atomic_write({str(target)!r}, slow)
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer])
    deadline = time.time() + 60
    while not list(tmp_path.glob(".out.png.*.tmp")):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    stale = list(tmp_path.glob(".out.png.*.tmp"))
    assert len(stale) == 1 and not target.exists()
    mine = tmp_path / f".out.png.{os.getpid()}.cafe.tmp"  # a live writer's (this process)
    mine.write_bytes(b"in progress")
    save_image(Image.new("RGB", (8, 8)), target)
    assert target.is_file() and not stale[0].exists() and mine.exists()
    assert remove_stale_temps(target) == []


def test_atomic_write_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.bin"
    atomic_write_bytes(target, b"old")

    def broken(handle):
        handle.write(b"new, half")
        raise OSError(28, "No space left on device")

    from semstyle.files import atomic_write

    with pytest.raises(OSError):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]

