"""Every spelling the original services send reads as the same typed value, and a really bad value is still
quarantined. Fixtures are written by hand from the services' DTOs (field names, enum names and labels, Jackson
and Extended JSON forms), not by our writer."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from reval_assets.domain.conform import conform
from reval_assets.domain.enums import QuarantineReason
from reval_assets.domain.schemas import RAW_SPECS
from reval_assets.sources.base import SourceError
from reval_assets.sources.files import FileSource
from reval_assets.transforms import build_entities

DBC = "1-1RUZV1D"
DOCTOR_DTO = {"gmcReferenceNumber": "1234567", "doctorFirstName": "Ada", "doctorLastName": "Lovelace",
              "submissionDate": "04/07/2017", "dateAdded": "01/02/2015", "underNotice": "Yes", "sanction": "No",
              "doctorStatus": "NOT_STARTED", "designatedBodyCode": DBC,
              "gmcLastUpdatedDateTime": "2026-12-01T01:59:27.54527"}
TRAINEE_DTO = {"tcsPersonId": 41, "gmcReferenceNumber": "1234567", "doctorFirstName": "Ada",
               "doctorLastName": "Lovelace", "submissionDate": None, "programmeName": "General Practice | Cardiology",
               "programmeMembershipType": "SUBSTANTIVE", "designatedBody": DBC, "tcsDesignatedBody": DBC,
               "programmeOwner": "Kent, Surrey and Sussex", "placementGrade": "279",
               "programmeMembershipStartDate": "2024-08-07", "programmeMembershipEndDate": "2027-08-06",
               "curriculumEndDate": "2027-08-06", "dataSource": "TCS", "syncEnd": False}
SYNC_END = dict.fromkeys(TRAINEE_DTO) | {"syncEnd": True}
RECOMMENDATION_DTO = {"gmcNumber": "1234567", "recommendationId": "64b7f0c2e4b0a1a2b3c4d5e6",
                      "gmcOutcome": "Approved", "recommendationType": "REVALIDATE",
                      "recommendationStatus": "COMPLETED", "gmcSubmissionDate": "2024-03-01",
                      "actualSubmissionDate": "2024-03-02", "gmcRevalidationId": "123", "deferralDate": None,
                      "deferralReason": None, "deferralSubReason": None, "deferralComment": None,
                      "comments": ["all fine"], "admin": "sam.admin@hee.nhs.uk"}
LOG = {"gmcId": "1234567", "newDesignatedBodyCode": DBC, "previousDesignatedBodyCode": None,
       "updatedBy": "lisa.admin@hee.nhs.uk", "requestTime": "2019-09-01T10:00:00", "reason": "1",
       "requestType": "ADD", "responseCode": "0"}


def _write(folder: Path, *, doctors: object = None, trainees: object = None, recommendations: object = None,
           logs: object = None, text: dict[str, bytes] | None = None) -> Path:
    """An export whose files are these documents (JSON arrays), or these exact bytes."""
    files = {"doctors_for_db.json": [DOCTOR_DTO] if doctors is None else doctors,
             "trainee_info.json": [TRAINEE_DTO, SYNC_END] if trainees is None else trainees,
             "recommendations.json": {"countTotal": 1, "recommendationInfo": [RECOMMENDATION_DTO]}
             if recommendations is None else recommendations,
             "connection_logs.json": [LOG] if logs is None else logs}
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content), encoding="utf-8")
    for name, data in (text or {}).items():
        (folder / name).write_bytes(data)
    return folder


def _conformed(folder: Path, name: str) -> tuple[pa.Table, pa.Table]:
    wire = FileSource(folder).extract()[name]
    result = conform(RAW_SPECS[name], wire.table, wire.origin)
    return result.table, result.quarantine


def _one(folder: Path, name: str) -> dict:
    table, quarantine = _conformed(folder, name)
    assert quarantine.num_rows == 0, quarantine.to_pylist()
    [row] = table.to_pylist()
    return row


# --- file layouts ---------------------------------------------------------------------------------------


def test_mongoexport_json_lines_with_a_bom_reads_like_an_array(tmp_path: Path) -> None:
    lines = b"\xef\xbb\xbf" + b"\n".join(json.dumps(d).encode() for d in [DOCTOR_DTO, DOCTOR_DTO | {
        "gmcReferenceNumber": "7654321"}]) + b"\n"
    folder = _write(tmp_path, text={"doctors_for_db.json": lines})
    wire = FileSource(folder).extract()["gmc_doctors"]
    assert wire.table.num_rows == 2 and "JSON Lines" in wire.read_as


def test_pretty_printed_documents_one_after_another_are_read(tmp_path: Path) -> None:
    pretty = b"\n".join(json.dumps(d, indent=2, separators=(",", " : ")).encode() for d in [LOG, LOG])
    folder = _write(tmp_path, text={"connection_logs.json": pretty})
    wire = FileSource(folder).extract()["connection_logs"]
    assert wire.table.num_rows == 2 and "concatenated JSON documents" in wire.read_as


def test_a_line_that_is_not_json_is_invalid_json_naming_the_file(tmp_path: Path) -> None:
    folder = _write(tmp_path, text={"connection_logs.json": json.dumps(LOG).encode() + b"\n{oops\n"})
    with pytest.raises(SourceError, match=r"invalid JSON.*connection_logs\.json"):
        FileSource(folder).extract()


# --- GMC doctors ----------------------------------------------------------------------------------------


def test_a_doctors_for_db_document_from_mongoexport_reads_like_the_dto(tmp_path: Path) -> None:
    document = {"_id": "1234567", "doctorFirstName": "Ada", "doctorLastName": "Lovelace",
                "submissionDate": {"$date": "2017-07-04T00:00:00Z"}, "dateAdded": {"$date": "2015-02-01T00:00:00Z"},
                "underNotice": "YES", "sanction": "No", "doctorStatus": "NOT_STARTED", "designatedBodyCode": DBC,
                "gmcLastUpdatedDateTime": {"$date": {"$numberLong": "1764554367545"}}, "existsInGmc": True,
                "lastUpdatedDate": {"$date": "2026-12-01T00:00:00Z"},
                "_class": "uk.nhs.hee.tis.revalidation.entity.DoctorsForDB"}
    row = _one(_write(tmp_path, doctors=[document]), "gmc_doctors")
    assert row["gmc_reference_number"] == "1234567" and row["under_notice"] == "Yes"
    assert row["submission_date"] == date(2017, 7, 4) and row["date_added"] == date(2015, 2, 1)
    assert row["gmc_last_updated"] == datetime(2025, 12, 1, 1, 59, 27, 545000) and row["exists_in_gmc"] is True


@pytest.mark.parametrize("spelling,canonical", [("YES", "Yes"), ("yes", "Yes"), ("On Hold", "On Hold"),
                                                ("ON_HOLD", "On Hold"), ("on hold", "On Hold"), ("NO", "No")])
def test_under_notice_names_and_labels_in_any_case(tmp_path: Path, spelling: str, canonical: str) -> None:
    row = _one(_write(tmp_path, doctors=[DOCTOR_DTO | {"underNotice": spelling}]), "gmc_doctors")
    assert row["under_notice"] == canonical


@pytest.mark.parametrize("written,read", [
    ("2026-12-01T01:59:27", datetime(2026, 12, 1, 1, 59, 27)),
    ("2026-12-01T01:59", datetime(2026, 12, 1, 1, 59)),
    ("2026-12-01T01:59:27.123456789", datetime(2026, 12, 1, 1, 59, 27, 123456)),
    ("2026-12-01T01:59:27.5Z", datetime(2026, 12, 1, 1, 59, 27, 500000)),
    ("2026-12-01T01:59:27+01:00", datetime(2026, 12, 1, 0, 59, 27)),
    ([2026, 12, 1, 1, 59, 27, 545270000], datetime(2026, 12, 1, 1, 59, 27, 545270)),
    ([2026, 12, 1, 1, 59], datetime(2026, 12, 1, 1, 59)),
    ({"$date": "2026-12-01T01:59:27.545Z"}, datetime(2026, 12, 1, 1, 59, 27, 545000)),
])
def test_date_times_in_every_form_the_services_write(tmp_path: Path, written: object, read: datetime) -> None:
    row = _one(_write(tmp_path, doctors=[DOCTOR_DTO | {"gmcLastUpdatedDateTime": written}]), "gmc_doctors")
    assert row["gmc_last_updated"] == read


@pytest.mark.parametrize("bad", ["2026-13-01T00:00:00", "2026-12-01T25:00:00", "01/12/2026 10:00", "yesterday"])
def test_a_date_time_that_is_really_bad_is_still_quarantined(tmp_path: Path, bad: str) -> None:
    _, quarantine = _conformed(_write(tmp_path, doctors=[DOCTOR_DTO | {"gmcLastUpdatedDateTime": bad}]),
                               "gmc_doctors")
    [row] = quarantine.to_pylist()
    assert (row["field"], row["value"], row["code"]) == ("gmcLastUpdatedDateTime", bad, "malformed")


def test_envelopes_keep_each_doctor_as_of_their_bodys_latest_collection(tmp_path: Path) -> None:
    older = {"designatedBodyCode": DBC, "requestDateTime": "2026-11-30T01:59:27.1",
             "doctors": [DOCTOR_DTO | {"gmcReferenceNumber": "7654321", "gmcLastUpdatedDateTime": None},
                         DOCTOR_DTO | {"doctorLastName": "Byron"}]}
    latest = {"designatedBodyCode": DBC, "requestDateTime": "2026-12-01T01:59:27.54527",
              "doctors": [{k: v for k, v in DOCTOR_DTO.items() if k != "designatedBodyCode"}]}
    folder = _write(tmp_path, doctors=[older, latest])
    wire = FileSource(folder).extract()["gmc_doctors"]
    assert "2 DoctorsForDbCollectedEvent envelopes" in wire.read_as and "1 superseded" in wire.read_as
    table, quarantine = _conformed(folder, "gmc_doctors")
    assert quarantine.num_rows == 0
    rows = {r["gmc_reference_number"]: r for r in table.to_pylist()}
    assert rows["1234567"]["doctor_last_name"] == "Lovelace" and rows["1234567"]["designated_body_code"] == DBC
    gone = rows["7654321"]
    assert gone["exists_in_gmc"] is False and gone["designated_body_code"] is None
    assert gone["gmc_last_updated"] == datetime(2026, 11, 30, 1, 59, 27, 100000)


def test_an_envelope_without_its_request_time_fails_naming_the_envelope(tmp_path: Path) -> None:
    folder = _write(tmp_path, doctors=[{"designatedBodyCode": DBC, "doctors": [DOCTOR_DTO]}])
    with pytest.raises(SourceError, match="requestDateTime.*record 0"):
        FileSource(folder).extract()


def test_a_disconnected_doctor_keeps_their_history_with_no_body(tmp_path: Path) -> None:
    gone = DOCTOR_DTO | {"designatedBodyCode": None, "existsInGmc": False}
    folder = _write(tmp_path, doctors=[gone])
    raw = {name: _conformed(folder, name)[0] for name in RAW_SPECS}
    entities = build_entities(raw)
    [doctor] = entities["doctors"].to_pylist()
    assert doctor["exists_in_gmc"] is False and doctor["designated_body_code"] is None
    assert entities["recommendations"].num_rows == 1
    [connection] = entities["connections"].to_pylist()
    assert connection["connection_status"] == "DISCONNECTED"
    assert connection["is_discrepancy"] is True  # TIS places them at a body, GMC at none: the original's rule


# --- TIS trainees ---------------------------------------------------------------------------------------


def test_the_sync_end_marker_is_no_trainee(tmp_path: Path) -> None:
    folder = _write(tmp_path)
    wire = FileSource(folder).extract()["tis_trainees"]
    assert wire.table.num_rows == 1 and "1 syncEnd marker" in wire.read_as


def test_jackson_local_date_arrays_read_as_dates(tmp_path: Path) -> None:
    trainee = TRAINEE_DTO | {"programmeMembershipStartDate": [2024, 8, 7], "curriculumEndDate": [2027, 8, 6]}
    row = _one(_write(tmp_path, trainees=[trainee, SYNC_END]), "tis_trainees")
    assert row["membership_start_date"] == date(2024, 8, 7) and row["curriculum_end_date"] == date(2027, 8, 6)
    assert row["tis_person_id"] == 41


def test_a_gmc_number_with_blanks_around_it_is_the_number(tmp_path: Path) -> None:
    row = _one(_write(tmp_path, trainees=[TRAINEE_DTO | {"gmcReferenceNumber": " 1234567 "}]), "tis_trainees")
    assert row["gmc_reference_number"] == "1234567"


def test_two_tis_persons_on_one_gmc_number_are_both_quarantined_never_merged(tmp_path: Path) -> None:
    second = TRAINEE_DTO | {"tcsPersonId": 42, "doctorFirstName": "Augusta"}
    table, quarantine = _conformed(_write(tmp_path, trainees=[TRAINEE_DTO, second, SYNC_END]), "tis_trainees")
    assert table.num_rows == 0
    assert [r["code"] for r in quarantine.to_pylist()] == [QuarantineReason.DUPLICATE_KEY.value] * 2


# --- recommendations ------------------------------------------------------------------------------------


def test_a_recommendation_document_from_mongoexport_reads_like_the_dto(tmp_path: Path) -> None:
    document = {"_id": {"$oid": "64b7f0c2e4b0a1a2b3c4d5e6"}, "gmcNumber": "1234567", "outcome": "APPROVED",
                "recommendationType": "REVALIDATE", "recommendationStatus": "COMPLETED",
                "gmcSubmissionDate": {"$date": "2024-03-01T00:00:00Z"},
                "actualSubmissionDate": {"$date": "2024-03-02T00:00:00.000Z"}, "gmcRevalidationId": "123",
                "comments": ["all fine"], "admin": "sam.admin@hee.nhs.uk",
                "_class": "uk.nhs.hee.tis.revalidation.entity.Recommendation"}
    folder = _write(tmp_path, recommendations=[document])
    from_document = _one(folder, "recommendation_records")
    from_dto = _one(_write(tmp_path / "dto"), "recommendation_records")
    assert from_document == from_dto
    assert from_dto["recommendation_id"] == "64b7f0c2e4b0a1a2b3c4d5e6" and from_dto["gmc_outcome"] == "Approved"


@pytest.mark.parametrize("spelling,canonical", [("Under Review", "Under Review"), ("UNDER_REVIEW", "Under Review"),
                                                ("rejected", "Rejected")])
def test_gmc_outcome_names_and_labels(tmp_path: Path, spelling: str, canonical: str) -> None:
    payload = {"countTotal": 1, "traineeInfo": [RECOMMENDATION_DTO | {"gmcOutcome": spelling}]}
    assert _one(_write(tmp_path, recommendations=payload), "recommendation_records")["gmc_outcome"] == canonical


@pytest.mark.parametrize("reason,sub,codes", [("1", "4", ("1", "4")), ("INSUFFICIENT_EVIDENCE", "CPD", ("1", "4")),
                                              ("Ongoing process", None, ("2", None)), (1, 8, ("1", "8"))])
def test_deferral_reasons_as_codes_or_legacy_text(tmp_path: Path, reason: object, sub: object,
                                                  codes: tuple) -> None:
    deferred = RECOMMENDATION_DTO | {"recommendationType": "DEFER", "deferralReason": reason,
                                     "deferralSubReason": sub, "deferralDate": "2025-01-01"}
    row = _one(_write(tmp_path, recommendations=[deferred]), "recommendation_records")
    assert (row["deferral_reason"], row["deferral_sub_reason"]) == codes


def test_two_legacy_recommendations_without_an_id_are_kept_with_stable_derived_ids(tmp_path: Path) -> None:
    legacy = [RECOMMENDATION_DTO | {"recommendationId": None, "gmcSubmissionDate": day} for day in
              ("2018-01-01", "2019-01-01")]
    folder = _write(tmp_path, recommendations={"countTotal": 1, "traineeInfo": legacy})
    table, quarantine = _conformed(folder, "recommendation_records")
    assert quarantine.num_rows == 0 and table.num_rows == 2
    ids = table["recommendation_id"].to_pylist()
    assert len(set(ids)) == 2 and all(i.startswith("derived-") for i in ids)
    again, _ = _conformed(_write(tmp_path / "again", recommendations=legacy[::-1]), "recommendation_records")
    assert sorted(again["recommendation_id"].to_pylist()) == sorted(ids)


def test_an_unknown_outcome_is_still_quarantined_with_the_values_allowed(tmp_path: Path) -> None:
    payload = {"countTotal": 1, "traineeInfo": [RECOMMENDATION_DTO | {"gmcOutcome": "Pending GMC"}]}
    _, quarantine = _conformed(_write(tmp_path, recommendations=payload), "recommendation_records")
    [row] = quarantine.to_pylist()
    assert row["code"] == "unknown_value" and row["allowed"] == ["Approved", "Rejected", "Under Review"]


# --- connection logs and hidden discrepancies ----------------------------------------------------------


def test_a_log_written_by_the_gmc_sync_is_a_real_connection_change(tmp_path: Path) -> None:
    gmc_log = {"_id": {"$oid": "6810a5e6f1d2c3b4a5968778"}, "gmcId": "1234567", "newDesignatedBodyCode": DBC,
               "previousDesignatedBodyCode": None, "updatedBy": "GMC",
               "requestTime": {"$date": "2025-04-29T00:00:54.956Z"},
               "_class": "uk.nhs.hee.tis.revalidation.connection.entity.ConnectionLog"}
    refused = LOG | {"requestTime": "2025-05-01T09:00:00", "responseCode": "90", "updatedBy": "refused"}
    folder = _write(tmp_path, logs=[LOG, gmc_log, refused])
    assert "1 with no requestType" in FileSource(folder).extract()["connection_logs"].read_as
    raw = {name: _conformed(folder, name)[0] for name in RAW_SPECS}
    [connection] = build_entities(raw)["connections"].to_pylist()
    assert connection["last_connection_change"] == datetime(2025, 4, 29, 0, 0, 54, 956000)
    assert connection["last_updated_by"] == "GMC"


def test_the_resyncs_latest_log_dto_reads_its_event_time(tmp_path: Path) -> None:
    dto = {"gmcId": "1234567", "newDesignatedBodyCode": DBC, "previousDesignatedBodyCode": None,
           "updatedBy": "lisa.admin@hee.nhs.uk", "eventDateTime": "2025-04-29T00:00:54.956"}
    row = _one(_write(tmp_path, logs=[dto]), "connection_logs")
    assert row["request_time"] == datetime(2025, 4, 29, 0, 0, 54, 956000) and row["request_type"] is None


def test_hidden_discrepancies_are_optional_and_say_so(tmp_path: Path) -> None:
    wire = FileSource(_write(tmp_path)).extract()["hidden_discrepancy_records"]
    assert wire.table.num_rows == 0 and wire.read_as.startswith("absent")


def test_hidden_discrepancies_reach_their_entity(tmp_path: Path) -> None:
    hidden = {"_id": {"$oid": "6810a5e6f1d2c3b4a5968779"}, "gmcId": "1234567", "currentDesignatedBodyCode": DBC,
              "programmeOwnerDesignatedBodyCode": "1-1RSSQ5L", "hiddenForDesignatedBodyCode": DBC,
              "hiddenBy": "sam.admin@hee.nhs.uk", "reason": "moving in March",
              "hiddenDateTime": {"$date": "2026-11-02T09:15:00Z"}, "hiddenUntilDate": {"$date": "2027-03-01T00:00:00Z"}}
    folder = _write(tmp_path, text={"hidden_discrepancies.json": json.dumps(hidden).encode() + b"\n"})
    raw = {name: _conformed(folder, name)[0] for name in RAW_SPECS}
    [row] = build_entities(raw)["hidden_discrepancies"].to_pylist()
    assert row["hidden_for_designated_body_code"] == DBC and row["hidden_until_date"] == date(2027, 3, 1)
