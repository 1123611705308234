"""The live store's writer lock: one sync, publish, rollback, gc or recover at a time, per store.

It is the store's own lock, so it excludes writers whoever starts them (the `reval` command, a
Dagster run launched from the UI, the schedule, a sensor) and wherever they run:
- PostgreSQL: a session-level advisory lock, held on a connection of its own for the duration
  (any machine that reaches the server sees it; a dead holder's session ends and frees it);
- SQLite: an `flock` on a file beside the database (`live.db.lock`), freed when its holder exits.

A process that holds the lock may take it again (a `reval sync` holds it while the Dagster steps
it runs in process take it for themselves).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from reval_assets.errors import RevalError

# pg_try_advisory_lock(bigint): a constant of ours, the same in every process ("reval" in ASCII).
ADVISORY_KEY = 0x726576616C
_APP_PREFIX = "reval writer: "


class StoreBusy(RevalError):
    """Another process holds the store's writer lock; nothing was changed."""

    kind = "store_busy"

    def __init__(self, holder: str):
        super().__init__(f"another sync, publish, rollback or gc is running on this live store ({holder}); wait for "
                         "it to finish, or check `reval status`. Nothing was changed.")


_held: dict[str, int] = {}  # store key -> how many times this process holds it
_held_guard = threading.Lock()


def holder_text(action: str) -> str:
    return f"{action} by pid {os.getpid()} on {os.uname().nodename} since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"


@contextmanager
def writer_lock(engine: Engine, action: str) -> Iterator[None]:
    """Hold the store's writer lock for the duration, or raise StoreBusy at once naming the holder."""
    key = engine.url.render_as_string(hide_password=True)
    with _held_guard:
        if _held.get(key):
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            _release_count(key)
        return
    take = _postgres_lock if engine.url.get_backend_name() == "postgresql" else _sqlite_lock
    with take(engine, action):
        with _held_guard:
            _held[key] = 1
        try:
            yield
        finally:
            _release_count(key)


def _release_count(key: str) -> None:
    with _held_guard:
        _held[key] -= 1
        if not _held[key]:
            del _held[key]


@contextmanager
def _sqlite_lock(engine: Engine, action: str) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield  # an in-memory store lives and dies with its one process
        return
    path = Path(f"{database}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreBusy(path.read_text(errors="replace").strip() or "another process") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder_text(action).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def _postgres_lock(engine: Engine, action: str) -> Iterator[None]:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT set_config('application_name', :name, false)"),
                     {"name": (_APP_PREFIX + holder_text(action))[:63]})
        if not conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_KEY}).scalar():
            raise StoreBusy(_postgres_holder(conn))
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key), set_config('application_name', '', false)"),
                         {"key": ADVISORY_KEY})
            conn.commit()


def _postgres_holder(conn: sa.Connection) -> str:
    name = conn.execute(sa.text(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND ((l.classid::bigint << 32) | l.objid::bigint) = :key"), {"key": ADVISORY_KEY}).scalar()
    return name.removeprefix(_APP_PREFIX) if name else "another session"
