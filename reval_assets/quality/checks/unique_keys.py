"""`unique_keys`: each entity's key identifies one row, and the source sent no two records with one key."""

from __future__ import annotations

import pyarrow.compute as pc

from reval_assets.domain.enums import QuarantineReason
from reval_assets.domain.schemas import ENTITY_SPECS
from reval_assets.quality.model import TIS_GMC_WIRE, TIS_INPUT, CandidateData, CheckResult
from reval_assets.quality.text import examples
from reval_assets.quality.thresholds import Thresholds


def check_unique_keys(data: CandidateData, thresholds: Thresholds) -> CheckResult:
    """Each entity's key identifies one row, and the source sent no two records with one key."""
    problems: list[str] = []
    duplicates: dict[str, int] = {}
    for entity, spec in ENTITY_SPECS.items():
        table = data.tables[entity]
        if len(spec.key) == 1:
            duplicates[entity] = len(table) - len(pc.unique(table[spec.key[0]]))  # a third of count_distinct's time
        else:
            duplicates[entity] = len(table) - table.select(list(spec.key)).group_by(list(spec.key)).aggregate(
                []).num_rows
        if duplicates[entity]:
            counts = table.select(list(spec.key)).group_by(list(spec.key)).aggregate([([], "count_all")])
            repeated = counts.filter(pc.greater(counts["count_all"], 1))[spec.key[0]].to_pylist()[:3]
            problems.append(f"{duplicates[entity]} duplicate {', '.join(spec.key)} in {entity}{examples(repeated)}")
    in_source = [(report, reason) for report, reason in data.reasons(QuarantineReason.DUPLICATE_KEY)
                 if not (report.input == TIS_INPUT and reason.field == TIS_GMC_WIRE)]  # budgeted apart
    source_records = sum(reason.records for _, reason in in_source)
    if source_records > thresholds.max_duplicate_key_records:
        problems += [f"{report.file}: {reason.records} records share a {reason.field}{examples(reason.examples)}; "
                     "the source contradicts itself, so every one was quarantined (none can be trusted over another)"
                     for report, reason in in_source]
    return CheckResult.of("unique_keys", problems, "every key is unique, in the candidate and in the source", {
        **{f"duplicates_{e}": n for e, n in duplicates.items()},
        "duplicate_key_records_in_source": source_records,
        **thresholds.metadata("max_duplicate_key_records"),
    })
