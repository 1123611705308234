"""`non_empty`: no entity is empty."""

from __future__ import annotations

from reval_assets.domain.schemas import GUARDED_ENTITIES
from reval_assets.quality.model import CandidateData, CheckResult
from reval_assets.quality.thresholds import Thresholds


def check_non_empty(data: CandidateData, thresholds: Thresholds) -> CheckResult:
    """No entity is empty: an empty list on a screen is an outage, not a quiet day."""
    rows = {entity: data.tables[entity].num_rows for entity in GUARDED_ENTITIES}
    empty = [entity for entity, n in rows.items() if n < thresholds.min_rows]
    return CheckResult(
        name="non_empty",
        passed=not empty,
        description=(f"{', '.join(empty)} would be empty (fewer than {thresholds.min_rows} rows); an empty "
                     "input is usually a broken export or mapping, not real data") if empty
        else "every entity has rows",
        metadata={**{f"rows_{e}": n for e, n in rows.items()}, **thresholds.metadata("min_rows")},
    )
