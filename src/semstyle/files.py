"""Writing files so that nothing is ever half-written: the one atomic writer.

Every output of semstyle (images, model files, checkpoints, configs, logs,
cached weights) goes through :func:`atomic_write`: the bytes go to a hidden
temporary file in the destination's folder, are flushed and fsynced, get the
permissions a plain ``open()`` would have given (or the replaced file's), and
are renamed over the destination, and the folder entry is fsynced too.
Readers see the old file or the complete new one; on any failure, Ctrl-C
included, the temporary file is removed and the destination is untouched.

A SIGKILL cannot be caught, so a killed writer leaves its temporary file
behind. Temporary names carry the writer's process id
(``.NAME.PID.RANDOM.tmp``); :func:`remove_stale_temps` deletes those whose
process is gone, and every write does so for its own destination, so leftovers
never pile up.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from .errors import BusyError

TEMP_SUFFIX = ".tmp"


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(handle)`` on a temporary file, then rename it over ``path``.

    The folder must exist. Raises ``OSError`` as the file system reports it;
    callers turn it into their own one-line error."""
    path = Path(path)
    remove_stale_temps(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
    try:
        with open(tmp, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _new_file_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete temporary files of ``path`` left by writers that no longer run."""
    path = Path(path)
    removed = []
    with contextlib.suppress(OSError):
        for candidate in path.parent.glob(f".{_glob_escape(path.name)}.*{TEMP_SUFFIX}"):
            pid = _writer_pid(candidate, path.name)
            if pid is not None and not _process_alive(pid):
                with contextlib.suppress(OSError):
                    candidate.unlink()
                    removed.append(candidate)
    return removed


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _writer_pid(candidate: Path, name: str) -> int | None:
    middle = candidate.name[len(name) + 2:-len(TEMP_SUFFIX)]  # "PID.RANDOM"
    pid, _, token = middle.partition(".")
    return int(pid) if pid.isdigit() and token else None


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _new_file_mode(path: Path) -> int:
    """Keep an existing file's permissions; else what ``open()`` would give."""
    with contextlib.suppress(OSError):
        return stat.S_IMODE(path.stat().st_mode)
    return 0o666 & ~umask()


def umask() -> int:
    """Read the umask without setting it where /proc allows (setting it is process-wide)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(folder: Path) -> None:
    """Persist a rename itself; not possible (nor needed) on Windows."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def describe_os_error(exc: OSError) -> str:
    """``[Errno 28] No space left on device: 'x'`` -> ``no space left on device``."""
    if exc.errno == errno.EROFS:
        return "read-only file system"
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[0].lower() + text[1:] if text else type(exc).__name__


@contextlib.contextmanager
def staged_folder(target: str | os.PathLike) -> Iterator[Path]:
    """A folder written whole or not at all: the ``with`` block fills a hidden staging folder
    beside ``target``, which is then renamed into place (replacing an existing ``target``).
    On any failure, Ctrl-C included, the staging folder is removed and ``target`` is untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX))
    try:
        yield stage
        os.chmod(stage, 0o777 & ~umask())  # mkdtemp makes 0700
        if target.exists():
            shutil.rmtree(target)
        os.rename(stage, target)
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def semstyle_home() -> Path:
    """Cache directory: ``$SEMSTYLE_HOME`` or ``~/.cache/semstyle`` (not created here)."""
    return Path(os.environ.get("SEMSTYLE_HOME") or Path.home() / ".cache" / "semstyle")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an advisory lock on ``path`` (created if needed) for the ``with`` block.

    A second process asking for the same lock gets a :class:`BusyError` at once
    (it does not wait), naming ``what`` and the holder's process id. The kernel
    drops the lock when its holder dies, SIGKILL included, so it never goes stale."""
    import fcntl

    path = Path(path)
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise BusyError(f"{what} is in use by another process (pid {holder}); "
                            f"wait for it to finish or use another folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()
