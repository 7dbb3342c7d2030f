"""The server's settings, importable without PyTorch (the command line's parser reads their defaults)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSettings:
    model: str | None = None
    styles_dir: str | None = None
    workers: int = 1
    queue: int = 4
    max_upload_mb: float = 50.0
    token: str | None = None
    device: str = "auto"
    jobs_dir: str | None = None     # default: a temporary folder removed at exit
    video_queue: int = 2
    keep_results_s: float = 3600.0
    max_results_mb: float = 2048.0
