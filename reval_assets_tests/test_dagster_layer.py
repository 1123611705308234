"""The Dagster layer end to end: the real Definitions, executed in process on a real instance.

Every test has its own REVAL_HOME (the `reval_env` fixture) and its own Dagster instance.
The environment (REVAL_ENV, REVAL_FAULTS, REVAL_LIVE_URL, ...) is read by the resource when
a run starts, so a test changes it with monkeypatch between runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pytest
import sqlalchemy as sa

import reval_assets.definitions as definitions_module
from reval_assets.assets.checks import candidate_checks
from reval_assets.assets.common import ENV_LABEL, SETTINGS_AT_LOAD
from reval_assets.definitions import defs
from reval_assets.domain.schemas import ENTITIES, ENTITY_SPECS, GUARDED_ENTITIES, RAW_SPECS
from reval_assets.pipeline.runtime import Runtime
from reval_assets.pipeline.steps import Landing
from reval_assets.quality.checks import CHECKS
from reval_assets.run import BATCH_ASSETS, QUIET, run_sync
from reval_assets.store.live import LIVE_VIEWS

FULL_SYNC = defs.resolve_job_def("full_sync")
RELEASE = [dg.AssetKey("release_candidate"), dg.AssetKey("live_release")]
LIVE_RELEASE_ONLY = [dg.AssetKey("live_release")]
ALL_KEYS = SETTINGS_AT_LOAD.partition_keys
OPERATOR = "Alice Ward"  # who a production launch from the UI says is doing it (`operator` in its config)
CONFIRM_PROD = {"live_release": {"config": {"confirm": "prod", "operator": OPERATOR}}}

pytestmark = pytest.mark.skipif(
    SETTINGS_AT_LOAD.batches != 16, reason="these tests assume the default 16 batches (REVAL_BATCHES unset)"
)


# --- helpers ---------------------------------------------------------------------------------


def range_tags(start: int, end: int) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": str(start), "dagster/asset_partition_range_end": str(end)}


def sync_batches(instance: dg.DagsterInstance, start: int = 0, end: int = 15) -> dg.ExecuteInProcessResult:
    """One single-run backfill of the raw and entity assets over batches start..end."""
    return FULL_SYNC.execute_in_process(
        instance=instance, tags=range_tags(start, end), asset_selection=BATCH_ASSETS, run_config=QUIET
    )


def release(
    instance: dg.DagsterInstance,
    *,
    selection: list[dg.AssetKey] = RELEASE,
    ops: dict | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    run_config = {**QUIET, **({"ops": ops} if ops else {})}
    return FULL_SYNC.execute_in_process(
        instance=instance, asset_selection=selection, run_config=run_config, raise_on_error=raise_on_error
    )


def publish_clean(instance: dg.DagsterInstance, runtime: Runtime) -> str:
    """Backfill every batch and release; returns the version now live."""
    assert sync_batches(instance).success
    result = release(instance)
    version = runtime.live.candidate_for_run(result.run_id)
    assert version and runtime.live.live_version() == version
    return version


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    messages = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        messages.append(data.user_failure_data.description if data.user_failure_data else data.error.message)
    return messages


def started_steps(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}


def materialized(result: dg.ExecuteInProcessResult) -> dict[str, list[dg.AssetMaterialization]]:
    found: dict[str, list[dg.AssetMaterialization]] = {}
    for event in result.get_asset_materialization_events():
        found.setdefault(event.asset_key.to_user_string(), []).append(event.materialization)
    return found


def audit_actions(runtime: Runtime, version: str | None = None) -> list[str]:
    return [r["action"] for r in runtime.live.audit_rows() if version is None or r["version"] == version]


def published_files(runtime: Runtime, version: str) -> dict[str, list[tuple[str, str, int]]]:
    manifest = runtime.snapshots.manifest(version)
    return {e: [(ref.path, ref.sha256, ref.rows) for ref in refs] for e, refs in manifest.files.items()}


def assert_live_views_match_catalog(runtime: Runtime, version: str) -> None:
    row = runtime.live.version(version)
    assert row is not None and row["status"] == "live"
    assert set(LIVE_VIEWS) <= set(sa.inspect(runtime.live.engine).get_view_names())
    for entity in ENTITIES:
        assert runtime.live.read_view(entity).num_rows == row[f"rows_{entity}"] > 0, entity
    flags = runtime.live.read_view("connections")["is_discrepancy"]
    assert runtime.live.read_view("discrepancies").num_rows == pc.sum(flags).as_py()


# --- definitions -----------------------------------------------------------------------------


def test_definitions_load_and_every_description_names_the_environment() -> None:
    dg.Definitions.validate_loadable(defs)
    label = f"[{ENV_LABEL}] "
    specs = list(defs.resolve_all_asset_specs())
    assert {s.key.to_user_string() for s in specs} == {*RAW_SPECS, *ENTITIES, "release_candidate", "live_release"}
    for spec in specs:
        assert (spec.description or "").startswith(label), spec.key
    checks = list(candidate_checks.check_specs)
    assert {c.name for c in checks} == set(CHECKS) and {c.asset_key for c in checks} == {RELEASE[0]}
    for check in checks:
        assert check.blocking and (check.description or "").startswith(label), check.name
    for job in ("full_sync", "check_again", "rollback", "gc"):
        assert (defs.resolve_job_def(job).description or "").startswith(label), job
    assert (defs.resolve_schedule_def("nightly_full_sync").description or "").startswith(label)


def test_environment_attribute_loads_only_under_its_own_environment() -> None:
    current = SETTINGS_AT_LOAD.env.value  # "dev" unless the test run itself sets REVAL_ENV
    assert getattr(definitions_module, f"defs_{current}") is defs
    for other in sorted({"dev", "staging", "prod"} - {current}):
        with pytest.raises(RuntimeError, match=rf"for REVAL_ENV={other}, but REVAL_ENV={current}"):
            getattr(definitions_module, f"defs_{other}")
    with pytest.raises(AttributeError):
        definitions_module.no_such_attribute  # noqa: B018


# --- materialising ---------------------------------------------------------------------------


def test_one_partition_materialises_only_its_batch(instance: dg.DagsterInstance, reval_env: Path) -> None:
    result = FULL_SYNC.execute_in_process(
        instance=instance, partition_key="3", asset_selection=BATCH_ASSETS, run_config=QUIET
    )
    assert result.success
    events = materialized(result)
    assert set(events) == {*RAW_SPECS, *ENTITIES}
    root = reval_env / "snapshots"
    for name, mats in events.items():
        assert [m.partition for m in mats] == ["3"]
        metadata = mats[0].metadata
        spec = ENTITY_SPECS.get(name) or RAW_SPECS[name]
        optional = not getattr(spec, "guarded", True) or getattr(spec, "optional", False)
        assert metadata["dagster/row_count"].value > 0 or optional, name  # a batch may hide no discrepancy
        schema = metadata["dagster/column_schema"].schema
        expected = (ENTITY_SPECS[name] if name in ENTITY_SPECS else RAW_SPECS[name]).schema
        assert [c.name for c in schema.columns] == expected.names
        if name in ENTITY_SPECS:
            ref = json.loads((root / "heads" / "entities" / "batch=3.json").read_text())["refs"][name]
            assert metadata["dagster/row_count"].value == ref["rows"]
            assert metadata["batches_written"].value + metadata["batches_reused"].value == 1
    for key in BATCH_ASSETS:
        assert instance.get_materialized_partitions(key) == {"3"}
    # Batch heads and entity files exist for batch 3 only. (The source is landed, i.e. split
    # into raw files for every batch, once per content; partition 3 only takes batch 3's.)
    for group in ("raw", "entities"):
        assert [p.name for p in (root / "heads" / group).iterdir()] == ["batch=3.json"]
    for entity in ENTITIES:
        assert [p.name for p in (root / "files" / entity).iterdir()] == ["batch=3"]
    assert not (root / "versions").exists() or not any((root / "versions").iterdir())


def test_full_backfill_then_release_publishes_every_view(
    instance: dg.DagsterInstance, open_runtime: Callable[[], Runtime], live_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVAL_LIVE_URL", live_url)
    batches = sync_batches(instance)
    assert batches.success
    assert batches.dagster_run.tags["dagster/asset_partition_range_start"] == "0"
    assert batches.dagster_run.tags["dagster/asset_partition_range_end"] == "15"
    for key in BATCH_ASSETS:
        assert instance.get_materialized_partitions(key) == set(ALL_KEYS)

    result = release(instance)
    assert result.success
    runtime = open_runtime()
    version = runtime.live.candidate_for_run(result.run_id)
    assert version is not None and runtime.live.live_version() == version
    assert_live_views_match_catalog(runtime, version)
    events = materialized(result)
    assert events["release_candidate"][0].metadata["version"].value == version
    assert events["live_release"][0].metadata["live_version"].value == version
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == dict.fromkeys(
        CHECKS, True
    )
    assert audit_actions(runtime, version) == ["stage", "publish"]


def test_batches_materialised_over_several_runs_publish_the_same_rows(
    instance: dg.DagsterInstance,
    open_runtime: Callable[[], Runtime],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one_run = open_runtime()
    whole = publish_clean(instance, one_run)

    monkeypatch.setenv("REVAL_HOME", str(tmp_path / "reval-home-in-parts"))
    for start in range(0, 16, 4):
        assert sync_batches(instance, start, start + 3).success
    assert release(instance).success
    in_parts = open_runtime()
    parts = in_parts.live.live_version()
    assert parts is not None and parts != whole
    assert in_parts.snapshots.root != one_run.snapshots.root
    assert published_files(in_parts, parts) == published_files(one_run, whole)
    assert_live_views_match_catalog(in_parts, parts)
    for entity in ENTITIES:
        assert in_parts.live.read_view(entity).num_rows == one_run.live.read_view(entity).num_rows


# --- write-audit-publish ---------------------------------------------------------------------


def stage_blocked(
    instance: dg.DagsterInstance, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, dg.ExecuteInProcessResult]:
    """With the traineeInfo mapping broken, recommendations are empty: non_empty blocks the candidate."""
    monkeypatch.setenv("REVAL_FAULTS", "mapping_break")
    assert sync_batches(instance).success
    result = release(instance, raise_on_error=False)
    candidate = runtime.live.candidate_for_run(result.run_id)
    assert candidate is not None
    return candidate, result


def test_failing_blocking_check_stops_the_publish_and_leaves_live_untouched(
    instance: dg.DagsterInstance, open_runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = open_runtime()
    live = publish_clean(instance, runtime)
    live_rows = {e: runtime.live.read_view(e).num_rows for e in ENTITIES}

    candidate, result = stage_blocked(instance, runtime, monkeypatch)
    assert not result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["non_empty"] is False and checks["schema"] is True
    assert "live_release" not in started_steps(result)
    assert "live_release" not in materialized(result)
    assert result.is_node_untouched("live_release")

    assert runtime.live.live_version() == live
    assert {e: runtime.live.read_view(e).num_rows for e in ENTITIES} == live_rows
    row = runtime.live.version(candidate)
    assert row["status"] == "blocked" and row["checks_passed"] is False and row["rows_recommendations"] == 0
    block = [r for r in runtime.live.audit_rows() if r["action"] == "block" and r["version"] == candidate]
    assert len(block) == 1 and "non_empty" in json.loads(block[0]["detail"])["failed"]
    assert "publish" not in audit_actions(runtime, candidate)


def test_publishing_a_blocked_candidate_on_its_own_is_refused(
    instance: dg.DagsterInstance, open_runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = open_runtime()
    live = publish_clean(instance, runtime)
    candidate, _ = stage_blocked(instance, runtime, monkeypatch)

    # A run of live_release alone never picks "the newest" candidate: it publishes only a named one...
    alone = release(instance, selection=LIVE_RELEASE_ONLY, raise_on_error=False)
    [message] = failure_messages(alone)
    assert "publishes only its own run's or a named one" in message and "no staged candidate has passed" in message
    # ...which it re-verifies (another run, so no blocking check guards it).
    result = release(instance, selection=LIVE_RELEASE_ONLY, ops={"live_release": {"config": {"version": candidate}}},
                     raise_on_error=False)
    assert not result.success
    [message] = failure_messages(result)
    assert candidate in message and "checks" in message and ("blocked" in message or "did not pass" in message)
    assert "live_release" not in materialized(result)
    assert runtime.live.live_version() == live
    assert runtime.live.version(candidate)["status"] == "blocked"
    assert "publish" not in audit_actions(runtime, candidate)


# --- the production guard --------------------------------------------------------------------


def test_prod_publish_needs_the_typed_confirmation(
    instance: dg.DagsterInstance, open_runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVAL_ENV", "prod")
    runtime = open_runtime()
    assert sync_batches(instance).success
    refused = release(instance, raise_on_error=False)
    assert not refused.success
    [message] = failure_messages(refused)
    assert message.startswith("REFUSED") and "PROD" in message and "confirm: prod" in message
    assert "operator: <your name>" in message  # both what is missing, in one message
    candidate = runtime.live.candidate_for_run(refused.run_id)
    assert candidate is not None and runtime.live.version(candidate)["status"] == "staged"
    assert runtime.live.live_version() is None
    assert "live_release" not in materialized(refused)
    refusal = [r for r in runtime.live.audit_rows() if r["action"] == "refuse"]
    assert len(refusal) == 1 and refusal[0]["version"] == candidate and refusal[0]["env"] == "prod"

    wrong = release(
        instance,
        selection=LIVE_RELEASE_ONLY,
        ops={"live_release": {"config": {"confirm": "dev", "version": candidate}}},
        raise_on_error=False,
    )
    assert not wrong.success and failure_messages(wrong)[0].startswith("REFUSED")
    assert runtime.live.live_version() is None

    unnamed = release(instance, selection=LIVE_RELEASE_ONLY,
                      ops={"live_release": {"config": {"confirm": "prod", "version": candidate}}}, raise_on_error=False)
    assert not unnamed.success and runtime.live.live_version() is None
    [message] = failure_messages(unnamed)
    assert message.startswith("REFUSED") and "operator: <your name>" in message and "--confirm" not in message

    named = {"live_release": {"config": {"confirm": "prod", "version": candidate, "operator": f" {OPERATOR} "}}}
    confirmed = release(instance, selection=LIVE_RELEASE_ONLY, ops=named)
    assert confirmed.success
    assert runtime.live.live_version() == candidate
    metadata = materialized(confirmed)["live_release"][0].metadata
    assert metadata["live_version"].value == candidate and metadata["env"].value == "prod"
    assert metadata["published_by"].value == OPERATOR
    assert_live_views_match_catalog(runtime, candidate)
    assert audit_actions(runtime, candidate) == ["stage", "refuse", "refuse", "refuse", "publish"]
    assert [r["actor"] for r in runtime.live.audit_rows() if r["action"] == "publish"] == [OPERATOR]


def test_a_prod_release_from_the_ui_audits_its_stage_and_publish_under_the_operator(
    instance: dg.DagsterInstance, open_runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVAL_ENV", "prod")
    runtime = open_runtime()
    assert sync_batches(instance).success
    released = release(instance, ops={**CONFIRM_PROD, "release_candidate": {"config": {"operator": OPERATOR}}})
    assert released.success
    live = runtime.live.live_version()
    assert [(r["action"], r["actor"]) for r in runtime.live.audit_rows() if r["version"] == live] == [
        ("stage", OPERATOR), ("publish", OPERATOR)]


def rollback_run(instance: dg.DagsterInstance, config: dict) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("rollback").execute_in_process(
        instance=instance, run_config={**QUIET, "ops": {"rollback_op": {"config": config}}}, raise_on_error=False
    )


def test_prod_rollback_needs_the_typed_confirmation(
    instance: dg.DagsterInstance, open_runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVAL_ENV", "prod")  # a production store from its first sync
    runtime = open_runtime()
    assert sync_batches(instance).success
    first = runtime.live.candidate_for_run(release(instance, ops=CONFIRM_PROD).run_id)
    second = runtime.live.candidate_for_run(release(instance, ops=CONFIRM_PROD).run_id)
    assert runtime.live.live_version() == second != first

    refused = rollback_run(instance, {"version": first, "reason": "bad data"})
    assert not refused.success
    assert failure_messages(refused)[0].startswith("REFUSED")
    assert not refused.get_asset_materialization_events()
    assert runtime.live.live_version() == second
    assert audit_actions(runtime, first)[-1] == "refuse"

    unnamed = rollback_run(instance, {"version": first, "reason": "bad data", "confirm": "prod"})
    assert not unnamed.success and "operator: <your name>" in failure_messages(unnamed)[0]
    assert runtime.live.live_version() == second and audit_actions(runtime, first)[-1] == "refuse"

    done = rollback_run(instance, {"version": first, "reason": "bad data", "confirm": "prod", "operator": OPERATOR})
    assert done.success
    assert runtime.live.live_version() == first
    [event] = done.get_asset_materialization_events()
    assert event.asset_key == dg.AssetKey("live_release")
    assert event.materialization.metadata["live_version"].value == first
    assert event.materialization.metadata["previous"].value == second
    assert audit_actions(runtime, first)[-1] == "rollback"
    assert runtime.live.version(second)["status"] == "retired"
    assert_live_views_match_catalog(runtime, first)
    # the latest materialization of live_release now names the version that is live
    latest = instance.get_latest_materialization_event(dg.AssetKey("live_release"))
    assert latest.asset_materialization.metadata["live_version"].value == first

    assert [r["actor"] for r in runtime.live.audit_rows() if r["action"] == "rollback"] == [OPERATOR]
    unknown = rollback_run(instance, {"version": "v20000101_000000_abcdef", "reason": "x", "confirm": "prod",
                                      "operator": OPERATOR})
    assert not unknown.success and "unknown version" in failure_messages(unknown)[0]
    assert runtime.live.live_version() == first


# --- gc and the schedule ---------------------------------------------------------------------


def test_gc_job_drops_versions_beyond_keep_and_reports(
    instance: dg.DagsterInstance, open_runtime: Callable[[], Runtime]
) -> None:
    runtime = open_runtime()
    first = publish_clean(instance, runtime)
    second = runtime.live.candidate_for_run(release(instance).run_id)

    result = defs.resolve_job_def("gc").execute_in_process(
        instance=instance, run_config={**QUIET, "ops": {"gc_op": {"config": {"keep": 1}}}}
    )
    assert result.success
    assert runtime.live.live_version() == second
    assert runtime.live.version(first) is None
    assert first not in runtime.snapshots.manifest_ids()
    [row] = [r for r in runtime.live.audit_rows() if r["action"] == "gc"]
    report = json.loads(row["detail"])
    assert report["versions_dropped"] == [first] and report["retained"] == [second] and report["keep"] == 1
    logged = [e.user_message for e in instance.all_logs(result.run_id) if e.user_message.startswith("gc: ")]
    assert len(logged) == 1 and first in logged[0]
    assert_live_views_match_catalog(runtime, second)


def test_staging_gc_from_dagster_is_refused_until_its_operator_is_named(
    instance: dg.DagsterInstance, open_runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REVAL_ENV", "staging")
    runtime = open_runtime()
    assert sync_batches(instance).success
    publishing = {"live_release": {"config": {"confirm": "staging", "operator": OPERATOR}}}
    first = runtime.live.candidate_for_run(release(instance, ops=publishing).run_id)
    second = runtime.live.candidate_for_run(release(instance, ops=publishing).run_id)

    def gc(**config: str) -> dg.ExecuteInProcessResult:
        return defs.resolve_job_def("gc").execute_in_process(
            instance=instance, run_config={**QUIET, "ops": {"gc_op": {"config": {"keep": 0, **config}}}},
            raise_on_error=False)

    refused = gc(confirm="staging")
    assert not refused.success and "operator: <your name>" in failure_messages(refused)[0]
    assert runtime.live.version(first) is not None
    assert gc(confirm="staging", operator=OPERATOR).success
    assert runtime.live.version(first) is None and runtime.live.live_version() == second
    assert [r["actor"] for r in runtime.live.audit_rows() if r["action"] == "gc"] == [OPERATOR]


def test_nightly_schedule_is_stopped_by_default_and_requests_every_batch(
    instance: dg.DagsterInstance, open_runtime: Callable[[], Runtime]
) -> None:
    schedule = defs.resolve_schedule_def("nightly_full_sync")
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert schedule.job_name == "full_sync" and schedule.cron_schedule == "0 2 * * *"
    with dg.build_schedule_context(instance=instance) as context:
        data = schedule.evaluate_tick(context)
    [request] = data.run_requests
    assert request.tags["dagster/asset_partition_range_start"] == ALL_KEYS[0]
    assert request.tags["dagster/asset_partition_range_end"] == ALL_KEYS[-1]

    # What the daemon would launch: every batch, the candidate, its checks and the publish, in one run.
    result = FULL_SYNC.execute_in_process(
        instance=instance, tags=request.tags, run_config={**QUIET, **request.run_config}
    )
    assert result.success
    runtime = open_runtime()
    version = runtime.live.live_version()
    assert version == runtime.live.candidate_for_run(result.run_id)
    row = runtime.live.version(version)
    assert row["actor"] == "schedule" and row["reason"] == "nightly full sync"
    assert instance.get_materialized_partitions(dg.AssetKey("doctors")) == set(ALL_KEYS)
    assert_live_views_match_catalog(runtime, version)


# --- reval sync's in-process runner ----------------------------------------------------------


def test_run_sync_of_one_batch_rebuilds_only_that_batch(
    reval_env: Path, open_runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = open_runtime()
    first = run_sync(runtime, batches=list(range(16)), reason="first", actor="tester", confirm=None)
    assert first.published and first.error is None and len(first.run_ids) == 2

    # The source changes everywhere, but only batch 2 is re-synced. Staged, not published: replacing a
    # whole batch's doctors is a large drift, which may (rightly) block it; that is not what this test is about.
    monkeypatch.setenv("REVAL_SEED", "8")
    second = run_sync(runtime, batches=[2], reason="batch 2", actor="tester", confirm=None, publish=False)
    assert second.version is not None and second.error is None, second
    assert second.version != first.version and runtime.live.live_version() == first.version
    assert runtime.live.version(second.version)["parent"] == first.version

    before, after = published_files(runtime, first.version), published_files(runtime, second.version)
    for entity in GUARDED_ENTITIES:  # a batch's hidden discrepancies may be the same (none) in both exports
        changed = [b for b, (old, new) in enumerate(zip(before[entity], after[entity], strict=True)) if old != new]
        assert changed == [2], entity
    assert second.rows == {e: sum(rows for _, _, rows in after[e]) for e in ENTITIES}
    # only batch 2 of the new export was conformed and written; the other batches keep the first landing
    landing_of = {b: runtime.snapshots.head_body("raw", b)["landing"] for b in range(16)}
    assert Landing.from_body(runtime.snapshots.landing(landing_of[2])).landed == (2,)
    assert {landing_of[b] for b in range(16) if b != 2} == {landing_of[0]} != {landing_of[2]}

    instance = dg.DagsterInstance.from_config(str(reval_env / "dagster"))
    try:
        batch_run = second.run_ids[0]
        assert instance.get_run_by_id(batch_run).tags["dagster/asset_partition_range_start"] == "2"
        events = instance.all_logs(batch_run, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        mats = [e.asset_materialization for e in events]
        assert {m.partition for m in mats} == {"2"}
        assert {m.asset_key.to_user_string() for m in mats} == {*RAW_SPECS, *ENTITIES}
        for m in mats:
            if m.asset_key.to_user_string() in GUARDED_ENTITIES:
                assert m.metadata["batches_written"].value == 1 and m.metadata["batches_reused"].value == 0
    finally:
        instance.dispose()


def test_run_sync_of_scattered_batches_reads_the_source_once_for_all_its_runs(
    reval_env: Path, open_runtime: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = open_runtime()
    assert run_sync(runtime, batches=list(range(16)), reason="first", actor="tester", confirm=None).published
    monkeypatch.setenv("REVAL_SEED", "8")
    scattered = run_sync(runtime, batches=[0, 5, 9], reason="three", actor="tester", confirm=None, publish=False)
    assert scattered.version is not None and scattered.error is None and len(scattered.run_ids) == 4
    landings = {runtime.snapshots.head_body("raw", b)["landing"] for b in (0, 5, 9)}
    assert len(landings) == 1  # the first run landed all three batches; the other two reused it
    assert Landing.from_body(runtime.snapshots.landing(landings.pop())).landed == (0, 5, 9)


@pytest.mark.parametrize("tag", ["0,x", "3,99", "-1"])
def test_a_bad_sync_batches_tag_fails_the_run_and_says_why(instance: dg.DagsterInstance, tag: str) -> None:
    result = FULL_SYNC.execute_in_process(instance=instance, tags={**range_tags(3, 3), "reval/sync_batches": tag},
                                          asset_selection=BATCH_ASSETS, run_config=QUIET, raise_on_error=False)
    assert not result.success
    [message] = failure_messages(result)
    assert f"run tag reval/sync_batches={tag!r}: expected batch numbers from 0 to 15, like 0,5,9" in message
