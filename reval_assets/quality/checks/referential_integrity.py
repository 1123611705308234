"""`referential_integrity`: connections and recommendations belong to a doctor (in the candidate and in
what the source sent); designated bodies are in the environment's configured list
(`CandidateData.designated_bodies`); discrepancy flags agree with the codes."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain.schemas import DESIGNATED_BODY as DB
from reval_assets.domain.schemas import GMC_NUMBER as GMC
from reval_assets.domain.schemas import TIS_DESIGNATED_BODY as TIS_DB
from reval_assets.quality.measure import count, outside
from reval_assets.quality.model import CandidateData, CheckResult, InputReport
from reval_assets.quality.text import examples
from reval_assets.quality.thresholds import Thresholds
from reval_assets.transforms.build import is_discrepancy

RECOMMENDATIONS = "recommendation_records"
# Columns holding a designated-body code, per entity.
BODY_COLUMNS: dict[str, tuple[str, ...]] = {
    "doctors": (DB, TIS_DB),
    "connections": (DB, TIS_DB),
    "recommendations": (DB,),
}


def _strays(report: InputReport, doctors: pa.Array) -> tuple[int, list[str]]:
    """How many of the input's records point at a doctor the source did not send, leaving out the doctors this
    version keeps from live (`transforms.build.carry_forward`); and a few of their GMC numbers."""
    of = report.unmatched_of
    if of is None or not of.numbers:
        return report.unmatched, list(report.unmatched_examples)
    numbers = pa.array(list(of.numbers), pa.string())
    unknown = numbers.filter(pc.invert(pc.is_in(numbers, value_set=doctors))).to_pylist()
    known = set(of.numbers) - set(unknown)
    return of.beyond(known), sorted(unknown)[:3]


def check_referential_integrity(data: CandidateData, thresholds: Thresholds) -> CheckResult:
    """Connections and recommendations belong to a doctor; designated bodies are known; discrepancy flags agree."""
    problems: list[str] = []
    doctors = pc.unique(data.tables["doctors"][GMC].combine_chunks())
    orphans: dict[str, int] = {}
    for entity in ("connections", "recommendations"):
        numbers = data.tables[entity][GMC]
        missing = numbers.filter(pc.invert(pc.is_in(numbers, value_set=doctors)))
        orphans[entity] = len(missing)
        if len(missing):
            problems.append(f"{len(missing)} {entity} rows belong to no doctor in this version"
                            f"{examples(pc.unique(missing).to_pylist()[:3])}")
    strays = [(report, *_strays(report, doctors)) for report in data.inputs()]
    unmatched = {name: sum(n for report, n, _ in strays if report.input == name)
                 for name in ("connection_logs", RECOMMENDATIONS)}
    if sum(unmatched.values()) > thresholds.max_unmatched_records:
        for report, records, numbers in strays:
            if records:
                what = ("current connection(s) (latest request an ADD)" if report.input == "connection_logs"
                        else "record(s)")
                problems.append(f"{report.file}: {records} {what} point at a doctor who is in neither "
                                f"the GMC nor the TIS export, nor kept from live{examples(numbers)}")
    known = pa.array(data.designated_bodies, pa.string())
    unknown_bodies = 0
    for entity, columns in BODY_COLUMNS.items():
        for column in columns:
            values = data.tables[entity][column]
            bad = values.filter(outside(values, known))
            unknown_bodies += len(bad)
            if len(bad):
                problems.append(f"{entity}.{column} has {len(bad)} unknown designated-body codes"
                                f"{examples(pc.unique(bad).to_pylist()[:3])}, not among the "
                                f"{len(data.designated_bodies)} configured for {data.env}")
    connections = data.tables["connections"]
    expected = is_discrepancy(connections[DB], connections[TIS_DB])
    wrong = count(pc.not_equal(connections["is_discrepancy"], expected))
    if wrong:
        problems.append(f"{wrong} connections have an is_discrepancy flag that disagrees with their GMC and TIS "
                        "designated bodies")
    return CheckResult.of("referential_integrity", problems,
                   "every connection and recommendation has its doctor, every designated body is known, and "
                   "every discrepancy flag agrees with the codes", {
        "orphan_connections": orphans["connections"],
        "orphan_recommendations": orphans["recommendations"],
        "unmatched_connection_logs_in_source": unmatched["connection_logs"],
        "unmatched_recommendations_in_source": unmatched[RECOMMENDATIONS],
        "unknown_designated_body_codes": unknown_bodies,
        "known_designated_bodies": len(data.designated_bodies),
        "designated_bodies_env": data.env,
        "discrepancy_flags_wrong": wrong,
        **thresholds.metadata("max_unmatched_records"),
    })
