"""What every shape shares: the file layout, JSON encoding, and the spellings of values the original
services write (dates, times, enum names, ids)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from reval_assets.domain.schemas import RAW_SPECS

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
BODY_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

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


def one_file(name: str, data: bytes) -> Files:
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


def parsed_time(text: object) -> datetime | None:
    if not isinstance(text, str) or "T" not in text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def mongo_time(text: object, *, as_millis: bool = False) -> object:
    """A zone-less date-time as `{"$date": "...Z"}` (milliseconds, or all the digits given when finer), or
    `{"$date": {"$numberLong": "<ms>"}}` when `as_millis` and nothing finer than a millisecond is lost."""
    at = parsed_time(text)
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


def canonical_writer(name: str) -> Writer:
    """Our own spelling: the wire records as they are, a JSON array (or lines)."""

    def write(records: Records, layout: Layout) -> Files:
        return one_file(name, json_list(records, layout))

    return write
