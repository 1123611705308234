"""Write wire tables (a source's `extract()` output) as the export files of the contract.

Used by tests and demos to build a file export, also a faulty one: `list_key` may be any
name (so a missing list key can be staged) and only the inputs given are written (so a
missing file can be staged). `indent=True` pretty-prints the way Spring's `indent_output`
did in the Dec 2023 incident, with a space before each colon (`"traineeInfo" : [`).

`shapes` writes an input in one of the real shapes the original services send it in instead of our
canonical spelling (`reval_assets.sources.shapes.SHAPES` lists them, input by input):

- gmc_doctors: canonical, dto (DoctorsForDbDto list), envelopes (DoctorsForDbCollectedEvent, the
  disconnected doctors in an older collection of a body), documents (DoctorsForDB, mongoexport JSON
  Lines), soap (`gmc/<DBC>.xml`, one GetDoctorsForDB response per designated body and no
  doctors_for_db.json: the GMC returns only connected doctors, so disconnected doctors, doctors with no
  body, gmcLastUpdatedDateTime and existsInGmc cannot be written in it);
- tis_trainees: canonical, dto (ConnectionInfoDto, every field, a syncEnd marker last), jackson (the
  same, LocalDates as [y, m, d]);
- recommendation_records: canonical (today's payload), summary (TraineeSummaryDto, pretty-printed),
  documents (Recommendation, mongoexport), records (TraineeRecommendationRecordDto list);
- connection_logs: canonical, documents (mongoexport), latest (ConnectionLogDto: only each doctor's
  latest successful change);
- hidden_discrepancy_records (hidden_discrepancies.json): canonical, documents (mongoexport).

`json_lines` True/False forces JSON Lines or a JSON array for every list file (None: each shape's own,
lines for mongoexport documents); `bom` starts each JSON file with a UTF-8 BOM.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.schemas import RAW_SPECS, RECORD_COLUMN
from reval_assets.sources.base import WireInput
from reval_assets.sources.shapes import Layout, writer

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
    shapes: dict[str, str] | None = None,
    json_lines: bool | None = None,
    bom: bool = False,
) -> Path:
    """Write each given input as its contract file(s) in `directory` (created if needed); return the folder.

    Each input is written in our canonical spelling unless `shapes` names another of its shapes.
    """
    unknown = sorted(set(inputs) - set(RAW_SPECS))
    if unknown:
        raise KeyError(f"unknown raw input(s) {', '.join(unknown)}; expected some of {', '.join(RAW_SPECS)}")
    chosen = dict(shapes or {})
    stray = sorted(set(chosen) - set(inputs))
    if stray:
        raise KeyError(f"shape(s) given for input(s) not written: {', '.join(stray)}")
    writers = {name: writer(name, chosen.get(name, "canonical")) for name in inputs}
    items = {name: records(wire.table) for name, wire in inputs.items()}
    layout = Layout(json_lines=json_lines, bom=bom, indent=indent, list_key=list_key, context=items)
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    for name, write in writers.items():
        for relative, data in write(items[name], layout).items():
            path = folder / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            _write(path, data)
    return folder
