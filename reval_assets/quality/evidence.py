"""What the checks need to know about the source, gathered once when it is landed.

The candidate's tables show what was published, not what the source sent: a quarantined
record (duplicate key, unknown enum value, malformed date) and a connection log for a doctor
nobody knows leave no row behind. So the landing records, per input, its input-level
problems, its quarantine reasons with counts and examples, and its records that match no
doctor; `compose_manifest` copies that into the manifest and `InputReport` reads it back.
All of it is a few Arrow kernels over the landed tables: linear, no per-record Python.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.enums import QuarantineReason
from reval_assets.domain.schemas import GMC_NUMBER as GMC
from reval_assets.domain.schemas import RAW_SPECS
from reval_assets.domain.summaries import UNMATCHED_NUMBERS_KEPT, ReasonCount
from reval_assets.quality.text import cut

EXAMPLES = 3  # example values kept per reason
# Inputs whose records must each belong to a doctor (a GMC or TIS record with the same number).
DEPENDENT_INPUTS: tuple[str, ...] = ("recommendation_records", "connection_logs")
DOCTOR_INPUTS: tuple[str, ...] = ("gmc_doctors", "tis_trainees")


def quarantine_reasons(quarantine: pa.Table) -> list[dict]:
    """Per (wire field, reason code): how many records, a few example values and, for an unknown value,
    the allowed ones; most frequent first. As `ReasonCount.to_dict`, for the landing's JSON."""
    if quarantine.num_rows == 0:
        return []
    keys = ["field", "code", "problem"]
    quarantine = quarantine.select([*keys, "record", "value", "allowed"])  # never copy the records' JSON
    counts = quarantine.group_by(keys, use_threads=False).aggregate([("record", "count_distinct")])
    reasons = []
    for row in counts.to_pylist():
        mask = pc.and_(pc.equal(quarantine["field"], row["field"]), pc.equal(quarantine["code"], row["code"]))
        rows = quarantine.filter(pc.and_(mask, pc.equal(quarantine["problem"], row["problem"])))
        values = [_cut(v) for v in pc.unique(rows["value"]).to_pylist()[:EXAMPLES]]
        reasons.append(ReasonCount(field=row["field"], code=QuarantineReason(row["code"]), problem=row["problem"],
                                   records=row["record_count_distinct"], examples=tuple(values),
                                   allowed=tuple(rows["allowed"][0].as_py() or ())))
    reasons.sort(key=lambda r: (-r.records, r.field, r.problem))
    return [r.to_dict() for r in reasons]


def _cut(value: str | None) -> str | None:
    """An example value cut short (the quarantine holds the whole value and record)."""
    return None if value is None else cut(value)


def unmatched(name: str, table: pa.Table, doctors: pa.Array) -> dict:
    """Records of the conformed input `name` that point at a doctor not in `doctors`.

    A recommendation always belongs to a doctor. A connection log is a history, and the doctor
    of a connection that was removed may have left both systems; so for connection logs only
    a *current* connection counts: a doctor whose latest successful request is an ADD.
    """
    if table.num_rows == 0:
        return {"records": 0, "examples": []}
    if name == "connection_logs":
        table = current_connections(table)
    orphan = pc.invert(pc.is_in(table[GMC], value_set=doctors))
    numbers = table[GMC].filter(orphan)
    per_number = pc.value_counts(numbers).to_pylist()[:UNMATCHED_NUMBERS_KEPT]
    return {"records": len(numbers), "examples": pc.unique(numbers).to_pylist()[:EXAMPLES],
            "numbers": {item["values"]: item["counts"] for item in per_number}}


def current_connections(logs: pa.Table) -> pa.Table:
    """One row per doctor whose latest successful connection request is an ADD."""
    succeeded = pc.fill_null(pc.equal(logs["response_code"], "0"), True)  # as `transforms.build` reads them
    ordered = logs.filter(succeeded).select([GMC, "request_time", "request_type"]).sort_by(
        [(GMC, "ascending"), ("request_time", "ascending")])
    latest = ordered.group_by(GMC, use_threads=False).aggregate([("request_type", "last")])
    return latest.filter(pc.equal(latest["request_type_last"], "ADD")).select([GMC])


def doctor_numbers(wire: dict[str, pa.Table]) -> pa.Array:
    """Every GMC number the export's GMC and TIS inputs hold, as sent (quarantined records too).

    `wire` holds the inputs as the source sent them (wire names, text values). A record that
    points at a doctor whose own record was quarantined is a consequence of that quarantine
    (reported by the checks on keys, schema and quarantine); only a doctor who is in neither
    export is "not in the export".
    """
    arrays = []
    for name in DOCTOR_INPUTS:
        column = RAW_SPECS[name].column(GMC).wire
        if name in wire and column in wire[name].column_names:
            arrays.append(pc.utf8_trim_whitespace(pc.cast(wire[name][column], pa.string())).combine_chunks())
    return pc.unique(pa.concat_arrays(arrays)) if arrays else pa.array([], pa.string())
