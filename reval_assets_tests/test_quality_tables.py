"""The checks on the candidate's tables as such: schema, non_empty and unique_keys."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.enums import QuarantineReason
from reval_assets.domain.schemas import ENTITY_SPECS
from reval_assets.domain.summaries import ReasonCount
from reval_assets.quality.checks import (
    InputReport,
    Thresholds,
    check_non_empty,
    check_schema,
    check_unique_keys,
)
from reval_assets_tests.quality_tables import (
    DEFAULT,
    clean_export,
    clean_tables,
    data,
    set_column,
)


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
    reason = ReasonCount("outcome", QuarantineReason.UNKNOWN_VALUE,
                         "unknown value; expected one of Approved, Rejected, Under Review", 1, ("Pending GMC",),
                         allowed=("Approved", "Rejected", "Under Review"))
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
    reason = ReasonCount("gmcReferenceNumber", QuarantineReason.DUPLICATE_KEY, "duplicate key", 2, ("1234567",))
    export = clean_export(gmc_doctors=InputReport("gmc_doctors", "/x/doctors_for_db.json", records=100, kept=98,
                                                  quarantined=2, reasons=(reason,)))
    result = check_unique_keys(data(export=export), DEFAULT)
    assert not result.passed and result.metadata["duplicate_key_records_in_source"] == 2
    assert "/x/doctors_for_db.json: 2 records share a gmcReferenceNumber (e.g. '1234567')" in result.description
