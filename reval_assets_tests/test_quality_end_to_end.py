"""The blocking checks on release_candidate (issue 4), end to end: each data fault of the Dec 2023 incident,
and its neighbours, is a blocked publish with a clear reason.

These tests write a files-source export with the fault (the synthetic generator's named faults
through `write_export`, or an edit of the JSON), publish a clean export first, then run the full
sync through Dagster (`run_sync`, REVAL_SOURCE=files) and assert that the named check failed,
live_release did not run, the live views still show the previous version row for row, and the
audit records the blocked candidate. The unit tests of each check are in the other
test_quality_*.py modules.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from reval_assets.dagster_home import dagster_home
from reval_assets.domain.designated_bodies import DESIGNATED_BODY_CODES
from reval_assets.domain.schemas import ENTITY_SPECS, RAW_SPECS
from reval_assets.pipeline.runtime import Runtime
from reval_assets.quality.checks import (
    CHECKS,
)
from reval_assets.run import SyncResult, run_sync
from reval_assets.settings import Settings
from reval_assets.sources.base import WireInput
from reval_assets.sources.export import write_export
from reval_assets.sources.files import FileSource
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.live import LIVE_VIEWS
from reval_assets_tests.conftest import isolate_reval_env


@lru_cache(maxsize=4)
def _clean_wire(doctors: int, seed: int) -> dict[str, WireInput]:
    return SyntheticSource(doctors=doctors, seed=seed).extract()


def wire_inputs(faults: tuple[str, ...] = (), doctors: int = 1500, seed: int = 7) -> dict[str, WireInput]:
    """The population of the `reval_env` fixture (1500 doctors, seed 7), with faults if asked."""
    if faults:
        return SyntheticSource(doctors=doctors, seed=seed, faults=faults).extract()
    return _clean_wire(doctors, seed)


def read_json(path: Path) -> object:
    return json.loads(path.read_bytes())


def write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value), encoding="utf-8")


@dataclass
class Scene:
    """A REVAL_HOME with a clean export published; `sync(folder)` syncs another export through Dagster."""

    runtime: Runtime
    folder: Path
    monkeypatch: pytest.MonkeyPatch
    live: str = ""
    views: dict[str, pa.Table] | None = None

    def export(self, name: str, inputs: dict[str, WireInput] | None = None, **kwargs: object) -> Path:
        return write_export(inputs or wire_inputs(), self.folder / name, **kwargs)

    def sync(self, folder: Path, **kwargs: object) -> SyncResult:
        self.monkeypatch.setenv("REVAL_SOURCE_DIR", str(folder))
        return run_sync(self.runtime, batches=list(range(self.runtime.settings.batches)), reason=f"sync {folder.name}",
                        actor="tester", confirm=None, **kwargs)

    def live_views(self) -> dict[str, pa.Table]:
        return {view: _sorted(view, self.runtime.live.read_view(view)) for view in LIVE_VIEWS}


def _sorted(view: str, table: pa.Table) -> pa.Table:
    key = ENTITY_SPECS[view].key[0] if view in ENTITY_SPECS else "gmc_reference_number"
    return table.sort_by(key)


def _files_source(monkeypatch: pytest.MonkeyPatch, home: Path, folder: Path) -> None:
    """The environment of the `reval_env` fixture (1500 doctors, seed 7), reading export files."""
    isolate_reval_env(monkeypatch, home)
    monkeypatch.setenv("REVAL_SOURCE", "files")
    monkeypatch.setenv("REVAL_SOURCE_DIR", str(folder))


@pytest.fixture
def scene(reval_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    _files_source(monkeypatch, reval_env, tmp_path / "clean")
    runtime = Runtime(Settings.from_env())
    assert runtime.settings.batches == 16  # partitions are fixed at import
    yield Scene(runtime=runtime, folder=tmp_path, monkeypatch=monkeypatch)
    runtime.close()


@pytest.fixture(scope="module")
def published_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A REVAL_HOME where a clean export was synced through Dagster and published, every check passing.

    Made once per module; each test works on its own copy (see `published`).
    """
    root = tmp_path_factory.mktemp("published")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _files_source(monkeypatch, root / "home", root / "clean")
        runtime = Runtime(Settings.from_env())
        try:
            built = Scene(runtime=runtime, folder=root, monkeypatch=monkeypatch)
            result = built.sync(built.export("clean"))
            assert result.published and not result.blocked_by, result
            assert_all_checks_passed(built, result)
        finally:
            runtime.close()
    return root / "home", root / "clean"


@pytest.fixture
def published(scene: Scene, published_home: tuple[Path, Path]) -> Scene:
    """`scene`, in a copy of the published home: live is the clean export, every check having passed."""
    home, clean = published_home
    shutil.copytree(home, scene.runtime.settings.home, dirs_exist_ok=True)
    scene.monkeypatch.setenv("REVAL_SOURCE_DIR", str(clean))
    scene.live, scene.views = scene.runtime.live.live_version() or "", scene.live_views()
    assert scene.live and scene.views["doctors"].num_rows > 1400
    return scene


@dataclass(frozen=True)
class RunRecord:
    started: set[str]
    materialized: dict[str, dict]  # asset -> its materialization's metadata
    checks: dict[str, dg.AssetCheckEvaluation]


def run_record(scene: Scene, run_id: str) -> RunRecord:
    instance = dg.DagsterInstance.from_config(str(dagster_home(scene.runtime.settings)))
    try:
        events = [e.dagster_event for e in instance.all_logs(run_id) if e.dagster_event]
    finally:
        instance.dispose()
    return RunRecord(
        started={e.step_key for e in events if e.event_type == dg.DagsterEventType.STEP_START},
        materialized={e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
                      for e in events if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION},
        checks={e.event_specific_data.check_name: e.event_specific_data for e in events
                if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION},
    )


def catalog_checks(scene: Scene, version: str) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(scene.runtime.live.version(version)["checks"])}


def assert_all_checks_passed(scene: Scene, result: SyncResult) -> None:
    checks = catalog_checks(scene, result.version)
    assert set(checks) == set(CHECKS)
    failed = {name: c["description"] for name, c in checks.items() if not c["passed"]}
    assert not failed, failed
    evaluations = run_record(scene, result.run_ids[-1]).checks
    assert {name: e.passed for name, e in evaluations.items()} == dict.fromkeys(CHECKS, True)


def assert_blocked(scene: Scene, result: SyncResult, check: str, *, only: bool = False) -> dict:
    """`check` failed and blocked the candidate; live, its views and the audit say so. Returns the check."""
    assert result.version and result.version != scene.live, result
    assert not result.published and not result.error, result
    assert check in result.blocked_by, result
    if only:
        assert result.blocked_by == [check], result.messages
    record = run_record(scene, result.run_ids[-1])
    assert record.checks[check].passed is False
    assert record.checks[check].metadata["version"].value == result.version
    assert "live_release" not in record.started and "live_release" not in record.materialized
    assert "release_candidate" in record.materialized

    runtime = scene.runtime
    assert runtime.live.live_version() == scene.live
    assert scene.live_views().keys() == scene.views.keys()
    for view, before in scene.views.items():
        assert scene.live_views()[view].equals(before), view
    row = runtime.live.version(result.version)
    assert row["status"] == "blocked" and row["checks_passed"] is False
    audit = [r for r in runtime.live.audit_rows() if r["version"] == result.version]
    assert [r["action"] for r in audit] == ["stage", "block"]
    assert check in json.loads(audit[-1]["detail"])["failed"]
    return catalog_checks(scene, result.version)[check]


def test_clean_export_passes_every_check_first_and_against_live(published: Scene) -> None:
    again = published.sync(published.export("clean-again", indent=True, list_key="traineeInfo"))
    assert again.published and again.version != published.live
    assert_all_checks_passed(published, again)
    drift = catalog_checks(published, again.version)["drift"]["metadata"]
    assert drift["doctors_removed"] == drift["connections_changed"] == drift["recommendations_added"] == 0
    # The ages of the export and of live are shown in the UI (materialization metadata).
    record = run_record(published, again.run_ids[-1])
    candidate, live = record.materialized["release_candidate"], record.materialized["live_release"]
    assert 0 <= candidate["export_age_hours"] < 1 and 0 <= candidate["live_age_hours"] < 1
    assert candidate["live_export_age_hours"] >= candidate["export_age_hours"]
    assert 0 <= live["export_age_hours"] < 1 and live["live_version"] == again.version
    assert abs(live["exported_at"] - FileSource(published.folder / "clean-again").exported_at().timestamp()) < 1


def test_recommendation_list_under_an_unknown_key_blocks_naming_file_and_keys(published: Scene) -> None:
    folder = published.export("renamed", list_key="recommendationList")
    result = published.sync(folder)
    check = assert_blocked(published, result, "mapping_coverage")
    file = folder.absolute() / "recommendations.json"
    assert check["description"].startswith(f"{file}: no recommendation list")
    assert "found keys 'countTotal', 'recommendationList'" in check["description"]
    assert "expected key 'recommendationInfo' or 'traineeInfo'" in check["description"]
    assert "0 rows" not in check["description"]
    assert check["metadata"]["input_problems"] == 1
    assert "quarantine_budget" in result.blocked_by and "non_empty" in result.blocked_by


def test_mapped_trainee_fields_nulled_for_most_rows_blocks(published: Scene) -> None:
    result = published.sync(published.export("unmapped", wire_inputs(("unmapped_fields",))))
    check = assert_blocked(published, result, "mapping_coverage", only=True)
    assert check["metadata"]["mapping_coverage"] < 0.3 < check["metadata"]["live_mapping_coverage"]
    assert "recommendations have every mapped trainee field" in check["description"]


def test_forty_percent_of_one_bodys_connections_missing_blocks_on_drift(published: Scene) -> None:
    result = published.sync(published.export("missing", wire_inputs(("missing_connections",))))
    check = assert_blocked(published, result, "drift")
    body = DESIGNATED_BODY_CODES[0]
    assert f"designated body {body} would lose" in check["description"]
    assert check["metadata"]["worst_loss"].endswith(body) and 0.35 < check["metadata"]["worst_loss_share"] < 0.45
    assert check["metadata"]["overridden"] is False


def _drop_connected_doctors(folder: Path, body: str, share: float) -> None:
    """Remove `share` of `body`'s GMC records whose doctor TIS still knows (no orphans are made)."""
    trainees = {t["gmcReferenceNumber"] for t in read_json(folder / "trainee_info.json")}
    doctors = read_json(folder / "doctors_for_db.json")
    in_body = [d for d in doctors if d["designatedBodyCode"] == body and d["gmcReferenceNumber"] in trainees]
    dropped = {d["gmcReferenceNumber"] for d in in_body[: round(share * len(in_body))]}
    write_json(folder / "doctors_for_db.json", [d for d in doctors if d["gmcReferenceNumber"] not in dropped])


def test_a_known_large_drift_goes_live_only_with_a_recorded_reason(published: Scene) -> None:
    folder = published.export("merger")
    _drop_connected_doctors(folder, DESIGNATED_BODY_CODES[1], 0.4)
    blocked = published.sync(folder)
    assert_blocked(published, blocked, "drift", only=True)

    reason = "1-1RUZV6H connections moved to the new body, change TIS21-9999"
    allowed = published.sync(folder, allow_drift_reason=reason)
    assert allowed.published and allowed.live_version == allowed.version, allowed
    drift = catalog_checks(published, allowed.version)["drift"]
    assert drift["passed"] and drift["metadata"]["overridden"] is True
    assert drift["metadata"]["allow_drift_reason"] == reason and reason in drift["description"]
    evaluation = run_record(published, allowed.run_ids[-1]).checks["drift"]
    assert evaluation.passed and evaluation.metadata["allow_drift_reason"].value == reason
    audit = [r for r in published.runtime.live.audit_rows() if r["version"] == allowed.version]
    assert [r["action"] for r in audit] == ["stage", "allow_drift", "publish"]
    assert audit[1]["reason"] == reason and json.loads(audit[1]["detail"])["overridden"] is True


def test_a_duplicate_gmc_number_blocks_on_unique_keys(published: Scene) -> None:
    folder = published.export("duplicate")
    trainees = {t["gmcReferenceNumber"] for t in read_json(folder / "trainee_info.json")}
    doctors = read_json(folder / "doctors_for_db.json")
    twin = next(d for d in doctors if d["gmcReferenceNumber"] in trainees)
    write_json(folder / "doctors_for_db.json", [*doctors, {**twin, "doctorLastName": "Someone-Else"}])
    result = published.sync(folder)
    check = assert_blocked(published, result, "unique_keys", only=True)
    assert check["metadata"]["duplicate_key_records_in_source"] == 2
    assert f"doctors_for_db.json: 2 records share a gmcReferenceNumber (e.g. '{twin['gmcReferenceNumber']}')" \
        in check["description"]


def test_an_unknown_outcome_value_blocks_on_schema(published: Scene) -> None:
    folder = published.export("outcome")
    payload = read_json(folder / "recommendations.json")
    payload["recommendationInfo"][3]["outcome"] = "Pending GMC"
    write_json(folder / "recommendations.json", payload)
    result = published.sync(folder)
    check = assert_blocked(published, result, "schema", only=True)
    assert check["metadata"]["unknown_enum_records_in_source"] == 1
    assert "recommendations.json: 1 record(s) with an unknown outcome (e.g. 'Pending GMC')" in check["description"]
    assert "Approved, Rejected, Under Review" in check["description"]


def test_a_connection_pointing_at_a_doctor_not_in_the_export_blocks(published: Scene) -> None:
    folder = published.export("orphan")
    logs = read_json(folder / "connection_logs.json")
    known = {d["gmcReferenceNumber"] for d in read_json(folder / "doctors_for_db.json")}
    known |= {t["gmcReferenceNumber"] for t in read_json(folder / "trainee_info.json")}
    stranger = next(str(n) for n in range(9_999_999, 1_000_000, -1) if str(n) not in known)
    logs.append({**logs[0], "gmcId": stranger, "requestType": "ADD", "responseCode": "0"})
    write_json(folder / "connection_logs.json", logs)
    result = published.sync(folder)
    check = assert_blocked(published, result, "referential_integrity", only=True)
    assert check["metadata"]["unmatched_connection_logs_in_source"] == 1
    assert "connection_logs.json: 1 current connection(s)" in check["description"]
    assert stranger in check["description"]


def test_the_orphan_connection_fault_blocks_on_referential_integrity(published: Scene) -> None:
    result = published.sync(published.export("orphan-fault", wire_inputs(("orphan_connection",))))
    check = assert_blocked(published, result, "referential_integrity", only=True)
    assert check["metadata"]["orphan_recommendations"] == 1
    assert check["metadata"]["unmatched_connection_logs_in_source"] == 1


def test_a_stale_export_blocks_on_freshness(published: Scene) -> None:
    folder = published.export("stale")  # the same content as live, exported three days ago
    three_days_ago = time.time() - 72 * 3600
    for spec in RAW_SPECS.values():
        os.utime(folder / spec.file, (three_days_ago, three_days_ago))
    assert FileSource(folder).exported_at() < datetime.now(UTC) - timedelta(hours=71)
    result = published.sync(folder)
    check = assert_blocked(published, result, "freshness", only=True)
    assert 71.9 < check["metadata"]["export_age_hours"] < 72.5
    assert check["metadata"]["live_export_age_hours"] < 1
    assert "the limit is 48 h" in check["description"]


def test_too_many_quarantined_records_block_and_name_the_file_and_reason(published: Scene) -> None:
    folder = published.export("malformed")
    doctors = read_json(folder / "doctors_for_db.json")
    for d in doctors[::30]:  # 3.3 %
        d["submissionDate"] = "2024-13-45"
    write_json(folder / "doctors_for_db.json", doctors)
    result = published.sync(folder)
    check = assert_blocked(published, result, "quarantine_budget")
    bad = len(doctors[::30])
    assert check["metadata"]["quarantined_gmc_doctors"] == bad
    assert f"doctors_for_db.json: {bad} of {len(doctors)} records quarantined" in check["description"]
    expected = "malformed date (expected dd/mm/yyyy or yyyy-mm-dd) (e.g. '2024-13-45')"
    assert f"{bad} × submissionDate: {expected}" in check["description"]


def test_thresholds_can_be_changed_for_one_run(published: Scene) -> None:
    folder = published.export("stale-but-allowed")
    old = time.time() - 72 * 3600
    for spec in RAW_SPECS.values():
        os.utime(folder / spec.file, (old, old))
    result = published.sync(folder, thresholds={"max_export_age_hours": 100.0})
    assert result.published, result
    assert catalog_checks(published, result.version)["freshness"]["metadata"]["threshold_max_export_age_hours"] == 100


# === no false alarms at scale ================================================================


def _churn(inputs: dict[str, WireInput], share: float) -> dict[str, WireInput]:
    """A next-day export: `share` of GMC doctors changed designated body (spread over every body)."""
    doctors = inputs["gmc_doctors"].table
    body = doctors["designatedBodyCode"]
    # A doctor the GMC no longer returns has no body to change from.
    moved = pc.and_(pa.array(np.arange(doctors.num_rows) % round(1 / share) == 0), pc.is_valid(body))
    codes = pa.array(DESIGNATED_BODY_CODES)
    position = pc.fill_null(pc.index_in(body, value_set=codes), 0).to_numpy(zero_copy_only=False)
    shifted = pc.take(codes, pa.array((position + 1) % len(codes)))
    column = pc.if_else(moved, shifted, doctors["designatedBodyCode"])
    changed = doctors.set_column(doctors.schema.get_field_index("designatedBodyCode"), "designatedBodyCode", column)
    return {**inputs, "gmc_doctors": replace(inputs["gmc_doctors"], table=changed)}


@pytest.mark.slow
def test_a_clean_export_of_100000_doctors_passes_every_check(scene: Scene) -> None:
    wire = SyntheticSource(doctors=100_000, seed=11).extract()
    first = scene.sync(scene.export("day1", wire))
    assert first.published and first.rows["doctors"] > 99_000, first
    assert_all_checks_passed(scene, first)
    next_day = scene.sync(scene.export("day2", _churn(wire, 0.01)))
    assert next_day.published, next_day.messages
    assert_all_checks_passed(scene, next_day)
    drift = catalog_checks(scene, next_day.version)["drift"]["metadata"]
    assert 0 < drift["connections_changed"] < 0.02 * next_day.rows["connections"]
    assert drift["doctors_removed"] == 0
