"""`freshness`: the source export the candidate is built from is not older than a set age."""

from __future__ import annotations

from datetime import datetime

from reval_assets.quality.model import CandidateData, CheckResult
from reval_assets.quality.text import batch_list
from reval_assets.quality.thresholds import Thresholds


def _age_hours(now: datetime, then: datetime) -> float:
    return (now - then).total_seconds() / 3600


def check_freshness(data: CandidateData, thresholds: Thresholds) -> CheckResult:
    """The source export the candidate is built from is not older than a set age."""
    limit = thresholds.max_export_age_hours
    problems: list[str] = []
    unknown = [e for e in data.exports if e.exported_at is None]
    if not data.exports:
        problems.append("no export time is recorded for this candidate, so its age is unknown")
    for export in unknown:
        problems.append(f"the export time of batches {batch_list(export.batches)} ({export.source}) is not recorded "
                        "(built before export times were kept); re-sync those batches")
    for export in data.exports:
        if export.exported_at is not None and _age_hours(data.now, export.exported_at) > limit:
            problems.append(f"batches {batch_list(export.batches)} come from an export made "
                            f"{export.exported_at.isoformat(timespec='seconds')}, "
                            f"{_age_hours(data.now, export.exported_at):.1f} h ago ({export.source}); "
                            f"the limit is {limit:g} h: export again, or raise max_export_age_hours for this run")
    times = [e.exported_at for e in data.exports if e.exported_at is not None]
    oldest = min(times) if times else None
    age = _age_hours(data.now, oldest) if oldest else None
    live_age = _age_hours(data.now, data.live_exported_at) if data.live_exported_at else None
    return CheckResult.of("freshness", problems,
                   f"the export is {age:.1f} h old (limit {limit:g} h)" if age is not None else "", {
        "exported_at": oldest.isoformat(timespec="seconds") if oldest else "unknown",
        "export_age_hours": round(age, 2) if age is not None else "unknown",
        "live_exported_at": data.live_exported_at.isoformat(timespec="seconds") if data.live_exported_at
        else "n/a",
        "live_export_age_hours": round(live_age, 2) if live_age is not None else "n/a",
        **thresholds.metadata("max_export_age_hours"),
    })
