"""deploy/dagster.yaml: a Dagster instance on PostgreSQL that stores the sync's runs and assets."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.instance.config import dagster_instance_config
from dagster._core.run_coordinator import QueuedRunCoordinator
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from reval_assets.assets.common import SETTINGS_AT_LOAD
from reval_assets.definitions import defs
from reval_assets.domain.schemas import ENTITIES, RAW_SPECS
from reval_assets.pipeline.runtime import Runtime
from reval_assets.run import BATCH_ASSETS, QUIET
from reval_assets.settings import Settings

PROJECT = Path(__file__).resolve().parents[1]
DEPLOY = PROJECT / "deploy"
RELEASE = [dg.AssetKey("release_candidate"), dg.AssetKey("live_release")]


def pg_environment(url: str) -> dict[str, str]:
    parsed = sa.engine.make_url(url)
    return {
        "DAGSTER_PG_HOST": parsed.host or "127.0.0.1",
        "DAGSTER_PG_PORT": str(parsed.port or 5432),
        "DAGSTER_PG_USER": parsed.username or "postgres",
        "DAGSTER_PG_PASSWORD": parsed.password or "",
        "DAGSTER_PG_DB": parsed.database or "",
    }


def test_deploy_dagster_yaml_is_a_valid_instance_config(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in pg_environment("postgresql://reval:secret@db.internal:6543/dagster").items():
        monkeypatch.setenv(name, value)
    config, custom_class = dagster_instance_config(str(DEPLOY), "dagster.yaml")  # raises if it does not validate
    assert custom_class is None
    db = config["storage"]["postgres"]["postgres_db"]
    assert {k: v["env"] for k, v in db.items() if isinstance(v, dict)} == {
        "hostname": "DAGSTER_PG_HOST",
        "port": "DAGSTER_PG_PORT",
        "username": "DAGSTER_PG_USER",
        "password": "DAGSTER_PG_PASSWORD",
        "db_name": "DAGSTER_PG_DB",
    }
    assert db["scheme"] == "postgresql+psycopg2"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["concurrency"]["runs"]["tag_concurrency_limits"] == [{"key": "reval/sync", "limit": 1}]
    assert config["concurrency"]["pools"]["default_limit"] == 1
    assert config["telemetry"] == {"enabled": False}
    # every sync-like job carries the tag the run queue limits on
    for job in ("full_sync", "rollback", "gc"):
        assert defs.resolve_job_def(job).tags.get("reval/sync") == "true", job


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_workspace_file_per_environment_loads_that_environment_only(env: str) -> None:
    path = PROJECT / "workspace.yaml" if env == "dev" else DEPLOY / f"workspace.{env}.yaml"
    [entry] = yaml.safe_load(path.read_text())["load_from"]
    module = entry["python_module"]
    assert module == {
        "module_name": "reval_assets.definitions",
        "attribute": f"defs_{env}",
        "location_name": f"reval-{env.upper()}",
    }


@pytest.fixture
def pg_instance(
    reval_env: Path, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dg.DagsterInstance]:
    """A DAGSTER_HOME whose dagster.yaml is deploy/dagster.yaml, pointed at a fresh database."""
    home = tmp_path / "dagster-home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    for name, value in pg_environment(pg_url).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = dg.DagsterInstance.get()
    try:
        yield instance
    finally:
        instance.dispose()


@pytest.mark.skipif(SETTINGS_AT_LOAD.batches != 16, reason="assumes the default 16 batches")
def test_partitioned_sync_through_the_postgres_instance_is_stored_there(
    pg_instance: dg.DagsterInstance, pg_url: str
) -> None:
    instance = pg_instance
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
    assert isinstance(instance.run_coordinator, QueuedRunCoordinator)

    # As `reval sync` does it: single-run backfills of partition ranges, then candidate + publish in one run.
    job = defs.resolve_job_def("full_sync")
    run_ids = []
    for start, end in ((0, 7), (8, 15)):
        tags = {
            "dagster/asset_partition_range_start": str(start),
            "dagster/asset_partition_range_end": str(end),
            "reval/actor": "tester",
        }
        result = job.execute_in_process(instance=instance, tags=tags, asset_selection=BATCH_ASSETS, run_config=QUIET)
        assert result.success
        run_ids.append(result.run_id)
    result = job.execute_in_process(instance=instance, asset_selection=RELEASE, run_config=QUIET)
    assert result.success
    run_ids.append(result.run_id)

    runtime = Runtime(Settings.from_env())
    try:
        live = runtime.live.live_version()
        assert live is not None and live == runtime.live.candidate_for_run(result.run_id)
    finally:
        runtime.close()

    # Read back through the instance.
    runs = instance.get_runs()
    assert sorted(r.run_id for r in runs) == sorted(run_ids)
    assert {r.status for r in runs} == {dg.DagsterRunStatus.SUCCESS}
    by_id = {r.run_id: r for r in runs}
    assert by_id[run_ids[1]].tags["dagster/asset_partition_range_start"] == "8"
    assert all(r.tags.get("reval/sync") == "true" for r in runs)
    all_keys = {str(b) for b in range(16)}
    for key in BATCH_ASSETS:
        assert instance.get_materialized_partitions(key) == all_keys
    records = instance.fetch_materializations(dg.AssetKey("doctors"), limit=100).records
    assert sorted(int(r.partition_key) for r in records) == list(range(16))
    assert {r.run_id for r in records} == set(run_ids[:2])
    latest = instance.get_latest_materialization_event(dg.AssetKey("live_release"))
    assert latest is not None and latest.run_id == run_ids[2]
    assert latest.asset_materialization.metadata["live_version"].value == live
    checks = instance.all_logs(run_ids[2], of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    assert checks and all(e.dagster_event.event_specific_data.passed for e in checks)
    # release_candidate and live_release ran in the pool reval_sync, limited to 1 slot, released afterwards
    pool = instance.event_log_storage.get_concurrency_info("reval_sync")
    assert pool.slot_count == 1 and not pool.claimed_slots and not pool.pending_steps

    # ... and straight from the PostgreSQL database the instance was pointed at.
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            stored = dict(conn.execute(sa.text("SELECT run_id, status FROM runs")).all())
            materializations = conn.execute(
                sa.text(
                    "SELECT asset_key, partition FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
                )
            ).all()
        assert stored == dict.fromkeys(run_ids, "SUCCESS")
        per_asset: dict[str, set[str]] = {}
        for asset_key, partition in materializations:
            per_asset.setdefault(dg.AssetKey.from_db_string(asset_key).to_user_string(), set()).add(partition)
        assert per_asset == {
            **dict.fromkeys((*RAW_SPECS, *ENTITIES), all_keys),
            "release_candidate": {None},
            "live_release": {None},
        }
    finally:
        engine.dispose()
