"""The blocking checks on release_candidate (issue 4): each data fault of the Dec 2023 incident,
and its neighbours, is a blocked publish with a clear reason.

Two layers:
- unit tests of each pure check function on small hand-made tables (pass and fail);
- end-to-end tests that write a files-source export with the fault (the synthetic generator's
  named faults through `write_export`, or an edit of the JSON), publish a clean export first,
  then run the full sync through Dagster (`run_sync`, REVAL_SOURCE=files) and assert that the
  named check failed, live_release did not run, the live views still show the previous
  version row for row, and the audit records the blocked candidate.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from reval_assets.assets.release import ThresholdsConfig
from reval_assets.dagster_home import dagster_home
from reval_assets.domain.designated_bodies import DESIGNATED_BODY_CODES
from reval_assets.domain.schemas import ENTITY_SPECS, RAW_SPECS
from reval_assets.pipeline.runtime import Runtime
from reval_assets.quality import evidence
from reval_assets.quality.checks import (
    CHECKS,
    DB,
    GMC,
    BatchPair,
    CandidateData,
    Export,
    InputReport,
    Reason,
    Thresholds,
    check_drift,
    check_freshness,
    check_mapping_coverage,
    check_non_empty,
    check_quarantine_budget,
    check_referential_integrity,
    check_schema,
    check_unique_keys,
    entity_drift,
    run_checks,
)
from reval_assets.run import SyncResult, run_sync
from reval_assets.settings import Settings
from reval_assets.sources.base import WireInput
from reval_assets.sources.export import write_export
from reval_assets.sources.files import FileSource
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.live import LIVE_VIEWS
from reval_assets.store.snapshots import LazyTable, SnapshotStore
from reval_assets.transforms.build import is_discrepancy
from reval_assets_tests.conftest import isolate_reval_env

NOW = datetime(2023, 12, 11, 12, 0, tzinfo=UTC)
BODY_A, BODY_B = DESIGNATED_BODY_CODES[0], DESIGNATED_BODY_CODES[1]


# === hand-made tables =======================================================================


def _table(entity: str, rows: list[dict]) -> pa.Table:
    schema = ENTITY_SPECS[entity].schema
    return pa.Table.from_pylist([{f.name: row.get(f.name) for f in schema} for row in rows], schema=schema)


def doctor_rows(n: int = 40) -> list[dict]:
    """`n` doctors alternating between two designated bodies; every fourth is under notice."""
    return [
        {
            "gmc_reference_number": f"{1_000_000 + i}",
            "tis_person_id": 500 + i,
            "doctor_first_name": f"First{i}",
            "doctor_last_name": f"Last{i}",
            "under_notice": "Yes" if i % 4 == 0 else "No",
            "designated_body_code": BODY_A if i % 2 == 0 else BODY_B,
            "tis_designated_body_code": BODY_A if i % 2 == 0 else BODY_B,
            "programme_name": "General Practice",
            "programme_owner": "Kent, Surrey and Sussex",
            "membership_type": "Substantive",
            "curriculum_end_date": date(2026, 8, 1),
            "gmc_status": "Approved",
            "tis_status": "COMPLETED",
            "exists_in_gmc": True,
        }
        for i in range(n)
    ]


def tables_from(doctors: list[dict]) -> dict[str, pa.Table]:
    """Doctors, and connections and recommendations consistent with them (one recommendation each)."""
    connections = [
        {**d, "connection_status": "CONNECTED" if d["designated_body_code"] else "DISCONNECTED",
         "is_discrepancy": bool(d["tis_designated_body_code"])
         and d["designated_body_code"] != d["tis_designated_body_code"]}
        for d in doctors
    ]
    recommendations = [
        {**d, "recommendation_id": f"rec-{d['gmc_reference_number']}", "recommendation_type": "REVALIDATE",
         "recommendation_status": "COMPLETED", "gmc_outcome": "Approved", "gmc_submission_date": date(2023, 1, 5)}
        for d in doctors
    ]
    return {"doctors": _table("doctors", doctors), "connections": _table("connections", connections),
            "recommendations": _table("recommendations", recommendations)}


def clean_tables(n: int = 40) -> dict[str, pa.Table]:
    return tables_from(doctor_rows(n))


def clean_export(**inputs: InputReport) -> Export:
    reports = {name: InputReport(name, RAW_SPECS[name].file, records=100, kept=100) for name in RAW_SPECS}
    return Export(key="landing", source="test", batches=(0,), exported_at=NOW - timedelta(hours=2),
                  inputs={**reports, **inputs})


def data(tables: dict[str, pa.Table] | None = None, live: dict[str, pa.Table] | None = None,
         export: Export | None = None, **kwargs: object) -> CandidateData:
    return CandidateData(tables=tables or clean_tables(), live=live, exports=(export or clean_export(),),
                         live_version="v-live" if live else None, now=NOW, **kwargs)


def set_column(table: pa.Table, name: str, values: list | pa.Array) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, table.schema.field(index), pa.array(values, table.schema.field(index).type))


DEFAULT = Thresholds()


# === Thresholds =============================================================================


def test_thresholds_have_safe_defaults_and_reject_out_of_range_values() -> None:
    t = Thresholds()
    assert t.max_drift_loss_share == 0.05 and t.allow_drift_reason == ""
    assert t.max_unknown_enum_records == t.max_duplicate_key_records == t.max_unmatched_records == 0
    with pytest.raises(ValueError, match="max_drift_loss_share"):
        Thresholds(max_drift_loss_share=5)
    with pytest.raises(ValueError, match="max_export_age_hours"):
        Thresholds(max_export_age_hours=-1)


def test_release_candidate_config_exposes_every_threshold_with_the_same_default() -> None:
    config = ThresholdsConfig()
    exposed = set(ThresholdsConfig.model_fields)
    assert exposed == {f.name for f in fields(Thresholds)} - {"allow_drift_reason"}
    assert config.to_thresholds() == Thresholds()
    assert config.to_thresholds(" known merger ").allow_drift_reason == "known merger"
    with pytest.raises(ValueError, match="min_mapping_coverage"):
        ThresholdsConfig(min_mapping_coverage=80).to_thresholds()


def test_every_check_reports_numbers_and_its_thresholds_and_all_pass_on_clean_tables() -> None:
    results = run_checks(data(live=clean_tables()))
    assert [r.name for r in results] == list(CHECKS)
    for result in results:
        assert result.passed, (result.name, result.description)
        assert result.blocking
        assert any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in result.metadata.values())
        assert any(k.startswith("threshold_") for k in result.metadata), result.name


# === schema ==================================================================================


def test_schema_passes_clean_tables() -> None:
    assert check_schema(data(), DEFAULT).passed


def test_schema_names_a_missing_and_a_retyped_column() -> None:
    tables = clean_tables()
    tables["doctors"] = tables["doctors"].drop_columns(["programme_name"])
    recs = tables["recommendations"]
    index = recs.schema.get_field_index("curriculum_end_date")
    tables["recommendations"] = recs.set_column(index, "curriculum_end_date", pc.cast(recs["curriculum_end_date"],
                                                                                       pa.string()))
    result = check_schema(data(tables), DEFAULT)
    assert not result.passed
    assert result.metadata["missing_columns"] == "doctors.programme_name"
    assert result.metadata["retyped_columns"] == "recommendations.curriculum_end_date"
    assert "recommendations.curriculum_end_date is string, expected date32" in result.description


def test_schema_names_a_column_that_vanished_against_live() -> None:
    tables = clean_tables()
    tables["doctors"] = set_column(tables["doctors"], "membership_type", [None] * 40)
    result = check_schema(data(tables, live=clean_tables()), DEFAULT)
    assert not result.passed and result.metadata["vanished_columns"] == "doctors.membership_type"
    assert "empty in all 40 rows but 100.0 % filled in live" in result.description
    assert check_schema(data(tables), DEFAULT).passed  # nothing to compare with before the first publish


def test_schema_fails_on_enum_values_outside_the_schema_and_nulls_in_required_columns() -> None:
    tables = clean_tables()
    tables["recommendations"] = set_column(tables["recommendations"], "gmc_outcome",
                                           ["Pending GMC"] + [None] * 39)
    tables["connections"] = set_column(tables["connections"], "connection_status", ["LOST"] + ["CONNECTED"] * 39)
    result = check_schema(data(tables), DEFAULT)
    assert not result.passed and result.metadata["unknown_enum_rows"] == 2
    assert "recommendations.gmc_outcome has 1 rows with values outside" in result.description
    assert "'Pending GMC'" in result.description and "'LOST'" in result.description
    doctors = clean_tables()["doctors"].cast(pa.schema([f.with_nullable(True) for f in ENTITY_SPECS["doctors"].schema]))
    nulls = {**clean_tables(), "doctors": set_column(doctors, "exists_in_gmc", [None] * 40)}
    assert "doctors.exists_in_gmc has 40 nulls but is required" in check_schema(data(nulls), DEFAULT).description


def test_schema_fails_on_unknown_enum_values_the_source_sent_and_quarantine_hid() -> None:
    reason = Reason("outcome", "unknown value; expected one of Approved, Rejected, Under Review", 1, ("Pending GMC",))
    export = clean_export(recommendation_records=InputReport("recommendation_records", "/x/recommendations.json",
                                                             records=100, kept=99, quarantined=1, reasons=(reason,)))
    result = check_schema(data(export=export), DEFAULT)
    assert not result.passed and result.metadata["unknown_enum_records_in_source"] == 1
    assert "/x/recommendations.json: 1 record(s) with an unknown outcome (e.g. 'Pending GMC')" in result.description
    assert "Approved, Rejected, Under Review" in result.description
    assert check_schema(data(export=export), Thresholds(max_unknown_enum_records=1)).passed


# === non-empty ===============================================================================


def test_non_empty_passes_and_fails() -> None:
    assert check_non_empty(data(), DEFAULT).passed
    tables = clean_tables()
    tables["recommendations"] = tables["recommendations"].slice(0, 0)
    result = check_non_empty(data(tables), DEFAULT)
    assert not result.passed and result.metadata["rows_recommendations"] == 0
    assert result.metadata["threshold_min_rows"] == 1


# === unique keys =============================================================================


def test_unique_keys_passes_and_names_a_duplicate_in_the_candidate() -> None:
    assert check_unique_keys(data(), DEFAULT).passed
    tables = clean_tables()
    tables["doctors"] = pa.concat_tables([tables["doctors"], tables["doctors"].slice(3, 1)])
    result = check_unique_keys(data(tables), DEFAULT)
    assert not result.passed and result.metadata["duplicates_doctors"] == 1
    assert "1 duplicate gmc_reference_number in doctors (e.g. '1000003')" in result.description


def test_unique_keys_fails_on_a_duplicate_the_source_sent() -> None:
    reason = Reason("gmcReferenceNumber", "duplicate key", 2, ("1234567",))
    export = clean_export(gmc_doctors=InputReport("gmc_doctors", "/x/doctors_for_db.json", records=100, kept=98,
                                                  quarantined=2, reasons=(reason,)))
    result = check_unique_keys(data(export=export), DEFAULT)
    assert not result.passed and result.metadata["duplicate_key_records_in_source"] == 2
    assert "/x/doctors_for_db.json: 2 records share a gmcReferenceNumber (e.g. '1234567')" in result.description


# === mapping coverage ========================================================================


def test_mapping_coverage_passes_clean_tables_with_its_numbers() -> None:
    result = check_mapping_coverage(data(live=clean_tables()), DEFAULT)
    assert result.passed
    assert result.metadata["mapping_coverage"] == 1.0 and result.metadata["under_notice_coverage"] == 1.0
    assert result.metadata["under_notice_doctors"] == 10 and result.metadata["coverage_programme_name"] == 1.0


def test_mapping_coverage_fails_when_mapped_fields_are_missing() -> None:
    doctors = doctor_rows()
    for d in doctors[:30]:
        d["programme_name"] = d["membership_type"] = None
    result = check_mapping_coverage(data(tables_from(doctors)), DEFAULT)
    assert not result.passed and result.metadata["mapping_coverage"] == 0.25
    assert "only 25.0 % of 40 recommendations have every mapped trainee field" in result.description


def test_mapping_coverage_fails_on_a_drop_against_live_above_the_minimum() -> None:
    doctors = doctor_rows()
    for d in doctors[:4]:  # 90 % coverage: above the 80 % floor, but 10 points below live
        d["curriculum_end_date"] = None
    result = check_mapping_coverage(data(tables_from(doctors), live=clean_tables()), DEFAULT)
    assert not result.passed and result.metadata["mapping_drop_points"] == 10.0
    assert "mapping coverage fell 10.0 points against live (100.0 % → 90.0 %" in result.description
    assert check_mapping_coverage(data(tables_from(doctors)), DEFAULT).passed  # no live: the floor only


def test_mapping_coverage_fails_when_doctors_under_notice_have_no_recommendation() -> None:
    tables = clean_tables()
    recs = tables["recommendations"]
    tables["recommendations"] = recs.filter(pc.not_equal(recs["under_notice"], "Yes"))
    result = check_mapping_coverage(data(tables), DEFAULT)
    assert not result.passed and result.metadata["under_notice_coverage"] == 0.0
    assert "only 0 of 10 doctors under notice (0.0 %) have a recommendation" in result.description


def test_mapping_coverage_names_an_unknown_list_key_never_as_zero_rows() -> None:
    problem = ("no recommendation list: expected key 'recommendationInfo' or 'traineeInfo', found keys "
               "'countTotal', 'recommendationList' (file /x/recommendations.json)")
    export = clean_export(recommendation_records=InputReport("recommendation_records", "/x/recommendations.json",
                                                             problems=(problem,)))
    tables = clean_tables()
    tables["recommendations"] = tables["recommendations"].slice(0, 0)
    result = check_mapping_coverage(data(tables, live=clean_tables(), export=export), DEFAULT)
    assert not result.passed and result.metadata["input_problems"] == 1
    assert result.description.startswith("/x/recommendations.json: no recommendation list")
    assert "'recommendationList'" in result.description
    assert "'recommendationInfo' or 'traineeInfo'" in result.description


def test_mapping_coverage_fails_on_an_empty_list_when_live_was_not_empty() -> None:
    export = clean_export(recommendation_records=InputReport("recommendation_records", "/x/recommendations.json"))
    tables = clean_tables()
    tables["recommendations"] = tables["recommendations"].slice(0, 0)
    result = check_mapping_coverage(data(tables, live=clean_tables(), export=export), DEFAULT)
    assert not result.passed
    assert result.description.startswith("/x/recommendations.json sent an empty recommendation list while live "
                                         "v-live has 40 recommendations")


# === drift ===================================================================================


def test_entity_drift_counts_added_removed_changed_and_moves_between_bodies() -> None:
    old = clean_tables()["doctors"]
    doctors = doctor_rows()[2:] + doctor_rows(42)[40:]  # 2 removed (A and B), 2 added
    doctors[0] = {**doctors[0], "doctor_last_name": "Changed"}  # 1000002, A: changed in place
    doctors[1] = {**doctors[1], "designated_body_code": BODY_A}  # 1000003 moves B -> A
    drift = entity_drift("doctors", tables_from(doctors)["doctors"], old)
    assert (drift.live_rows, drift.added, drift.removed, drift.changed) == (40, 2, 2, 2)
    assert drift.bodies[BODY_A] == {"live_rows": 20, "lost": 1, "added": 2, "changed": 1}
    assert drift.bodies[BODY_B] == {"live_rows": 20, "lost": 2, "added": 1, "changed": 0}


def _drift_by_hand(new: list[dict], old: list[dict]) -> tuple[tuple[int, int, int], dict[str, dict[str, int]]]:
    """Added, removed and changed rows, and the per-body tallies, counted one row at a time."""
    by_key_new, by_key_old = {r[GMC]: r for r in new}, {r[GMC]: r for r in old}
    bodies: dict[str, dict[str, int]] = {}

    def tally(body: str | None, name: str) -> None:
        if body is not None:
            bodies.setdefault(body, dict.fromkeys(("live_rows", "lost", "added", "changed"), 0))[name] += 1

    changed = 0
    for row in old:
        tally(row[DB], "live_rows")
    for key, row in by_key_old.items():
        other = by_key_new.get(key)
        if other is None:
            tally(row[DB], "lost")
        elif other != row:
            changed += 1
            if other[DB] != row[DB]:
                tally(row[DB], "lost")
                tally(other[DB], "added")
            else:
                tally(row[DB], "changed")
    for key, row in by_key_new.items():
        if key not in by_key_old:
            tally(row[DB], "added")
    added, removed = len(by_key_new.keys() - by_key_old), len(by_key_old.keys() - by_key_new)
    return (added, removed, changed), bodies


def test_entity_drift_counts_what_a_row_by_row_comparison_counts_with_nulls_moves_and_shuffles() -> None:
    rng = np.random.default_rng(7)
    bodies = [BODY_A, BODY_B, DESIGNATED_BODY_CODES[2], None]

    def row(key: int) -> dict:
        return {GMC: str(key), DB: bodies[rng.integers(4)], "name": [None, "x", "y"][rng.integers(3)]}

    old = [row(k) for k in range(1000, 1400)]
    new = [r if rng.random() < 0.6 else row(int(r[GMC])) for r in old if rng.random() < 0.9]
    new += [row(k) for k in range(1400, 1450)]
    rng.shuffle(new)
    schema = pa.schema([(GMC, pa.string()), (DB, pa.string()), ("name", pa.string())])
    drift = entity_drift("doctors", pa.Table.from_pylist(new, schema), pa.Table.from_pylist(old, schema))
    (added, removed, changed), by_body = _drift_by_hand(new, old)
    assert (drift.added, drift.removed, drift.changed) == (added, removed, changed)
    assert removed > 30 and added == 50 and changed > 50  # the draw exercised every kind
    assert drift.bodies == by_body


def test_drift_passes_without_live_and_against_an_identical_live() -> None:
    assert check_drift(data(), DEFAULT).passed
    same = check_drift(data(live=clean_tables()), DEFAULT)
    assert same.passed and same.metadata["doctors_removed"] == same.metadata["recommendations_changed"] == 0


def _lose_connections(share: float, n: int = 400) -> dict[str, pa.Table]:
    """`share` of body A's doctors lose their GMC connection (the Connections list empties)."""
    doctors = doctor_rows(n)
    in_a = [d for d in doctors if d["designated_body_code"] == BODY_A]
    for d in in_a[: round(share * len(in_a))]:
        d["designated_body_code"], d["exists_in_gmc"] = None, False
    return tables_from(doctors)


def test_drift_fails_when_one_designated_body_loses_its_connections() -> None:
    result = check_drift(data(_lose_connections(0.4), live=clean_tables(400)), DEFAULT)
    assert not result.passed
    assert f"designated body {BODY_A} would lose 80 of its 200 connections (40.0 %)" in result.description
    assert result.metadata["worst_loss_share"] == 0.4 and result.metadata["overridden"] is False
    assert result.metadata["threshold_max_drift_loss_share"] == 0.05
    assert f"| connections | {BODY_A} | 200 | 80 | 0 | 0 | 40.0 % |" in result.table
    assert check_drift(data(_lose_connections(0.04), live=clean_tables(400)), DEFAULT).passed


def test_drift_fails_when_an_entity_loses_rows() -> None:
    tables = clean_tables(400)
    tables["recommendations"] = tables["recommendations"].slice(0, 300)
    result = check_drift(data(tables, live=clean_tables(400)), DEFAULT)
    assert not result.passed and result.metadata["recommendations_removed"] == 100
    assert "recommendations would lose 100 of 400 live rows (25.0 %)" in result.description


def test_drift_ignores_a_loss_smaller_than_min_drift_rows() -> None:
    tables = clean_tables(40)
    tables["doctors"] = tables["doctors"].slice(0, 35)  # 12.5 %, but only 5 rows
    assert check_drift(data(tables, live=clean_tables(40)), DEFAULT).passed
    assert not check_drift(data(tables, live=clean_tables(40)), Thresholds(min_drift_rows=5)).passed


def test_drift_lets_a_known_change_through_only_with_a_recorded_reason() -> None:
    thresholds = Thresholds(allow_drift_reason="body A merged into B, ticket TIS21-1234")
    result = check_drift(data(_lose_connections(0.4), live=clean_tables(400)), thresholds)
    assert result.passed and result.metadata["overridden"] is True
    assert result.metadata["allow_drift_reason"] == "body A merged into B, ticket TIS21-1234"
    assert "would have failed" in result.description and "TIS21-1234" in result.description


def _by_batch(batches: list[list[dict]]) -> list[dict[str, pa.Table]]:
    return [tables_from(rows) for rows in batches]


def _joined(parts: list[dict[str, pa.Table]]) -> dict[str, pa.Table]:
    return {e: pa.concat_tables([part[e] for part in parts]) for e in ENTITY_SPECS}


def _lost_changed_and_moved() -> tuple[list[dict[str, pa.Table]], list[dict[str, pa.Table]], dict]:
    """Live and a candidate in 4 batches (batches 1 and 3 differ), and the layout pairing them."""
    rows = doctor_rows(400)
    live = _by_batch([rows[i:i + 100] for i in range(0, 400, 100)])
    changed = [dict(r) for r in rows[100:200]]
    del changed[:30]  # batch 1 loses 30 doctors (15 of body A)
    for r in changed[:5]:
        r["doctor_last_name"] = "Changed"
    for r in changed[5:8]:
        r["designated_body_code"] = BODY_A
    candidate = [live[0], *_by_batch([changed, rows[200:300], rows[300:400] + doctor_rows(402)[400:]])]
    # a recommendation moves from a doctor in batch 1 to one in batch 3: "changed", not removed and added
    moved = candidate[1]["recommendations"].slice(0, 1)
    candidate[1]["recommendations"] = candidate[1]["recommendations"].slice(1)
    candidate[3]["recommendations"] = pa.concat_tables([
        candidate[3]["recommendations"], set_column(moved, "gmc_reference_number", ["1000350"])])
    unchanged = (True, False, True, False)
    layout = {e: tuple(BatchPair(rows=new[e].num_rows, live_rows=old[e].num_rows, same=same)
                       for new, old, same in zip(candidate, live, unchanged, strict=True)) for e in ENTITY_SPECS}
    return candidate, live, layout


def test_drift_over_the_batches_whose_files_differ_counts_what_whole_tables_count() -> None:
    candidate, live, layout = _lost_changed_and_moved()
    whole = check_drift(data(_joined(candidate), live=_joined(live)), DEFAULT)
    by_batch = check_drift(data(_joined(candidate), live=_joined(live), layout=layout), DEFAULT)
    assert by_batch == whole
    assert whole.metadata["doctors_removed"] == 30 and whole.metadata["doctors_added"] == 2
    moves = (whole.metadata["recommendations_removed"], whole.metadata["recommendations_added"])
    assert moves == (30, 2)  # the moved recommendation is neither removed nor added
    assert f"designated body {BODY_A} would lose" in whole.description
    untouched = data(_joined(live), live=_joined(live), layout={e: tuple(BatchPair(p.rows, p.live_rows, True)
                                                                       for p in ps) for e, ps in layout.items()})
    assert check_drift(untouched, DEFAULT).metadata["doctors_changed"] == 0
    # a layout that does not add up to the tables is not trusted: the whole tables are compared
    misfit = {e: tuple(BatchPair(p.rows + 1, p.live_rows, True) for p in ps) for e, ps in layout.items()}
    assert check_drift(data(_joined(candidate), live=_joined(live), layout=misfit), DEFAULT) == whole


def test_every_check_answers_the_same_with_live_read_from_its_files_a_column_at_a_time(tmp_path: Path) -> None:
    candidate, live, layout = _lost_changed_and_moved()
    tables = _joined(candidate)
    tables["doctors"] = set_column(tables["doctors"], "membership_type", [None] * tables["doctors"].num_rows)
    store = SnapshotStore(tmp_path)
    files = {e: [store.put_table(e, b, part[e])[0] for b, part in enumerate(live)] for e in ENTITY_SPECS}
    in_memory = {files["doctors"][0].sha256: live[0]["doctors"]}  # a file shared with the candidate
    lazy = {e: store.lazy_table(refs, in_memory=in_memory) for e, refs in files.items()}
    assert all(isinstance(table, LazyTable) for table in lazy.values())
    for with_layout in ({}, {"layout": layout}):
        in_memory_results = run_checks(data(tables, live=_joined(live), **with_layout), DEFAULT)
        assert run_checks(data(tables, live=lazy, **with_layout), DEFAULT) == in_memory_results
    failed = {r.name for r in in_memory_results if not r.passed}
    assert {"schema", "drift"} <= failed  # the vanished column and the lost doctors are seen either way


# === referential integrity ===================================================================


def test_referential_integrity_passes_clean_tables() -> None:
    result = check_referential_integrity(data(), DEFAULT)
    assert result.passed and result.metadata["orphan_recommendations"] == 0


def test_referential_integrity_fails_on_a_recommendation_or_connection_without_its_doctor() -> None:
    tables = clean_tables()
    tables["doctors"] = tables["doctors"].slice(1)
    result = check_referential_integrity(data(tables), DEFAULT)
    assert not result.passed
    assert result.metadata["orphan_recommendations"] == 1 and result.metadata["orphan_connections"] == 1
    assert "1 recommendations rows belong to no doctor in this version (e.g. '1000000')" in result.description


def test_referential_integrity_fails_on_a_connection_the_source_sent_for_an_unknown_doctor() -> None:
    export = clean_export(connection_logs=InputReport("connection_logs", "/x/connection_logs.json", records=100,
                                                      kept=100, unmatched=1, unmatched_examples=("9999999",)))
    result = check_referential_integrity(data(export=export), DEFAULT)
    assert not result.passed and result.metadata["unmatched_connection_logs_in_source"] == 1
    assert "/x/connection_logs.json: 1 current connection(s)" in result.description
    assert "'9999999'" in result.description


def test_referential_integrity_fails_on_an_unknown_designated_body_and_a_wrong_discrepancy_flag() -> None:
    tables = clean_tables()
    tables["doctors"] = set_column(tables["doctors"], "designated_body_code", ["1-NOTREAL"] + [BODY_A] * 39)
    tables["connections"] = set_column(tables["connections"], "is_discrepancy", [True] + [False] * 39)
    result = check_referential_integrity(data(tables), DEFAULT)
    assert not result.passed
    assert result.metadata["unknown_designated_body_codes"] == 1 and result.metadata["discrepancy_flags_wrong"] == 1
    assert "doctors.designated_body_code has 1 unknown designated-body codes (e.g. '1-NOTREAL')" in result.description


def test_hand_made_discrepancy_flags_follow_the_transform() -> None:
    connections = clean_tables()["connections"]
    expected = is_discrepancy(connections["designated_body_code"], connections["tis_designated_body_code"])
    assert connections["is_discrepancy"].to_pylist() == expected.to_pylist()


# === freshness ===============================================================================


def test_freshness_passes_a_recent_export_and_shows_live_age() -> None:
    result = check_freshness(data(live_exported_at=NOW - timedelta(hours=30)), DEFAULT)
    assert result.passed and result.metadata["export_age_hours"] == 2.0
    assert result.metadata["live_export_age_hours"] == 30.0 and result.metadata["threshold_max_export_age_hours"] == 48


def test_freshness_fails_an_old_or_unknown_export() -> None:
    old = replace(clean_export(), exported_at=NOW - timedelta(days=3), batches=(0, 1, 2))
    result = check_freshness(data(export=old), DEFAULT)
    assert not result.passed and result.metadata["export_age_hours"] == 72.0
    assert "batches 0, 1, 2 come from an export made 2023-12-08T12:00:00+00:00, 72.0 h ago" in result.description
    assert check_freshness(data(export=old), Thresholds(max_export_age_hours=100)).passed
    unknown = check_freshness(data(export=replace(clean_export(), exported_at=None)), DEFAULT)
    assert not unknown.passed and "not recorded" in unknown.description


# === quarantine budget =======================================================================


def _quarantined(count: int) -> InputReport:
    reasons = (Reason("submissionDate", "malformed date (expected dd/mm/yyyy)", count - 1, ("31/02/2023",)),
               Reason("underNotice", "unknown value; expected one of Yes, No, On Hold", 1, ("Maybe",)))
    return InputReport("gmc_doctors", "/x/doctors_for_db.json", records=1000, kept=1000 - count,
                       quarantined=count, reasons=reasons)


def test_quarantine_budget_passes_a_small_quarantine() -> None:
    result = check_quarantine_budget(data(export=clean_export(gmc_doctors=_quarantined(10))), DEFAULT)
    assert result.passed and result.metadata["quarantined_share_gmc_doctors"] == 0.01


def test_quarantine_budget_fails_and_says_which_file_and_why() -> None:
    result = check_quarantine_budget(data(export=clean_export(gmc_doctors=_quarantined(50))), DEFAULT)
    assert not result.passed and result.metadata["worst_input"] == "gmc_doctors"
    assert ("/x/doctors_for_db.json: 50 of 1000 records quarantined (5.0 %, limit 1.0 %): "
            "49 × submissionDate: malformed date (expected dd/mm/yyyy) (e.g. '31/02/2023'); 1 × underNotice: "
            "unknown value") in result.description
    assert "| gmc_doctors | /x/doctors_for_db.json | 1000 | 50 | 5.0 % |" in result.table


def test_quarantine_budget_fails_an_input_that_could_not_be_read() -> None:
    unread = InputReport("recommendation_records", "/x/recommendations.json", problems=("no recommendation list",))
    result = check_quarantine_budget(data(export=clean_export(recommendation_records=unread)), DEFAULT)
    assert not result.passed and result.metadata["inputs_not_read"] == 1
    assert "/x/recommendations.json could not be read as a whole" in result.description


# === evidence gathered at landing ============================================================


def test_unmatched_counts_recommendations_and_current_connections_only() -> None:
    doctors = pa.array(["1000001"])
    logs = pa.table({
        "gmc_reference_number": ["1000001", "2000002", "3000003", "3000003", "4000004"],
        "request_time": pa.array([1, 1, 1, 2, 1], pa.timestamp("us")),
        "request_type": ["ADD", "ADD", "ADD", "REMOVE", "ADD"],
        "response_code": ["0", "0", "0", "0", "90"],  # 4000004's ADD was refused by GMC
    })
    assert evidence.unmatched("connection_logs", logs, doctors) == {"records": 1, "examples": ["2000002"]}
    recs = pa.table({"gmc_reference_number": ["1000001", "3000003"]})
    assert evidence.unmatched("recommendation_records", recs, doctors) == {"records": 1, "examples": ["3000003"]}


def test_quarantine_reasons_count_records_per_field_and_problem() -> None:
    quarantine = pa.table({"input": ["x"] * 3, "origin": ["f"] * 3, "record": pa.array([1, 2, 2], pa.int64()),
                           "field": ["a", "a", "b"], "value": ["v1", "v2", "v3"], "problem": ["p", "p", "q"],
                           "record_json": ["{}"] * 3})
    reasons = evidence.quarantine_reasons(quarantine)
    assert reasons[0] == {"field": "a", "problem": "p", "records": 2, "examples": ["v1", "v2"]}
    assert reasons[1]["records"] == 1


# === end to end: a files-source export with the fault, through Dagster =======================


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
    assert f"{bad} × submissionDate: malformed date (expected dd/mm/yyyy) (e.g. '2024-13-45')" in check["description"]


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
    moved = pa.array(np.arange(doctors.num_rows) % round(1 / share) == 0)
    codes = pa.array(DESIGNATED_BODY_CODES)
    position = pc.index_in(doctors["designatedBodyCode"], value_set=codes).to_numpy(zero_copy_only=False)
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

