"""The real shapes the original services send each input in, written from our canonical wire records.

A shape writer takes one input's records (dicts keyed by our wire names, `export.records`) and a
`Layout`, and returns the files to write: {path relative to the export folder: bytes}. Values a
shape has no spelling for (a fault's malformed date, an unknown enum value) are written as they
are, so a faulty export stays faulty in every shape. `SHAPES[input][shape]` is the registry.

Times: our date-times carry no zone. Where a shape needs an absolute time (Mongo's `{"$date"}`)
it is written as that wall-clock value with a `Z` (the reader takes Z as UTC and keeps the same
wall-clock value), so it reads back unchanged. Mongo keeps milliseconds: a time with finer digits
is written with all of them rather than silently rounded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from reval_assets.domain.enums import GmcOutcome, UnderNotice
from reval_assets.domain.schemas import HIDDEN_DISCREPANCIES, RAW_SPECS
from reval_assets.sources.gmc_soap import soap_response

BOM = b"\xef\xbb\xbf"
_ENTITY = "uk.nhs.hee.tis.revalidation.entity."
DOCTORS_CLASS = _ENTITY + "DoctorsForDB"
RECOMMENDATION_CLASS = _ENTITY + "Recommendation"
HIDDEN_CLASS = _ENTITY + "HiddenDiscrepancy"
CONNECTION_LOG_CLASS = "uk.nhs.hee.tis.revalidation.connection.entity.ConnectionLog"
CONNECTION_REQUEST_LOG_CLASS = "uk.nhs.hee.tis.revalidation.connection.entity.ConnectionRequestLog"
# The nightly GMC collections of the envelopes shape: every body's latest, and an older one that
# holds the doctors the latest no longer returned (disconnected).
LATEST_COLLECTION = "2026-12-01T01:59:27.54527"
OLDER_COLLECTION = "2026-11-30T01:59:31.1"
_HEX24 = re.compile(r"^[0-9a-f]{24}$")
_GMC_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_BODY_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

Records = list[dict]
Files = dict[str, bytes]


@dataclass(frozen=True)
class Layout:
    """How the files are laid out. `json_lines` None: each shape's own (mongoexport's JSON Lines for
    documents, a JSON array otherwise). An object payload (the recommendation summary) is never lines."""

    json_lines: bool | None = None
    bom: bool = False
    indent: bool = False
    list_key: str = "recommendationInfo"
    context: dict[str, Records] = field(default_factory=dict)  # every input's records, for cross-input counts


Writer = Callable[[Records, Layout], Files]


# --- encoding --------------------------------------------------------------------------------


def dumps(value: object, indent: bool) -> bytes:
    """Compact JSON, or pretty-printed as Jackson's `indent_output` does: `"name" : value`."""
    if indent:
        return json.dumps(value, indent=2, separators=(",", " : "), ensure_ascii=False).encode()
    return orjson.dumps(value)


def json_list(values: list, layout: Layout, *, lines: bool = False) -> bytes:
    """A JSON array, or JSON Lines (one value a line, each compact or pretty) when asked or by default `lines`."""
    as_lines = lines if layout.json_lines is None else layout.json_lines
    data = b"".join(dumps(value, False) + b"\n" for value in values) if as_lines else dumps(values, layout.indent)
    return BOM + data if layout.bom else data


def json_object(value: dict, layout: Layout, *, indent: bool | None = None) -> bytes:
    data = dumps(value, layout.indent if indent is None else indent)
    return BOM + data if layout.bom else data


def _one(name: str, data: bytes) -> Files:
    return {RAW_SPECS[name].file: data}


# --- value spellings ---------------------------------------------------------------------------


def iso_day(text: object) -> str | None:
    """A dd/mm/yyyy or yyyy-mm-dd text as yyyy-mm-dd; None if it is neither."""
    if not isinstance(text, str):
        return None
    if m := _GMC_DATE.match(text):
        return f"{m[3]}-{m[2]}-{m[1]}"
    return text if _ISO_DATE.match(text) else None


def mongo_date(text: object) -> object:
    """A date as Extended JSON `{"$date": "yyyy-mm-ddT00:00:00Z"}`; other values as they are."""
    day = iso_day(text)
    return {"$date": f"{day}T00:00:00Z"} if day else text


def _parsed_time(text: object) -> datetime | None:
    if not isinstance(text, str) or "T" not in text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def mongo_time(text: object, *, as_millis: bool = False) -> object:
    """A zone-less date-time as `{"$date": "...Z"}` (milliseconds, or all the digits given when finer), or
    `{"$date": {"$numberLong": "<ms>"}}` when `as_millis` and nothing finer than a millisecond is lost."""
    at = _parsed_time(text)
    if at is None or at.tzinfo is not None:
        return text
    if as_millis and at.microsecond % 1000 == 0:
        millis = int(at.replace(tzinfo=UTC).timestamp()) * 1000 + at.microsecond // 1000
        return {"$date": {"$numberLong": str(millis)}}
    spec = "milliseconds" if at.microsecond % 1000 == 0 else "microseconds"
    return {"$date": at.isoformat(timespec=spec) + "Z"}


def jackson_date(text: object) -> object:
    """A date as Jackson writes a LocalDate without JavaTimeModule's ISO setting: `[2024, 8, 7]`."""
    day = iso_day(text)
    return [int(part) for part in day.split("-")] if day else text


def as_given(value: object) -> object:
    return value


def enum_name(enum: type, label: object) -> object:
    """A label (`On Hold`) as its Java enum name (`ON_HOLD`); an unknown value as it is."""
    try:
        return enum(label).name
    except ValueError:
        return label


def object_id(text: object) -> object:
    """`{"$oid": ...}` for a 24-hex id; any other id (or None) as it is."""
    return {"$oid": text} if isinstance(text, str) and _HEX24.match(text) else text


def made_up_id(position: int) -> dict:
    """An ObjectId for a document our wire records have no id for (a log, a hidden discrepancy)."""
    return {"$oid": f"{position + 1:024x}"}


def disconnected(record: dict) -> bool:
    value = record.get("existsInGmc")
    return isinstance(value, str) and value.strip().lower() == "false"


def distinct(values: Iterable[object]) -> int:
    return len({v for v in values if v is not None})


def _canonical(name: str) -> Writer:
    """Our own spelling: the wire records as they are, a JSON array (or lines)."""

    def write(records: Records, layout: Layout) -> Files:
        return _one(name, json_list(records, layout))

    return write


# --- GMC doctors -------------------------------------------------------------------------------

GMC_DTO_FIELDS = ("gmcReferenceNumber", "doctorFirstName", "doctorLastName", "submissionDate", "dateAdded",
                  "underNotice", "sanction", "doctorStatus", "designatedBodyCode", "gmcLastUpdatedDateTime")


def gmc_dto(record: dict) -> dict:
    """A DoctorsForDbDto: no existsInGmc (a disconnected doctor keeps only its null designatedBodyCode)."""
    return {name: record.get(name) for name in GMC_DTO_FIELDS}


def _gmc_dto(records: Records, layout: Layout) -> Files:
    return _one("gmc_doctors", json_list([gmc_dto(r) for r in records], layout))


def _by_body(records: Records) -> dict[object, Records]:
    """Connected doctors grouped by designated body, bodies in sorted order (None last)."""
    groups: dict[object, Records] = {}
    for record in records:
        if not disconnected(record):
            groups.setdefault(record.get("designatedBodyCode"), []).append(record)
    return dict(sorted(groups.items(), key=lambda item: (item[0] is None, str(item[0]))))


def _envelope(body: object, requested: str, doctors: Records) -> dict:
    return {"designatedBodyCode": body, "requestDateTime": requested, "doctors": doctors}


def _gmc_envelopes(records: Records, layout: Layout) -> Files:
    """DoctorsForDbCollectedEvent envelopes, one per body at LATEST_COLLECTION, and, written last, an older
    collection of the first body holding every disconnected doctor (there under that body) and stale copies
    of two of its connected doctors (whose latest record must win)."""
    bodies = _by_body(records)
    envelopes = [_envelope(body, LATEST_COLLECTION, [gmc_dto(r) for r in group]) for body, group in bodies.items()]
    gone = [r for r in records if disconnected(r)]
    if gone:
        host = next((body for body in bodies if body is not None), None)
        if host is None:
            raise ValueError("envelopes shape: disconnected doctors need a body with connected doctors to be "
                             "left out of its latest collection")
        stale = [gmc_dto(r) | {"doctorFirstName": f"Stale {r.get('doctorFirstName')}"} for r in bodies[host][:2]]
        older = stale + [gmc_dto(r) | {"designatedBodyCode": host} for r in gone]
        envelopes.append(_envelope(host, OLDER_COLLECTION, older))
    return _one("gmc_doctors", json_list(envelopes, layout))


def _boolean(text: object) -> object:
    """existsInGmc as the JSON boolean a document holds; null (the GMC returned them) is true."""
    if text is None:
        return True
    spelled = text.strip().lower() if isinstance(text, str) else None
    return spelled == "true" if spelled in ("true", "false") else text


def gmc_document(record: dict, position: int) -> dict:
    """A DoctorsForDB document as mongoexport writes it; every other one's gmcLastUpdatedDateTime in ms."""
    updated = record.get("gmcLastUpdatedDateTime")
    day = updated[:10] if isinstance(updated, str) and _parsed_time(updated) else None
    return {
        "_id": record.get("gmcReferenceNumber"),
        "_class": DOCTORS_CLASS,
        "doctorFirstName": record.get("doctorFirstName"),
        "doctorLastName": record.get("doctorLastName"),
        "submissionDate": mongo_date(record.get("submissionDate")),
        "dateAdded": mongo_date(record.get("dateAdded")),
        "underNotice": enum_name(UnderNotice, record.get("underNotice")),
        "sanction": record.get("sanction"),
        "doctorStatus": record.get("doctorStatus"),
        "designatedBodyCode": record.get("designatedBodyCode"),
        "gmcLastUpdatedDateTime": mongo_time(updated, as_millis=position % 2 == 1),
        "existsInGmc": _boolean(record.get("existsInGmc")),
        "lastUpdatedDate": mongo_date(day),
    }


def _gmc_documents(records: Records, layout: Layout) -> Files:
    documents = [gmc_document(r, i) for i, r in enumerate(records)]
    return _one("gmc_doctors", json_list(documents, layout, lines=True))


def soap_file(body: object) -> str:
    if not isinstance(body, str) or not _BODY_FILE.match(body):
        raise ValueError(f"soap shape: designated body {body!r} cannot name a file gmc/<body>.xml")
    return f"gmc/{body}.xml"


def _gmc_soap(records: Records, layout: Layout) -> Files:
    """One saved GetDoctorsForDB response per designated body, `gmc/<body>.xml`, and no doctors_for_db.json.
    The GMC returns only connected doctors and no last-updated time: disconnected doctors (and connected ones
    with no body) cannot be written, nor gmcLastUpdatedDateTime or existsInGmc. `layout` does not apply."""
    return {soap_file(body): soap_response(group) for body, group in _by_body(records).items() if body is not None}


# --- TIS trainees --------------------------------------------------------------------------------

TIS_DTO_FIELDS = ("tcsPersonId", "gmcReferenceNumber", "doctorFirstName", "doctorLastName", "submissionDate",
                  "programmeName", "programmeMembershipType", "designatedBody", "tcsDesignatedBody",
                  "programmeOwner", "placementGrade", "programmeMembershipStartDate", "programmeMembershipEndDate",
                  "curriculumEndDate", "dataSource", "syncEnd")
TIS_DATE_FIELDS = ("submissionDate", "programmeMembershipStartDate", "programmeMembershipEndDate",
                   "curriculumEndDate")


def tis_dto(record: dict, date: Callable[[object], object]) -> dict:
    """A ConnectionInfoDto with every field (nulls too), dates spelled by `date`, dataSource TCS."""
    dto = {name: record.get(name) for name in TIS_DTO_FIELDS} | {"dataSource": "TCS", "syncEnd": None}
    return dto | {name: date(dto[name]) for name in TIS_DATE_FIELDS}


SYNC_END_MARKER = dict.fromkeys(TIS_DTO_FIELDS) | {"syncEnd": True}


def _tis(date: Callable[[object], object]) -> Writer:
    def write(records: Records, layout: Layout) -> Files:
        return _one("tis_trainees", json_list([*(tis_dto(r, date) for r in records), SYNC_END_MARKER], layout))

    return write


# --- recommendations ------------------------------------------------------------------------------


def _recommendations_canonical(records: Records, layout: Layout) -> Files:
    """Today's payload: countTotal is the number of records, the list under `layout.list_key`."""
    payload = {"countTotal": len(records), layout.list_key: records}
    return _one("recommendation_records", json_object(payload, layout))


def _recommendations_summary(records: Records, layout: Layout) -> Files:
    """The TraineeSummaryDto as the recommendation service pretty-prints it: countTotal is the number of
    doctors (the GMC input's, if written in the same export, else the recommendations' distinct gmcNumbers),
    countUnderNotice theirs under notice (Yes or On Hold), one page holding every record."""
    doctors = layout.context.get("gmc_doctors")
    if doctors is None:
        count, under = distinct(r.get("gmcNumber") for r in records), 0
    else:
        count = distinct(d.get("gmcReferenceNumber") for d in doctors)
        under = sum(1 for d in doctors if d.get("underNotice") in (UnderNotice.YES, UnderNotice.ON_HOLD))
    payload = {"countTotal": count, "countUnderNotice": under, "totalPages": 1 if records else 0,
               "totalResults": len(records), "traineeInfo": records}
    return _one("recommendation_records", json_object(payload, layout, indent=True))


def recommendation_document(record: dict) -> dict:
    """A Recommendation document as mongoexport writes it (no `_id` for a legacy record without an id)."""
    document = {"_id": object_id(record.get("id"))} if record.get("id") is not None else {}
    return document | {
        "_class": RECOMMENDATION_CLASS,
        "gmcNumber": record.get("gmcNumber"),
        "outcome": enum_name(GmcOutcome, record.get("outcome")),
        "recommendationType": record.get("recommendationType"),
        "recommendationStatus": record.get("recommendationStatus"),
        "gmcSubmissionDate": mongo_date(record.get("gmcSubmissionDate")),
        "actualSubmissionDate": mongo_date(record.get("actualSubmissionDate")),
        "gmcRevalidationId": None,
        "deferralDate": mongo_date(record.get("deferralDate")),
        "deferralReason": record.get("deferralReason"),
        "deferralSubReason": record.get("deferralSubReason"),
        "comments": [],
        "admin": record.get("admin"),
    }


def _recommendations_documents(records: Records, layout: Layout) -> Files:
    documents = [recommendation_document(r) for r in records]
    return _one("recommendation_records", json_list(documents, layout, lines=True))


def recommendation_record(record: dict) -> dict:
    """A TraineeRecommendationRecordDto: the id as recommendationId, the outcome label as gmcOutcome."""
    return {
        "gmcNumber": record.get("gmcNumber"),
        "recommendationId": record.get("id"),
        "gmcOutcome": record.get("outcome"),
        "recommendationType": record.get("recommendationType"),
        "recommendationStatus": record.get("recommendationStatus"),
        "gmcSubmissionDate": record.get("gmcSubmissionDate"),
        "actualSubmissionDate": record.get("actualSubmissionDate"),
        "gmcRevalidationId": None,
        "deferralDate": record.get("deferralDate"),
        "deferralReason": record.get("deferralReason"),
        "deferralSubReason": record.get("deferralSubReason"),
        "deferralComment": None,
        "comments": [],
        "admin": record.get("admin"),
    }


def _recommendations_records(records: Records, layout: Layout) -> Files:
    return _one("recommendation_records", json_list([recommendation_record(r) for r in records], layout))


# --- connection logs -----------------------------------------------------------------------------

_LOG_FIELDS = ("gmcId", "newDesignatedBodyCode", "previousDesignatedBodyCode", "updatedBy")
_REQUEST_FIELDS = ("reason", "requestType", "responseCode")


def connection_document(record: dict, position: int) -> dict:
    """A ConnectionRequestLog document, or a ConnectionLog one (no requestType, reason or responseCode keys)
    for a change the GMC sync wrote."""
    requested = any(record.get(name) is not None for name in _REQUEST_FIELDS)
    document = {"_id": made_up_id(position),
                "_class": CONNECTION_REQUEST_LOG_CLASS if requested else CONNECTION_LOG_CLASS}
    document |= {name: record.get(name) for name in _LOG_FIELDS}
    document["requestTime"] = mongo_time(record.get("requestTime"))
    if requested:
        document |= {"gmcClientId": None} | {name: record.get(name) for name in _REQUEST_FIELDS}
    return document


def _logs_documents(records: Records, layout: Layout) -> Files:
    documents = [connection_document(r, i) for i, r in enumerate(records)]
    return _one("connection_logs", json_list(documents, layout, lines=True))


def latest_successful(records: Records) -> Records:
    """Each doctor's latest successful log (responseCode "0" or none); of equal times the later in the list.
    A log whose time does not parse cannot be the latest and is left out."""
    best: dict[object, tuple[datetime, dict]] = {}
    for record in records:
        at = _parsed_time(record.get("requestTime"))
        if record.get("responseCode") not in (None, "0") or at is None or record.get("gmcId") is None:
            continue
        if record["gmcId"] not in best or at >= best[record["gmcId"]][0]:
            best[record["gmcId"]] = (at, record)
    return [record for _, record in best.values()]


def connection_log_dto(record: dict) -> dict:
    """A ConnectionLogDto of the HEAD resync: eventDateTime as uuuu-MM-dd'T'HH:mm:ss.SSS."""
    at = _parsed_time(record.get("requestTime"))
    when = at.isoformat(timespec="milliseconds") if at else record.get("requestTime")
    return {name: record.get(name) for name in _LOG_FIELDS} | {"eventDateTime": when}


def _logs_latest(records: Records, layout: Layout) -> Files:
    return _one("connection_logs", json_list([connection_log_dto(r) for r in latest_successful(records)], layout))


# --- hidden discrepancies -------------------------------------------------------------------------

_HIDDEN_FIELDS = ("gmcId", "currentDesignatedBodyCode", "programmeOwnerDesignatedBodyCode",
                  "hiddenForDesignatedBodyCode", "hiddenBy", "reason")


def hidden_document(record: dict, position: int) -> dict:
    document = {"_id": made_up_id(position), "_class": HIDDEN_CLASS}
    document |= {name: record.get(name) for name in _HIDDEN_FIELDS}
    return document | {"hiddenDateTime": mongo_time(record.get("hiddenDateTime")),
                       "hiddenUntilDate": mongo_date(record.get("hiddenUntilDate"))}


def _hidden_documents(records: Records, layout: Layout) -> Files:
    documents = [hidden_document(r, i) for i, r in enumerate(records)]
    return _one(HIDDEN_DISCREPANCIES.name, json_list(documents, layout, lines=True))


# --- the registry ----------------------------------------------------------------------------------

SHAPES: dict[str, dict[str, Writer]] = {
    "gmc_doctors": {"canonical": _canonical("gmc_doctors"), "dto": _gmc_dto, "envelopes": _gmc_envelopes,
                    "documents": _gmc_documents, "soap": _gmc_soap},
    "tis_trainees": {"canonical": _canonical("tis_trainees"), "dto": _tis(as_given),
                     "jackson": _tis(jackson_date)},
    "recommendation_records": {"canonical": _recommendations_canonical, "summary": _recommendations_summary,
                               "documents": _recommendations_documents, "records": _recommendations_records},
    "connection_logs": {"canonical": _canonical("connection_logs"), "documents": _logs_documents,
                        "latest": _logs_latest},
    HIDDEN_DISCREPANCIES.name: {"canonical": _canonical(HIDDEN_DISCREPANCIES.name), "documents": _hidden_documents},
}


# One real shape per input, as the original services hand them over: what `reval sample-export --real` writes.
REAL_SHAPES: dict[str, str] = {"gmc_doctors": "envelopes", "tis_trainees": "jackson",
                               "recommendation_records": "summary", "connection_logs": "documents",
                               HIDDEN_DISCREPANCIES.name: "documents"}


def writer(name: str, shape: str) -> Writer:
    """The writer of input `name` in `shape`; a KeyError naming the shapes known otherwise."""
    shapes = SHAPES.get(name)
    if shapes is None:
        raise KeyError(f"unknown raw input {name!r}; expected one of {', '.join(SHAPES)}")
    if shape not in shapes:
        raise KeyError(f"unknown shape {shape!r} of {name}; expected one of {', '.join(shapes)}")
    return shapes[shape]
