"""The suite itself: without the shared data it stops at once, in one line, rather than skipping."""

from __future__ import annotations

import shutil
import subprocess
import sys

from .helpers import REPO


def test_missing_shared_data_stops_the_suite_in_one_line(tmp_path):
    clone = tmp_path / "clone"
    shutil.copytree(REPO / "tests", clone / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", clone / "pyproject.toml")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=clone,
                            capture_output=True, text=True, timeout=120)
    output = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 4, output
    assert len(output) == 1 and output[0].startswith("ERROR: test data not found"), output
    assert str(tmp_path / "shared" / "data") in output[0]
