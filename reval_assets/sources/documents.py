"""What each export file holds, found from its content: the records of each input and how they were read.

Each reader takes a file's decoded content (`json_documents.decode`) and gives its records (dicts keyed
by the services' own field names) and a line for people: "read as: 14 DoctorsForDbCollectedEvent
envelopes ...". The recommendation payload's list is looked up in the *parsed* object, never by
rewriting the text: the Dec 2023 incident was a regex on `"traineeInfo":` that stopped matching once
the JSON was pretty-printed as `"traineeInfo" : [`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from reval_assets.domain.schemas import RECOMMENDATION_LIST_KEYS
from reval_assets.sources.base import SourceError
from reval_assets.sources.json_documents import json_type, wire_text

SUMMARY_PAGE_SIZE = 20  # items per page of the recommendation service's TraineeSummaryDto


@dataclass(frozen=True)
class Read:
    """An input's records and how they were read."""

    records: list
    read_as: str
    problems: tuple[str, ...] = field(default=())  # the input could not be read as a whole


def _key_list(keys: Iterable[object], sep: str = ", ") -> str:
    return sep.join(f"'{k}'" for k in keys) or "none"


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def as_documents(content: object, file: str) -> list:
    """A file's documents: an array's items, or a lone object as one document."""
    if isinstance(content, list):
        return content
    if isinstance(content, dict):
        wrapped = [key for key, value in content.items() if isinstance(value, list) and value
                   and isinstance(value[0], dict)]
        if wrapped:  # a wrapper around the records, not a record: never guess which list is meant
            raise SourceError(f"expected a JSON array of records, found object holding a list under "
                              f"{_key_list(wrapped, ' and ')}", file=file)
        return [content]
    raise SourceError(f"expected JSON records (an array, or one document per line), found {json_type(content)}",
                      file=file)


class MissingListKeyError(SourceError):
    """The recommendation payload holds no list under a known key (e.g. it was renamed)."""


# --- GMC doctors ------------------------------------------------------------------------------------------


def gmc_doctors(content: object, layout: str, file: str) -> Read:
    """DoctorsForDbDto records, DoctorsForDB documents, or DoctorsForDbCollectedEvent envelopes (or a mix)."""
    lone_envelope = isinstance(content, dict) and isinstance(content.get("doctors"), list)
    documents = [content] if lone_envelope else as_documents(content, file)
    envelopes = [d for d in documents if type(d) is dict and isinstance(d.get("doctors"), list)]
    others = [d for d in documents if not (type(d) is dict and isinstance(d.get("doctors"), list))]
    parts: list[str] = []
    records: list = []
    if envelopes:
        flat, said = flatten_envelopes(envelopes, file)
        records += flat
        parts.append(said)
    if others or not envelopes:
        stored = sum(1 for d in others if type(d) is dict and "_id" in d)
        if stored:
            parts.append(_n(stored, "DoctorsForDB document"))
        if len(others) - stored or not parts:
            parts.append(_n(len(others) - stored, "DoctorsForDbDto record"))
        records += others
    return Read(records, f"{' and '.join(parts)} ({layout})")


def flatten_envelopes(envelopes: list[dict], file: str) -> tuple[list[dict], str]:
    """The doctors of nightly-sync envelopes `{designatedBodyCode, requestDateTime, doctors[]}`, as the original
    keeps them: each doctor as of the latest envelope holding them, and a doctor whose body collected again
    later without them disconnected (`existsInGmc` false, no body), history kept."""
    latest: dict[str, str] = {}
    held: dict[object, tuple[str, list[dict]]] = {}  # GMC number -> (request time, its records at that time)
    unnumbered: list[dict] = []
    superseded = 0
    for at, envelope in enumerate(envelopes):
        body, request = wire_text(envelope.get("designatedBodyCode")), wire_text(envelope.get("requestDateTime"))
        if not body or not request:
            raise SourceError("a DoctorsForDbCollectedEvent envelope needs designatedBodyCode and requestDateTime",
                              file=file, record=at)
        latest[body] = max(latest.get(body, request), request)
        for doctor in envelope["doctors"]:
            if type(doctor) is not dict:
                raise SourceError(f"a doctor is not a JSON object (found {json_type(doctor)})", file=file, record=at)
            record = {**doctor, "_body": body, "_request": request}
            record["designatedBodyCode"] = doctor.get("designatedBodyCode") or body
            if record.get("gmcLastUpdatedDateTime") is None:  # refreshed by this collection
                record["gmcLastUpdatedDateTime"] = envelope.get("requestDateTime")
            number = wire_text(doctor.get("gmcReferenceNumber"))
            if not number:
                unnumbered.append(record)
                continue
            seen = held.get(number)
            if seen is None or seen[0] < request:
                superseded += len(seen[1]) if seen else 0
                held[number] = (request, [record])
            elif seen[0] == request:  # twice in one night: a real duplicate, quarantined downstream
                seen[1].append(record)
            else:
                superseded += 1
    records = [r for _, kept in held.values() for r in kept] + unnumbered
    stale = 0
    for record in records:
        if record.pop("_request") < latest[record.pop("_body")]:
            record["existsInGmc"], record["designatedBodyCode"] = False, None
            stale += 1
    bodies = _n(len(latest), "designated body", "designated bodies")
    said = (f"{_n(len(envelopes), 'DoctorsForDbCollectedEvent envelope')} ({bodies}, "
            f"{_n(len(records), 'doctor')}; {stale:,} not in their body's latest collection, so disconnected; "
            f"{superseded:,} superseded by a later envelope)")
    return records, said


# --- TIS trainees -----------------------------------------------------------------------------------------


def _is_sync_end(record: object) -> bool:
    return (type(record) is dict and record.get("syncEnd") in (True, "true")
            and record.get("gmcReferenceNumber") is None and record.get("tcsPersonId") is None)


def tis_trainees(content: object, layout: str, file: str) -> Read:
    """ConnectionInfoDto records; the closing `{"syncEnd": true}` marker is no trainee, so it is left out."""
    documents = as_documents(content, file)
    records = [d for d in documents if not _is_sync_end(d)]
    markers = len(documents) - len(records)
    ending = f", and {_n(markers, 'syncEnd marker')} (no trainee, left out)" if markers else ""
    return Read(records, f"{_n(len(records), 'ConnectionInfoDto record')} ({layout}){ending}")


# --- recommendations --------------------------------------------------------------------------------------


def recommendation_records(content: object, layout: str, file: str) -> Read:
    """The summary payload `{"countTotal": …, "traineeInfo" | "recommendationInfo": [...]}`, or bare Recommendation
    documents or TraineeRecommendationRecordDto records. A payload without a known list key is the Dec 2023 fault
    itself: the input is empty, with a problem that blocks the release (never "0 rows")."""
    if isinstance(content, dict) and not _looks_like_a_record(content):
        try:
            items, said = summary_items(content, file)
        except MissingListKeyError as error:
            return Read([], f"a summary payload without its list ({layout})", (str(error),))
        return Read(items, f"{said} ({layout})")
    documents = as_documents(content, file)
    keys = {k for d in documents[:1000] if type(d) is dict for k in d}
    kind = ("Recommendation document" if keys & {"_id", "outcome"} else
            "TraineeRecommendationRecordDto record" if keys & {"recommendationId", "gmcOutcome"} else
            "recommendation record")
    return Read(documents, f"{_n(len(documents), kind)} ({layout})")


def _looks_like_a_record(document: dict) -> bool:
    return "gmcNumber" in document and not any(key in document for key in (*RECOMMENDATION_LIST_KEYS, "countTotal"))


def summary_items(payload: dict, file: str) -> tuple[list, str]:
    """The list of a TraineeSummaryDto, under `recommendationInfo` or `traineeInfo` (looked up in the parsed
    object). Both keys holding records is ambiguous; a payload that says it is one page of several is
    incomplete. `countTotal` counts doctors, not items (as the real service's does), so it is reported, not
    compared."""
    expected = _key_list(RECOMMENDATION_LIST_KEYS, " or ")
    present = [key for key in RECOMMENDATION_LIST_KEYS if key in payload]
    if not present:
        raise MissingListKeyError(
            f"no recommendation list: expected key {expected}, found keys {_key_list(payload)}", file=file)
    lists = {key: _list_value(payload[key], key, file) for key in present}
    filled = [key for key, items in lists.items() if items]
    if len(filled) > 1:
        counts = ", ".join(f"'{key}' has {len(lists[key])}" for key in filled)
        raise SourceError(f"ambiguous recommendation list: both keys hold records ({counts})", file=file)
    key = filled[0] if filled else present[0]
    items = lists[key]
    for name in ("countTotal", "totalPages", "totalResults", "countUnderNotice"):
        if name in payload and payload[name] is not None and type(payload[name]) is not int:
            raise SourceError(f"{name} must be an integer, found {json_type(payload[name])}", file=file, field=name)
    pages = payload.get("totalPages") or 0
    if pages > 1 and len(items) <= SUMMARY_PAGE_SIZE:
        raise SourceError(f"truncated payload: it is one page ({len(items)} items under '{key}') of {pages} "
                          f"(totalPages); export the whole list, not a page", file=file, field="totalPages")
    total = payload.get("countTotal")
    doctors = f", countTotal {total:,} doctors" if total is not None else ""
    return items, f"a TraineeSummaryDto payload: {_n(len(items), 'item')} under '{key}'{doctors}"


def _list_value(value: object, key: str, file: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SourceError(f"'{key}' must be a JSON array, found {json_type(value)}", file=file, field=key)
    return value


# --- connection logs and hidden discrepancies -------------------------------------------------------------


def connection_logs(content: object, layout: str, file: str) -> Read:
    """ConnectionLog / ConnectionRequestLog documents, ConnectionHistoryDto or ConnectionLogDto records."""
    documents = as_documents(content, file)
    if any(type(d) is dict and "eventDateTime" in d for d in documents[:1000]):  # the resync's: no requestType
        return Read(documents, f"{_n(len(documents), 'ConnectionLogDto record')} ({layout}; each doctor's latest)")
    gmc = sum(1 for d in documents if type(d) is dict and d.get("requestType") is None)
    return Read(documents, f"{_n(len(documents), 'connection log')} ({layout}; {gmc:,} with no requestType: "
                           "by the GMC sync)")


def hidden_discrepancies(content: object, layout: str, file: str) -> Read:
    documents = as_documents(content, file)
    return Read(documents, f"{_n(len(documents), 'HiddenDiscrepancy record')} ({layout})")


READERS = {
    "gmc_doctors": gmc_doctors,
    "tis_trainees": tis_trainees,
    "recommendation_records": recommendation_records,
    "connection_logs": connection_logs,
    "hidden_discrepancy_records": hidden_discrepancies,
}
