"""Durable, private file writes: temp name, fsync, atomic rename; owner-only permissions.

The snapshots name doctors, so folders are 0700 and files 0600 whatever the umask.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reval_assets.store.faults import fault_point

DIR_MODE = 0o700
FILE_MODE = 0o600
PRIVATE_UMASK = 0o077
_umask_lock = threading.Lock()
_umask_held = {"count": 0, "saved": 0}  # how many `private_umask` are open, and the umask they replaced


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents as 0700 (mkdir's `parents` would use the umask); an existing
    `path` is made 0700 too. For folders about to be written; `new_private_dir` leaves existing ones alone."""
    if not new_private_dir(path):
        os.chmod(path, DIR_MODE)
    return path


def new_private_dir(path: Path) -> bool:
    """Create `path` and any missing parents as 0700, touching nothing that exists; whether any was created."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(folder, DIR_MODE)
    return bool(missing)


def private_file(path: Path) -> Path:
    """Create `path` empty as 0600 if it does not exist (so a database opened on it is private); else leave it."""
    new_private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        pass
    return path


@contextmanager
def private_umask() -> Iterator[None]:
    """While open, files and folders created without an explicit mode (e.g. by Dagster's SQLite storage)
    are owner-only: 0600 and 0700. The umask is the process's, so overlapping uses (threads) share it:
    the first in sets it, the last out restores it."""
    with _umask_lock:
        if _umask_held["count"] == 0:
            _umask_held["saved"] = os.umask(PRIVATE_UMASK)
        _umask_held["count"] += 1
    try:
        yield
    finally:
        with _umask_lock:
            _umask_held["count"] -= 1
            if _umask_held["count"] == 0:
                os.umask(_umask_held["saved"])


def atomic_write(path: Path, data: bytes | memoryview) -> None:
    """Write `data` so `path` either does not exist or holds all of it, never part."""
    private_dir(path.parent)
    tmp = path.parent / f".tmp-{uuid.uuid4().hex}-{path.name}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            view = memoryview(data)
            handle.write(view[: len(view) // 2])
            # A test may kill here: half a temp file, nothing under the final name.
            fault_point("write", f"write/{path.parent.name}", f"write/{path.parent.parent.name}")
            handle.write(view[len(view) // 2 :])
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None:
            error.filename = str(path)  # "No space left on device" alone does not say where
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
