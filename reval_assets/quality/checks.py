"""Blocking checks that a candidate must pass before it may go live.

Each check is a pure function of the candidate (and, where it compares, the live version)
returning a `CheckResult` with numbers in its metadata, not just pass/fail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.schemas import ENTITY_SPECS


@dataclass(frozen=True)
class Thresholds:
    """Every threshold in one place, with safe defaults; shown in each check's metadata."""

    min_rows: int = 1


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    description: str
    blocking: bool = True
    metadata: dict[str, float | int | str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CandidateData:
    """The candidate's rows per entity, and the live version's (None before the first publish)."""

    tables: dict[str, pa.Table]
    live: dict[str, pa.Table] | None = None


Check = Callable[[CandidateData, Thresholds], CheckResult]


def check_schema(data: CandidateData, thresholds: Thresholds) -> CheckResult:
    """Every entity has exactly its columns and types; required columns hold no nulls."""
    problems: list[str] = []
    for entity, spec in ENTITY_SPECS.items():
        table = data.tables[entity]
        actual = {f.name: f.type for f in table.schema}
        for f in spec.schema:
            if f.name not in actual:
                problems.append(f"{entity}.{f.name} is missing")
            elif actual[f.name] != f.type:
                problems.append(f"{entity}.{f.name} is {actual[f.name]}, expected {f.type}")
            elif not f.nullable and table[f.name].null_count:
                problems.append(f"{entity}.{f.name} has {table[f.name].null_count} nulls")
        problems += [f"{entity}.{name} is not in the schema" for name in actual if name not in spec.schema.names]
    return CheckResult(
        name="schema",
        passed=not problems,
        description="; ".join(problems) if problems else "every entity has its columns, types and required values",
        metadata={"problems": len(problems)},
    )


def check_non_empty(data: CandidateData, thresholds: Thresholds) -> CheckResult:
    """No entity is empty: an empty list on a screen is an outage, not a quiet day."""
    rows = {entity: data.tables[entity].num_rows for entity in ENTITY_SPECS}
    empty = [entity for entity, n in rows.items() if n < thresholds.min_rows]
    return CheckResult(
        name="non_empty",
        passed=not empty,
        description=(f"{', '.join(empty)} would be empty (fewer than {thresholds.min_rows} rows); an empty "
                     "input is usually a broken export or mapping, not real data") if empty
        else "every entity has rows",
        metadata={**{f"rows_{e}": n for e, n in rows.items()}, "min_rows": thresholds.min_rows},
    )


def check_unique_keys(data: CandidateData, thresholds: Thresholds) -> CheckResult:
    """Each entity's key identifies one row."""
    duplicates: dict[str, int] = {}
    for entity, spec in ENTITY_SPECS.items():
        table = data.tables[entity]
        key = table[spec.key[0]]
        duplicates[entity] = len(key) - pc.count_distinct(key).as_py()
    bad = {e: n for e, n in duplicates.items() if n}
    return CheckResult(
        name="unique_keys",
        passed=not bad,
        description=", ".join(f"{n} duplicate {ENTITY_SPECS[e].key[0]} in {e}" for e, n in bad.items())
        or "every key is unique",
        metadata={f"duplicates_{e}": n for e, n in duplicates.items()},
    )


CHECKS: dict[str, Check] = {
    "schema": check_schema,
    "non_empty": check_non_empty,
    "unique_keys": check_unique_keys,
}


def run_checks(data: CandidateData, thresholds: Thresholds | None = None) -> list[CheckResult]:
    thresholds = thresholds or Thresholds()
    return [check(data, thresholds) for check in CHECKS.values()]
