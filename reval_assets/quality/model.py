"""What the checks read and return: the candidate and live tables, what the source sent, and results.

Besides the candidate's tables, the checks read what the source sent (`Export`/`InputReport`,
recorded at landing), because a quarantined record or a connection log for an unknown doctor
leaves no row in the tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from reval_assets.domain.designated_bodies import PROD_CODES
from reval_assets.domain.enums import QuarantineReason
from reval_assets.domain.schemas import GMC_NUMBER, RAW_SPECS
from reval_assets.domain.summaries import InputSummary, LandingSummary, ReasonCount, Unmatched
from reval_assets.quality.text import batch_list, listed
from reval_assets.quality.thresholds import Thresholds
from reval_assets.store.snapshots import LazyTable

# A table as the checks read it: in memory, or (live's side) read from its files a column at a time.
Table = pa.Table | LazyTable


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

    @classmethod
    def of(cls, name: str, problems: list[str], ok: str, metadata: dict, table: str = "") -> CheckResult:
        """Passed without `problems` (described by `ok`), else failed listing them."""
        return cls(name=name, passed=not problems, description=listed(problems) if problems else ok,
                   metadata=metadata, table=table)


TIS_INPUT = "tis_trainees"
TIS_GMC_WIRE = RAW_SPECS[TIS_INPUT].column(GMC_NUMBER).wire
FREE_TEXT_GMC_CODES = (QuarantineReason.MISSING, QuarantineReason.MALFORMED, QuarantineReason.DUPLICATE_KEY)


@dataclass(frozen=True)
class InputReport:
    """What the source sent for one raw input, as recorded when it was landed."""

    input: str
    file: str
    records: int = 0
    kept: int = 0
    quarantined: int = 0
    problems: tuple[str, ...] = ()  # input-level: the input could not be read as a whole
    reasons: tuple[ReasonCount, ...] = ()
    unmatched: int = 0  # records whose GMC number is no doctor's in the export
    unmatched_examples: tuple[str, ...] = ()
    unmatched_of: Unmatched | None = None  # the same, per GMC number
    # A partial re-sync lands only some batches: the counts are then of their records (and of any
    # record in no batch). Empty: of the whole export.
    batches: tuple[int, ...] = ()

    @property
    def scope(self) -> str:
        return f" in batch{'es' if len(self.batches) > 1 else ''} {batch_list(self.batches)}" if self.batches else ""

    @property
    def free_text_gmc_records(self) -> int:
        """TIS persons quarantined for their free-text GMC number (blank, malformed, or on two persons): normal in
        the real TIS in a handful, so they have their own budget (`max_tis_gmc_number_records`)."""
        if self.input != TIS_INPUT:
            return 0
        return sum(r.records for r in self.reasons if r.field == TIS_GMC_WIRE and r.code in FREE_TEXT_GMC_CODES)

    @property
    def quarantined_share(self) -> float:
        """The share quarantined for anything but what has its own budget (`free_text_gmc_records`)."""
        return max(self.quarantined - self.free_text_gmc_records, 0) / self.records if self.records else 0.0

    @classmethod
    def from_summary(cls, name: str, summary: InputSummary) -> InputReport:
        file = RAW_SPECS[name].file if name in RAW_SPECS else name
        origin = summary.origin
        unmatched = summary.unmatched
        return cls(
            input=name,
            file=origin if origin.startswith("/") else f"{file} ({origin or 'unknown origin'})",
            records=summary.records,
            kept=summary.kept,
            quarantined=summary.quarantined,
            problems=summary.problems,
            reasons=summary.reasons,
            unmatched=unmatched.records if unmatched else 0,
            unmatched_examples=unmatched.examples if unmatched else (),
            unmatched_of=unmatched,
            batches=summary.landed_batches,
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
    def from_manifest(cls, landings: Mapping[str, LandingSummary]) -> tuple[Export, ...]:
        return tuple(
            cls(key=key, source=summary.source, batches=summary.batches, exported_at=parse_time(summary.exported_at),
                inputs={name: InputReport.from_summary(name, s) for name, s in summary.inputs.items()})
            for key, summary in landings.items()
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
    `designated_bodies` are the codes the data may hold: the list configured for `env`
    (`Settings.designated_bodies`, REVAL_DESIGNATED_BODIES or the environment's default).
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
    designated_bodies: tuple[str, ...] = PROD_CODES
    env: str = "dev"

    def inputs(self, name: str | None = None) -> Iterator[InputReport]:
        for export in self.exports:
            for report in export.inputs.values():
                if name is None or report.input == name:
                    yield report

    def reasons(self, code: QuarantineReason) -> list[tuple[InputReport, ReasonCount]]:
        """Every input's records quarantined for `code`, with the input."""
        return [(report, reason) for report in self.inputs() for reason in report.reasons if reason.code is code]

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
