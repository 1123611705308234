"""The file source: round trip with write_export, every bad input of the contract, the fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from reval_assets.domain.conform import conform
from reval_assets.domain.schemas import RAW_SPECS
from reval_assets.sources.base import Source, SourceError, WireInput
from reval_assets.sources.documents import summary_items
from reval_assets.sources.export import write_export
from reval_assets.sources.files import EXPECTED_FILES, FileSource

DOCTORS = [
    {
        "gmcReferenceNumber": "1234567",
        "doctorFirstName": "Aisha",
        "doctorLastName": "Patel",
        "submissionDate": "14/03/2024",
        "dateAdded": "01/09/2019",
        "underNotice": "Yes",
        "sanction": "No",
        "designatedBodyCode": "1-1RUZV1D",
        "gmcLastUpdatedDateTime": "2023-12-01T09:30:00",
    },
    {
        "gmcReferenceNumber": "2345678",
        "doctorFirstName": "Tom",
        "doctorLastName": "O'Brien",
        "submissionDate": "30/11/2025",
        "dateAdded": "15/02/2021",
        "underNotice": "No",
        "sanction": None,
        "designatedBodyCode": "1-25U-830",
        "gmcLastUpdatedDateTime": "2023-11-20T16:05:12.250",
    },
    {
        "gmcReferenceNumber": "3456789",
        "doctorFirstName": "Zoë",
        "doctorLastName": "Nguyen",
        "submissionDate": "02/07/2024",
        "dateAdded": "09/10/2020",
        "underNotice": "On Hold",
        "sanction": "No",
        "designatedBodyCode": "1-1RSSQ5L",
        "gmcLastUpdatedDateTime": "2023-12-10T23:59:59",
    },
]

TRAINEES = [
    {
        "tcsPersonId": "101",
        "gmcReferenceNumber": "1234567",
        "doctorFirstName": "Aisha",
        "doctorLastName": "Patel",
        "programmeName": "General Practice",
        "programmeMembershipType": "SUBSTANTIVE",
        "programmeOwner": "North Central and East London",
        "tcsDesignatedBody": "1-1RUZV1D",
        "placementGrade": "GP Specialty Training",
        "programmeMembershipStartDate": "2021-08-04",
        "programmeMembershipEndDate": "2024-08-03",
        "curriculumEndDate": "2024-08-03",
    },
    {
        "tcsPersonId": "202",
        "gmcReferenceNumber": "2345678",
        "doctorFirstName": "Tom",
        "doctorLastName": "O'Brien",
        "programmeName": "Cardiology",
        "programmeMembershipType": None,
        "programmeOwner": "Northern Ireland Medical and Dental Training Agency",
        "tcsDesignatedBody": "1-25U-830",
        "placementGrade": "Specialty Training StR",
        "programmeMembershipStartDate": "2020-08-05",
        "programmeMembershipEndDate": "2026-08-04",
        "curriculumEndDate": "2026-08-04",
    },
]

RECOMMENDATIONS = [
    {
        "gmcNumber": "1234567",
        "id": "65a1f0c2e4b0a1b2c3d4e5f6",
        "recommendationType": "REVALIDATE",
        "recommendationStatus": "SUBMITTED_TO_GMC",
        "outcome": "Approved",
        "gmcSubmissionDate": "2024-03-14",
        "actualSubmissionDate": "2024-03-01",
        "deferralDate": None,
        "deferralReason": None,
        "deferralSubReason": None,
        "admin": "lisa.admin@hee.nhs.uk",
    },
    {
        "gmcNumber": "2345678",
        "id": "65a1f0c2e4b0a1b2c3d4e5f7",
        "recommendationType": "DEFER",
        "recommendationStatus": "READY_TO_REVIEW",
        "outcome": "Under Review",
        "gmcSubmissionDate": "2025-11-30",
        "actualSubmissionDate": None,
        "deferralDate": "2026-05-30",
        "deferralReason": "1",
        "deferralSubReason": "4",
        "admin": "sam.admin@hee.nhs.uk",
    },
]

CONNECTION_LOGS = [
    {
        "gmcId": "1234567",
        "newDesignatedBodyCode": "1-1RUZV1D",
        "previousDesignatedBodyCode": None,
        "updatedBy": "lisa.admin@hee.nhs.uk",
        "requestTime": "2019-09-01T10:00:00",
        "reason": "1",
        "requestType": "ADD",
        "responseCode": "0",
    },
    {
        "gmcId": "2345678",
        "newDesignatedBodyCode": None,
        "previousDesignatedBodyCode": "1-1RSSQ5L",
        "updatedBy": "sam.admin@hee.nhs.uk",
        "requestTime": "2021-02-15T08:30:00.123",
        "reason": "2",
        "requestType": "REMOVE",
        "responseCode": "0",
    },
]

HIDDEN = [
    {
        "gmcId": "2345678",
        "currentDesignatedBodyCode": "1-1RSSQ5L",
        "programmeOwnerDesignatedBodyCode": "1-1RUZV1D",
        "hiddenForDesignatedBodyCode": "1-1RSSQ5L",
        "hiddenBy": "sam.admin@hee.nhs.uk",
        "reason": "moving to KSS in March",
        "hiddenDateTime": "2026-11-02T09:15:00",
        "hiddenUntilDate": "2027-03-01",
    },
]

RECORDS = {
    "gmc_doctors": DOCTORS,
    "tis_trainees": TRAINEES,
    "recommendation_records": RECOMMENDATIONS,
    "connection_logs": CONNECTION_LOGS,
    "hidden_discrepancy_records": HIDDEN,
}


def _wire_inputs(records: dict[str, list[dict]] = RECORDS) -> dict[str, WireInput]:
    """Wire tables as a source would return them: text columns in wire order, plus `_record`."""
    inputs = {}
    for name, rows in records.items():
        columns = {c.wire: pa.array([row.get(c.wire) for row in rows], pa.string()) for c in RAW_SPECS[name].columns}
        columns["_record"] = pa.array(range(len(rows)), pa.int64())
        inputs[name] = WireInput(pa.table(columns), "test")
    return inputs


def _export(folder: Path, **changes: list[dict]) -> Path:
    """A good export, with some inputs' records replaced."""
    return write_export(_wire_inputs({**RECORDS, **changes}), folder)


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value), encoding="utf-8")


def _recommendations_file(folder: Path) -> Path:
    return folder / "recommendations.json"


def _error(folder: Path) -> SourceError:
    with pytest.raises(SourceError) as raised:
        FileSource(folder).extract()
    return raised.value


# --- round trip ------------------------------------------------------------------------------


def test_file_source_implements_the_source_protocol(tmp_path: Path) -> None:
    source: Source = FileSource(_export(tmp_path))
    assert len(source.fingerprint()) == 64
    assert set(source.extract()) == set(RAW_SPECS)
    assert source.description == f"files: {tmp_path.absolute()}"


def test_round_trip_gives_back_the_same_text_values(tmp_path: Path) -> None:
    written = _wire_inputs()
    extracted = FileSource(write_export(written, tmp_path)).extract()
    assert set(extracted) == set(RAW_SPECS)
    for name, wire in extracted.items():
        assert wire.table.equals(written[name].table), name
        assert wire.origin == str(tmp_path.absolute() / RAW_SPECS[name].file)


def test_export_writes_wire_names_and_tcs_person_id_as_a_json_number(tmp_path: Path) -> None:
    write_export(_wire_inputs(), tmp_path)
    trainees = json.loads((tmp_path / "trainee_info.json").read_text())
    assert trainees[0]["tcsPersonId"] == 101
    assert trainees[1]["programmeMembershipType"] is None
    assert "_record" not in trainees[0]
    payload = json.loads(_recommendations_file(tmp_path).read_text())
    assert list(payload) == ["countTotal", "recommendationInfo"]
    assert payload["countTotal"] == len(RECOMMENDATIONS)


def test_export_keeps_a_non_integer_tcs_person_id_as_text(tmp_path: Path) -> None:
    trainees = [{**TRAINEES[0], "tcsPersonId": "007"}, {**TRAINEES[1], "tcsPersonId": "n/a"}]
    write_export(_wire_inputs({"tis_trainees": trainees}), tmp_path)
    assert [t["tcsPersonId"] for t in json.loads((tmp_path / "trainee_info.json").read_text())] == ["007", "n/a"]


def test_round_trip_of_a_synthetic_population_conforms_like_the_original(tmp_path: Path) -> None:
    synthetic = pytest.importorskip("reval_assets.sources.synthetic")
    wire = synthetic.SyntheticSource(doctors=300, seed=3, faults=("duplicate_keys", "unknown_enums")).extract()
    extracted = FileSource(write_export(wire, tmp_path, list_key="traineeInfo", indent=True)).extract()
    for name, spec in RAW_SPECS.items():
        assert extracted[name].table.equals(wire[name].table), name
        original, read = conform(spec, wire[name].table, "x"), conform(spec, extracted[name].table, "x")
        assert read.table.equals(original.table), name
        assert read.quarantine.equals(original.quarantine), name


def test_json_numbers_booleans_and_nested_values_become_their_json_text(tmp_path: Path) -> None:
    _export(tmp_path)
    trainee = {**TRAINEES[0], "tcsPersonId": 123, "placementGrade": True, "programmeName": {"a": [1, 2]}}
    del trainee["curriculumEndDate"]
    _write_json(tmp_path / "trainee_info.json", [trainee])
    row = FileSource(tmp_path).extract()["tis_trainees"].table.to_pylist()[0]
    assert row["tcsPersonId"] == "123"
    assert row["placementGrade"] == "true"
    assert json.loads(row["programmeName"]) == {"a": [1, 2]}
    assert row["curriculumEndDate"] is None  # absent field → null
    assert row["_record"] == 0


def test_empty_exports_give_empty_tables(tmp_path: Path) -> None:
    write_export(_wire_inputs({name: [] for name in RAW_SPECS}), tmp_path)
    extracted = FileSource(tmp_path).extract()
    for name, spec in RAW_SPECS.items():
        table = extracted[name].table
        assert table.num_rows == 0
        assert table.column_names == [c.wire for c in spec.columns] + ["_record"]


# --- missing files ---------------------------------------------------------------------------


@pytest.mark.parametrize("file", EXPECTED_FILES)
def test_missing_file_names_the_file(tmp_path: Path, file: str) -> None:
    (_export(tmp_path) / file).unlink()
    error = _error(tmp_path)
    assert error.file == str(tmp_path.absolute() / file)
    assert f"missing export file(s) {file}" in str(error)
    for expected in EXPECTED_FILES:
        assert expected in str(error)


def test_missing_folder_says_which_files_are_expected(tmp_path: Path) -> None:
    error = _error(tmp_path / "nowhere")
    assert "export folder not found" in str(error)
    assert "doctors_for_db.json" in str(error) and "connection_logs.json" in str(error)


def test_missing_file_fails_the_fingerprint_too(tmp_path: Path) -> None:
    (_export(tmp_path) / "trainee_info.json").unlink()
    with pytest.raises(SourceError, match="trainee_info.json"):
        FileSource(tmp_path).fingerprint()


# --- the recommendation list key (the Dec 2023 incident) -------------------------------------


def _compact_items() -> str:
    return json.dumps(RECOMMENDATIONS)


@pytest.mark.parametrize("key", ["recommendationInfo", "traineeInfo"])
@pytest.mark.parametrize(
    "template",
    [
        '{{"countTotal":2,"{key}":{items}}}',
        '{{"countTotal": 2, "{key}" : {items}}}',  # Spring's indent_output: a space before the colon
        '{{\n  "countTotal" : 2,\n  "{key}"\n  :\n  {items}\n}}',  # a newline before the colon
        '{{"{key}":\t{items},   "countTotal":2}}',  # other order, a tab
    ],
    ids=["compact", "space-before-colon", "newline-before-colon", "key-first"],
)
def test_either_list_key_is_accepted_whatever_the_whitespace(tmp_path: Path, key: str, template: str) -> None:
    _export(tmp_path)
    _recommendations_file(tmp_path).write_text(template.format(key=key, items=_compact_items()), encoding="utf-8")
    table = FileSource(tmp_path).extract()["recommendation_records"].table
    assert table["id"].to_pylist() == [r["id"] for r in RECOMMENDATIONS]


@pytest.mark.parametrize("key", ["recommendationInfo", "traineeInfo"])
def test_pretty_printed_export_is_read_like_a_compact_one(tmp_path: Path, key: str) -> None:
    write_export(_wire_inputs(), tmp_path, list_key=key, indent=True)
    assert f'"{key}" : [' in _recommendations_file(tmp_path).read_text()
    extracted = FileSource(tmp_path).extract()
    for name, wire in _wire_inputs().items():
        assert extracted[name].table.equals(wire.table), name


def test_list_key_text_inside_a_value_is_left_alone(tmp_path: Path) -> None:
    sneaky = '{"traineeInfo": [], "countTotal": 0}'
    _export(tmp_path, recommendation_records=[{**RECOMMENDATIONS[0], "admin": sneaky}])
    table = FileSource(tmp_path).extract()["recommendation_records"].table
    assert table["admin"].to_pylist() == [sneaky]


def test_missing_list_key_names_the_file_and_the_keys_found(tmp_path: Path) -> None:
    # Issue 4: not a SourceError any more (that failed the raw step before any candidate existed) but an
    # empty input with an input-level problem, on which a blocking check fails the release.
    _export(tmp_path)
    _write_json(_recommendations_file(tmp_path), {"countTotal": 2, "recommendations": RECOMMENDATIONS})
    wire = FileSource(tmp_path).extract()["recommendation_records"]
    assert wire.table.num_rows == 0
    assert wire.table.column_names == [c.wire for c in RAW_SPECS["recommendation_records"].columns] + ["_record"]
    [problem] = wire.problems
    assert str(_recommendations_file(tmp_path.absolute())) in problem
    assert "expected key 'recommendationInfo' or 'traineeInfo'" in problem
    assert "found keys 'countTotal', 'recommendations'" in problem


def recommendation_items(payload: dict, file: str) -> list:
    return summary_items(payload, file)[0]


def test_missing_list_key_in_an_empty_object_says_no_keys_were_found() -> None:
    with pytest.raises(SourceError, match="found keys none"):
        recommendation_items({}, "recommendations.json")


def test_both_list_keys_with_records_is_ambiguous(tmp_path: Path) -> None:
    _export(tmp_path)
    payload = {"countTotal": 2, "traineeInfo": RECOMMENDATIONS, "recommendationInfo": RECOMMENDATIONS}
    _write_json(_recommendations_file(tmp_path), payload)
    with pytest.raises(SourceError, match="ambiguous recommendation list") as raised:
        FileSource(tmp_path).extract()
    assert raised.value.file.endswith("recommendations.json")


@pytest.mark.parametrize("empty", [[], None])
def test_both_list_keys_with_one_empty_takes_the_other(empty: list | None) -> None:
    payload = {"countTotal": 2, "recommendationInfo": empty, "traineeInfo": RECOMMENDATIONS}
    assert recommendation_items(payload, "recommendations.json") == RECOMMENDATIONS


def test_list_key_that_is_not_an_array_fails() -> None:
    with pytest.raises(SourceError, match="'traineeInfo' must be a JSON array, found object"):
        recommendation_items({"countTotal": 1, "traineeInfo": {"gmcNumber": "1234567"}}, "recommendations.json")


def test_count_total_counts_doctors_not_items_so_a_different_count_is_read(tmp_path: Path) -> None:
    _export(tmp_path)
    _write_json(_recommendations_file(tmp_path), {"countTotal": 3, "traineeInfo": RECOMMENDATIONS})
    wire = FileSource(tmp_path).extract()["recommendation_records"]
    assert wire.table.num_rows == len(RECOMMENDATIONS)
    assert "countTotal 3 doctors" in wire.read_as


def test_one_page_of_a_paged_payload_is_a_truncated_payload(tmp_path: Path) -> None:
    _export(tmp_path)
    _write_json(_recommendations_file(tmp_path), {"countTotal": 300, "totalPages": 23, "totalResults": 450,
                                                   "traineeInfo": RECOMMENDATIONS})
    error = _error(tmp_path)
    assert "truncated payload: it is one page (2 items under 'traineeInfo') of 23" in str(error)
    assert error.file.endswith("recommendations.json") and error.field == "totalPages"


def test_count_total_may_be_absent() -> None:
    assert recommendation_items({"recommendationInfo": RECOMMENDATIONS}, "r.json") == RECOMMENDATIONS


def test_count_total_that_is_not_an_integer_fails() -> None:
    with pytest.raises(SourceError, match="countTotal must be an integer, found string"):
        recommendation_items({"countTotal": "2", "recommendationInfo": RECOMMENDATIONS}, "r.json")


def test_recommendations_as_bare_records_are_read_as_records(tmp_path: Path) -> None:
    _export(tmp_path)
    _write_json(_recommendations_file(tmp_path), RECOMMENDATIONS)
    wire = FileSource(tmp_path).extract()["recommendation_records"]
    assert wire.table.num_rows == len(RECOMMENDATIONS) and "(a JSON array)" in wire.read_as


# --- broken files and records ----------------------------------------------------------------


def test_invalid_json_names_the_file_and_the_position(tmp_path: Path) -> None:
    _export(tmp_path)
    (tmp_path / "connection_logs.json").write_text('[{"gmcId": "1234567",}]', encoding="utf-8")
    error = _error(tmp_path)
    assert error.file.endswith("connection_logs.json")
    assert str(error).startswith("invalid JSON:")
    assert "line 1 column" in str(error)


def test_empty_file_is_invalid_json(tmp_path: Path) -> None:
    _export(tmp_path)
    (tmp_path / "doctors_for_db.json").write_bytes(b"")
    with pytest.raises(SourceError, match=r"invalid JSON.*doctors_for_db\.json"):
        FileSource(tmp_path).extract()


def test_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    _export(tmp_path)
    path = tmp_path / "doctors_for_db.json"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert FileSource(tmp_path).extract()["gmc_doctors"].table.num_rows == len(DOCTORS)


def test_top_level_object_where_an_array_is_expected_names_the_file(tmp_path: Path) -> None:
    _export(tmp_path)
    _write_json(tmp_path / "trainee_info.json", {"trainees": TRAINEES})
    error = _error(tmp_path)
    assert error.file.endswith("trainee_info.json")
    assert "expected a JSON array of records, found object" in str(error)


@pytest.mark.parametrize("bad", [["1234567"], [None], [[1, 2]]], ids=["string", "null", "array"])
def test_record_that_is_not_an_object_names_the_record(tmp_path: Path, bad: list) -> None:
    _export(tmp_path)
    _write_json(tmp_path / "doctors_for_db.json", [DOCTORS[0], DOCTORS[1], *bad])
    error = _error(tmp_path)
    assert error.file.endswith("doctors_for_db.json") and error.record == 2
    assert "record is not a JSON object" in str(error) and "record 2" in str(error)


def test_recommendation_item_that_is_not_an_object_names_the_record(tmp_path: Path) -> None:
    _export(tmp_path)
    _write_json(_recommendations_file(tmp_path), {"countTotal": 2, "traineeInfo": [RECOMMENDATIONS[0], 42]})
    error = _error(tmp_path)
    assert error.file.endswith("recommendations.json") and error.record == 1


# --- record-level problems pass through to the quarantine -----------------------------------


@pytest.mark.parametrize(
    ("name", "position", "wire", "value", "problem"),
    [
        ("recommendation_records", 1, "outcome", "Pending GMC", "unknown value"),
        ("gmc_doctors", 2, "underNotice", "Maybe", "unknown value"),
        ("connection_logs", 0, "requestType", "MOVE", "unknown value"),
        ("gmc_doctors", 1, "submissionDate", "14.03.2024", "malformed date"),
        ("tis_trainees", 0, "curriculumEndDate", "31/02/2024", "malformed date"),
        ("gmc_doctors", 0, "gmcReferenceNumber", "123456", "malformed GMC number"),
        ("recommendation_records", 0, "gmcNumber", "12345678", "malformed GMC number"),
    ],
)
def test_bad_record_is_quarantined_with_file_record_field_and_problem(
    tmp_path: Path, name: str, position: int, wire: str, value: str, problem: str
) -> None:
    records = [dict(r) for r in RECORDS[name]]
    records[position][wire] = value
    _export(tmp_path, **{name: records})
    extracted = FileSource(tmp_path).extract()[name]
    conformed = conform(RAW_SPECS[name], extracted.table, extracted.origin)
    [row] = conformed.quarantine.to_pylist()
    assert row["origin"] == str(tmp_path.absolute() / RAW_SPECS[name].file)
    assert (row["record"], row["field"], row["value"]) == (position, wire, value)
    assert row["problem"].startswith(problem)
    assert conformed.table.num_rows == len(records) - 1


def test_duplicate_key_quarantines_every_copy_and_keeps_the_rest(tmp_path: Path) -> None:
    doctors = [*DOCTORS, {**DOCTORS[0], "doctorFirstName": "Ayesha"}]
    _export(tmp_path, gmc_doctors=doctors)
    extracted = FileSource(tmp_path).extract()["gmc_doctors"]
    conformed = conform(RAW_SPECS["gmc_doctors"], extracted.table, extracted.origin)
    quarantine = conformed.quarantine.to_pylist()
    assert sorted(row["record"] for row in quarantine) == [0, 3]
    assert {(row["field"], row["problem"], row["origin"]) for row in quarantine} == {
        ("gmcReferenceNumber", "duplicate key", extracted.origin)
    }
    assert conformed.table["gmc_reference_number"].to_pylist() == ["2345678", "3456789"]


def test_good_export_conforms_without_quarantine(tmp_path: Path) -> None:
    for name, wire in FileSource(_export(tmp_path)).extract().items():
        conformed = conform(RAW_SPECS[name], wire.table, wire.origin)
        assert conformed.quarantine.num_rows == 0, name
        assert conformed.table.num_rows == len(RECORDS[name]), name


# --- fingerprint and single read -------------------------------------------------------------


def test_fingerprint_is_stable_while_the_files_do_not_change(tmp_path: Path) -> None:
    _export(tmp_path)
    source = FileSource(tmp_path)
    first = source.fingerprint()
    assert source.fingerprint() == first
    assert FileSource(tmp_path).fingerprint() == first
    _export(tmp_path)  # rewritten with the same content
    assert FileSource(tmp_path).fingerprint() == first


def test_fingerprint_changes_when_a_file_changes(tmp_path: Path) -> None:
    _export(tmp_path)
    before = FileSource(tmp_path).fingerprint()
    _export(tmp_path, connection_logs=CONNECTION_LOGS[:1])
    assert FileSource(tmp_path).fingerprint() != before


def test_fingerprint_changes_when_content_moves_between_files(tmp_path: Path) -> None:
    _export(tmp_path)
    before = FileSource(tmp_path).fingerprint()
    doctors, trainees = tmp_path / "doctors_for_db.json", tmp_path / "trainee_info.json"
    both = doctors.read_bytes() + trainees.read_bytes()
    doctors.write_bytes(both[:10])
    trainees.write_bytes(both[10:])
    assert FileSource(tmp_path).fingerprint() != before


def test_each_file_is_read_once_for_fingerprint_and_extract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _export(tmp_path)
    reads: list[str] = []
    original = Path.read_bytes

    def counting(path: Path) -> bytes:
        reads.append(path.name)
        return original(path)

    monkeypatch.setattr(Path, "read_bytes", counting)
    source = FileSource(tmp_path)
    source.fingerprint()
    source.extract()
    source.extract()
    assert sorted(reads) == sorted(spec.file for spec in RAW_SPECS.values())


def test_fingerprint_and_extract_of_one_instance_see_the_same_bytes(tmp_path: Path) -> None:
    _export(tmp_path)
    source = FileSource(tmp_path)
    fingerprint = source.fingerprint()
    _export(tmp_path, gmc_doctors=DOCTORS[:1])
    assert source.extract()["gmc_doctors"].table.num_rows == len(DOCTORS)
    assert source.fingerprint() == fingerprint


def test_export_rejects_an_unknown_input_name(tmp_path: Path) -> None:
    wire = _wire_inputs()["gmc_doctors"]
    with pytest.raises(KeyError, match="doctors"):
        write_export({"doctors": wire}, tmp_path)
