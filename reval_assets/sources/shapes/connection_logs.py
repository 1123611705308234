"""Connection logs: the Mongo documents of both log classes, and the latest successful change."""

from __future__ import annotations

from datetime import datetime

from reval_assets.sources.shapes.spelling import (
    CONNECTION_LOG_CLASS,
    CONNECTION_REQUEST_LOG_CLASS,
    Files,
    Layout,
    Records,
    json_list,
    made_up_id,
    mongo_time,
    one_file,
    parsed_time,
)

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


def write_logs_documents(records: Records, layout: Layout) -> Files:
    documents = [connection_document(r, i) for i, r in enumerate(records)]
    return one_file("connection_logs", json_list(documents, layout, lines=True))


def latest_successful(records: Records) -> Records:
    """Each doctor's latest successful log (responseCode "0" or none); of equal times the later in the list.
    A log whose time does not parse cannot be the latest and is left out."""
    best: dict[object, tuple[datetime, dict]] = {}
    for record in records:
        at = parsed_time(record.get("requestTime"))
        if record.get("responseCode") not in (None, "0") or at is None or record.get("gmcId") is None:
            continue
        if record["gmcId"] not in best or at >= best[record["gmcId"]][0]:
            best[record["gmcId"]] = (at, record)
    return [record for _, record in best.values()]


def connection_log_dto(record: dict) -> dict:
    """A ConnectionLogDto of the HEAD resync: eventDateTime as uuuu-MM-dd'T'HH:mm:ss.SSS."""
    at = parsed_time(record.get("requestTime"))
    when = at.isoformat(timespec="milliseconds") if at else record.get("requestTime")
    return {name: record.get(name) for name in _LOG_FIELDS} | {"eventDateTime": when}


def write_logs_latest(records: Records, layout: Layout) -> Files:
    return one_file("connection_logs", json_list([connection_log_dto(r) for r in latest_successful(records)], layout))
