"""`quarantine_budget`: no input had more than a set share of its records quarantined, or could not
be read at all."""

from __future__ import annotations

from reval_assets.quality.model import CandidateData, CheckResult, InputReport
from reval_assets.quality.text import examples, pct
from reval_assets.quality.thresholds import Thresholds


def check_quarantine_budget(data: CandidateData, thresholds: Thresholds) -> CheckResult:
    """No input had more than a set share of its records quarantined, or could not be read at all."""
    limit = thresholds.max_quarantine_share
    problems: list[str] = []
    worst: dict[str, InputReport] = {}
    for report in data.inputs():
        if report.input not in worst or report.quarantined_share > worst[report.input].quarantined_share:
            worst[report.input] = report
        for problem in report.problems:
            problems.append(f"{report.file} could not be read as a whole: {problem}")
        if report.quarantined_share > limit:
            top = "; ".join(f"{r.records} × {r.field}: {r.problem}{examples(r.examples[:2])}"
                            for r in report.reasons[:3])
            problems.append(f"{report.file}: {report.quarantined} of {report.records} records{report.scope} "
                            f"quarantined ({pct(report.quarantined_share)}, limit {pct(limit)}): {top}")
    lines = ["| input | file | records | quarantined | share | top problem |", "|---|---|---|---|---|---|"]
    for name, r in worst.items():
        top = f"{r.reasons[0].records} × {r.reasons[0].field}: {r.reasons[0].problem}" if r.reasons else ""
        lines.append(f"| {name} | {r.file} | {r.records} | {r.quarantined} | {pct(r.quarantined_share)} | {top} |")
    largest = max(worst.values(), key=lambda r: r.quarantined_share, default=None)
    free_text = sum(report.free_text_gmc_records for report in data.inputs())
    if free_text > thresholds.max_tis_gmc_number_records:
        problems.append(f"{free_text} TIS persons were quarantined for their GMC number (blank, malformed or shared; "
                        f"limit {thresholds.max_tis_gmc_number_records}): more than the free text of TIS explains")
    apart = (f"; and {free_text} TIS persons for their free-text GMC number (limit "
             f"{thresholds.max_tis_gmc_number_records})" if free_text else "")
    return CheckResult.of("quarantine_budget", problems,
                   f"at most {pct(largest.quarantined_share if largest else 0.0)} of any input quarantined "
                   f"(limit {pct(limit)}){apart}", {
        **{f"quarantined_{name}": r.quarantined for name, r in worst.items()},
        **{f"quarantined_share_{name}": round(r.quarantined_share, 4) for name, r in worst.items()},
        "worst_input": largest.input if largest else "none",
        "worst_share": round(largest.quarantined_share, 4) if largest else 0.0,
        "inputs_not_read": sum(len(r.problems) for r in data.inputs()),
        "tis_gmc_number_records": free_text,
        **thresholds.metadata("max_quarantine_share", "max_tis_gmc_number_records"),
    }, "\n".join(lines))
