"""Blocking checks that a candidate must pass before it may go live.

Each check is a pure function of the candidate (and, where it compares, the live version)
returning a `CheckResult` with numbers in its metadata, not just pass/fail, and the
thresholds it applied. The checks answer the two data faults of the Dec 2023 incident:

- `mapping_coverage`: the traineeInfo → recommendationInfo mapping (a renamed list key, or
  trainee fields that stopped mapping) is measured, and an unknown list key is named;
- `drift`: a list that loses a share of its rows against live, per entity and per
  designated body (the Connections page emptying while a resync rebuilt it);

plus `schema`, `non_empty`, `unique_keys`, `referential_integrity`, `freshness` and
`quarantine_budget`. Besides the candidate's tables, the checks read what the source sent
(`Export`/`InputReport`, recorded at landing), because a quarantined record or a connection
log for an unknown doctor leaves no row in the tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reval_assets.domain import enums
from reval_assets.domain.designated_bodies import DESIGNATED_BODY_CODES
from reval_assets.domain.schemas import ENTITY_SPECS, RAW_SPECS
from reval_assets.store.snapshots import LazyTable
from reval_assets.transforms.build import is_discrepancy

GMC = "gmc_reference_number"
DB = "designated_body_code"
TIS_DB = "tis_designated_body_code"
RECOMMENDATIONS = "recommendation_records"
UNKNOWN_VALUE = "unknown value"  # how `domain.conform` starts an unknown enum value's problem
DUPLICATE_KEY = "duplicate key"
# The trainee fields mapped onto each recommendation (the screen's recommendationInfo).
MAPPED_FIELDS: tuple[str, ...] = (
    "doctor_first_name",
    "doctor_last_name",
    "programme_name",
    "membership_type",
    "curriculum_end_date",
    DB,
)
UNDER_NOTICE: tuple[str, ...] = (enums.UnderNotice.YES.value, enums.UnderNotice.ON_HOLD.value)
# A table as the checks read it: in memory, or (live's side) read from its files a column at a time.
Table = pa.Table | LazyTable


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
# Columns holding a designated-body code, per entity.
BODY_COLUMNS: dict[str, tuple[str, ...]] = {
    "doctors": (DB, TIS_DB),
    "connections": (DB, TIS_DB),
    "recommendations": (DB,),
}
# Derived from another entity (doctors' latest recommendation), so their emptying is reported
# by mapping_coverage and non_empty, not as a vanished column.
DERIVED_COLUMNS: frozenset[tuple[str, str]] = frozenset({("doctors", "gmc_status"), ("doctors", "tis_status")})
MAX_LISTED = 8  # problems listed in a description before "and N more"


def _threshold(default: object, doc: str) -> object:
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class Thresholds:
    """Every threshold in one place, with safe defaults; each check shows the ones it applied.

    Exposed field by field on release_candidate's Dagster config, so an operator can change
    them for one run. `allow_drift_reason` is not a threshold but the one override: a known
    large change goes live only with a recorded reason, never by default.
    """

    min_rows: int = _threshold(1, "Fewest rows each entity may have.")
    min_mapping_coverage: float = _threshold(
        0.80, "Lowest share of recommendation rows with every mapped trainee field filled.")
    min_under_notice_coverage: float = _threshold(
        0.50, "Lowest share of under-notice doctors that have a recommendation row.")
    max_coverage_drop_points: float = _threshold(
        5.0, "Most a coverage may fall against live, in percentage points.")
    max_drift_loss_share: float = _threshold(
        0.05, "Largest share of its live rows an entity, or a designated body, may lose.")
    min_drift_rows: int = _threshold(
        10, "A loss of fewer rows than this never fails on its share alone (tiny bodies).")
    max_unknown_enum_records: int = _threshold(
        0, "Source records with an enum value the schema does not know (quarantined) tolerated.")
    max_duplicate_key_records: int = _threshold(0, "Source records sharing a key (quarantined) tolerated.")
    max_unmatched_records: int = _threshold(
        0, "Recommendations and current connections for a doctor not in the export tolerated.")
    max_export_age_hours: float = _threshold(48.0, "Oldest the source export may be, in hours.")
    max_quarantine_share: float = _threshold(
        0.01, "Largest share of any input that may be quarantined (of the records landed: in a partial re-sync, "
        "its batches').")
    allow_drift_reason: str = _threshold(
        "", "Lets a known large drift through; recorded in the check and the audit. Empty: never.")

    def __post_init__(self) -> None:
        shares = ("min_mapping_coverage", "min_under_notice_coverage", "max_drift_loss_share", "max_quarantine_share")
        for name in shares:
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"threshold {name} must be a share between 0 and 1, not {getattr(self, name)!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in shares and isinstance(value, (int, float)) and value < 0:
                raise ValueError(f"threshold {f.name} must not be negative, not {value!r}")

    def metadata(self, *names: str) -> dict[str, float | int | str]:
        return {f"threshold_{name}": getattr(self, name) for name in names}

    @classmethod
    def docs(cls) -> dict[str, str]:
        return {f.name: f.metadata["doc"] for f in fields(cls)}


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    description: str
    blocking: bool = True
    metadata: dict[str, float | int | str] = field(default_factory=dict)
    table: str = ""  # optional markdown detail (shown in Dagster, kept in the catalog)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Reason:
    """Records of one input quarantined for one problem with one field."""

    field: str
    problem: str
    records: int
    examples: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class InputReport:
    """What the source sent for one raw input, as recorded when it was landed."""

    input: str
    file: str
    records: int = 0
    kept: int = 0
    quarantined: int = 0
    problems: tuple[str, ...] = ()  # input-level: the input could not be read as a whole
    reasons: tuple[Reason, ...] = ()
    unmatched: int = 0  # records whose GMC number is no doctor's in the export
    unmatched_examples: tuple[str, ...] = ()
    # A partial re-sync lands only some batches: the counts are then of their records (and of any
    # record in no batch). Empty: of the whole export.
    batches: tuple[int, ...] = ()

    @property
    def scope(self) -> str:
        return f" in batch{'es' if len(self.batches) > 1 else ''} {_batches(self.batches)}" if self.batches else ""

    @property
    def quarantined_share(self) -> float:
        return self.quarantined / self.records if self.records else 0.0

    @classmethod
    def from_summary(cls, name: str, summary: dict) -> InputReport:
        file = RAW_SPECS[name].file if name in RAW_SPECS else name
        origin = summary.get("origin") or ""
        unmatched = summary.get("unmatched") or {}
        return cls(
            input=name,
            file=origin if origin.endswith(".json") else f"{file} ({origin or 'unknown origin'})",
            records=int(summary.get("records", 0)),
            kept=int(summary.get("kept", 0)),
            quarantined=int(summary.get("quarantined", 0)),
            problems=tuple(summary.get("problems", ())),
            reasons=tuple(Reason(r["field"], r["problem"], int(r["records"]), tuple(r.get("examples", ())))
                          for r in summary.get("reasons", ())),
            unmatched=int(unmatched.get("records", 0)),
            unmatched_examples=tuple(unmatched.get("examples", ())),
            batches=tuple(summary.get("landed_batches", ())),
        )


@dataclass(frozen=True)
class Export:
    """One read of the source (a landing) that some of the candidate's batches were built from."""

    key: str
    source: str
    batches: tuple[int, ...]
    exported_at: datetime | None  # None: not recorded (batches built before export times were kept)
    inputs: dict[str, InputReport] = field(default_factory=dict)

    @classmethod
    def from_manifest(cls, landings: dict[str, dict]) -> tuple[Export, ...]:
        return tuple(
            cls(key=key, source=body.get("source", "unknown"), batches=tuple(body.get("batches", ())),
                exported_at=parse_time(body.get("exported_at")),
                inputs={name: InputReport.from_summary(name, s) for name, s in body.get("inputs", {}).items()})
            for key, body in landings.items()
        )


@dataclass(frozen=True)
class BatchPair:
    """One batch of an entity: its rows in the candidate and in live, and whether both are one file."""

    rows: int
    live_rows: int
    same: bool


@dataclass(frozen=True)
class CandidateData:
    """The candidate's rows per entity, and the live version's (None before the first publish).

    `exports` are the source reads the candidate's batches were built from; `live_exported_at`
    is when live's oldest export was made; `now` is the time the checks run at.
    """

    tables: dict[str, pa.Table]
    live: dict[str, Table] | None = None
    exports: tuple[Export, ...] = ()
    live_version: str | None = None
    live_exported_at: datetime | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Per entity, how both sides' tables are laid out by batch: (candidate rows, live rows, whether
    # the two batch files are one and the same). Empty for an entity: compare the whole tables.
    layout: dict[str, tuple[BatchPair, ...]] = field(default_factory=dict)

    def inputs(self, name: str | None = None) -> Iterator[InputReport]:
        for export in self.exports:
            for report in export.inputs.values():
                if name is None or report.input == name:
                    yield report

    def changed(self, entity: str) -> tuple[pa.Table, Table]:
        """The candidate's and live's rows of `entity` in the batches whose files differ.

        A batch file both versions share holds the same rows on both sides, and (keys being unique)
        none of its keys is anywhere else: leaving it out changes no count of added, removed or changed.
        """
        assert self.live is not None
        new, old = self.tables[entity], self.live[entity]
        pairs = self.layout.get(entity, ())
        if sum(p.rows for p in pairs) != new.num_rows or sum(p.live_rows for p in pairs) != old.num_rows:
            return new, old  # no layout (or one that does not fit): compare the whole tables
        differ = [not pair.same for pair in pairs]
        kept_old = (old.parts(differ) if isinstance(old, LazyTable)  # one part per batch file
                    else _kept_batches(old, [pair.live_rows for pair in pairs], differ))
        return _kept_batches(new, [pair.rows for pair in pairs], differ), kept_old


def _kept_batches(table: pa.Table, sizes: Iterable[int], keep: Iterable[bool]) -> pa.Table:
    """The rows of the batches `keep` marks, of a table holding its batches in order, `sizes` rows each."""
    parts, at = [table.slice(0, 0)], 0
    for size, wanted in zip(sizes, keep, strict=True):
        if wanted:
            parts.append(table.slice(at, size))
        at += size
    return pa.concat_tables(parts)


Check = Callable[[CandidateData, Thresholds], CheckResult]


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- helpers ---------------------------------------------------------------------------------


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 1.0


def _pct(share: float) -> str:
    return f"{100 * share:.1f} %"


def _listed(problems: list[str]) -> str:
    more = len(problems) - MAX_LISTED
    return "; ".join(problems[:MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")


def _examples(values: Iterable[object]) -> str:
    shown = [repr(v) for v in values]
    return f" (e.g. {', '.join(shown)})" if shown else ""


def _result(name: str, problems: list[str], ok: str, metadata: dict, table: str = "") -> CheckResult:
    return CheckResult(name=name, passed=not problems, description=_listed(problems) if problems else ok,
                       metadata=metadata, table=table)


def _count(mask: pa.Array | pa.ChunkedArray) -> int:
    return int(pc.sum(pc.fill_null(mask, False)).as_py() or 0)


def _outside(values: pa.ChunkedArray, allowed: pa.Array) -> pa.ChunkedArray:
    """Non-null values not in `allowed` (null is "no value", never an unknown one)."""
    return pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, value_set=allowed)))


def _reasons(data: CandidateData, match: Callable[[str], bool]) -> list[tuple[InputReport, Reason]]:
    return [(report, reason) for report in data.inputs() for reason in report.reasons if match(reason.problem)]


# --- schema ----------------------------------------------------------------------------------


def _filled_in_live(live: Table | None, name: str) -> float:
    """The share of live's rows with a value in column `name` (0 without live, rows or that column)."""
    if live is None or not live.num_rows or name not in live.column_names:
        return 0.0
    return 1 - live[name].null_count / live.num_rows


def check_schema(data: CandidateData, thresholds: Thresholds) -> CheckResult:
    """Every entity has exactly its columns, types and required values; enum values are known ones."""
    problems: list[str] = []
    missing, retyped, vanished = [], [], []
    unknown_rows = 0
    for entity, spec in ENTITY_SPECS.items():
        table = data.tables[entity]
        live = (data.live or {}).get(entity)
        actual = {f.name: f.type for f in table.schema}
        for f in spec.schema:
            name = f"{entity}.{f.name}"
            if f.name not in actual:
                missing.append(name)
                problems.append(f"column {name} is missing")
                continue
            if actual[f.name] != f.type:
                retyped.append(name)
                problems.append(f"column {name} is {actual[f.name]}, expected {f.type}")
                continue
            column = table[f.name]
            if not f.nullable and column.null_count:
                problems.append(f"{name} has {column.null_count} nulls but is required")
            emptied = table.num_rows and column.null_count == table.num_rows and (entity, f.name) not in DERIVED_COLUMNS
            filled = _filled_in_live(live, f.name) if emptied else 0.0
            if filled:
                vanished.append(name)
                problems.append(f"column {name} is empty in all {table.num_rows} rows but {_pct(filled)} filled "
                                "in live: the source stopped sending it, or its mapping broke")
            allowed = ENUM_COLUMNS.get((entity, f.name))
            if allowed and pa.types.is_string(f.type):
                bad = column.filter(_outside(column, pa.array(allowed)))
                if len(bad):
                    unknown_rows += len(bad)
                    problems.append(f"{name} has {len(bad)} rows with values outside {', '.join(allowed)}"
                                    f"{_examples(pc.unique(bad).to_pylist()[:3])}")
        problems += [f"column {entity}.{name} is not in the schema" for name in actual if name not in spec.schema.names]
    source_unknown = _reasons(data, lambda p: p.startswith(UNKNOWN_VALUE))
    unknown_records = sum(reason.records for _, reason in source_unknown)
    if unknown_records > thresholds.max_unknown_enum_records:
        for report, reason in source_unknown:
            expected = reason.problem.partition("expected ")[2]
            problems.append(f"{report.file}: {reason.records} record(s) with an unknown {reason.field}"
                            f"{_examples(reason.examples)} were quarantined; the schema allows {expected} "
                            "(a new value upstream is a contract change: add it to the schema, or raise "
                            "max_unknown_enum_records for this run)")
    return _result("schema", problems, "every entity has its columns, types, required values and known enum values", {
        "problems": len(problems),
        "missing_columns": ", ".join(missing),
        "retyped_columns": ", ".join(retyped),
        "vanished_columns": ", ".join(vanished),
        "unknown_enum_rows": unknown_rows,
        "unknown_enum_records_in_source": unknown_records,
        **thresholds.metadata("max_unknown_enum_records"),
    })


# --- non-empty -------------------------------------------------------------------------------


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
        metadata={**{f"rows_{e}": n for e, n in rows.items()}, **thresholds.metadata("min_rows")},
    )


# --- unique keys -----------------------------------------------------------------------------


def check_unique_keys(data: CandidateData, thresholds: Thresholds) -> CheckResult:
    """Each entity's key identifies one row, and the source sent no two records with one key."""
    problems: list[str] = []
    duplicates: dict[str, int] = {}
    for entity, spec in ENTITY_SPECS.items():
        key = data.tables[entity][spec.key[0]]
        duplicates[entity] = len(key) - len(pc.unique(key))  # unique: a third of count_distinct's time
        if duplicates[entity]:
            counts = pa.table({"k": key}).group_by("k").aggregate([([], "count_all")])
            repeated = counts.filter(pc.greater(counts["count_all"], 1))["k"].to_pylist()[:3]
            problems.append(f"{duplicates[entity]} duplicate {spec.key[0]} in {entity}{_examples(repeated)}")
    in_source = _reasons(data, lambda p: p == DUPLICATE_KEY)
    source_records = sum(reason.records for _, reason in in_source)
    if source_records > thresholds.max_duplicate_key_records:
        problems += [f"{report.file}: {reason.records} records share a {reason.field}{_examples(reason.examples)}; "
                     "the source contradicts itself, so every one was quarantined (none can be trusted over another)"
                     for report, reason in in_source]
    return _result("unique_keys", problems, "every key is unique, in the candidate and in the source", {
        **{f"duplicates_{e}": n for e, n in duplicates.items()},
        "duplicate_key_records_in_source": source_records,
        **thresholds.metadata("max_duplicate_key_records"),
    })


# --- mapping coverage (traineeInfo -> recommendationInfo) ------------------------------------


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
        return _share(self.under_notice_covered, self.under_notice)


def coverage(tables: Mapping[str, Table]) -> Coverage:
    """How well the trainee fields map onto recommendations, and under-notice doctors have one."""
    recs, doctors = tables["recommendations"], tables["doctors"]
    filled: pa.Array | None = None
    shares: dict[str, float] = {}
    for name in MAPPED_FIELDS:
        column = recs[name]
        shares[name] = _share(recs.num_rows - column.null_count, recs.num_rows)
        filled = pc.is_valid(column) if filled is None else pc.and_(filled, pc.is_valid(column))
    notice = pc.fill_null(pc.is_in(doctors["under_notice"], value_set=pa.array(UNDER_NOTICE)), False)
    numbers = doctors[GMC].filter(notice)
    covered = _count(pc.is_in(numbers, value_set=pc.unique(recs[GMC].combine_chunks())))
    return Coverage(rows=recs.num_rows, fully_mapped=_count(filled) if filled is not None else 0, fields=shares,
                    under_notice=len(numbers), under_notice_covered=covered)


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
        problems.append(f"only {_pct(now.mapping)} of {now.rows} recommendations have every mapped trainee field "
                        f"(minimum {_pct(t.min_mapping_coverage)}); worst is {worst} at {_pct(now.fields[worst])}")
    if now.under_notice and now.notice < t.min_under_notice_coverage:
        problems.append(f"only {now.under_notice_covered} of {now.under_notice} doctors under notice "
                        f"({_pct(now.notice)}) have a recommendation (minimum {_pct(t.min_under_notice_coverage)})")
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
                problems.append(f"{label} fell {drop:.1f} points against live ({_pct(was)} → {_pct(is_)}; "
                                f"at most {t.max_coverage_drop_points:g} allowed)")
    return _result("mapping_coverage", problems,
                   f"{_pct(now.mapping)} of recommendations fully mapped, {_pct(now.notice)} of doctors under "
                   "notice have a recommendation", {
        "recommendation_rows": now.rows,
        "recommendation_input_records": sum(r.records for r in reports),
        "input_problems": sum(len(r.problems) for r in reports),
        "mapping_coverage": round(now.mapping, 4),
        **{f"coverage_{name}": round(share, 4) for name, share in now.fields.items()},
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


# --- drift against live ----------------------------------------------------------------------


@dataclass(frozen=True)
class EntityDrift:
    live_rows: int
    added: int
    removed: int
    changed: int
    # per designated body: live rows, rows lost (gone, or moved to another body), added, changed
    bodies: dict[str, dict[str, int]]


def _differs(a: pa.ChunkedArray, b: pa.ChunkedArray) -> pa.ChunkedArray:
    """Null-aware inequality: null vs value differs, null vs null does not."""
    return pc.or_(pc.xor(pc.is_null(a), pc.is_null(b)), pc.fill_null(pc.not_equal(a, b), False))


def _positions(n: int) -> pa.Array:
    return pa.array(np.arange(n, dtype=np.int64))  # from a Python range, 1.5M positions took a second


def _match(new_keys: pa.ChunkedArray, old_keys: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """Row positions pairing `new` and `old` by key (null where a key is on one side only).

    Only the keys are joined (not every column), and a candidate whose keys are live's in the
    same order (unchanged batches, or a re-sync of the same export) needs no join at all.
    """
    if new_keys.equals(old_keys):
        positions = _positions(len(new_keys))
        return positions, positions
    left = pa.table({"k": new_keys, "_new": _positions(len(new_keys))})
    right = pa.table({"k": old_keys, "_old": _positions(len(old_keys))})
    joined = left.join(right, keys="k", join_type="full outer", coalesce_keys=True, use_threads=True)
    return joined["_new"].combine_chunks(), joined["_old"].combine_chunks()


def _tally(*parts: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """How often each non-null value occurs across `parts`."""
    counts: dict[str, int] = {}
    for part in parts:
        for item in pc.value_counts(part).to_pylist():
            if item["values"] is not None:
                counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
    return counts


def entity_drift(entity: str, new: pa.Table, old: Table, live: Table | None = None) -> EntityDrift:
    """Rows added, removed and changed (by key), in total and per designated body.

    `new` and `old` may be parts of the candidate and live (the batches that differ); `live` is
    then the whole live table, which the shares are of. Rows are paired one column at a time, so
    the comparison holds two columns more than the tables, not two more copies of them.
    """
    live = old if live is None else live
    key = ENTITY_SPECS[entity].key[0]
    columns = [c for c in new.column_names if c in old.column_names and c != key]
    at_new, at_old = _match(new[key], old[key])
    in_new, in_old = pc.is_valid(at_new), pc.is_valid(at_old)
    both = pc.and_(in_new, in_old)
    pairs_new, pairs_old = at_new.filter(both), at_old.filter(both)
    changed = pa.array(np.zeros(len(pairs_new), dtype=bool))
    for column in columns:
        sides = new[column], old[column]
        pair = sides[0].take(pairs_new), sides[1].take(pairs_old)
        differs = _differs(*pair)
        changed = pc.or_(changed, differs)
        if column == DB:  # kept for the per-body tallies below
            (all_db_new, all_db_old), (db_new, db_old), moved = sides, pair, differs
    bodies: dict[str, dict[str, int]] = {}
    if DB in columns:
        tallies = {
            "live_rows": _tally(all_db_old if live is old else live[DB]),
            "lost": _tally(all_db_old.take(at_old.filter(pc.invert(in_new))), db_old.filter(moved)),
            "added": _tally(all_db_new.take(at_new.filter(pc.invert(in_old))), db_new.filter(moved)),
            "changed": _tally(db_old.filter(pc.and_(changed, pc.invert(moved)))),
        }
        for name, counts in tallies.items():
            for body, n in counts.items():
                bodies.setdefault(body, dict.fromkeys(tallies, 0))[name] = n
    return EntityDrift(live_rows=live.num_rows, added=_count(pc.invert(in_old)), removed=_count(pc.invert(in_new)),
                       changed=_count(changed), bodies=bodies)


def check_drift(data: CandidateData, thresholds: Thresholds) -> CheckResult:
    """No entity, and no designated body, loses more than a set share of its live rows (unless a reason is given)."""
    t = thresholds
    if data.live is None:
        return CheckResult(name="drift", passed=True, description="first publish: no live version to compare with",
                           metadata={"live_version": "none", **t.metadata("max_drift_loss_share", "min_drift_rows")})
    problems: list[str] = []
    metadata: dict[str, float | int | str] = {}
    lines = ["| entity | designated body | live rows | lost | added | changed | lost share |",
             "|---|---|---|---|---|---|---|"]
    worst = (0.0, "")

    def over(lost: int, rows: int) -> bool:
        return lost >= t.min_drift_rows and _share(lost, rows) > t.max_drift_loss_share if rows else False

    for entity in ENTITY_SPECS:
        drift = entity_drift(entity, *data.changed(entity), data.live[entity])
        share = _share(drift.removed, drift.live_rows) if drift.live_rows else 0.0
        metadata |= {f"{entity}_removed": drift.removed, f"{entity}_added": drift.added,
                     f"{entity}_changed": drift.changed, f"{entity}_removed_share": round(share, 4)}
        lines.append(f"| {entity} | (all) | {drift.live_rows} | {drift.removed} | {drift.added} | {drift.changed} "
                     f"| {_pct(share)} |")
        worst = max(worst, (share, entity))
        if over(drift.removed, drift.live_rows):
            problems.append(f"{entity} would lose {drift.removed} of {drift.live_rows} live rows ({_pct(share)})")
        for body, n in sorted(drift.bodies.items()):
            body_share = _share(n["lost"], n["live_rows"]) if n["live_rows"] else 0.0
            if n["lost"] or n["added"] or n["changed"]:
                lines.append(f"| {entity} | {body} | {n['live_rows']} | {n['lost']} | {n['added']} | {n['changed']} "
                             f"| {_pct(body_share)} |")
            worst = max(worst, (body_share, f"{entity} of {body}"))
            if over(n["lost"], n["live_rows"]):
                problems.append(f"designated body {body} would lose {n['lost']} of its {n['live_rows']} {entity} "
                                f"({_pct(body_share)})")
    limit = f"more than {_pct(t.max_drift_loss_share)} of its live rows (and at least {t.min_drift_rows})"
    metadata |= {"live_version": data.live_version or "unknown", "worst_loss_share": round(worst[0], 4),
                 "worst_loss": worst[1], "failures": len(problems), "allow_drift_reason": t.allow_drift_reason,
                 **t.metadata("max_drift_loss_share", "min_drift_rows")}
    table = "\n".join(lines)
    if problems and t.allow_drift_reason:
        metadata["overridden"] = True
        return CheckResult(name="drift", passed=True, metadata=metadata, table=table, description=(
            f"allowed by the operator's reason {t.allow_drift_reason!r} (recorded in the audit); "
            f"would have failed: {_listed(problems)}"))
    metadata["overridden"] = False
    if problems:
        return CheckResult(name="drift", passed=False, metadata=metadata, table=table, description=(
            f"{_listed(problems)}. The limit is losing {limit}; if this change is known and intended, re-run "
            "with allow_drift_reason set to why"))
    worst_text = f"; the largest loss is {_pct(worst[0])} ({worst[1]})" if worst[0] else ""
    return CheckResult(name="drift", passed=True, metadata=metadata, table=table, description=(
        f"no entity or designated body lost {limit} against live {data.live_version or ''}{worst_text}"))


def drift_changes(metadata: dict) -> dict[str, dict[str, int]]:
    """Rows added, removed and changed per entity, as the drift check counted them against live
    (the same figures as `reval diff`, which the Dagster asset shows without comparing again)."""
    return {e: {kind: int(metadata[f"{e}_{kind}"]) for kind in ("added", "removed", "changed")} for e in ENTITY_SPECS}


# --- referential integrity -------------------------------------------------------------------


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
                            f"{_examples(pc.unique(missing).to_pylist()[:3])}")
    unmatched = {name: sum(r.unmatched for r in data.inputs(name)) for name in ("connection_logs", RECOMMENDATIONS)}
    if sum(unmatched.values()) > thresholds.max_unmatched_records:
        for report in data.inputs():
            if report.unmatched:
                what = ("current connection(s) (latest request an ADD)" if report.input == "connection_logs"
                        else "record(s)")
                problems.append(f"{report.file}: {report.unmatched} {what} point at a doctor who is in neither "
                                f"the GMC nor the TIS export{_examples(report.unmatched_examples)}")
    known = pa.array(DESIGNATED_BODY_CODES)
    unknown_bodies = 0
    for entity, columns in BODY_COLUMNS.items():
        for column in columns:
            values = data.tables[entity][column]
            bad = values.filter(_outside(values, known))
            unknown_bodies += len(bad)
            if len(bad):
                problems.append(f"{entity}.{column} has {len(bad)} unknown designated-body codes"
                                f"{_examples(pc.unique(bad).to_pylist()[:3])}")
    connections = data.tables["connections"]
    expected = is_discrepancy(connections[DB], connections[TIS_DB])
    wrong = _count(pc.not_equal(connections["is_discrepancy"], expected))
    if wrong:
        problems.append(f"{wrong} connections have an is_discrepancy flag that disagrees with their GMC and TIS "
                        "designated bodies")
    return _result("referential_integrity", problems,
                   "every connection and recommendation has its doctor, every designated body is known, and "
                   "every discrepancy flag agrees with the codes", {
        "orphan_connections": orphans["connections"],
        "orphan_recommendations": orphans["recommendations"],
        "unmatched_connection_logs_in_source": unmatched["connection_logs"],
        "unmatched_recommendations_in_source": unmatched[RECOMMENDATIONS],
        "unknown_designated_body_codes": unknown_bodies,
        "known_designated_bodies": len(DESIGNATED_BODY_CODES),
        "discrepancy_flags_wrong": wrong,
        **thresholds.metadata("max_unmatched_records"),
    })


# --- freshness -------------------------------------------------------------------------------


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
        problems.append(f"the export time of batches {_batches(export.batches)} ({export.source}) is not recorded "
                        "(built before export times were kept); re-sync those batches")
    for export in data.exports:
        if export.exported_at is not None and _age_hours(data.now, export.exported_at) > limit:
            problems.append(f"batches {_batches(export.batches)} come from an export made "
                            f"{export.exported_at.isoformat(timespec='seconds')}, "
                            f"{_age_hours(data.now, export.exported_at):.1f} h ago ({export.source}); "
                            f"the limit is {limit:g} h: export again, or raise max_export_age_hours for this run")
    times = [e.exported_at for e in data.exports if e.exported_at is not None]
    oldest = min(times) if times else None
    age = _age_hours(data.now, oldest) if oldest else None
    live_age = _age_hours(data.now, data.live_exported_at) if data.live_exported_at else None
    return _result("freshness", problems,
                   f"the export is {age:.1f} h old (limit {limit:g} h)" if age is not None else "", {
        "exported_at": oldest.isoformat(timespec="seconds") if oldest else "unknown",
        "export_age_hours": round(age, 2) if age is not None else "unknown",
        "live_exported_at": data.live_exported_at.isoformat(timespec="seconds") if data.live_exported_at
        else "n/a",
        "live_export_age_hours": round(live_age, 2) if live_age is not None else "n/a",
        **thresholds.metadata("max_export_age_hours"),
    })


def _batches(batches: tuple[int, ...]) -> str:
    return ", ".join(map(str, batches)) or "none"


# --- quarantine budget -----------------------------------------------------------------------


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
            top = "; ".join(f"{r.records} × {r.field}: {r.problem}{_examples(r.examples[:2])}"
                            for r in report.reasons[:3])
            problems.append(f"{report.file}: {report.quarantined} of {report.records} records{report.scope} "
                            f"quarantined ({_pct(report.quarantined_share)}, limit {_pct(limit)}): {top}")
    lines = ["| input | file | records | quarantined | share | top problem |", "|---|---|---|---|---|---|"]
    for name, r in worst.items():
        top = f"{r.reasons[0].records} × {r.reasons[0].field}: {r.reasons[0].problem}" if r.reasons else ""
        lines.append(f"| {name} | {r.file} | {r.records} | {r.quarantined} | {_pct(r.quarantined_share)} | {top} |")
    largest = max(worst.values(), key=lambda r: r.quarantined_share, default=None)
    return _result("quarantine_budget", problems,
                   f"at most {_pct(largest.quarantined_share if largest else 0.0)} of any input quarantined "
                   f"(limit {_pct(limit)})", {
        **{f"quarantined_{name}": r.quarantined for name, r in worst.items()},
        **{f"quarantined_share_{name}": round(r.quarantined_share, 4) for name, r in worst.items()},
        "worst_input": largest.input if largest else "none",
        "worst_share": round(largest.quarantined_share, 4) if largest else 0.0,
        "inputs_not_read": sum(len(r.problems) for r in data.inputs()),
        **thresholds.metadata("max_quarantine_share"),
    }, "\n".join(lines))


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
