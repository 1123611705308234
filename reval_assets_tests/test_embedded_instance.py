"""The embedded Dagster instance ($REVAL_HOME/dagster): cheap event writes during a run, and only there."""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from reval_assets.dagster_home import SQLITE_STORAGE_MODULES, dagster_home, embedded_instance_tuned

FULL, NORMAL = 2, 1  # PRAGMA synchronous


def test_during_a_run_the_instance_keeps_its_wal_and_commits_without_fsync_and_nothing_else_does(
    reval_env: Path, tmp_path: Path
) -> None:
    instance = dg.DagsterInstance.from_config(str(dagster_home()))
    other = sa.create_engine(f"sqlite:///{tmp_path / 'live.db'}")
    run_id = str(uuid.uuid4())
    storage = instance.event_log_storage

    def synchronous(connect: Callable[[], AbstractContextManager[sa.Connection]]) -> int:
        with connect() as conn:
            return conn.exec_driver_sql("PRAGMA synchronous").scalar()

    try:
        with embedded_instance_tuned(instance, run_id):
            with storage.run_connection(run_id) as conn:
                shard = Path(conn.engine.url.database)
            assert Path(f"{shard}-wal").exists()  # held open: closing Dagster's connections does not delete it
            assert synchronous(lambda: storage.run_connection(run_id)) == NORMAL
            assert synchronous(storage.index_connection) == NORMAL
            assert synchronous(instance.run_storage.connect) == NORMAL
            assert synchronous(other.connect) == FULL
        assert synchronous(storage.index_connection) == FULL
        assert synchronous(lambda: storage.run_connection(run_id)) == FULL
        assert not Path(f"{shard}-wal").exists()
    finally:
        other.dispose()
        instance.dispose()


def test_during_a_run_the_instance_reuses_one_engine_per_file_and_builds_them_anew_after(reval_env: Path) -> None:
    instance = dg.DagsterInstance.from_config(str(dagster_home()))
    run_id = str(uuid.uuid4())
    storage = instance.event_log_storage

    def engine(connect: Callable[[], AbstractContextManager[sa.Connection]]) -> sa.Engine:
        with connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            return conn.engine

    try:
        with embedded_instance_tuned(instance, run_id):
            index = engine(storage.index_connection)
            assert engine(storage.index_connection) is index  # its compiled statements are kept
            assert engine(instance.run_storage.connect) is engine(instance.run_storage.connect)
            assert engine(lambda: storage.run_connection(run_id)) is not index  # one per file
        assert engine(storage.index_connection) is not engine(storage.index_connection)  # Dagster's own again
    finally:
        instance.dispose()


def test_overlapping_runs_in_one_process_leave_dagster_as_it_was(
    reval_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    first, second = dg.DagsterInstance.from_config(str(dagster_home())), dg.DagsterInstance.ephemeral()
    originals = {name: importlib.import_module(name).create_engine for name in SQLITE_STORAGE_MODULES}
    try:
        outer = embedded_instance_tuned(first, str(uuid.uuid4()))
        inner = embedded_instance_tuned(second, str(uuid.uuid4()))
        outer.__enter__()
        inner.__enter__()
        outer.__exit__(None, None, None)  # the first run ends while the second is still going
        inner.__exit__(None, None, None)
        assert {name: importlib.import_module(name).create_engine for name in SQLITE_STORAGE_MODULES} == originals
        assert list(workdir.iterdir()) == []  # the in-memory instance's databases left no file behind
    finally:
        first.dispose()
        second.dispose()
