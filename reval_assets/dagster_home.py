"""The embedded Dagster instance: `$DAGSTER_HOME`, defaulting to `$REVAL_HOME/dagster`.

Its `dagster.yaml` queues runs and lets one sync or publish run at a time, so two
accidental launches cannot interleave (deploy/dagster.yaml does the same on PostgreSQL).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from functools import partial
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from reval_assets.settings import Settings

DAGSTER_YAML = """\
# Written by reval_assets.dagster_home; edit freely, it is not overwritten.
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: reval/sync
        limit: 1
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


def dagster_home(settings: Settings | None = None) -> Path:
    settings = settings or Settings.from_env()
    home = Path(os.environ.get("DAGSTER_HOME") or settings.home / "dagster").absolute()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return home


@contextmanager
def embedded_instance_tuned(instance: dg.DagsterInstance, run_id: str) -> Iterator[None]:
    """Make a run's event writes cheap on the instance's SQLite files (its event shard, the index, the runs).

    Dagster's SQLite storage opens and closes a connection per event, and a sync writes ~280.
    1. One connection to each file is held open. Closing the LAST connection to a WAL database
       checkpoints it and deletes the WAL, with fsyncs: ~0.8 s of a 100k-doctor sync.
    2. Dagster's connections to those files commit with `synchronous=NORMAL`, WAL's usual setting:
       no fsync per commit (~0.3 s). A killed process loses nothing; a power cut may lose the
       run's last events, and `reval sync` closes a run left open like a killed sync's.
    On PostgreSQL storage: no-op. The live store's connections are never touched.
    """
    storage = instance.event_log_storage
    files: set[str] = set()
    with ExitStack() as held:
        for connect in (lambda: storage.run_connection(run_id), storage.index_connection,
                        instance.run_storage.connect):
            try:
                with connect() as conn:  # also creates the run's shard, as its first event would
                    url = conn.engine.url
            except AttributeError:  # storage without SQL connections (e.g. in memory)
                continue
            if url.get_backend_name() == "sqlite" and url.database:
                kept = held.enter_context(closing(sqlite3.connect(url.database)))
                kept.execute("SELECT COUNT(*) FROM sqlite_master").fetchall()  # joins the WAL
                files.add(os.path.realpath(url.database))
        if files:
            listener = partial(_commit_without_fsync, frozenset(files))
            sa.event.listen(sa.pool.Pool, "connect", listener)
            held.callback(sa.event.remove, sa.pool.Pool, "connect", listener)
        yield


def _commit_without_fsync(files: frozenset[str], connection: object, _record: object) -> None:
    if isinstance(connection, sqlite3.Connection):
        path = connection.execute("PRAGMA database_list").fetchone()[2]
        if path and os.path.realpath(path) in files:
            connection.execute("PRAGMA synchronous=NORMAL")


if __name__ == "__main__":
    print(dagster_home())
