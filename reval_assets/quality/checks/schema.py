"""`schema`: every entity has exactly its columns, types and required values; enum values are known ones."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain import enums
from reval_assets.domain.enums import QuarantineReason
from reval_assets.domain.schemas import ENTITY_SPECS, EntitySpec
from reval_assets.quality.measure import outside
from reval_assets.quality.model import CandidateData, CheckResult, Table
from reval_assets.quality.text import examples, pct
from reval_assets.quality.thresholds import Thresholds


def _text_values(enum: type) -> tuple[str, ...]:
    return tuple(str(v) for v in enums.values(enum))


# Enumerated columns of the live entities and the values the schema allows.
ENUM_COLUMNS: dict[tuple[str, str], tuple[str, ...]] = {
    ("doctors", "under_notice"): _text_values(enums.UnderNotice),
    ("doctors", "gmc_status"): _text_values(enums.GmcOutcome),
    ("doctors", "tis_status"): _text_values(enums.RecommendationStatus),
    ("connections", "connection_status"): _text_values(enums.ConnectionStatus),
    ("recommendations", "recommendation_type"): _text_values(enums.RecommendationType),
    ("recommendations", "recommendation_status"): _text_values(enums.RecommendationStatus),
    ("recommendations", "gmc_outcome"): _text_values(enums.GmcOutcome),
    ("recommendations", "deferral_reason"): _text_values(enums.DeferralReason),
    ("recommendations", "deferral_sub_reason"): _text_values(enums.DeferralSubReason),
    ("recommendations", "under_notice"): _text_values(enums.UnderNotice),
}
# Derived from another entity (doctors' latest recommendation), so their emptying is reported
# by mapping_coverage and non_empty, not as a vanished column.
DERIVED_COLUMNS: frozenset[tuple[str, str]] = frozenset({("doctors", "gmc_status"), ("doctors", "tis_status")})


@dataclass
class _Found:
    """What the schema check found so far, across entities."""

    problems: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    retyped: list[str] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    unknown_rows: int = 0


def _filled_in_live(live: Table | None, name: str) -> float:
    """The share of live's rows with a value in column `name` (0 without live, rows or that column)."""
    if live is None or not live.num_rows or name not in live.column_names:
        return 0.0
    return 1 - live[name].null_count / live.num_rows


def _check_entity(found: _Found, entity: str, spec: EntitySpec, table: pa.Table, live: Table | None) -> None:
    actual = {f.name: f.type for f in table.schema}
    for f in spec.schema:
        name = f"{entity}.{f.name}"
        if f.name not in actual:
            found.missing.append(name)
            found.problems.append(f"column {name} is missing")
            continue
        if actual[f.name] != f.type:
            found.retyped.append(name)
            found.problems.append(f"column {name} is {actual[f.name]}, expected {f.type}")
            continue
        column = table[f.name]
        if not f.nullable and column.null_count:
            found.problems.append(f"{name} has {column.null_count} nulls but is required")
        emptied = table.num_rows and column.null_count == table.num_rows and (entity, f.name) not in DERIVED_COLUMNS
        filled = _filled_in_live(live, f.name) if emptied else 0.0
        if filled:
            found.vanished.append(name)
            found.problems.append(f"column {name} is empty in all {table.num_rows} rows but {pct(filled)} filled "
                                  "in live: the source stopped sending it, or its mapping broke")
        allowed = ENUM_COLUMNS.get((entity, f.name))
        if allowed and pa.types.is_string(f.type):
            bad = column.filter(outside(column, pa.array(allowed)))
            if len(bad):
                found.unknown_rows += len(bad)
                found.problems.append(f"{name} has {len(bad)} rows with values outside {', '.join(allowed)}"
                                      f"{examples(pc.unique(bad).to_pylist()[:3])}")
    found.problems += [f"column {entity}.{name} is not in the schema"
                       for name in actual if name not in spec.schema.names]


def _unknown_in_source(data: CandidateData, thresholds: Thresholds) -> tuple[int, list[str]]:
    """Source records quarantined for an unknown enum value, and the problems they make over the limit."""
    source_unknown = data.reasons(QuarantineReason.UNKNOWN_VALUE)
    unknown_records = sum(reason.records for _, reason in source_unknown)
    if unknown_records <= thresholds.max_unknown_enum_records:
        return unknown_records, []
    return unknown_records, [
        f"{report.file}: {reason.records} record(s) with an unknown {reason.field}{examples(reason.examples)} were "
        f"quarantined; the schema allows one of {', '.join(reason.allowed)} (a new value upstream is a contract "
        "change: add it to the schema, or raise max_unknown_enum_records for this run)"
        for report, reason in source_unknown]


def check_schema(data: CandidateData, thresholds: Thresholds) -> CheckResult:
    """Every entity has exactly its columns, types and required values; enum values are known ones."""
    found = _Found()
    for entity, spec in ENTITY_SPECS.items():
        _check_entity(found, entity, spec, data.tables[entity], (data.live or {}).get(entity))
    unknown_records, problems = _unknown_in_source(data, thresholds)
    problems = found.problems + problems
    return CheckResult.of("schema", problems, "every entity has its columns, types, required values and known enum "
                          "values", {
        "problems": len(problems),
        "missing_columns": ", ".join(found.missing),
        "retyped_columns": ", ".join(found.retyped),
        "vanished_columns": ", ".join(found.vanished),
        "unknown_enum_rows": found.unknown_rows,
        "unknown_enum_records_in_source": unknown_records,
        **thresholds.metadata("max_unknown_enum_records"),
    })
