"""Landing only some batches (a partial re-sync) gives exactly what a full landing gives for them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from reval_assets.domain.batching import batch_of_one, split_by_batch
from reval_assets.domain.conform import conform, rows_of_batches
from reval_assets.domain.schemas import RAW_SPECS, RECOMMENDATION_RECORDS
from reval_assets.domain.summaries import InputSummary
from reval_assets.pipeline.steps import MissingBatchError, land, land_batch
from reval_assets.quality.checks import CandidateData, Export, InputReport, Thresholds, check_quarantine_budget
from reval_assets.sources.base import WireInput
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.snapshots import SnapshotStore

BATCHES = 16
WANTED = [3]


def _numbers_by_batch() -> dict[int, list[str]]:
    """A few valid GMC numbers in batch 3 and in other batches."""
    found: dict[int, list[str]] = {}
    for n in range(1_000_000, 1_000_400):
        found.setdefault(batch_of_one(str(n), BATCHES), []).append(str(n))
    return found


def _recommendations() -> pa.Table:
    numbers = _numbers_by_batch()
    inside, outside, elsewhere = numbers[3][0], numbers[5][0], numbers[9][0]
    rows = [  # (id, gmcNumber, recommendationType)
        ("r-ok-in", inside, "REVALIDATE"),
        ("r-ok-out", outside, "REVALIDATE"),
        ("r-across", inside, "REVALIDATE"),  # the same id in batch 3 and batch 5: both are quarantined
        ("r-across", outside, "DEFER"),
        ("r-out-twice", outside, "REVALIDATE"),  # repeated outside batch 3 only
        ("r-out-twice", elsewhere, "REVALIDATE"),
        ("r-bad-gmc", "12x4567", "REVALIDATE"),  # in no batch
        ("r-no-gmc", "  ", "REVALIDATE"),
        ("r-bad-type-in", inside, "MAYBE"),
        ("r-bad-type-out", outside, "MAYBE"),
    ]
    ids, gmcs, types = zip(*rows, strict=True)
    return pa.table({"id": pa.array(ids), "gmcNumber": pa.array(gmcs), "recommendationType": pa.array(types),
                     "recommendationStatus": pa.array(["STARTED"] * len(rows)),
                     "_record": pa.array(range(len(rows)), pa.int64())})


def test_conforming_one_batch_keeps_and_quarantines_what_the_full_conform_does_for_it():
    wire = _recommendations()
    full = conform(RECOMMENDATION_RECORDS, wire, "recommendations.json")
    part = conform(RECOMMENDATION_RECORDS, rows_of_batches(RECOMMENDATION_RECORDS, wire, BATCHES, WANTED),
                   "recommendations.json")

    assert part.table.equals(split_by_batch(full.table, BATCHES)[3])
    assert part.table["recommendation_id"].to_pylist() == ["r-ok-in"]
    quarantined = set(part.quarantine["record"].to_pylist())
    # batch 3's bad records, the records in no batch, and every copy of a repeated id (wherever it is)
    assert quarantined == {2, 3, 4, 5, 6, 7, 8}
    assert quarantined <= set(full.quarantine["record"].to_pylist())
    assert part.quarantine.filter(pc.equal(part.quarantine["record"], 3)).equals(
        full.quarantine.filter(pc.equal(full.quarantine["record"], 3)))


def test_rows_of_batches_numbers_records_by_their_place_in_the_whole_input():
    wire = _recommendations().drop_columns(["_record"])
    part = rows_of_batches(RECOMMENDATION_RECORDS, wire, BATCHES, WANTED)
    assert part["_record"].to_pylist() == [0, 2, 3, 4, 5, 6, 7, 8]


class CountingSource:
    """A synthetic source with faults that counts its reads."""

    def __init__(self) -> None:
        self.inner = SyntheticSource(doctors=400, seed=3, faults=("duplicate_keys", "malformed_dates",
                                                                   "unknown_enums", "orphan_connection"))
        self.description = self.inner.description
        self.reads = 0

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def extract(self) -> dict[str, WireInput]:
        self.reads += 1
        return self.inner.extract()


def test_landing_one_batch_writes_the_same_files_as_a_full_landing_and_no_others(tmp_path: Path):
    part_store, full_store = SnapshotStore(tmp_path / "part"), SnapshotStore(tmp_path / "full")
    part = land(CountingSource(), part_store, BATCHES, only=WANTED)
    full = land(CountingSource(), full_store, BATCHES)

    assert part.landed == (3,) and full.landed == tuple(range(BATCHES))
    for name in RAW_SPECS:
        assert part.inputs[name][3] == full.inputs[name][3], name
        assert part.details[name]["export_records"] == full.counts[name]["records"]
        assert part.counts[name]["records"] < full.counts[name]["records"]
        assert part.counts[name]["quarantined"] <= full.counts[name]["quarantined"]
    written = sorted(p.parent.name for p in (tmp_path / "part").rglob("*.parquet") if "raw" in p.parts)
    assert set(written) == {"batch=3"}
    with pytest.raises(MissingBatchError, match="holds batches 3, not batch 5"):
        land_batch(part_store, part, 5)


def test_a_full_landing_serves_a_later_one_batch_landing_but_not_the_reverse(tmp_path: Path):
    store, source = SnapshotStore(tmp_path), CountingSource()
    one = land(source, store, BATCHES, only=WANTED)
    assert land(source, store, BATCHES, only=WANTED).key == one.key and source.reads == 1
    full = land(source, store, BATCHES)
    assert source.reads == 2 and full.landed == tuple(range(BATCHES))
    assert land(source, store, BATCHES, only=[7]).key == full.key and source.reads == 2


@pytest.mark.parametrize("only", [[], [16], [-1]])
def test_landing_refuses_batches_that_do_not_exist(tmp_path: Path, only: list[int]):
    with pytest.raises(ValueError, match="batches to land must be some of 0..15"):
        land(CountingSource(), SnapshotStore(tmp_path), BATCHES, only=only)


def test_the_quarantine_budget_of_a_partial_landing_is_of_its_batches_records_and_says_so(tmp_path: Path):
    source = SyntheticSource(doctors=1500, seed=7, faults=("malformed_dates",))
    landing = land(source, SnapshotStore(tmp_path), BATCHES, only=[2])
    summary = {**landing.counts["gmc_doctors"], **landing.details["gmc_doctors"]}  # as the manifest keeps it
    report = InputReport.from_summary("gmc_doctors", InputSummary.from_dict(summary))
    assert (report.batches, report.records, report.quarantined) == ((2,), 87, 1)
    export = Export(key=landing.key, source=source.description, batches=(2,), exported_at=None,
                    inputs={"gmc_doctors": report})
    result = check_quarantine_budget(CandidateData(tables={}, exports=(export,)), Thresholds())
    assert not result.passed
    assert "doctors_for_db.json (synthetic): 1 of 87 records in batch 2 quarantined (1.1 %" in result.description
