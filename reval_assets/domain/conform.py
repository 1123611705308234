"""Conform a wire table (wire names, text values) into a typed raw table plus a quarantine.

Every record that fails a rule (missing required field, malformed GMC number or date,
unknown enum value, duplicate key) is kept out of the typed table and written to the
quarantine with its position, field, value, problem and the whole record, so nothing is
silently dropped. The work is columnar: one pass of Arrow kernels per column.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.batching import batch_of
from reval_assets.domain.schemas import QUARANTINE_SCHEMA, Column, Parse, RawSpec

RECORD_COLUMN = "_record"
GMC = "gmc_reference_number"

_DATE_FORMATS = {Parse.GMC_DATE: "%d/%m/%Y", Parse.ISO_DATE: "%Y-%m-%d"}
_ISO_DATETIME = r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d{1,6})?$"


@dataclass(frozen=True)
class Conformed:
    table: pa.Table
    quarantine: pa.Table

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


def _parse_datetime(raw: pa.Array) -> pa.Array:
    """`yyyy-mm-ddThh:mm:ss[.ffffff]` (or a space for the T), strictly: no field may roll over.

    Times are nearly all distinct, so they are not strptime'd: the date part (few distinct values)
    goes through `_strict_strptime`, and the clock is bounded field by field by a regex and added.
    """
    shaped = pc.if_else(pc.match_substring_regex(raw, _ISO_DATETIME), raw, pa.scalar(None, pa.string()))
    clock = pc.utf8_slice_codeunits(shaped, 11, 19)
    valid_clock = pc.match_substring_regex(clock, r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$")
    day = pc.if_else(valid_clock, _strict_strptime(pc.utf8_slice_codeunits(shaped, 0, 10), "%Y-%m-%d"),
                     pa.scalar(None, pa.timestamp("s")))
    hours, minutes, seconds = (pc.cast(pc.utf8_slice_codeunits(clock, a, a + 2), pa.int64()) for a in (0, 3, 6))
    fraction = pc.utf8_rpad(pc.utf8_slice_codeunits(shaped, 20, 26), 6, "0")
    micros = pc.cast(fraction, pa.int64())
    in_day = pc.add(pc.multiply(pc.add(pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60)), seconds),
                                1_000_000), micros)
    at = pc.add(pc.multiply(pc.cast(day, pa.int64()), 1_000_000), in_day)
    return pc.cast(at, pa.timestamp("us"))


def _parse(column: Column, raw: pa.Array) -> tuple[pa.Array, np.ndarray, str]:
    """Typed values, a mask of malformed values, and how to describe them."""
    if column.parse is Parse.TEXT:
        return raw, np.zeros(len(raw), dtype=bool), ""
    raw = _blank_to_null(raw)
    if column.parse is Parse.GMC_NUMBER:
        ok = pc.match_substring_regex(raw, r"^\d{7}$")
        typed = pc.if_else(ok, raw, pa.scalar(None, pa.string()))
        problem = "malformed GMC number (expected 7 digits)"
    elif column.parse in _DATE_FORMATS:
        fmt = _DATE_FORMATS[column.parse]
        typed = pc.cast(_strict_strptime(raw, fmt), pa.date32())
        problem = f"malformed date (expected {fmt.replace('%d', 'dd').replace('%m', 'mm').replace('%Y', 'yyyy')})"
    elif column.parse is Parse.ISO_DATETIME:
        typed = _parse_datetime(raw)
        problem = "malformed date-time (expected yyyy-mm-ddThh:mm:ss)"
    else:
        ok = pc.match_substring_regex(raw, r"^-?\d{1,18}$")
        typed = pc.cast(pc.if_else(ok, raw, pa.scalar(None, pa.string())), pa.int64())
        problem = "malformed integer"
    malformed = _mask(pc.and_(pc.is_valid(raw), pc.is_null(typed)))
    return typed, malformed, problem


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
        keep |= _duplicates(pa.table(keys), spec.key)
    return wire.filter(pa.array(keep))


def conform(spec: RawSpec, wire: pa.Table, origin: str) -> Conformed:
    """Validate and type `wire` (columns named by wire names, values as text)."""
    wire = wire.combine_chunks()
    n = wire.num_rows
    records = wire[RECORD_COLUMN] if RECORD_COLUMN in wire.column_names else pa.array(np.arange(n))
    typed: dict[str, pa.Array] = {}
    problems: list[tuple[np.ndarray, Column, str]] = []
    for column in spec.columns:
        raw = _wire_text(wire, column)
        values, malformed, problem = _parse(column, raw)
        problems.append((malformed, column, problem))
        if column.required:
            missing = _mask(pc.is_null(raw)) | _mask(pc.equal(pc.utf8_trim_whitespace(raw), ""))
            problems.append((missing, column, "missing required field"))
        if column.allowed is not None:
            unknown = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, value_set=pa.array(column.allowed))))
            problems.append((_mask(unknown), column, f"unknown value; expected one of {', '.join(column.allowed)}"))
        typed[column.name] = values
    table = pa.table(typed, schema=_relaxed(spec))
    if spec.key:
        problems.append((_duplicates(table, spec.key), spec.column(spec.key[0]), "duplicate key"))
    bad = np.zeros(n, dtype=bool)
    for mask, _, _ in problems:
        bad |= mask
    clean = table.filter(pa.array(~bad)).cast(spec.schema)
    return Conformed(clean, _quarantine(spec, wire, records, problems, origin))


def _relaxed(spec: RawSpec) -> pa.Schema:
    """The spec's schema with every field nullable, to hold rows before they are filtered."""
    return pa.schema([f.with_nullable(True) for f in spec.schema])


def _quarantine(
    spec: RawSpec,
    wire: pa.Table,
    records: pa.Array,
    problems: list[tuple[np.ndarray, Column, str]],
    origin: str,
) -> pa.Table:
    rows: dict[str, list] = {name: [] for name in QUARANTINE_SCHEMA.names}
    wire_columns = [c for c in wire.column_names if c != RECORD_COLUMN]
    for mask, column, problem in problems:
        positions = np.flatnonzero(mask)
        if len(positions) == 0:
            continue
        taken = wire.select(wire_columns).take(pa.array(positions)).to_pylist()
        for position, record in zip(positions, taken, strict=False):
            rows["input"].append(spec.name)
            rows["origin"].append(origin)
            rows["record"].append(int(records[int(position)].as_py()))
            rows["field"].append(column.wire)
            value = record.get(column.wire)
            rows["value"].append(None if value is None else str(value))
            rows["problem"].append(problem)
            rows["record_json"].append(json.dumps(record, default=str, sort_keys=True))
    return pa.table(rows, schema=QUARANTINE_SCHEMA)
