"""The real shapes the original services send: each writer against the facts, the SOAP response both ways,
and one population written canonical and in every real shape, read back by `FileSource`, giving the same
entities."""

from __future__ import annotations

import inspect
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from reval_assets.domain.conform import conform
from reval_assets.domain.schemas import ENTITY_SPECS, HIDDEN_DISCREPANCIES, RAW_SPECS, RECORD_COLUMN
from reval_assets.sources import shapes
from reval_assets.sources.base import SourceError, WireInput
from reval_assets.sources.export import records, write_export
from reval_assets.sources.files import FileSource
from reval_assets.sources.gmc_soap import GMC_NS, SOAP_NS, read_soap_response, soap_response
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.transforms import build_entities

DOCTORS = [
    {"gmcReferenceNumber": "1234567", "doctorFirstName": "Aisha", "doctorLastName": "Patel",
     "submissionDate": "14/03/2024", "dateAdded": "01/09/2019", "underNotice": "Yes", "sanction": "No",
     "designatedBodyCode": "1-AAA", "gmcLastUpdatedDateTime": "2023-12-01T09:30:00", "existsInGmc": "true"},
    {"gmcReferenceNumber": "2345678", "doctorFirstName": "Tom", "doctorLastName": "O'Brien",
     "submissionDate": "30/11/2025", "dateAdded": "15/02/2021", "underNotice": "On Hold", "sanction": "",
     "designatedBodyCode": "1-BBB", "gmcLastUpdatedDateTime": "2023-11-20T16:05:12.250", "existsInGmc": None},
    {"gmcReferenceNumber": "3456789", "doctorFirstName": "Gone", "doctorLastName": "Away",
     "submissionDate": "01/01/2026", "dateAdded": "02/02/2020", "underNotice": "No", "sanction": None,
     "designatedBodyCode": None, "gmcLastUpdatedDateTime": "2023-10-01T00:00:00", "existsInGmc": "false"},
    {"gmcReferenceNumber": "4567890", "doctorFirstName": "Ann", "doctorLastName": "Lee",
     "submissionDate": "05/05/2026", "dateAdded": "03/03/2018", "underNotice": "No", "sanction": None,
     "designatedBodyCode": "1-AAA", "gmcLastUpdatedDateTime": "2023-09-09T09:09:09.123456", "existsInGmc": "true"},
]
TRAINEES = [
    {"tcsPersonId": "101", "gmcReferenceNumber": "1234567", "doctorFirstName": "Aisha", "doctorLastName": "Patel",
     "programmeName": "General Practice", "programmeMembershipType": "SUBSTANTIVE", "programmeOwner": "HEE London",
     "tcsDesignatedBody": "1-AAA", "placementGrade": "ST1", "programmeMembershipStartDate": "2024-08-07",
     "programmeMembershipEndDate": "2027-08-06", "curriculumEndDate": None},
]
RECOMMENDATIONS = [
    {"id": "5f1b2c3d4e5f60718293a4b5", "gmcNumber": "1234567", "recommendationType": "DEFER",
     "recommendationStatus": "SUBMITTED_TO_GMC", "outcome": "Under Review", "gmcSubmissionDate": "2024-03-14",
     "actualSubmissionDate": "2024-03-01", "deferralDate": "2025-03-14", "deferralReason": "1",
     "deferralSubReason": "4", "admin": "admin@nhs.net"},
    {"id": "5f1b2c3d4e5f60718293a4b6", "gmcNumber": "1234567", "recommendationType": "REVALIDATE",
     "recommendationStatus": "COMPLETED", "outcome": "Approved", "gmcSubmissionDate": "2020-03-14",
     "actualSubmissionDate": None, "deferralDate": None, "deferralReason": None, "deferralSubReason": None,
     "admin": None},
    {"id": "5f1b2c3d4e5f60718293a4b7", "gmcNumber": "9999999", "recommendationType": "NON_ENGAGEMENT",
     "recommendationStatus": "DRAFT", "outcome": "Rejected", "gmcSubmissionDate": None,
     "actualSubmissionDate": None, "deferralDate": None, "deferralReason": None, "deferralSubReason": None,
     "admin": None},
]
LOGS = [
    {"gmcId": "1234567", "newDesignatedBodyCode": "1-AAA", "previousDesignatedBodyCode": None, "updatedBy": "ann",
     "requestTime": "2025-04-29T00:00:54.956", "reason": "1", "requestType": "ADD", "responseCode": "0"},
    {"gmcId": "1234567", "newDesignatedBodyCode": None, "previousDesignatedBodyCode": "1-AAA", "updatedBy": "bob",
     "requestTime": "2025-05-01T10:00:00", "reason": "2", "requestType": "REMOVE", "responseCode": "98"},
    {"gmcId": "1234567", "newDesignatedBodyCode": "1-BBB", "previousDesignatedBodyCode": "1-AAA",
     "updatedBy": "GMC sync", "requestTime": "2025-04-30T02:00:00", "reason": None, "requestType": None,
     "responseCode": None},
    {"gmcId": "2345678", "newDesignatedBodyCode": "1-BBB", "previousDesignatedBodyCode": None, "updatedBy": "cy",
     "requestTime": "2024-01-02T03:04:05", "reason": "1", "requestType": "ADD", "responseCode": "0"},
]
HIDDEN = [
    {"gmcId": "1234567", "currentDesignatedBodyCode": "1-AAA", "programmeOwnerDesignatedBodyCode": "1-BBB",
     "hiddenForDesignatedBodyCode": "1-AAA", "hiddenBy": "ann", "reason": "Awaiting GMC transfer",
     "hiddenDateTime": "2026-11-01T12:00:00", "hiddenUntilDate": "2026-12-31"},
]
ROWS = {"gmc_doctors": DOCTORS, "tis_trainees": TRAINEES, "recommendation_records": RECOMMENDATIONS,
        "connection_logs": LOGS, HIDDEN_DISCREPANCIES.name: HIDDEN}


def _wire(name: str, rows: list[dict]) -> WireInput:
    names = [column.wire for column in RAW_SPECS[name].columns]
    columns = {wire: pa.array([row.get(wire) for row in rows], pa.string()) for wire in names}
    columns[RECORD_COLUMN] = pa.array(range(len(rows)), pa.int64())
    return WireInput(pa.table(columns), "test")


def _inputs(*names: str) -> dict[str, WireInput]:
    return {name: _wire(name, ROWS[name]) for name in names or ROWS}


def _export(tmp_path: Path, names: tuple[str, ...] = (), **kwargs: object) -> Path:
    return write_export(_inputs(*names), tmp_path / "export", **kwargs)


def _lines(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- (a) each writer against the facts ----------------------------------------------------------


def test_default_export_is_unchanged_canonical_json(tmp_path: Path) -> None:
    folder = _export(tmp_path)
    assert json.loads((folder / "doctors_for_db.json").read_bytes()) == records(_wire("gmc_doctors", DOCTORS).table)
    payload = json.loads((folder / "recommendations.json").read_bytes())
    assert payload["countTotal"] == 3 and len(payload["recommendationInfo"]) == 3
    assert json.loads((folder / "trainee_info.json").read_bytes())[0]["tcsPersonId"] == 101


def test_unknown_shape_or_input_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="unknown shape 'xml' of tis_trainees; expected one of canonical, dto"):
        _export(tmp_path, ("tis_trainees",), shapes={"tis_trainees": "xml"})
    with pytest.raises(KeyError, match="not written: connection_logs"):
        _export(tmp_path, ("tis_trainees",), shapes={"connection_logs": "latest"})


def test_json_lines_and_bom_options(tmp_path: Path) -> None:
    folder = _export(tmp_path, ("gmc_doctors", "connection_logs"), json_lines=True, bom=True,
                     shapes={"connection_logs": "latest"})
    data = (folder / "doctors_for_db.json").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert [json.loads(line) for line in data[3:].splitlines()] == records(_wire("gmc_doctors", DOCTORS).table)
    # json_lines=False turns even mongoexport documents into a JSON array.
    folder = _export(tmp_path, ("gmc_doctors",), json_lines=False, indent=True, shapes={"gmc_doctors": "documents"})
    text = (folder / "doctors_for_db.json").read_text()
    assert text.startswith("[") and '"_id" : "1234567"' in text


def test_gmc_dto_has_the_dto_fields_and_no_exists_in_gmc(tmp_path: Path) -> None:
    folder = _export(tmp_path, ("gmc_doctors",), shapes={"gmc_doctors": "dto"})
    dtos = json.loads((folder / "doctors_for_db.json").read_bytes())
    assert [list(d) for d in dtos] == [list(shapes.GMC_DTO_FIELDS)] * 4
    assert dtos[0]["submissionDate"] == "14/03/2024" and dtos[1]["underNotice"] == "On Hold"
    assert dtos[2]["designatedBodyCode"] is None


def test_gmc_envelopes_put_the_disconnected_in_an_older_collection(tmp_path: Path) -> None:
    folder = _export(tmp_path, ("gmc_doctors",), shapes={"gmc_doctors": "envelopes"})
    envelopes = json.loads((folder / "doctors_for_db.json").read_bytes())
    latest = [e for e in envelopes if e["requestDateTime"] == shapes.LATEST_COLLECTION]
    older = [e for e in envelopes if e["requestDateTime"] != shapes.LATEST_COLLECTION]
    assert sorted(e["designatedBodyCode"] for e in latest) == ["1-AAA", "1-BBB"]
    assert {d["gmcReferenceNumber"] for e in latest for d in e["doctors"]} == {"1234567", "2345678", "4567890"}
    assert len(older) == 1 and older[0]["designatedBodyCode"] == "1-AAA"
    assert older[0]["requestDateTime"] < shapes.LATEST_COLLECTION  # ISO text orders as time
    stale = {d["gmcReferenceNumber"]: d for d in older[0]["doctors"]}
    assert stale["3456789"]["designatedBodyCode"] == "1-AAA"  # where the GMC last had them
    assert stale["1234567"]["doctorFirstName"] == "Stale Aisha"  # the latest collection's record must win
    assert all(set(d) == set(shapes.GMC_DTO_FIELDS) for e in envelopes for d in e["doctors"])


def test_gmc_documents_are_mongoexport_doctors_for_db(tmp_path: Path) -> None:
    folder = _export(tmp_path, ("gmc_doctors",), shapes={"gmc_doctors": "documents"})
    docs = _lines(folder / "doctors_for_db.json")
    assert [d["_id"] for d in docs] == ["1234567", "2345678", "3456789", "4567890"]
    assert all("gmcReferenceNumber" not in d and d["_class"] == shapes.DOCTORS_CLASS for d in docs)
    assert docs[0]["submissionDate"] == {"$date": "2024-03-14T00:00:00Z"}
    assert [d["underNotice"] for d in docs] == ["YES", "ON_HOLD", "NO", "NO"]
    assert [d["existsInGmc"] for d in docs] == [True, True, False, True]
    assert docs[2]["designatedBodyCode"] is None
    assert docs[0]["gmcLastUpdatedDateTime"] == {"$date": "2023-12-01T09:30:00.000Z"}
    millis = int(datetime(2023, 11, 20, 16, 5, 12, 250000, tzinfo=UTC).timestamp() * 1000)
    assert docs[1]["gmcLastUpdatedDateTime"] == {"$date": {"$numberLong": str(millis)}}
    # Finer than Mongo's milliseconds: kept whole rather than rounded.
    assert docs[3]["gmcLastUpdatedDateTime"] == {"$date": "2023-09-09T09:09:09.123456Z"}
    assert docs[0]["lastUpdatedDate"] == {"$date": "2023-12-01T00:00:00Z"}


def test_gmc_soap_writes_one_response_per_body_and_no_json(tmp_path: Path) -> None:
    folder = _export(tmp_path, ("gmc_doctors",), shapes={"gmc_doctors": "soap"})
    assert not (folder / "doctors_for_db.json").exists()
    assert sorted(p.name for p in (folder / "gmc").iterdir()) == ["1-AAA.xml", "1-BBB.xml"]
    read = read_soap_response((folder / "gmc" / "1-AAA.xml").read_bytes(), "1-AAA", "1-AAA.xml")
    assert [d["gmcReferenceNumber"] for d in read] == ["1234567", "4567890"]  # the disconnected are not there


def test_tis_dto_writes_every_field_and_ends_with_the_sync_end_marker(tmp_path: Path) -> None:
    folder = _export(tmp_path, ("tis_trainees",), shapes={"tis_trainees": "dto"})
    dtos = json.loads((folder / "trainee_info.json").read_bytes())
    assert [list(d) for d in dtos] == [list(shapes.TIS_DTO_FIELDS)] * 2
    trainee, marker = dtos
    assert trainee["tcsPersonId"] == 101 and trainee["dataSource"] == "TCS" and trainee["syncEnd"] is None
    assert trainee["curriculumEndDate"] is None and trainee["designatedBody"] is None
    assert trainee["programmeMembershipStartDate"] == "2024-08-07"
    assert marker["syncEnd"] is True and all(v is None for k, v in marker.items() if k != "syncEnd")


def test_tis_jackson_writes_local_dates_as_arrays(tmp_path: Path) -> None:
    folder = _export(tmp_path, ("tis_trainees",), shapes={"tis_trainees": "jackson"}, json_lines=True)
    trainee, marker = _lines(folder / "trainee_info.json")
    assert trainee["programmeMembershipStartDate"] == [2024, 8, 7]
    assert trainee["programmeMembershipEndDate"] == [2027, 8, 6] and trainee["curriculumEndDate"] is None
    assert marker["syncEnd"] is True


def test_recommendation_summary_counts_doctors_and_is_pretty_printed(tmp_path: Path) -> None:
    folder = _export(tmp_path, ("gmc_doctors", "recommendation_records"),
                     shapes={"recommendation_records": "summary"})
    text = (folder / "recommendations.json").read_text()
    assert '"traineeInfo" : [' in text and '"countTotal" : 4' in text
    payload = json.loads(text)
    assert payload["countUnderNotice"] == 2  # Yes and On Hold
    assert (payload["totalPages"], payload["totalResults"]) == (1, 3)
    assert payload["traineeInfo"][0]["gmcSubmissionDate"] == "2024-03-14"
    # Without the GMC input: the distinct doctors of the recommendations.
    folder = _export(tmp_path / "alone", ("recommendation_records",), shapes={"recommendation_records": "summary"})
    assert json.loads((folder / "recommendations.json").read_bytes())["countTotal"] == 2


def test_recommendation_documents_are_mongoexport_recommendations(tmp_path: Path) -> None:
    folder = _export(tmp_path, ("recommendation_records",), shapes={"recommendation_records": "documents"})
    docs = _lines(folder / "recommendations.json")
    assert docs[0]["_id"] == {"$oid": "5f1b2c3d4e5f60718293a4b5"} and "id" not in docs[0]
    assert docs[0]["_class"] == shapes.RECOMMENDATION_CLASS
    assert [d["outcome"] for d in docs] == ["UNDER_REVIEW", "APPROVED", "REJECTED"]
    assert docs[0]["gmcSubmissionDate"] == {"$date": "2024-03-14T00:00:00Z"} and docs[1]["deferralDate"] is None
    assert docs[0]["comments"] == [] and docs[0]["deferralReason"] == "1"


def test_recommendation_records_are_trainee_recommendation_record_dtos(tmp_path: Path) -> None:
    folder = _export(tmp_path, ("recommendation_records",), shapes={"recommendation_records": "records"})
    dtos = json.loads((folder / "recommendations.json").read_bytes())
    assert isinstance(dtos, list) and dtos[0]["recommendationId"] == "5f1b2c3d4e5f60718293a4b5"
    assert [d["gmcOutcome"] for d in dtos] == ["Under Review", "Approved", "Rejected"]
    assert "id" not in dtos[0] and "outcome" not in dtos[0] and dtos[0]["deferralComment"] is None


def test_connection_log_documents(tmp_path: Path) -> None:
    folder = _export(tmp_path, ("connection_logs",), shapes={"connection_logs": "documents"})
    docs = _lines(folder / "connection_logs.json")
    assert all(set(d["_id"]) == {"$oid"} and re.fullmatch(r"[0-9a-f]{24}", d["_id"]["$oid"]) for d in docs)
    assert len({d["_id"]["$oid"] for d in docs}) == 4
    assert docs[0]["requestTime"] == {"$date": "2025-04-29T00:00:54.956Z"}
    assert docs[0]["_class"] == shapes.CONNECTION_REQUEST_LOG_CLASS and docs[0]["requestType"] == "ADD"
    gmc = docs[2]  # the GMC sync's change: a ConnectionLog, without the request's fields
    assert gmc["_class"] == shapes.CONNECTION_LOG_CLASS
    assert not {"requestType", "reason", "responseCode"} & set(gmc)


def test_connection_logs_latest_keeps_each_doctors_latest_successful_change(tmp_path: Path) -> None:
    folder = _export(tmp_path, ("connection_logs",), shapes={"connection_logs": "latest"})
    dtos = json.loads((folder / "connection_logs.json").read_bytes())
    # 1234567's refused REMOVE of 1 May changed nothing: their latest successful change is the GMC sync's.
    assert dtos == [
        {"gmcId": "1234567", "newDesignatedBodyCode": "1-BBB", "previousDesignatedBodyCode": "1-AAA",
         "updatedBy": "GMC sync", "eventDateTime": "2025-04-30T02:00:00.000"},
        {"gmcId": "2345678", "newDesignatedBodyCode": "1-BBB", "previousDesignatedBodyCode": None,
         "updatedBy": "cy", "eventDateTime": "2024-01-02T03:04:05.000"},
    ]


def test_hidden_discrepancy_documents(tmp_path: Path) -> None:
    folder = _export(tmp_path, (HIDDEN_DISCREPANCIES.name,), shapes={HIDDEN_DISCREPANCIES.name: "documents"})
    (doc,) = _lines(folder / "hidden_discrepancies.json")
    assert set(doc["_id"]) == {"$oid"} and doc["_class"] == shapes.HIDDEN_CLASS
    assert doc["hiddenDateTime"] == {"$date": "2026-11-01T12:00:00.000Z"}
    assert doc["hiddenUntilDate"] == {"$date": "2026-12-31T00:00:00Z"}
    assert doc["gmcId"] == "1234567" and doc["hiddenForDesignatedBodyCode"] == "1-AAA"


def test_values_without_a_real_spelling_are_written_as_they_are(tmp_path: Path) -> None:
    faulty = [DOCTORS[0] | {"submissionDate": "31/02/2024x", "underNotice": "Maybe"}]
    folder = write_export({"gmc_doctors": _wire("gmc_doctors", faulty)}, tmp_path, shapes={"gmc_doctors": "documents"})
    (doc,) = _lines(folder / "doctors_for_db.json")
    assert doc["submissionDate"] == "31/02/2024x" and doc["underNotice"] == "Maybe"


# --- (b) the SOAP response ------------------------------------------------------------------------


def test_soap_round_trip() -> None:
    connected = [d for d in DOCTORS if d["designatedBodyCode"] == "1-AAA"]
    data = soap_response(connected)
    assert data.startswith(b"<?xml") and GMC_NS.encode() in data and SOAP_NS.encode() in data
    read = read_soap_response(data, "1-AAA", "gmc/1-AAA.xml")
    kept = ("gmcReferenceNumber", "doctorFirstName", "doctorLastName", "submissionDate", "dateAdded", "underNotice",
            "sanction", "designatedBodyCode")
    assert read == [{name: d[name] for name in kept} for d in connected]
    assert read_soap_response(soap_response([]), "1-AAA", "f") == []


def test_soap_element_order_and_empty_and_absent_values() -> None:
    data = soap_response([{"gmcReferenceNumber": "1234567", "sanction": "", "doctorStatus": "Licensed"}])
    assert b"<GMCReferenceNumber>1234567</GMCReferenceNumber><DoctorStatus>Licensed</DoctorStatus>" in data
    (read,) = read_soap_response(data, "1-B", "f")
    assert read["sanction"] == "" and read["doctorFirstName"] is None and "doctorStatus" not in read


def test_soap_return_code_other_than_zero_names_body_and_code() -> None:
    with pytest.raises(SourceError, match=r"designated body 1-AAA: ReturnCode '20'.*file gmc/1-AAA\.xml"):
        read_soap_response(soap_response(DOCTORS[:1], return_code="20"), "1-AAA", "gmc/1-AAA.xml")


_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
<!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
<!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
<!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
<!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<GetDoctorsForDBResponse xmlns="https://webcache.gmc-uk.org/GMCWebServices/"><GetDoctorsForDBResult><Doctors>
<GetDoctorsForDBResponse_Doctor><GMCReferenceNumber>1234567</GMCReferenceNumber>
<DoctorFirstName>&lol9;</DoctorFirstName></GetDoctorsForDBResponse_Doctor></Doctors>
<ReturnCode>0</ReturnCode></GetDoctorsForDBResult></GetDoctorsForDBResponse></soap:Body></soap:Envelope>"""


def test_billion_laughs_is_refused_not_expanded() -> None:
    with pytest.raises(SourceError, match=r"document type declaration.*file gmc/1-AAA\.xml"):
        read_soap_response(_LAUGHS, "1-AAA", "gmc/1-AAA.xml")


def test_a_small_entity_payload_is_refused_too() -> None:
    small = re.sub(rb"<!ENTITY lol[3-9].*?>\n?", b"", _LAUGHS).replace(b"&lol9;", b"&lol2;")
    with pytest.raises(SourceError, match="document type declaration"):
        read_soap_response(small, "1-AAA", "f.xml")


def test_external_entity_is_refused() -> None:
    xxe = _LAUGHS.split(b"<!DOCTYPE")[0] + b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>' + \
        _LAUGHS.split(b"]>", 1)[1].replace(b"&lol9;", b"&e;")
    with pytest.raises(SourceError, match="document type declaration"):
        read_soap_response(xxe, "1-AAA", "f.xml")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<soap:Envelope", "invalid XML"),
        (b"{}", "invalid XML"),
        (b"<html><body/></html>", "not a SOAP 1.1 envelope: the root element is html"),
        (f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Body><Other/></s:Body></s:Envelope>'.encode(),
         "no GetDoctorsForDBResponse element in Body"),
        (f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Body><GetDoctorsForDBResponse xmlns="urn:other">'
         f"<GetDoctorsForDBResult><ReturnCode>0</ReturnCode></GetDoctorsForDBResult></GetDoctorsForDBResponse>"
         f"</s:Body></s:Envelope>".encode(), "no GetDoctorsForDBResponse element"),
        (f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Body><s:Fault><faultstring>Server busy</faultstring></s:Fault>'
         f"</s:Body></s:Envelope>".encode(), "SOAP fault: Server busy"),
    ],
)
def test_xml_that_is_not_a_get_doctors_for_db_response_names_the_file(data: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=rf"{re.escape(message)}.*\(file gmc/X\.xml\)"):
        read_soap_response(data, "X", "gmc/X.xml")


def test_a_response_with_unqualified_elements_is_read() -> None:
    """Decision: a saved copy whose default namespace was stripped reads the same (the envelope stays SOAP)."""
    data = soap_response(DOCTORS[:1]).replace(f' xmlns="{GMC_NS}"'.encode(), b"")
    assert GMC_NS.encode() not in data
    assert read_soap_response(data, "1-AAA", "f")[0]["doctorLastName"] == "Patel"


# --- (c) one population, every shape, the same entities -------------------------------------------

CANONICAL = dict.fromkeys(RAW_SPECS, "canonical")
# Every real shape of every input, in four exports (one per real GMC shape), with layout variations.
CASES: dict[str, tuple[dict[str, str], dict[str, object]]] = {
    "dto": ({"gmc_doctors": "dto", "tis_trainees": "dto", "recommendation_records": "summary",
             "connection_logs": "documents", HIDDEN_DISCREPANCIES.name: "documents"},
            {"json_lines": False, "bom": True, "indent": True}),
    "envelopes": ({"gmc_doctors": "envelopes", "tis_trainees": "jackson", "recommendation_records": "documents",
                   "connection_logs": "latest", HIDDEN_DISCREPANCIES.name: "canonical"}, {}),
    "documents": ({"gmc_doctors": "documents", "tis_trainees": "dto", "recommendation_records": "records",
                   "connection_logs": "latest", HIDDEN_DISCREPANCIES.name: "documents"},
                  {"json_lines": True, "bom": True}),
    "soap": ({"gmc_doctors": "soap", "tis_trainees": "jackson", "recommendation_records": "summary",
              "connection_logs": "documents", HIDDEN_DISCREPANCIES.name: "documents"}, {"indent": True}),
}


def _hidden_rows(doctors: list[dict]) -> list[dict]:
    """A few hidden discrepancies of the population's doctors (300 doctors may give the generator none)."""
    connected = [d for d in doctors if d.get("designatedBodyCode")][:5]
    return [{"gmcId": d["gmcReferenceNumber"], "currentDesignatedBodyCode": d["designatedBodyCode"],
             "programmeOwnerDesignatedBodyCode": "1-1RSSQ05", "hiddenForDesignatedBodyCode": d["designatedBodyCode"],
             "hiddenBy": "admin@nhs.net", "reason": "Awaiting GMC transfer",
             "hiddenDateTime": f"2026-11-0{i + 1}T12:34:5{i}", "hiddenUntilDate": f"2027-01-0{i + 1}"}
            for i, d in enumerate(connected)]


@pytest.fixture(scope="module")
def population() -> dict[str, WireInput]:
    extracted = SyntheticSource(doctors=300, seed=3).extract()
    hidden = extracted[HIDDEN_DISCREPANCIES.name]
    if hidden.table.num_rows == 0:
        extracted[HIDDEN_DISCREPANCIES.name] = _replace(hidden, _hidden_rows(records(extracted["gmc_doctors"].table)))
    return extracted


def _replace(wire: WireInput, rows: list[dict]) -> WireInput:
    names = [n for n in wire.table.column_names if n != RECORD_COLUMN]
    columns = {n: pa.array([None if r.get(n) is None else str(r[n]) for r in rows], pa.string()) for n in names}
    columns[RECORD_COLUMN] = pa.array(range(len(rows)), pa.int64())
    return WireInput(pa.table(columns), wire.origin)


SOAP_SAVED_AT = "2026-12-01T02:00:00"


def _saved_at(folder: Path, when: str = SOAP_SAVED_AT) -> Path:
    """The export's SOAP responses as saved at `when` (UTC), the time their doctors are read as last confirmed."""
    stamp = datetime.fromisoformat(when).replace(tzinfo=UTC).timestamp()
    for path in (folder / "gmc").glob("*.xml"):
        os.utime(path, (stamp, stamp))
    return folder


def _twin(population: dict[str, WireInput], gmc_shape: str) -> dict[str, WireInput]:
    """The population as the GMC shape can carry it: what both exports of a case are written from."""
    doctors = records(population["gmc_doctors"].table)
    if gmc_shape == "dto":  # a DoctorsForDbDto has no existsInGmc: a disconnected doctor keeps its null body only
        doctors = [d | {"existsInGmc": None} for d in doctors]
    elif gmc_shape == "documents":  # a document always states existsInGmc: absent (returned by the GMC) is true
        doctors = [d | {"existsInGmc": d.get("existsInGmc") or "true"} for d in doctors]
    elif gmc_shape == "soap":
        # The GMC returns only connected doctors (with a body: the request's), and no last-updated time: they
        # were confirmed when the response was saved (`_saved_at`).
        doctors = [d | {"gmcLastUpdatedDateTime": SOAP_SAVED_AT} for d in doctors
                   if not shapes.disconnected(d) and d.get("designatedBodyCode") is not None]
    return population | {"gmc_doctors": _replace(population["gmc_doctors"], doctors)}


def _source(folder: Path) -> FileSource:
    if "designated_bodies" in inspect.signature(FileSource).parameters and (folder / "gmc").is_dir():
        return FileSource(folder, designated_bodies=sorted(p.stem for p in (folder / "gmc").glob("*.xml")))
    return FileSource(folder)


def _sync(folder: Path) -> dict[str, pa.Table]:
    """FileSource → conform → build_entities, without Dagster; plus the number of quarantined records of each
    input (a shape read right quarantines nothing the canonical read does not)."""
    extracted = _source(folder).extract()
    assert all(not wire.problems for wire in extracted.values()), {n: w.problems for n, w in extracted.items()}
    conformed = {name: conform(RAW_SPECS[name], wire.table, wire.origin) for name, wire in extracted.items()}
    entities = build_entities({name: c.table for name, c in conformed.items()})
    quarantined = {name: [c.quarantined_records] for name, c in sorted(conformed.items())}
    return entities | {"quarantined": pa.table(quarantined)}


def _sorted(table: pa.Table, name: str) -> pa.Table:
    if name == "quarantined":
        return table
    return table.sort_by([(k, "ascending") for k in ENTITY_SPECS[name].key])


def _differences(expected: pa.Table, got: pa.Table) -> str:
    if expected.schema != got.schema:
        return f"schemas differ:\n{expected.schema}\n---\n{got.schema}"
    if expected.num_rows != got.num_rows:
        return f"{expected.num_rows} rows expected, {got.num_rows} read"
    for name in expected.column_names:
        a, b = expected[name].to_pylist(), got[name].to_pylist()
        if a != b:
            at = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
            return f"column {name} differs, first at row {at}: {a[at]!r} expected, {b[at]!r} read"
    return ""


def test_the_population_has_what_the_shapes_must_carry(population: dict[str, WireInput]) -> None:
    doctors = records(population["gmc_doctors"].table)
    assert any(shapes.disconnected(d) for d in doctors), "no disconnected doctor: the envelopes case tests less"
    assert population[HIDDEN_DISCREPANCIES.name].table.num_rows > 0
    logs = records(population["connection_logs"].table)
    assert any(log.get("requestType") is None for log in logs) and any(log.get("responseCode") not in (None, "0")
                                                                       for log in logs)


@pytest.mark.parametrize("case", list(CASES))
def test_every_real_shape_syncs_to_the_same_entities_as_canonical(case: str, population: dict[str, WireInput],
                                                                   tmp_path: Path) -> None:
    chosen, layout = CASES[case]
    twin = _twin(population, chosen["gmc_doctors"])
    expected = _sync(write_export(twin, tmp_path / "canonical", shapes=CANONICAL))
    got = _sync(_saved_at(write_export(twin, tmp_path / case, shapes=chosen, **layout)))
    assert expected["doctors"].num_rows > 0
    # No column is excluded: what a shape cannot carry was taken out of the twin both exports are written from.
    problems = {name: _differences(_sorted(expected[name], name), _sorted(got[name], name)) for name in expected}
    assert not any(problems.values()), {name: text for name, text in problems.items() if text}


def test_the_cases_cover_every_shape() -> None:
    covered = {(name, shape) for chosen, _ in CASES.values() for name, shape in chosen.items()}
    covered |= {(name, "canonical") for name in RAW_SPECS}
    assert covered == {(name, shape) for name, known in shapes.SHAPES.items() for shape in known}
