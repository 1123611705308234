"""The live store on SQLite and PostgreSQL: staging, publish, rollback, concurrency."""

import dataclasses
import datetime
import sqlite3
import threading

import pyarrow as pa
import pytest
import sqlalchemy as sa

from reval_assets.domain.enums import VersionStatus
from reval_assets.domain.schemas import ENTITIES
from reval_assets.pipeline import operations
from reval_assets.pipeline.guard import GuardRefused
from reval_assets.pipeline.steps import build_batch, land, land_batch
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.bulk import adbc_connection, load_table
from reval_assets.store.live import (
    LIVE_VIEWS,
    LOAD_CONNECTIONS,
    ConcurrentPublishError,
    LiveStore,
    PublishError,
    file_table,
    file_tables,
    version_files,
    version_view,
)
from reval_assets_tests.core_sync import NEW_POPULATION, publish, stage


def rows_of(runtime, view: str) -> list[dict]:
    key = "recommendation_id" if view == "recommendations" else "gmc_reference_number"
    table = runtime.live.read_view(view)
    return sorted(table.to_pylist(), key=lambda r: r[key])


def snapshot_rows(runtime, version: str, entity: str) -> list[dict]:
    refs = runtime.snapshots.manifest(version).files[entity]
    return pa.concat_tables(runtime.snapshots.read_table(r) for r in refs).num_rows


def test_round_trip_source_to_live_views(runtime):
    version = publish(runtime)
    assert runtime.live.live_version() == version
    manifest = runtime.snapshots.manifest(version)
    for entity in ENTITIES:
        view = runtime.live.read_view(entity)
        assert view.num_rows == manifest.rows()[entity] > 0
    doctors = runtime.live.read_view("doctors")
    gmc = SyntheticSource(doctors=1500, seed=7).extract()["gmc_doctors"].table
    # Not in GMC: the TIS-only doctors, and those in the GMC export that the GMC no longer returns.
    not_in_gmc = sum(1 for x in doctors["exists_in_gmc"].to_pylist() if not x)
    no_longer_returned = gmc["existsInGmc"].to_pylist().count("false")
    assert 0 < no_longer_returned < not_in_gmc
    assert doctors.num_rows == gmc.num_rows + not_in_gmc - no_longer_returned
    discrepancies = runtime.live.read_view("discrepancies")
    flagged = [r for r in runtime.live.read_view("connections").to_pylist() if r["is_discrepancy"]]
    assert discrepancies.num_rows == len(flagged) > 0


def test_live_store_has_the_contract_catalog(runtime):
    publish(runtime)
    inspector = sa.inspect(runtime.live.engine)
    assert {"reval_versions", "reval_audit"} <= set(inspector.get_table_names())
    assert set(LIVE_VIEWS) <= set(inspector.get_view_names())
    columns = {c["name"] for c in inspector.get_columns("reval_versions")}
    assert {"version", "status", "parent", "created_at", "published_at", "actor", "reason",
            "rows_doctors", "rows_connections", "rows_recommendations"} <= columns
    assert [r["action"] for r in runtime.live.audit_rows()] == ["stage", "publish"]


def test_staged_but_unpublished_version_changes_nothing_a_reader_sees(runtime, monkeypatch):
    first = publish(runtime)
    before = {v: rows_of(runtime, v) for v in LIVE_VIEWS}
    candidate = stage(runtime, SyntheticSource(doctors=1200, seed=99), thresholds=NEW_POPULATION)
    assert runtime.live.version(candidate)["status"] == VersionStatus.STAGED.value
    assert runtime.live.live_version() == first
    assert {v: rows_of(runtime, v) for v in LIVE_VIEWS} == before


def test_rollback_restores_the_exact_previous_rows(runtime):
    first = publish(runtime)
    before = {v: rows_of(runtime, v) for v in LIVE_VIEWS}
    second = publish(runtime, SyntheticSource(doctors=1700, seed=8), thresholds=NEW_POPULATION)
    assert rows_of(runtime, "doctors") != before["doctors"]
    previous = operations.rollback(runtime, first, actor="tester", reason="bad data")
    assert previous == second
    assert runtime.live.live_version() == first
    assert {v: rows_of(runtime, v) for v in LIVE_VIEWS} == before
    statuses = {r["version"]: r["status"] for r in runtime.live.versions()}
    assert statuses == {first: "live", second: "retired"}
    assert [r["action"] for r in runtime.live.audit_rows()][-1] == "rollback"


def test_publish_refuses_a_candidate_whose_checks_failed_or_never_ran(runtime):
    publish(runtime)
    blocked = stage(runtime, SyntheticSource(doctors=1500, seed=7, faults=["mapping_break"]))
    assert runtime.live.version(blocked)["status"] == VersionStatus.BLOCKED.value
    with pytest.raises(PublishError, match="blocked"):
        operations.publish(runtime, blocked, actor="t", reason="t")
    with pytest.raises(PublishError, match="never published"):
        operations.rollback(runtime, blocked, actor="t", reason="t")


def test_checks_recorded_again_unblock_a_candidate_but_never_touch_a_published_one(runtime):
    live = publish(runtime)
    blocked = stage(runtime, SyntheticSource(doctors=1500, seed=7, faults=["mapping_break"]))
    passing = [{"name": "non_empty", "passed": True, "blocking": True}]
    assert runtime.live.record_checks(blocked, passing, actor="Alice", env="dev", changed_thresholds={"min_rows": 0})
    row = runtime.live.version(blocked)
    assert row["status"] == VersionStatus.STAGED.value and row["checks_passed"] is True
    [unblock] = [r for r in runtime.live.audit_rows() if r["action"] == "unblock"]
    assert unblock["version"] == blocked and unblock["actor"] == "Alice" and '"min_rows": 0' in unblock["detail"]

    before = runtime.live.version(live)
    failing = [{"name": "non_empty", "passed": False, "blocking": True}]
    with pytest.raises(PublishError, match="only a staged or blocked candidate is checked"):
        runtime.live.record_checks(live, failing, actor="Alice", env="dev")
    assert runtime.live.version(live) == before and runtime.live.live_version() == live


def test_two_publishers_racing_exactly_one_wins(runtime):
    base = publish(runtime)
    a = stage(runtime, SyntheticSource(doctors=1500, seed=1), thresholds=NEW_POPULATION)
    b = stage(runtime, SyntheticSource(doctors=1500, seed=2), thresholds=NEW_POPULATION)
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def attempt(version: str) -> None:
        store = LiveStore(runtime.settings.live_url)
        barrier.wait()
        try:
            store.publish(version, actor="racer", reason="race", env="dev", expected_live=base)
            outcomes[version] = "won"
        except ConcurrentPublishError as error:
            outcomes[version] = error
        finally:
            store.close()

    threads = [threading.Thread(target=attempt, args=(v,)) for v in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [v for v, o in outcomes.items() if o == "won"]
    assert len(winners) == 1
    loser = next(o for o in outcomes.values() if o != "won")
    assert "live moved" in str(loser) or "in progress" in str(loser) or "lock" in str(loser)
    assert runtime.live.live_version() == winners[0]


def test_a_version_loads_only_the_batch_tables_it_does_not_share(runtime):
    first = publish(runtime)
    tables_after_first = runtime.live.loaded_tables()
    second = publish(runtime, batches=[0])  # same source: every batch file is reused
    assert runtime.live.loaded_tables() == tables_after_first
    assert runtime.snapshots.manifest(first).files == runtime.snapshots.manifest(second).files


def schema_objects(runtime) -> int:
    inspector = sa.inspect(runtime.live.engine)
    return len(inspector.get_table_names()) + len(inspector.get_view_names())


def test_versions_add_no_schema_to_sqlite_and_four_views_to_postgresql(runtime):
    """Publish cost must not grow with versions kept; see the layouts in store/live.py."""
    first = publish(runtime)
    objects = schema_objects(runtime)
    for _ in range(3):
        publish(runtime, batches=[0])  # same files: new versions, no new batch tables
        operations.rollback(runtime, first, actor="tester", reason="back")
    assert len(runtime.live.versions()) == 4
    per_version = 0 if runtime.live.dialect == "sqlite" else len(LIVE_VIEWS)
    assert schema_objects(runtime) == objects + 3 * per_version


def test_staging_a_version_whose_tables_are_not_loaded_is_refused(runtime):
    version = publish(runtime)
    manifest = runtime.snapshots.manifest(version)
    with runtime.live.engine.begin() as conn:  # as if its load had never committed
        conn.execute(file_tables.delete().where(file_tables.c.table_name == file_table(manifest.files["doctors"][0])))
    renamed = dataclasses.replace(manifest, version="v20260101_000000_abcdef")
    with pytest.raises(PublishError, match="1 of its files are not loaded"):
        runtime.live.stage(renamed, "0" * 64)
    assert runtime.live.version(renamed.version) is None


def test_a_version_staged_before_version_files_is_refused_on_sqlite_and_served_by_its_views_on_postgresql(runtime):
    """Versions staged by older code have no reval_version_files rows: SQLite has nothing to build live from
    (refused, nothing changes); PostgreSQL still has the version's own views, so the rollback works."""
    first = publish(runtime)
    expected = {v: rows_of(runtime, v) for v in LIVE_VIEWS}
    second = publish(runtime, SyntheticSource(doctors=1700, seed=8), thresholds=NEW_POPULATION)
    before = {v: rows_of(runtime, v) for v in LIVE_VIEWS}
    with runtime.live.engine.begin() as conn:
        conn.execute(version_files.delete().where(version_files.c.version == first))
    if runtime.live.dialect == "postgresql":
        runtime.live.rollback(first, actor="tester", reason="back", env="dev")
        assert runtime.live.live_version() == first
        assert {v: rows_of(runtime, v) for v in LIVE_VIEWS} == expected
        return
    with pytest.raises(PublishError, match="no tables recorded .* publish a fresh sync instead"):
        runtime.live.rollback(first, actor="tester", reason="back", env="dev")
    assert runtime.live.live_version() == second
    assert {v: rows_of(runtime, v) for v in LIVE_VIEWS} == before


def test_gc_drops_stray_version_views_but_not_those_live_still_reads(runtime):
    """SQLite stores made before reval_version_files kept one view per version; gc frees them once unused."""
    live = publish(runtime)
    tables = runtime.live.loaded_tables()
    strays = ["v20200101_000000_000000"] + ([live] if runtime.live.dialect == "sqlite" else [])
    with runtime.live.engine.begin() as conn:
        table = sorted(tables)[0]
        for version in strays:
            conn.exec_driver_sql(f"CREATE VIEW r{version}_connections AS SELECT * FROM {table}")
            conn.exec_driver_sql(f"CREATE VIEW r{version}_discrepancies AS SELECT * FROM r{version}_connections")
    report = operations.gc(runtime, keep=10)
    assert report["orphans"]["views"] == 2
    assert runtime.live.read_view("discrepancies").num_rows > 0
    left = {v for v in sa.inspect(runtime.live.engine).get_view_names() if v.startswith("rv")}
    assert {f"r{live}_connections", f"r{live}_discrepancies"} <= left
    assert not any(v.startswith("rv20200101") for v in left)


def test_sqlite_stores_dates_and_times_as_the_same_text_readers_always_got(tmp_path):
    data = pa.table({"d": pa.array([datetime.date(2023, 1, 2), None], pa.date32()),
                     "t": pa.array([datetime.datetime(2023, 1, 2, 3, 4, 5),
                                    datetime.datetime(2023, 1, 2, 3, 4, 5, 123456)], pa.timestamp("us"))})
    url = f"sqlite:///{tmp_path / 'live.db'}"
    with adbc_connection(url) as adbc, adbc.cursor() as cursor:
        load_table(cursor, "sqlite", "dates", data)
    with sqlite3.connect(tmp_path / "live.db") as conn:
        rows = conn.execute("SELECT d, t, typeof(t) FROM dates").fetchall()
    assert rows == [("2023-01-02", "2023-01-02T03:04:05.000000", "text"),
                    (None, "2023-01-02T03:04:05.123456", "text")]


def test_guard_refuses_prod_publish_without_confirmation_and_audits_it(runtime, monkeypatch):
    from dataclasses import replace

    from reval_assets.domain.enums import Environment

    version = stage(runtime)
    runtime.settings = replace(runtime.settings, env=Environment.PROD)
    with pytest.raises(GuardRefused, match="--confirm prod"):
        operations.publish(runtime, version, actor="t", reason="oops")
    assert runtime.live.live_version() is None
    assert runtime.live.audit_rows()[-1]["action"] == "refuse"
    operations.publish(runtime, version, actor="t", reason="on purpose", confirm="prod")
    assert runtime.live.live_version() == version


def test_a_load_that_fails_keeps_the_tables_it_committed_on_each_connection_and_a_retry_loads_the_rest(runtime):
    store = runtime.snapshots
    landing = land(runtime.source(), store, runtime.settings.batches)
    pairs = []
    for batch in range(runtime.settings.batches):
        land_batch(store, landing, batch)
        pairs += list(build_batch(store, batch).refs.items())
    pairs = list({file_table(ref): (entity, ref) for entity, ref in reversed(pairs)}.values())[::-1]  # one per table
    broken, readers = pairs[4][1], set()

    def read(ref):
        readers.add(threading.get_ident())
        if ref == broken:
            raise OSError("disk gone (test)")
        return store.read_table(ref)

    with pytest.raises(OSError, match="disk gone"):
        runtime.live.load_files(pairs, read)
    assert len(readers) == LOAD_CONNECTIONS[runtime.live.dialect]  # PostgreSQL loads over two connections
    loaded = runtime.live.loaded_tables()
    assert file_table(broken) not in loaded and 0 < len(loaded) < len(pairs)
    if runtime.live.dialect == "sqlite":  # one connection: everything before the broken file
        assert loaded == {file_table(ref) for _, ref in pairs[:4]}
    else:  # the other connection's share was loaded whole
        assert {file_table(ref) for _, ref in pairs[1::2]} <= loaded

    retry = runtime.live.load_files(pairs, lambda ref: store.read_table(ref))
    missing = {file_table(ref) for _, ref in pairs} - loaded  # batches may share a file (an empty one, say)
    assert (retry.tables_reused, retry.tables_loaded) == (len(pairs) - len(missing), len(missing))
    assert runtime.live.loaded_tables() == {file_table(ref) for _, ref in pairs}


def test_a_version_from_before_hidden_discrepancies_rolls_back_with_none_hidden(runtime):
    """A store made before the entity existed: its catalog gains the row count (null for old versions), and
    rolling back to an old version shows its other views as they were and no hidden discrepancies."""
    first = publish(runtime)
    expected = {v: rows_of(runtime, v) for v in ("doctors", "connections", "recommendations", "discrepancies")}
    publish(runtime, SyntheticSource(doctors=1700, seed=8), thresholds=NEW_POPULATION)
    with runtime.live.engine.begin() as conn:  # as older code recorded it: no such entity, no count column
        conn.execute(version_files.delete().where(sa.and_(version_files.c.version == first,
                                                          version_files.c.entity == "hidden_discrepancies")))
        conn.exec_driver_sql("ALTER TABLE reval_versions DROP COLUMN rows_hidden_discrepancies")
        if runtime.live.dialect == "postgresql":
            conn.exec_driver_sql(f"DROP VIEW {version_view(first, 'hidden_discrepancies')}")
    reopened = LiveStore(runtime.settings.live_url)
    try:
        reopened.rollback(first, actor="tester", reason="back", env="dev")
        assert reopened.live_version() == first and reopened.version(first)["rows_hidden_discrepancies"] is None
    finally:
        reopened.close()
    assert {v: rows_of(runtime, v) for v in expected} == expected
    assert rows_of(runtime, "hidden_discrepancies") == []
