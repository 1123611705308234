"""Write wire tables (a source's `extract()` output) as the export files of the contract.

Used by tests and demos to build a file export, also a faulty one: `list_key` may be any
name (so a missing list key can be staged) and only the inputs given are written (so a
missing file can be staged). `indent=True` pretty-prints the way Spring's `indent_output`
did in the Dec 2023 incident, with a space before each colon (`"traineeInfo" : [`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.schemas import RAW_SPECS, RECORD_COLUMN
from reval_assets.sources.base import WireInput

RECOMMENDATIONS = "recommendation_records"
_INTEGER_FIELDS = ("tcsPersonId",)  # sent by TIS as a JSON number
_INTEGER_TEXT = r"^-?(0|[1-9][0-9]{0,17})$"  # only texts that survive int() -> str() unchanged


def _integers(column: pa.Array) -> list:
    """Valid integer texts as ints, anything else (including null) as it was."""
    ok = pc.fill_null(pc.match_substring_regex(column, _INTEGER_TEXT), False)
    ints = pc.cast(pc.if_else(ok, column, pa.scalar(None, pa.string())), pa.int64()).to_pylist()
    return [i if i is not None else t for i, t in zip(ints, column.to_pylist(), strict=True)]


def _values(table: pa.Table, name: str) -> list:
    column = table[name].combine_chunks()
    if name in _INTEGER_FIELDS and pa.types.is_string(column.type):
        return _integers(column)
    return column.to_pylist()


def records(table: pa.Table) -> list[dict]:
    """The table's rows as JSON-ready dicts keyed by wire name, without `_record`."""
    names = [name for name in table.column_names if name != RECORD_COLUMN]
    columns = [_values(table, name) for name in names]
    if not names:
        return [{} for _ in range(table.num_rows)]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _dumps(value: object, indent: bool) -> bytes:
    if indent:
        return json.dumps(value, indent=2, separators=(",", " : "), ensure_ascii=False).encode()
    return orjson.dumps(value)


def _write(path: Path, data: bytes) -> None:
    """Write beside, then rename: a reader never sees a half-written file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def write_export(
    inputs: dict[str, WireInput],
    directory: Path | str,
    *,
    list_key: str = "recommendationInfo",
    indent: bool = False,
) -> Path:
    """Write each given input as its contract file in `directory` (created if needed); return the folder."""
    unknown = sorted(set(inputs) - set(RAW_SPECS))
    if unknown:
        raise KeyError(f"unknown raw input(s) {', '.join(unknown)}; expected some of {', '.join(RAW_SPECS)}")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    for name, wire in inputs.items():
        items = records(wire.table)
        payload = {"countTotal": len(items), list_key: items} if name == RECOMMENDATIONS else items
        _write(folder / RAW_SPECS[name].file, _dumps(payload, indent))
    return folder
