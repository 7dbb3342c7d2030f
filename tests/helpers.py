"""Shared test helpers: where the real test images live, tiny configs."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
REQUIRED_DATA = ("content", "styles", "semantic", "video")
"""Folders of ../shared/data the suite reads; conftest stops the run when one is missing."""


def data_dir(name: str) -> Path:
    """A folder of ../shared/data; the suite needs it (CI has it beside the repo)."""
    path = DATA / name
    if not path.is_dir():
        pytest.fail(f"test images not found at {path}")
    return path


def make_image_folder(src: Path, dest: Path, count: int, side: int = 64) -> Path:
    """Small copies of real images, so tests stay fast."""
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.jpg"))[:count]:
        img = Image.open(path).convert("RGB")
        img.thumbnail((side * 2, side * 2))
        img.save(dest / path.name, quality=90)
    return dest


def run_cli(argv, capsys) -> tuple[int, str, str]:
    """``semstyle ARGV`` in this process: (exit code, stdout, stderr)."""
    from semstyle.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    """Exit code 2 and exactly one non-empty stderr line, containing every needle; returns the line."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, err)
    return lines[0]
