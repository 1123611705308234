"""The embedded Dagster instance: `$DAGSTER_HOME`, defaulting to `$REVAL_HOME/dagster`.

Its `dagster.yaml` queues runs and lets one sync or publish run at a time, so two
accidental launches cannot interleave (deploy/dagster.yaml does the same on PostgreSQL).
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from reval_assets.settings import Settings
from reval_assets.store.files import atomic_write, new_private_dir, private_dir

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
    """The instance's folder. Its storage holds run configs and check examples (doctors' names, GMC numbers),
    so `$REVAL_HOME` and `$REVAL_HOME/dagster` are made 0700; a DAGSTER_HOME set elsewhere is only created
    0700 if missing. Files in it are 0600 when Dagster writes them under `store.files.private_umask`."""
    settings = settings or Settings.from_env()
    explicit = os.environ.get("DAGSTER_HOME")
    home = Path(explicit or settings.home / "dagster").absolute()
    if explicit:
        new_private_dir(home)
    else:
        private_dir(settings.home.absolute())
        private_dir(home)
    config = home / "dagster.yaml"
    if not config.exists():
        atomic_write(config, DAGSTER_YAML.encode())
    return home


@contextmanager
def embedded_instance_tuned(instance: dg.DagsterInstance, run_id: str) -> Iterator[None]:
    """Make a run's event writes cheap on the instance's SQLite files (its event shard, the index, the runs).

    Dagster's SQLite storage opens and closes a connection per event, each from a new engine, and
    a sync writes ~280 events.
    1. One connection to each file is held open. Closing the LAST connection to a WAL database
       checkpoints it and deletes the WAL, with fsyncs: ~0.8 s of a 100k-doctor sync.
    2. One engine per file is reused (`_sqlite_engines_tuned`): a new engine compiles every
       statement of the event afresh.
    3. Those engines' connections commit with `synchronous=NORMAL`, WAL's usual setting: no fsync
       per commit (~0.3 s). A killed process loses nothing; a power cut may lose the run's last
       events, and `reval sync` closes a run left open like a killed sync's.
    On PostgreSQL storage: no-op. The live store's connections are never touched.
    """
    storage = instance.event_log_storage
    with ExitStack() as held:
        held.enter_context(_sqlite_engines_tuned())
        for connect in (lambda: storage.run_connection(run_id), storage.index_connection,
                        instance.run_storage.connect):
            try:
                with connect() as conn:  # also creates the run's shard, as its first event would
                    url = conn.engine.url
            except AttributeError:  # storage without SQL connections (e.g. in memory)
                continue
            # A file on disk (an in-memory storage's database is a URI, and has no WAL to keep)
            if url.get_backend_name() == "sqlite" and url.database and Path(url.database).is_file():
                kept = held.enter_context(closing(sqlite3.connect(url.database)))
                kept.execute("SELECT COUNT(*) FROM sqlite_master").fetchall()  # joins the WAL
        yield


# The modules of Dagster's SQLite storages that build a new NullPool engine for every connection.
SQLITE_STORAGE_MODULES = (
    "dagster._core.storage.event_log.sqlite.sqlite_event_log",
    "dagster._core.storage.runs.sqlite.sqlite_run_storage",
)
# Those modules and their module-level `create_engine` are Dagster's private code: the patch below is applied
# only on the Dagster releases it was written against and tested with (pyproject.toml pins one of them). On any
# other, runs use Dagster's storage untouched: slower, never wrong. Widen this after running
# reval_assets_tests/test_embedded_instance.py on the new release.
TUNED_DAGSTER_RELEASES = ("1.13.",)


def engines_tunable(version: str = dg.__version__) -> bool:
    """Whether `_sqlite_engines_tuned` patches this Dagster version's storages."""
    return version.startswith(TUNED_DAGSTER_RELEASES)


@contextmanager
def _sqlite_engines_tuned() -> Iterator[None]:
    """While open, Dagster's SQLite storages reuse one engine per database, whose connections commit
    with `synchronous=NORMAL`.

    An engine keeps the compiled form of each statement, so a new one per event recompiles every
    INSERT and SELECT of the event (and inspects the dialect's class again): most of the SQLAlchemy
    time of a run. A reused NullPool engine still opens and closes a real connection each time.
    Only on the Dagster releases of `TUNED_DAGSTER_RELEASES`; restored on exit. A module without
    `create_engine` is left alone, and so is one already tuned by an overlapping run in this process:
    only its tuner restores it.
    """
    if not engines_tunable():
        yield
        return
    engines: dict[str, sa.Engine] = {}
    lock = threading.Lock()

    def reusing(create: Callable[..., sa.Engine]) -> Callable[..., sa.Engine]:
        def create_engine(url: object, **options: object) -> sa.Engine:
            key = f"{url}|{sorted(options.items(), key=str)!r}"
            with lock:
                if key not in engines:
                    engines[key] = engine = create(url, **options)
                    sa.event.listen(engine, "connect", _commit_without_fsync)
                return engines[key]
        create_engine.reval_tuned = True  # type: ignore[attr-defined]
        return create_engine

    patched = []
    for name in SQLITE_STORAGE_MODULES:
        module = importlib.import_module(name)
        original = getattr(module, "create_engine", None)
        if original is not None and not getattr(original, "reval_tuned", False):
            module.create_engine = reusing(original)
            patched.append((module, original))
    try:
        yield
    finally:
        for module, original in patched:
            module.create_engine = original
        for engine in engines.values():
            engine.dispose()


def _commit_without_fsync(connection: sqlite3.Connection, _record: object) -> None:
    connection.execute("PRAGMA synchronous=NORMAL")


if __name__ == "__main__":
    print(dagster_home())
