"""The checks on what the source sent (freshness, quarantine_budget) and the evidence gathered at landing."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pyarrow as pa

from reval_assets.domain.enums import QuarantineReason
from reval_assets.domain.schemas import QUARANTINE_SCHEMA
from reval_assets.domain.summaries import ReasonCount
from reval_assets.quality import evidence
from reval_assets.quality.checks import (
    InputReport,
    Thresholds,
    check_freshness,
    check_quarantine_budget,
)
from reval_assets_tests.quality_tables import (
    DEFAULT,
    NOW,
    clean_export,
    data,
)


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
    reasons = (ReasonCount("submissionDate", QuarantineReason.MALFORMED, "malformed date (expected dd/mm/yyyy)",
                           count - 1, ("31/02/2023",)),
               ReasonCount("underNotice", QuarantineReason.UNKNOWN_VALUE, "unknown value; expected one of Yes, No, "
                           "On Hold", 1, ("Maybe",), allowed=("Yes", "No", "On Hold")))
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
    assert evidence.unmatched("connection_logs", logs, doctors) == {"records": 1, "examples": ["2000002"],
                                                                  "numbers": {"2000002": 1}}
    recs = pa.table({"gmc_reference_number": ["1000001", "3000003"]})
    assert evidence.unmatched("recommendation_records", recs, doctors) == {"records": 1, "examples": ["3000003"],
                                                                        "numbers": {"3000003": 1}}


def test_quarantine_reasons_count_records_per_field_and_problem() -> None:
    quarantine = pa.table({"input": ["x"] * 3, "origin": ["f"] * 3, "record": pa.array([1, 2, 2], pa.int64()),
                           "gmc_reference_number": ["1000001", "1000002", "1000002"],
                           "field": ["a", "a", "b"], "value": ["v1", "v2", "v3"],
                           "code": ["malformed", "malformed", "unknown_value"], "problem": ["p", "p", "q"],
                           "allowed": [None, None, ["Yes", "No"]], "record_json": ["{}"] * 3},
                          schema=QUARANTINE_SCHEMA)
    reasons = evidence.quarantine_reasons(quarantine)
    assert reasons[0] == {"field": "a", "code": "malformed", "problem": "p", "records": 2, "examples": ["v1", "v2"],
                          "allowed": []}
    assert reasons[1]["records"] == 1
    assert (reasons[1]["code"], reasons[1]["allowed"]) == ("unknown_value", ["Yes", "No"])
