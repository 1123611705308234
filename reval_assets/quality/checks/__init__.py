"""Blocking checks that a candidate must pass before it may go live.

Each check is a pure function of the candidate (and, where it compares, the live version)
returning a `CheckResult` with numbers in its metadata, not just pass/fail, and the
thresholds it applied: one module per check here, registered in `CHECKS` in the order they
run. The checks answer the two data faults of the Dec 2023 incident:

- `mapping_coverage`: the traineeInfo → recommendationInfo mapping (a renamed list key, or
  trainee fields that stopped mapping) is measured, and an unknown list key is named;
- `drift`: a list that loses a share of its rows against live, per entity and per
  designated body (the Connections page emptying while a resync rebuilt it);

plus `schema`, `non_empty`, `unique_keys`, `referential_integrity`, `freshness` and
`quarantine_budget`. What they read and return is in `quality.model`, their thresholds in
`quality.thresholds`, the drift engine (shared with `reval diff`) in `quality.drift`.

A new check: a module here with `check_<name>(data, thresholds) -> CheckResult`, and a line in `CHECKS`.
"""

from __future__ import annotations

from reval_assets.domain.summaries import ReasonCount
from reval_assets.quality.checks.drift import check_drift
from reval_assets.quality.checks.freshness import check_freshness
from reval_assets.quality.checks.mapping_coverage import check_mapping_coverage, coverage
from reval_assets.quality.checks.non_empty import check_non_empty
from reval_assets.quality.checks.quarantine_budget import check_quarantine_budget
from reval_assets.quality.checks.referential_integrity import check_referential_integrity
from reval_assets.quality.checks.schema import check_schema
from reval_assets.quality.checks.unique_keys import check_unique_keys
from reval_assets.quality.drift import EntityDrift, drift_changes, entity_drift
from reval_assets.quality.model import BatchPair, CandidateData, Check, CheckResult, Export, InputReport, parse_time
from reval_assets.quality.thresholds import Thresholds

CHECKS: dict[str, Check] = {
    "schema": check_schema,
    "non_empty": check_non_empty,
    "unique_keys": check_unique_keys,
    "mapping_coverage": check_mapping_coverage,
    "drift": check_drift,
    "referential_integrity": check_referential_integrity,
    "freshness": check_freshness,
    "quarantine_budget": check_quarantine_budget,
}


def run_checks(data: CandidateData, thresholds: Thresholds | None = None) -> list[CheckResult]:
    thresholds = thresholds or Thresholds()
    return [check(data, thresholds) for check in CHECKS.values()]


__all__ = [
    "CHECKS",
    "BatchPair",
    "CandidateData",
    "Check",
    "CheckResult",
    "EntityDrift",
    "Export",
    "InputReport",
    "ReasonCount",
    "Thresholds",
    "check_drift",
    "check_freshness",
    "check_mapping_coverage",
    "check_non_empty",
    "check_quarantine_budget",
    "check_referential_integrity",
    "check_schema",
    "check_unique_keys",
    "coverage",
    "drift_changes",
    "entity_drift",
    "parse_time",
    "run_checks",
]
