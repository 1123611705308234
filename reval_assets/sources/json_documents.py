"""JSON export files as the original services and their tools write them, read into documents and text values.

A file may be a JSON array or object (compact, or pretty-printed by Jackson with `"k" : v`), JSON Lines
(one document per line, as `mongoexport` writes by default), or documents one after another (as
`mongoexport --pretty` writes them); with or without a UTF-8 BOM. The layout is found from the content.

Values are made the text the wire tables hold, in a spelling `domain.conform` parses: Jackson's LocalDate
and LocalDateTime arrays (`[2024, 8, 7]`, `[2024, 8, 7, 10, 15, 30, 123456789]`) become ISO text, and Mongo
Extended JSON (`{"$oid"}`, `{"$date": ISO | {"$numberLong": ms}}`, `{"$numberLong"}`, ...) its value.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import orjson

from reval_assets.sources.base import SourceError

_UTF8_BOM = b"\xef\xbb\xbf"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMBER_WRAPPERS = ("$numberLong", "$numberInt", "$numberDouble", "$numberDecimal")


def json_type(value: object) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def decode(data: bytes, file: str) -> tuple[object, str]:
    """The file's content and its layout in words: a JSON array or object, JSON Lines, or concatenated documents."""
    text = data[len(_UTF8_BOM):] if data.startswith(_UTF8_BOM) else data
    try:
        whole = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        documents = _lines(text) or _concatenated(text.decode("utf-8", "replace"))
        if documents is None:
            raise SourceError(f"invalid JSON: {error}", file=file) from None
        return documents
    return whole, "a JSON array" if isinstance(whole, list) else f"a JSON {json_type(whole)}"


def _lines(text: bytes) -> tuple[list, str] | None:
    """One document per line (blank lines skipped), or None if a line is not a whole document."""
    lines = [line for line in text.split(b"\n") if line.strip()]
    if not lines:  # an empty file is no export
        return None
    try:
        return [orjson.loads(line) for line in lines], "JSON Lines"
    except orjson.JSONDecodeError:
        return None


def _concatenated(text: str) -> tuple[list, str] | None:
    """Documents written one after another, each over many lines (`mongoexport --pretty`)."""
    decoder, documents, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return (documents, "concatenated JSON documents") if len(documents) > 1 else None
        try:
            document, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            return None
        documents.append(document)


def wire_text(value: object) -> str | None:
    """A JSON value as the text a wire table holds (numbers and booleans as JSON spells them)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return _extended(value)
    if isinstance(value, list) and 3 <= len(value) <= 7 and all(type(v) is int for v in value):
        return _jackson(value)
    return orjson.dumps(value).decode()


def _extended(value: dict) -> str | None:
    """Mongo Extended JSON's one-key wrappers as their value; any other object as its JSON (a malformed value)."""
    if len(value) == 1:
        (key, inner), = value.items()
        if key == "$oid" and isinstance(inner, str):
            return inner
        if key == "$date":
            return _mongo_date(inner)
        if key in _NUMBER_WRAPPERS and isinstance(inner, (str, int, float)):
            return str(inner)
    return orjson.dumps(value).decode()


def _mongo_date(inner: object) -> str | None:
    if isinstance(inner, str):
        return inner
    millis = inner.get("$numberLong") if isinstance(inner, dict) and len(inner) == 1 else inner
    try:
        instant = _EPOCH + timedelta(milliseconds=int(millis))
    except (TypeError, ValueError, OverflowError):
        return orjson.dumps({"$date": inner}).decode()
    return instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"


def _jackson(parts: list[int]) -> str:
    """`[y, m, d]` as `yyyy-mm-dd`; `[y, m, d, h, mi(, s(, nanos))]` as ISO date-time (nanoseconds kept)."""
    year, month, day, *clock = parts
    date = f"{year:04d}-{month:02d}-{day:02d}"
    if not clock:
        return date
    hour, minute, second, nanos = (*clock, 0, 0)[:4] if len(clock) < 4 else clock
    fraction = f".{nanos:09d}" if nanos else ""
    return f"{date}T{hour:02d}:{minute:02d}:{second:02d}{fraction}"
