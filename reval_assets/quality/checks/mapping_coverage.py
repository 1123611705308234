"""`mapping_coverage`: recommendations carry their trainee fields (traineeInfo → recommendationInfo)
and cover the doctors under notice; an empty or unread recommendation list is named."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain import enums
from reval_assets.domain.schemas import COVERED_TRAINEE_FIELDS
from reval_assets.domain.schemas import GMC_NUMBER as GMC
from reval_assets.quality.measure import count, share
from reval_assets.quality.model import CandidateData, CheckResult, Table
from reval_assets.quality.text import pct
from reval_assets.quality.thresholds import Thresholds

RECOMMENDATIONS = "recommendation_records"
UNDER_NOTICE: tuple[str, ...] = (enums.UnderNotice.YES.value, enums.UnderNotice.ON_HOLD.value)


@dataclass(frozen=True)
class Coverage:
    rows: int
    fully_mapped: int
    fields: dict[str, float]
    under_notice: int
    under_notice_covered: int

    @property
    def mapping(self) -> float:
        return self.fully_mapped / self.rows if self.rows else 0.0  # nothing mapped is no coverage

    @property
    def notice(self) -> float:
        return share(self.under_notice_covered, self.under_notice)


def coverage(tables: Mapping[str, Table]) -> Coverage:
    """How well the trainee fields map onto the recommendations of connected doctors, and under-notice connected
    doctors have one. A disconnected doctor (`exists_in_gmc` false) keeps their history but has no body to map."""
    recs, doctors = tables["recommendations"], tables["doctors"]
    connected = pc.fill_null(doctors["exists_in_gmc"], True) if "exists_in_gmc" in doctors.column_names else None
    numbers = doctors[GMC] if connected is None else doctors[GMC].filter(connected)
    judged = pc.is_in(recs[GMC], value_set=pc.unique(numbers.combine_chunks()))
    rows = count(judged)
    filled: pa.Array | None = None
    shares: dict[str, float] = {}
    for name in COVERED_TRAINEE_FIELDS:
        column = recs[name].filter(judged)
        shares[name] = share(rows - column.null_count, rows)
        filled = pc.is_valid(column) if filled is None else pc.and_(filled, pc.is_valid(column))
    notice = pc.fill_null(pc.is_in(doctors["under_notice"], value_set=pa.array(UNDER_NOTICE)), False)
    notice = notice if connected is None else pc.and_(notice, connected)
    noticed = doctors[GMC].filter(notice)
    covered = count(pc.is_in(noticed, value_set=pc.unique(recs[GMC].combine_chunks())))
    return Coverage(rows=rows, fully_mapped=count(filled) if filled is not None else 0, fields=shares,
                    under_notice=len(noticed), under_notice_covered=covered)


def check_mapping_coverage(data: CandidateData, thresholds: Thresholds) -> CheckResult:
    """Recommendations carry their trainee fields (traineeInfo → recommendationInfo) and cover doctors under notice."""
    t = thresholds
    problems: list[str] = []
    live_recs = data.live["recommendations"].num_rows if data.live else 0
    reports = list(data.inputs(RECOMMENDATIONS))
    for report in reports:
        problems += [f"{report.file}: {problem}; the recommendation list was not read, so this release would "
                     "show no recommendations" for problem in report.problems]
    empty_inputs = [r for r in reports if r.records == 0 and not r.problems]
    if live_recs and (empty_inputs or data.tables["recommendations"].num_rows == 0) and not problems:
        where = ", ".join(r.file for r in empty_inputs) or "the source"
        problems.append(f"{where} sent an empty recommendation list while live {data.live_version or ''} has "
                        f"{live_recs} recommendations: a broken export or list key, not a quiet day")
    now, live = coverage(data.tables), coverage(data.live) if data.live else None
    if now.rows and now.mapping < t.min_mapping_coverage:
        worst = min(now.fields, key=now.fields.get)
        problems.append(f"only {pct(now.mapping)} of {now.rows} recommendations have every mapped trainee field "
                        f"(minimum {pct(t.min_mapping_coverage)}); worst is {worst} at {pct(now.fields[worst])}")
    if now.under_notice and now.notice < t.min_under_notice_coverage:
        problems.append(f"only {now.under_notice_covered} of {now.under_notice} doctors under notice "
                        f"({pct(now.notice)}) have a recommendation (minimum {pct(t.min_under_notice_coverage)})")
    drops: dict[str, float] = {}
    if live is not None:
        if now.rows and live.rows:
            drops["mapping"] = 100 * (live.mapping - now.mapping)
        if now.under_notice and live.under_notice:
            drops["under_notice"] = 100 * (live.notice - now.notice)
        for name, drop in drops.items():
            if drop > t.max_coverage_drop_points:
                was, is_ = (live.mapping, now.mapping) if name == "mapping" else (live.notice, now.notice)
                label = "mapping coverage" if name == "mapping" else "under-notice coverage"
                problems.append(f"{label} fell {drop:.1f} points against live ({pct(was)} → {pct(is_)}; "
                                f"at most {t.max_coverage_drop_points:g} allowed)")
    return CheckResult.of("mapping_coverage", problems,
                   f"{pct(now.mapping)} of recommendations fully mapped, {pct(now.notice)} of doctors under "
                   "notice have a recommendation", {
        "recommendation_rows": now.rows,
        "recommendation_input_records": sum(r.records for r in reports),
        "input_problems": sum(len(r.problems) for r in reports),
        "mapping_coverage": round(now.mapping, 4),
        **{f"coverage_{name}": round(filled, 4) for name, filled in now.fields.items()},
        "under_notice_doctors": now.under_notice,
        "under_notice_with_recommendation": now.under_notice_covered,
        "under_notice_coverage": round(now.notice, 4),
        "live_recommendation_rows": live_recs,
        "live_mapping_coverage": round(live.mapping, 4) if live and live.rows else "n/a",
        "live_under_notice_coverage": round(live.notice, 4) if live and live.under_notice else "n/a",
        "mapping_drop_points": round(drops.get("mapping", 0.0), 2),
        "under_notice_drop_points": round(drops.get("under_notice", 0.0), 2),
        **t.metadata("min_mapping_coverage", "min_under_notice_coverage", "max_coverage_drop_points"),
    })

