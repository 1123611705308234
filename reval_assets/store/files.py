"""Durable, private file writes: temp name, fsync, atomic rename; owner-only permissions.

The snapshots name doctors, so folders are 0700 and files 0600 whatever the umask.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from reval_assets.store.faults import fault_point

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` and any missing parents as 0700 (mkdir's `parents` would use the umask)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(folder, DIR_MODE)
    if not missing:
        os.chmod(path, DIR_MODE)
    return path


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
