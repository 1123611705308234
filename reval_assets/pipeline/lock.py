"""One sync, publish, rollback or gc at a time per REVAL_HOME, across processes."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path


class SyncBusy(Exception):
    """Another process holds the sync lock."""


@contextmanager
def exclusive(home: Path, action: str) -> Iterator[None]:
    """Hold `home/sync.lock` for the duration, or fail at once naming who holds it."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "sync.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().strip() or "another process"
            raise SyncBusy(f"another sync, rollback or gc is running ({holder}); wait for it to finish, "
                           "or check `reval status`. Nothing was changed.") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{action} by pid {os.getpid()} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC".encode())
        yield
    finally:
        os.close(fd)  # closing releases the lock
