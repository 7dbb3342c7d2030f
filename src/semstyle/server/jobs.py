"""Video jobs: long work that outlives the request that started it.

A job is queued, runs in the jobs' own worker thread, reports progress, can be cancelled, and
keeps its result until it expires. Disk use is bounded: finished results past their time, or
beyond the total size allowed, are deleted oldest first. A client that disconnects loses nothing.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SemstyleError


class Cancelled(Exception):
    """Raised inside a running job's progress callback after DELETE; the video writer removes its file."""


@dataclass
class Job:
    id: str
    folder: Path
    status: str = "queued"          # queued | running | done | failed | cancelled
    done: int = 0
    total: int = 0
    error: str | None = None
    result: Path | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> dict:
        progress = self.done / self.total if self.total else (1.0 if self.status == "done" else 0.0)
        return {"id": self.id, "status": self.status, "frames_done": self.done, "frames_total": self.total,
                "progress": round(progress, 4), "error": self.error,
                "result": f"/v1/jobs/{self.id}/result" if self.status == "done" else None}


class JobStore:
    """Jobs by id, one worker thread (video stylization is long and uses every core), a bounded queue."""

    def __init__(self, root: Path, queue: int = 4, keep_seconds: float = 3600, max_bytes: int = 2 << 30):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.queue, self.keep_seconds, self.max_bytes = queue, keep_seconds, max_bytes
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="semstyle-video")

    def waiting(self) -> int:
        return sum(job.status in ("queued", "running") for job in self.jobs.values())

    def reserve(self) -> Job | None:
        """A new queued job with its own folder (for the upload), or None when the queue is full."""
        self.cleanup()
        with self.lock:
            if self.waiting() >= self.queue + 1:
                return None
            job_id = secrets.token_urlsafe(12)
            folder = self.root / job_id
            folder.mkdir()
            job = self.jobs[job_id] = Job(job_id, folder)
        return job

    def start(self, job: Job, work: Callable[[Job], Path]) -> None:
        """Run ``work(job) -> result path`` when the worker is free."""
        self.executor.submit(self._run, job, work)

    def _run(self, job: Job, work: Callable[[Job], Path]) -> None:
        if job.cancel.is_set():
            job.status = "cancelled"
            return
        job.status = "running"
        try:
            job.result = work(job)
            job.status = "done"
        except Cancelled:
            job.status = "cancelled"
        except SemstyleError as exc:
            job.status, job.error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a bug; the job says so instead of vanishing
            job.status, job.error = "failed", f"internal error ({type(exc).__name__})"
        finally:
            job.finished = time.time()

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def delete(self, job_id: str) -> Job | None:
        """Cancel a queued or running job, or delete a finished one and its result."""
        job = self.jobs.get(job_id)
        if job is None:
            return None
        job.cancel.set()
        if job.status in ("done", "failed", "cancelled"):
            self._remove(job)
        elif job.status == "queued":
            job.status = "cancelled"
        return job

    def cleanup(self) -> None:
        """Expire old results, then keep the total size under the limit (oldest first)."""
        now = time.time()
        finished = sorted((j for j in list(self.jobs.values()) if j.finished), key=lambda j: j.finished)
        for job in finished:
            if now - job.finished > self.keep_seconds:
                self._remove(job)
        total = sum(_size(j.folder) for j in self.jobs.values())
        for job in finished:
            if total <= self.max_bytes:
                break
            if job.id in self.jobs:
                total -= _size(job.folder)
                self._remove(job)

    def _remove(self, job: Job) -> None:
        with self.lock:
            self.jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def close(self) -> None:
        for job in self.jobs.values():
            job.cancel.set()
        self.executor.shutdown(wait=False, cancel_futures=True)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*") if p.is_file()) if folder.exists() else 0
