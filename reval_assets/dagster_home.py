"""The embedded Dagster instance: `$DAGSTER_HOME`, defaulting to `$REVAL_HOME/dagster`.

Its `dagster.yaml` queues runs and lets one sync or publish run at a time, so two
accidental launches cannot interleave (deploy/dagster.yaml does the same on PostgreSQL).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path

import dagster as dg

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
def sqlite_files_kept_open(instance: dg.DagsterInstance, run_id: str) -> Iterator[None]:
    """Hold one connection to each SQLite file a run writes (its event shard, the index, the runs).

    Dagster's SQLite storage opens and closes a connection per event. Closing the LAST
    connection to a WAL database checkpoints it and deletes the WAL, with fsyncs, so a sync's
    ~280 events each paid a checkpoint: ~0.8 s of a 100k-doctor sync. With one connection
    held the closes are cheap and SQLite checkpoints as usual. On PostgreSQL storage: no-op.
    """
    storage = instance.event_log_storage
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
        yield


if __name__ == "__main__":
    print(dagster_home())
