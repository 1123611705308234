"""The live store on SQLite and PostgreSQL: staging, publish, rollback, concurrency."""

import threading

import pyarrow as pa
import pytest
import sqlalchemy as sa

from reval_assets.domain.enums import VersionStatus
from reval_assets.domain.schemas import ENTITIES
from reval_assets.pipeline import operations
from reval_assets.pipeline.guard import GuardRefused
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.live import LIVE_VIEWS, ConcurrentPublishError, LiveStore, PublishError
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
    assert doctors.num_rows == SyntheticSource(doctors=1500, seed=7).extract()["gmc_doctors"].table.num_rows + sum(
        1 for x in runtime.live.read_view("doctors")["exists_in_gmc"].to_pylist() if not x)
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
