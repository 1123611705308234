"""Conform a wire table (wire names, text values) into a typed raw table plus a quarantine.

Every record that fails a rule (missing required field, malformed GMC number or date,
unknown enum value, text with a control character or over MAX_TEXT characters, duplicate key)
is kept out of the typed table and written to the quarantine with its position, field, value,
problem and the whole record, so nothing is silently dropped. The work is columnar: one pass
of Arrow kernels per column.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.batching import batch_of
from reval_assets.domain.enums import (
    DeferralReason,
    DeferralSubReason,
    QuarantineReason,
    in_words,
    spelling_key,
    spellings,
)
from reval_assets.domain.keys import derive_missing_ids
from reval_assets.domain.schemas import GMC_NUMBER as GMC
from reval_assets.domain.schemas import QUARANTINE_SCHEMA, RECORD_COLUMN, Column, Parse, RawSpec

# A date-time: day, hour, minute, then optional seconds, 1-9 fraction digits and a zone (`Z` or an offset).
_DATETIME = (r"^(?P<day>\d{4}-\d{2}-\d{2})[T ](?P<hour>\d{2}):(?P<minute>\d{2})"
             r"(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
             r"(?P<zone>Z|[+-]\d{2}:?\d{2})?$")
_TIME_AFTER_DAY = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$"
MAX_TEXT = 10_000  # characters of one text value; more is no name, code or reason but a broken export
# Control characters (C0, DEL, C1): PostgreSQL refuses NUL, and the others can forge lines or restyle a
# terminal. Free text (`Column.free_text`) may hold tab, newline and carriage return.
_CONTROL = {False: (r"[\x00-\x1f\x7f-\x9f]", "malformed text: control character (U+0000-U+001F or U+007F-U+009F)"),
            True: (r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]",
                   "malformed text: control character other than tab, newline or carriage return")}


class _Problem(NamedTuple):
    """The records (a mask) that fail one rule on one column."""

    mask: np.ndarray
    column: Column
    code: QuarantineReason
    text: str  # the problem as people read it


@dataclass(frozen=True)
class Conformed:
    table: pa.Table
    quarantine: pa.Table
    derived_keys: int = 0  # records given a derived key (`domain.keys`), kept

    @property
    def quarantined_records(self) -> int:
        return len(set(self.quarantine["record"].to_pylist()))


def _mask(array: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def _blank_to_null(raw: pa.Array) -> pa.Array:
    blank = pc.equal(pc.utf8_trim_whitespace(raw), "")
    return pc.if_else(blank, pa.scalar(None, pa.string()), raw)


def _strict_strptime(raw: pa.Array, fmt: str) -> pa.Array:
    """strptime that rejects what Arrow would roll over (31/02 becoming 02/03) or unpadded forms."""
    # Exports repeat a few thousand distinct dates over millions of rows: parse each distinct text once.
    encoded = pc.dictionary_encode(raw)
    distinct = encoded.dictionary
    parsed = pc.strptime(distinct, fmt, unit="s", error_is_null=True)
    round_trip = pc.equal(pc.strftime(parsed, fmt), distinct)
    return pc.if_else(round_trip, parsed, pa.scalar(None, pa.timestamp("s"))).take(encoded.indices)


def _parse_date(raw: pa.Array) -> pa.Array:
    """A day as GMC writes it (`dd/mm/yyyy`), as ISO (`yyyy-mm-dd`), or as a date-time whose day is kept as written
    (Mongo's `{"$date": "2019-12-30T00:00:00Z"}`), strictly: 31/02 is malformed, never rolled over."""
    encoded = pc.dictionary_encode(raw)
    distinct = encoded.dictionary
    timed = pc.match_substring_regex(distinct, _TIME_AFTER_DAY)
    iso = pc.if_else(timed, pc.utf8_slice_codeunits(distinct, 0, 10), distinct)
    day = pc.coalesce(_strict_strptime(distinct, "%d/%m/%Y"), _strict_strptime(iso, "%Y-%m-%d"))
    return pc.cast(day, pa.date32()).take(encoded.indices)


def _parse_datetime(raw: pa.Array) -> pa.Array:
    """ISO date-times with 0-9 fraction digits (cut to microseconds) and an optional zone, strictly: no field may
    roll over. With `Z` or an offset the time is absolute and is kept in UTC; without, it is kept as given.

    Times are nearly all distinct, so they are not strptime'd: the day (few distinct values) goes through
    `_strict_strptime`, and the clock is bounded field by field and added."""
    parts = pc.extract_regex(raw, _DATETIME)  # null where the text is no date-time
    part = {name: pc.struct_field(parts, name) for name in ("day", "hour", "minute", "second", "fraction", "zone")}
    hours, minutes = (pc.cast(part[n], pa.int64()) for n in ("hour", "minute"))
    seconds = pc.cast(pc.if_else(pc.equal(part["second"], ""), "0", part["second"]), pa.int64())
    in_range = pc.and_(pc.and_(pc.less(hours, 24), pc.less(minutes, 60)), pc.less(seconds, 60))
    day = pc.if_else(in_range, _strict_strptime(part["day"], "%Y-%m-%d"), pa.scalar(None, pa.timestamp("s")))
    micros = pc.cast(pc.utf8_rpad(pc.utf8_slice_codeunits(part["fraction"], 0, 6), 6, "0"), pa.int64())
    clock = pc.add(pc.multiply(pc.add(pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60)), seconds),
                               1_000_000), micros)
    at = pc.subtract(pc.add(pc.multiply(pc.cast(day, pa.int64()), 1_000_000), clock), _offset_micros(part["zone"]))
    return pc.cast(at, pa.timestamp("us"))


def _offset_micros(zone: pa.Array) -> pa.Array:
    """`+01:00` as an hour in microseconds (what to subtract to reach UTC); `Z` and no zone as 0."""
    signed = pc.if_else(pc.match_substring_regex(zone, r"^[+-]"), zone, "+00:00")
    digits = pc.replace_substring(signed, ":", "")
    hours = pc.cast(pc.utf8_slice_codeunits(digits, 1, 3), pa.int64())
    minutes = pc.cast(pc.utf8_slice_codeunits(digits, 3, 5), pa.int64())
    sign = pc.if_else(pc.starts_with(digits, "-"), -1, 1)
    return pc.multiply(pc.multiply(pc.add(pc.multiply(hours, 60), minutes), sign), 60_000_000)


def _canonical_spelling(column: Column, raw: pa.Array) -> pa.Array:
    """Every spelling of an enum value (`YES`, `yes`, `Yes`) as its canonical value; an unknown one as sent."""
    accepted = spellings(column.enum)
    encoded = pc.dictionary_encode(raw)
    distinct = encoded.dictionary.to_pylist()  # a handful of distinct spellings, however many rows
    worded = column.enum in (DeferralReason, DeferralSubReason)  # legacy snapshots wrote these as text
    canonical = pa.array([None if text is None else accepted.get(spelling_key(text))
                          or (in_words(column.enum, text) if worded else None) or text
                          for text in distinct], pa.string())
    return canonical.take(encoded.indices)


def _parse(column: Column, raw: pa.Array) -> tuple[pa.Array, np.ndarray, str]:
    """Typed values, a mask of malformed values, and how to describe them."""
    if column.parse is Parse.TEXT:
        values = raw if column.enum is None else _canonical_spelling(column, _blank_to_null(raw))
        return values, np.zeros(len(raw), dtype=bool), ""
    raw = _blank_to_null(raw)
    if column.parse is Parse.GMC_NUMBER:
        trimmed = pc.utf8_trim_whitespace(raw)
        typed = pc.if_else(pc.match_substring_regex(trimmed, r"^\d{7}$"), trimmed, pa.scalar(None, pa.string()))
        problem = "malformed GMC number (expected 7 digits)"
    elif column.parse is Parse.DATE:
        typed = _parse_date(raw)
        problem = "malformed date (expected dd/mm/yyyy or yyyy-mm-dd)"
    elif column.parse is Parse.DATETIME:
        typed = _parse_datetime(raw)
        problem = "malformed date-time (expected yyyy-mm-ddThh:mm:ss, with up to 9 fraction digits and a zone)"
    elif column.parse is Parse.BOOLEAN:
        word = pc.utf8_lower(pc.utf8_trim_whitespace(raw))
        typed = pc.if_else(pc.is_in(word, value_set=pa.array(["true", "false"])), pc.equal(word, "true"),
                           pa.scalar(None, pa.bool_()))
        problem = "malformed boolean (expected true or false)"
    else:
        ok = pc.match_substring_regex(raw, r"^-?\d{1,18}$")
        typed = pc.cast(pc.if_else(ok, raw, pa.scalar(None, pa.string())), pa.int64())
        problem = "malformed integer"
    malformed = _mask(pc.and_(pc.is_valid(raw), pc.is_null(typed)))
    return typed, malformed, problem


def _text_problems(column: Column, raw: pa.Array) -> list[_Problem]:
    """Text no screen or database should get: a control character, or more than MAX_TEXT characters.

    Each exact check runs only on a column whose bytes could fail it (a scan of its buffers costs ~1/50 of
    a regex over its values), so a clean export pays almost nothing."""
    pattern, problem = _CONTROL[column.free_text]
    none = np.zeros(len(raw), dtype=bool)
    control = _mask(pc.match_substring_regex(raw, pattern)) if _may_hold_control(raw, column.free_text) else none
    long = (pc.max(pc.binary_length(raw)).as_py() or 0) > MAX_TEXT  # a character is at least a byte
    too_long = _mask(pc.greater(pc.utf8_length(raw), MAX_TEXT)) if long else none
    return [_Problem(control, column, QuarantineReason.CONTROL_CHARACTER, problem),
            _Problem(too_long, column, QuarantineReason.TOO_LONG, f"malformed text: over {MAX_TEXT:,} characters")]


def _may_hold_control(raw: pa.Array, layout_allowed: bool) -> bool:
    """Whether any byte of the text is a C0 control or DEL (in UTF-8 those bytes are only those characters),
    or 0xC2, which leads U+0080-U+00BF: the C1 controls and some Latin-1 signs."""
    data = raw.buffers()[2]
    if data is None:
        return False
    text = np.frombuffer(data, dtype=np.uint8)
    if text.size == 0:
        return False
    low = text.min() < 0x20 and (not layout_allowed or bool(np.isin(text[text < 0x20], (9, 10, 13), invert=True).any()))
    return bool(low or (text == 0x7F).any() or (text.max() >= 0xC2 and (text == 0xC2).any()))


def _repeated_keys(table: pa.Table, key: tuple[str, ...]) -> np.ndarray:
    """Records whose key is whole (no part null or blank) and repeats. A missing or malformed key is its own
    problem, not a duplicate of every other missing or malformed one."""
    whole = np.ones(table.num_rows, dtype=bool)
    for name in key:
        column = table[name].combine_chunks()
        whole &= _mask(pc.is_valid(column))
        if pa.types.is_string(column.type):
            whole &= _mask(pc.not_equal(pc.utf8_trim_whitespace(column), ""))
    return _duplicates(table, key) & whole


def _duplicates(table: pa.Table, key: tuple[str, ...]) -> np.ndarray:
    if not key or table.num_rows == 0:
        return np.zeros(table.num_rows, dtype=bool)
    if len(key) == 1:  # one hash pass: each row's count is that of its dictionary index
        encoded = pc.dictionary_encode(table[key[0]].combine_chunks(), null_encoding="encode")
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        return np.bincount(indices, minlength=len(encoded.dictionary))[indices] > 1
    counts = table.select(list(key)).group_by(list(key)).aggregate([([], "count_all")])
    dup_keys = counts.filter(pc.greater(counts["count_all"], 1)).drop_columns(["count_all"])
    if dup_keys.num_rows == 0:
        return np.zeros(table.num_rows, dtype=bool)
    marked = table.select(list(key)).append_column("_row", pa.array(np.arange(table.num_rows)))
    hits = marked.join(dup_keys, keys=list(key), join_type="inner")["_row"].to_numpy()
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[hits] = True
    return mask


def _wire_text(wire: pa.Table, column: Column) -> pa.Array:
    """The column's wire values as text (all null when the input lacks the field)."""
    if column.wire not in wire.column_names:
        return pa.nulls(wire.num_rows, pa.string())
    return pc.cast(wire[column.wire].combine_chunks(), pa.string())


def rows_of_batches(spec: RawSpec, wire: pa.Table, batches: int, wanted: Collection[int]) -> pa.Table:
    """The wire records whose conform gives exactly what conforming the whole input gives for `wanted`.

    That is: the records whose GMC number falls in one of the `wanted` batches; the records with
    no valid GMC number, which belong to no batch and are quarantined whichever batches are landed;
    and, for a key other than the GMC number (a recommendation id can repeat across batches),
    every record whose key repeats anywhere in the input, since conform quarantines every copy.
    Each record keeps its position in the whole input (`_record`).
    """
    if RECORD_COLUMN not in wire.column_names:
        wire = wire.append_column(RECORD_COLUMN, pa.array(np.arange(wire.num_rows)))
    number, _, _ = _parse(spec.column(GMC), _wire_text(wire, spec.column(GMC)))
    valid = _mask(pc.is_valid(number))
    ids = batch_of(pc.fill_null(number, "0"), batches)
    keep = ~valid | (valid & np.isin(ids, list(wanted)))
    if spec.key and spec.key != (GMC,):  # records sharing a GMC number share its batch already
        keys = {name: _parse(spec.column(name), _wire_text(wire, spec.column(name)))[0] for name in spec.key}
        keep |= _repeated_keys(pa.table(keys), spec.key)
    return wire.filter(pa.array(keep))


def conform(spec: RawSpec, wire: pa.Table, origin: str) -> Conformed:
    """Validate and type `wire` (columns named by wire names, values as text)."""
    wire = wire.combine_chunks()
    n = wire.num_rows
    records = wire[RECORD_COLUMN] if RECORD_COLUMN in wire.column_names else pa.array(np.arange(n))
    typed: dict[str, pa.Array] = {}
    problems: list[_Problem] = []
    for column in spec.columns:
        raw = _wire_text(wire, column)
        values, malformed, problem = _parse(column, raw)
        problems.append(_Problem(malformed, column, QuarantineReason.MALFORMED, problem))
        if column.parse is Parse.TEXT:
            problems += _text_problems(column, raw)
        if column.required:
            missing = _mask(pc.is_null(raw)) | _mask(pc.equal(pc.utf8_trim_whitespace(raw), ""))
            problems.append(_Problem(missing, column, QuarantineReason.MISSING, "missing required field"))
        if column.allowed is not None:
            unknown = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, value_set=pa.array(column.allowed))))
            problems.append(_Problem(_mask(unknown), column, QuarantineReason.UNKNOWN_VALUE,
                                     f"unknown value; expected one of {', '.join(column.allowed)}"))
        typed[column.name] = values
    table = pa.table(typed, schema=_relaxed(spec))
    derived = 0
    if spec.derives_missing_key:  # before the duplicate check: two records saying the same thing are duplicates
        table, derived = derive_missing_ids(table, spec.key[0])
    if spec.key:
        problems.append(_Problem(_repeated_keys(table, spec.key), spec.column(spec.key[0]),
                                 QuarantineReason.DUPLICATE_KEY, "duplicate key"))
    bad = np.zeros(n, dtype=bool)
    for problem in problems:
        bad |= problem.mask
    clean = table.filter(pa.array(~bad)).cast(spec.schema)
    quarantine = _quarantine(spec, wire, records, typed[GMC], problems, origin)
    return Conformed(clean, quarantine, derived_keys=derived)


def _relaxed(spec: RawSpec) -> pa.Schema:
    """The spec's schema with every field nullable, to hold rows before they are filtered."""
    return pa.schema([f.with_nullable(True) for f in spec.schema])


QUARANTINED_TEXT = 1_000  # characters of one value the quarantine keeps as evidence


def _quarantine(
    spec: RawSpec,
    wire: pa.Table,
    records: pa.Array,
    numbers: pa.Array,
    problems: list[_Problem],
    origin: str,
) -> pa.Table:
    """One row per (record, problem), built columnar: a million bad records cost about what their
    wire text does, not a Python dict each."""
    wire_columns = sorted(c for c in wire.column_names if c != RECORD_COLUMN)
    written = np.zeros(wire.num_rows, dtype=bool)  # records whose JSON an earlier row already holds
    parts = []
    for problem in problems:
        if problem[0].any():
            parts.append(_quarantine_rows(spec, wire, wire_columns, (records, numbers), problem, origin, written))
            written |= problem[0]
    return pa.concat_tables(parts) if parts else QUARANTINE_SCHEMA.empty_table()


def _quarantine_rows(spec: RawSpec, wire: pa.Table, wire_columns: list[str], identity: tuple[pa.Array, pa.Array],
                     problem: _Problem, origin: str, written: np.ndarray) -> pa.Table:
    """The quarantine rows of one problem; `identity` is each record's position and GMC number (null if none)."""
    mask, column, code, text = problem
    at = np.flatnonzero(mask)
    positions = pa.array(at)
    n = len(positions)
    taken = {name: _kept(pc.cast(wire[name].take(positions).combine_chunks(), pa.string())) for name in wire_columns}
    allowed = list(column.allowed or ()) if code is QuarantineReason.UNKNOWN_VALUE else None
    value = taken.get(column.wire, pa.nulls(n, pa.string()))
    first = ~written[at]  # a record with several problems carries its JSON on its first row only
    record_json = _json_objects({k: v.filter(pa.array(first)) for k, v in taken.items()}, int(first.sum()))
    if not first.all():
        record_json = pc.replace_with_mask(pa.nulls(n, pa.string()), pa.array(first), record_json)
    return pa.table({
        "input": pa.repeat(pa.scalar(spec.name), n),
        "origin": pa.repeat(pa.scalar(origin), n),
        "record": pc.cast(identity[0].take(positions), pa.int64()),
        "gmc_reference_number": identity[1].take(positions),
        "field": pa.repeat(pa.scalar(column.wire), n),
        "value": value,
        "code": pa.repeat(pa.scalar(code.value), n),
        "problem": pa.repeat(pa.scalar(text), n),
        "allowed": pa.repeat(pa.scalar(allowed, pa.list_(pa.string())), n),
        "record_json": record_json,
    }, schema=QUARANTINE_SCHEMA)


def _kept(values: pa.Array) -> pa.Array:
    """Values as the quarantine keeps them: whole, or (over QUARANTINED_TEXT characters) their start and
    their length; a 200 MB value is a broken export, and keeping it whole would cost its size again."""
    lengths = pc.utf8_length(values)
    long = np.flatnonzero(_mask(pc.greater(lengths, QUARANTINED_TEXT)))
    if len(long) == 0:
        return values
    cut = [f"{values[int(i)].as_py()[:QUARANTINED_TEXT]}… ({lengths[int(i)].as_py():,} characters)" for i in long]
    marks = np.zeros(len(values), dtype=bool)
    marks[long] = True
    return pc.replace_with_mask(values, pa.array(marks), pa.array(cut, pa.string()))


def _json_objects(columns: dict[str, pa.Array], n: int) -> pa.Array:
    """`{"name": "value", ...}` per row (keys sorted, null as null), from text columns, columnar."""
    if not columns:
        return pa.repeat(pa.scalar("{}"), n)
    body = None
    for name, values in columns.items():  # one member at a time: at most two copies of the text at once
        member = pc.binary_join_element_wise(json.dumps(name) + ": ", _json_strings(values), "")
        body = member if body is None else pc.binary_join_element_wise(body, member, ", ")
    return pc.binary_join_element_wise("{", body, "}", "")


def _json_strings(values: pa.Array) -> pa.Array:
    """Each text as a JSON string literal, null as `null` (escapes as JSON requires; other text as is)."""
    text = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    if pc.any(pc.match_substring_regex(text, "[\\x00-\\x1f]")).as_py():
        for code in range(0x20):
            if pc.any(pc.match_substring(text, chr(code))).as_py():
                text = pc.replace_substring(text, chr(code), f"\\u{code:04x}")
    return pc.fill_null(pc.binary_join_element_wise('"', text, '"', ""), "null")
