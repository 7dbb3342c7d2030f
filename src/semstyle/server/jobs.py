"""Jobs: long work that outlives the request that started it.

A job is queued, runs, reports progress, can be cancelled, and keeps its result until it expires.
Video jobs run in the jobs' own worker thread, behind a bounded queue; image jobs (a stylization
with ``refine``) run in the server's worker pool, which bounds them. Disk use is bounded: finished
results past their time, or beyond the total size allowed, are deleted oldest first. A client that
disconnects loses nothing.
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


UNITS = {"video": "frames", "image": "steps"}
"""What a job's progress counts: a video's frames, an image's refinement steps."""


@dataclass
class Job:
    id: str
    folder: Path
    kind: str = "video"             # video | image
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
        unit = UNITS[self.kind]
        return {"id": self.id, "kind": self.kind, "status": self.status, f"{unit}_done": self.done,
                f"{unit}_total": self.total, "progress": round(progress, 4), "error": self.error,
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

    def waiting(self, kind: str = "video") -> int:
        return sum(job.status in ("queued", "running") and job.kind == kind for job in list(self.jobs.values()))

    def reserve(self, kind: str = "video") -> Job | None:
        """A new queued job with its own folder (for the upload or the result), or None when the
        video queue is full (image jobs are bounded by the worker pool that runs them)."""
        self.cleanup()
        with self.lock:
            if kind == "video" and self.waiting(kind) >= self.queue + 1:
                return None
            job_id = secrets.token_urlsafe(12)
            folder = self.root / job_id
            folder.mkdir()
            job = self.jobs[job_id] = Job(job_id, folder, kind)
        return job

    def start(self, job: Job, work: Callable[[Job], Path]) -> None:
        """Run ``work(job) -> result path`` when the video worker is free."""
        self.executor.submit(self.run, job, work)

    def run(self, job: Job, work: Callable[[Job], Path]) -> None:
        """Run ``work(job)`` here and now, keeping the job's status (for a worker thread of one's own)."""
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
