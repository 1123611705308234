"""Named faults: small deterministic edits applied on top of the clean population.

Each fault is a function of one `FaultContext`: the tables (edited in place), the fault's own random stream
and the few facts about the population a fault may use, so switching a fault on never changes the clean
records it does not touch, nor the draws of another fault. `REGISTRY` maps each name to its fault, in the order
they apply; `NAMES` lists them in the order that numbers their random streams. `REALISTIC` are real-world
oddities (legacy null ids, free-text GMC numbers in TIS) that a release must absorb, not be blocked by.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.enums import (
    AddConnectionReason,
    ConnectionRequestType,
    DeferralReason,
    DeferralSubReason,
    GmcOutcome,
    RecommendationStatus,
    RecommendationType,
)
from reval_assets.domain.schemas import MAPPED_TRAINEE_FIELDS, RAW_SPECS, RECORD_COLUMN
from reval_assets.sources.synthetic.population import _People
from reval_assets.sources.synthetic.vocabulary import ADMINS
from reval_assets.sources.synthetic.wire import _DAY, Tables, _as_bool, _dates, _datetimes, _days, _hex_ids

# Every fault, in the order that numbers its random stream (`[seed, 1, position]`).
NAMES: tuple[str, ...] = (
    "mapping_break",
    "unmapped_fields",
    "missing_connections",
    "duplicate_keys",
    "malformed_dates",
    "unknown_enums",
    "orphan_connection",
    # Appended last, so every fault above keeps its random stream (indexed by position here).
    "legacy_null_ids",
    "tis_free_text_gmc",
)
# Faults that are what the real services send, not a broken export: a release must not be blocked by them.
REALISTIC: tuple[str, ...] = ("legacy_null_ids", "tis_free_text_gmc")

_HANDFUL = 5
_UNMAPPED_SHARE = 0.8
_MISSING_SHARE = 0.4
# The wire names of the mapped trainee fields TIS sends (the others come from GMC).
_MAPPED_TRAINEE_FIELDS = tuple(RAW_SPECS["tis_trainees"].column(name).wire for name in MAPPED_TRAINEE_FIELDS
                               if name in RAW_SPECS["tis_trainees"].schema.names)


@dataclass(frozen=True)
class FaultContext:
    """What a fault works on: the tables, which it edits in place, its own random stream, and the population's
    facts a fault may use."""

    tables: Tables
    rng: np.random.Generator
    first_body: str  # the first designated-body code
    orphan_number: int  # a valid GMC number held by nobody
    as_of: int  # the reference day, days since 1970
    first_gmc_number: int  # the first person's GMC number (for a population without GMC doctors)

    @classmethod
    def of(cls, tables: Tables, rng: np.random.Generator, people: _People) -> FaultContext:
        return cls(tables, rng, people.codes[0], people.orphan_number, people.as_of, int(people.gmc_number[0]))


def _handful(rng: np.random.Generator, rows: int, size: int = _HANDFUL) -> np.ndarray:
    return np.sort(rng.choice(rows, size=min(size, rows), replace=False))


def _replace(table: pa.Table, column: str, positions: np.ndarray, values: pa.Array) -> pa.Table:
    """`table` with `column` at `positions` (sorted) replaced by `values`, in one kernel call."""
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[positions] = True
    array = pc.replace_with_mask(table[column].combine_chunks(), pa.array(mask), values)
    return table.set_column(table.schema.get_field_index(column), column, array)



def mapping_break(context: FaultContext) -> None:
    context.tables["recommendation_records"] = context.tables["recommendation_records"].slice(0, 0)


def unmapped_fields(context: FaultContext) -> None:
    table = context.tables["tis_trainees"]
    blank = pa.array(context.rng.random(table.num_rows) < _UNMAPPED_SHARE)
    for column in _MAPPED_TRAINEE_FIELDS:
        array = pc.if_else(blank, pa.scalar(None, pa.string()), table[column])
        table = table.set_column(table.schema.get_field_index(column), column, array)
    context.tables["tis_trainees"] = table


def missing_connections(context: FaultContext) -> None:
    table = context.tables["gmc_doctors"]
    in_body = np.flatnonzero(_as_bool(pc.equal(table["designatedBodyCode"], context.first_body)))
    dropped = context.rng.choice(in_body, size=round(_MISSING_SHARE * len(in_body)), replace=False)
    keep = np.ones(table.num_rows, dtype=bool)
    keep[dropped] = False
    context.tables["gmc_doctors"] = table.filter(pa.array(keep))


def duplicate_keys(context: FaultContext) -> None:
    table = context.tables["gmc_doctors"]
    copies = table.take(pa.array(_handful(context.rng, table.num_rows)))
    context.tables["gmc_doctors"] = pa.concat_tables([table, copies])


def malformed_dates(context: FaultContext) -> None:
    """Impossible days (31/02/yyyy) and dd-mm-yyyy (a spelling no service writes), in GMC submission dates."""
    table = context.tables["gmc_doctors"]
    positions = _handful(context.rng, table.num_rows, 2 * _HANDFUL)
    original = table["submissionDate"].combine_chunks().take(pa.array(positions))
    impossible = pc.replace_substring_regex(original, r"^\d{2}/\d{2}/(\d{4})$", r"31/02/\1")
    iso = pc.replace_substring_regex(original, r"^(\d{2})/(\d{2})/(\d{4})$", r"\1-\2-\3")
    first = np.arange(len(positions)) < len(positions) // 2
    edited = pc.if_else(pa.array(first), impossible, iso)
    context.tables["gmc_doctors"] = _replace(table, "submissionDate", positions, edited)


def unknown_enums(context: FaultContext) -> None:
    """Values no vocabulary of `domain.enums` has: a GMC outcome and an underNotice."""
    edits = (("recommendation_records", "outcome", "Pending GMC"), ("gmc_doctors", "underNotice", "Maybe"))
    for name, column, value in edits:
        positions = _handful(context.rng, context.tables[name].num_rows)
        values = pa.array([value] * len(positions), pa.string())
        context.tables[name] = _replace(context.tables[name], column, positions, values)


def orphan_connection(context: FaultContext) -> None:
    """A connection log and a recommendation for a valid GMC number that neither GMC nor TIS knows."""
    number = str(context.orphan_number)
    when = context.as_of - 10
    log = {
        "gmcId": number,
        "newDesignatedBodyCode": context.first_body,
        "updatedBy": ADMINS[0],
        "requestTime": _datetimes(np.array([when * _DAY + 10 * 3600]))[0].as_py(),
        "reason": AddConnectionReason.HAS_CONNECTION.value,
        "requestType": ConnectionRequestType.ADD.value,
        "responseCode": "0",
    }
    # The counter word 0xffffffff is never used by the clean ids, so this id is unique.
    record_id = _hex_ids(np.array([when * _DAY]), context.rng.integers(0, 2**32, 1), np.array([0xFFFFFFFF]))
    recommendation = {
        "id": record_id[0].as_py(),
        "gmcNumber": number,
        "recommendationType": RecommendationType.REVALIDATE.value,
        "recommendationStatus": RecommendationStatus.STARTED.value,
        "gmcSubmissionDate": _dates(np.array([when + 90]), "%Y-%m-%d")[0].as_py(),
        "admin": ADMINS[0],
    }
    for name, record in (("connection_logs", log), ("recommendation_records", recommendation)):
        table = context.tables[name]
        row = pa.table({c: pa.array([record.get(c)], pa.string()) for c in table.column_names if c != RECORD_COLUMN})
        context.tables[name] = pa.concat_tables([table.drop_columns([RECORD_COLUMN]), row])


def _append_records(table: pa.Table, records: Sequence[dict[str, str | None]]) -> pa.Table:
    """`table` with text `records` after its rows (a field a record leaves out is null)."""
    columns = [c for c in table.column_names if c != RECORD_COLUMN]
    rows = pa.table({c: pa.array([r.get(c) for r in records], pa.string()) for c in columns})
    return pa.concat_tables([table.select(columns), rows])


def legacy_null_ids(context: FaultContext) -> None:
    """Two legacy (pre-2020 snapshot) recommendations of one doctor, both without an id: different records,
    which the sync must keep apart (a derived id), not take for duplicates of each other."""
    doctors = context.tables["gmc_doctors"]["gmcReferenceNumber"]
    rng = context.rng
    number = doctors[int(rng.integers(0, len(doctors)))].as_py() if len(doctors) else str(context.first_gmc_number)
    first = _days(date(2015, 1, 1)) + int(rng.integers(0, 700))
    second = _days(date(2018, 1, 1)) + int(rng.integers(0, 700))
    day = _dates(np.array([first, first - 21, second, second - 9, second + 182]), "%Y-%m-%d").to_pylist()
    admin = rng.choice(len(ADMINS), size=2, replace=False)
    records = (
        {"id": None, "gmcNumber": number, "recommendationType": RecommendationType.REVALIDATE.value,
         "recommendationStatus": RecommendationStatus.COMPLETED.value, "outcome": GmcOutcome.APPROVED.value,
         "gmcSubmissionDate": day[0], "actualSubmissionDate": day[1], "admin": ADMINS[admin[0]]},
        {"id": None, "gmcNumber": number, "recommendationType": RecommendationType.DEFER.value,
         "recommendationStatus": RecommendationStatus.COMPLETED.value, "outcome": GmcOutcome.APPROVED.value,
         "gmcSubmissionDate": day[2], "actualSubmissionDate": day[3], "deferralDate": day[4],
         "deferralReason": str(DeferralReason.INSUFFICIENT_EVIDENCE.value),
         "deferralSubReason": str(DeferralSubReason.COLLEAGUE_FEEDBACK.value), "admin": ADMINS[admin[1]]},
    )  # fmt: skip
    context.tables["recommendation_records"] = _append_records(context.tables["recommendation_records"], records)


def tis_free_text_gmc(context: FaultContext) -> None:
    """TIS keeps the GMC number as free text: one blank, one short (6 digits), one with a letter (O for 0),
    and one number held by two TIS persons (a second person, with its own tcsPersonId)."""
    table = context.tables["tis_trainees"]
    positions = _handful(context.rng, table.num_rows, 4)
    edited, shared = positions[:3], positions[3:]
    six = [n[:6] for n in table["gmcReferenceNumber"].take(pa.array(edited)).to_pylist()]  # three values
    values = ["", *six[1:2], *(n + "O" for n in six[2:3])]
    table = _replace(table, "gmcReferenceNumber", edited, pa.array(values, pa.string()))
    if len(shared):
        second = table.take(pa.array(shared))
        person_id = int(pc.max(pc.cast(table["tcsPersonId"], pa.int64())).as_py()) + 1
        second = second.set_column(
            second.schema.get_field_index("tcsPersonId"), "tcsPersonId", pa.array([str(person_id)], pa.string())
        )
        table = pa.concat_tables([table, second])
    context.tables["tis_trainees"] = table


Fault = Callable[[FaultContext], None]
# Applied in this order whatever order they are asked for; mapping_break last, so that the
# recommendation payload is empty even when other faults touch it.
REGISTRY: dict[str, Fault] = {
    "unmapped_fields": unmapped_fields,
    "missing_connections": missing_connections,
    "duplicate_keys": duplicate_keys,
    "malformed_dates": malformed_dates,
    "unknown_enums": unknown_enums,
    "orphan_connection": orphan_connection,
    "legacy_null_ids": legacy_null_ids,
    "tis_free_text_gmc": tis_free_text_gmc,
    "mapping_break": mapping_break,
}


def apply_faults(names: Sequence[str], tables: Tables, people: _People, seed: int) -> None:
    """Apply the named faults to `tables`, in `REGISTRY` order, each drawing from its own stream of `seed`."""
    for name, fault in REGISTRY.items():
        if name in names:
            fault(FaultContext.of(tables, np.random.default_rng([seed, 1, NAMES.index(name)]), people))
