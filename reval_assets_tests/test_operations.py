"""diff, verify and gc over real versions (SQLite and PostgreSQL)."""

import hashlib
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa

from reval_assets.domain.batching import batch_of_one
from reval_assets.domain.schemas import ENTITIES, GUARDED_ENTITIES
from reval_assets.pipeline import operations
from reval_assets.quality.checks import drift_changes, run_checks
from reval_assets.sources.base import WireInput
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store import snapshots
from reval_assets_tests.core_sync import NEW_POPULATION, publish, stage


def test_diff_counts_rows_added_removed_and_changed_by_key(runtime):
    a = publish(runtime)
    # Staged, not published: since issue 4 the drift and referential checks block this fault (diff reads manifests).
    b = stage(runtime, SyntheticSource(doctors=1500, seed=7, faults=["missing_connections"]))
    changes = operations.diff(runtime, a, b)
    # the doctors the GMC no longer returns are kept (carried forward from live, disconnected): changed, not removed
    gone = len(SyntheticSource(doctors=1500, seed=7).extract()["gmc_doctors"].table) - len(
        SyntheticSource(doctors=1500, seed=7, faults=["missing_connections"]).extract()["gmc_doctors"].table)
    assert changes["doctors"] == {"added": 0, "removed": 0, "changed": gone} and gone > 0
    assert runtime.snapshots.manifest(a).rows() == runtime.snapshots.manifest(b).rows()
    assert operations.diff(runtime, a, a) == {e: {"added": 0, "removed": 0, "changed": 0} for e in ENTITIES}


def test_the_drift_check_counts_the_same_changes_as_reval_diff(runtime):
    """The drift check shows its figures as its diff against live (`diff_vs_live`), instead of comparing twice."""
    a = publish(runtime)
    b = stage(runtime, SyntheticSource(doctors=1600, seed=7), thresholds=NEW_POPULATION)
    drift = next(c for c in json.loads(runtime.live.version(b)["checks"]) if c["name"] == "drift")
    changes = operations.diff(runtime, a, b)
    assert drift_changes(drift["metadata"]) == changes
    assert all(sum(c[kind] for c in changes.values()) > 0 for kind in ("added", "removed", "changed"))


class _OneRecommendationMoved:
    """The default synthetic export, with its first recommendation given to a doctor in another batch."""

    def __init__(self, batches: int):
        self.base, self.batches = SyntheticSource(doctors=1500), batches
        self.description = "synthetic, one recommendation moved"

    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.base.fingerprint()} moved".encode()).hexdigest()

    def extract(self) -> dict[str, WireInput]:
        inputs = self.base.extract()
        wire = inputs["recommendation_records"]
        numbers = wire.table["gmcNumber"].to_pylist()
        home = batch_of_one(numbers[0], self.batches)
        elsewhere = next(n for n in numbers if n and n.isdigit() and batch_of_one(n, self.batches) != home)
        moved = pc.if_else(pa.array([i == 0 for i in range(len(numbers))]), elsewhere, wire.table["gmcNumber"])
        table = wire.table.set_column(wire.table.schema.get_field_index("gmcNumber"), "gmcNumber", moved)
        return {**inputs, "recommendation_records": WireInput(table, wire.origin)}


def test_reval_diff_counts_a_recommendation_moved_to_another_batch_as_changed(runtime):
    """As the drift check does: the batches that differ are compared together, not pair by pair."""
    a = publish(runtime, SyntheticSource(doctors=1500))
    b = stage(runtime, _OneRecommendationMoved(runtime.settings.batches))
    changes = operations.diff(runtime, a, b)
    assert changes["recommendations"] == {"added": 0, "removed": 0, "changed": 1}
    drift = next(c for c in json.loads(runtime.live.version(b)["checks"]) if c["name"] == "drift")
    assert drift_changes(drift["metadata"]) == changes


def test_verify_passes_then_names_a_flipped_byte(runtime):
    version = publish(runtime)
    report = operations.verify(runtime)
    assert report["version"] == version and report["problems"] == [] and report["files"] == len(ENTITIES) * 16
    ref = next(runtime.snapshots.manifest(version).all_files())
    path = runtime.snapshots.root / ref.path
    data = bytearray(path.read_bytes())
    data[-20] ^= 0x01
    path.write_bytes(bytes(data))
    problems = operations.verify(runtime, version)["problems"]
    assert len(problems) == 1 and str(path) in problems[0]


def test_rollback_refuses_a_version_whose_files_are_corrupt(runtime):
    first = publish(runtime)
    publish(runtime, SyntheticSource(doctors=1400, seed=3), thresholds=NEW_POPULATION)
    ref = next(runtime.snapshots.manifest(first).all_files())
    (runtime.snapshots.root / ref.path).write_bytes(b"not parquet")
    live_before = runtime.live.live_version()
    try:
        operations.rollback(runtime, first, actor="t", reason="t")
        raise AssertionError("rollback to a corrupt version must refuse")
    except Exception as error:  # noqa: BLE001
        assert ref.path.split("/")[-1] in str(error)
    assert runtime.live.live_version() == live_before


def test_gc_keeps_everything_reachable_and_removes_the_rest(runtime):
    versions = [publish(runtime, SyntheticSource(doctors=1500, seed=s), thresholds=NEW_POPULATION) for s in (1, 2, 3)]
    blocked = stage(runtime, SyntheticSource(doctors=1500, seed=4, faults=["mapping_break"]))
    runtime.live.set_pinned(versions[0], True, actor="tester", env="dev", reason="known good")
    files_before = set(runtime.snapshots.file_paths())

    dry = operations.gc(runtime, keep=1, dry_run=True, grace_seconds=0)
    assert set(runtime.snapshots.file_paths()) == files_before
    assert dry["versions_dropped"] == [versions[1]]

    report = operations.gc(runtime, keep=1, grace_seconds=0)
    assert report["versions_dropped"] == [versions[1]]
    remaining = {r["version"] for r in runtime.live.versions()}
    assert remaining == {versions[0], versions[2], blocked}
    for version in remaining:
        assert operations.verify(runtime, version)["problems"] == []
    dropped_files = {ref.path for ref in runtime.snapshots.manifest(versions[0]).all_files()}
    assert all((runtime.snapshots.root / p).exists() for p in dropped_files)
    assert len(set(runtime.snapshots.file_paths())) < len(files_before)
    inspector = sa.inspect(runtime.live.engine)
    assert not [v for v in inspector.get_view_names() if versions[1] in v]
    assert runtime.live.audit_rows()[-1]["action"] == "gc"
    # Everything gc kept still publishes: roll back to the pinned one.
    operations.rollback(runtime, versions[0], actor="t", reason="t")
    assert runtime.live.read_view("doctors").num_rows == runtime.snapshots.manifest(versions[0]).rows()["doctors"]


def test_gc_reclaims_leftovers_of_an_aborted_sync(runtime):
    publish(runtime)
    orphan = runtime.snapshots.root / "files" / "doctors" / "batch=0" / ".tmp-dead-x.parquet"
    orphan.write_bytes(b"half")
    stray, _ = runtime.snapshots.put_table("doctors", 0, SyntheticSource(doctors=10, seed=1).extract()
                                           ["gmc_doctors"].table)
    operations.gc(runtime, keep=5, grace_seconds=0)
    assert not orphan.exists()
    assert not (runtime.snapshots.root / stray.path).exists()
    assert operations.verify(runtime)["problems"] == []


def test_partial_resync_after_a_blocked_sync_keeps_live_files_for_the_other_batches(runtime):
    clean = publish(runtime)
    blocked = stage(runtime, SyntheticSource(doctors=1500, seed=7, faults=["mapping_break"]))
    assert runtime.live.version(blocked)["status"] == "blocked"
    # The blocked sync moved every batch's newest files to empty recommendations; a re-sync of
    # batch 0 alone must take the other batches from live, not from those files.
    partial = publish(runtime, batches=[0])
    clean_files = runtime.snapshots.manifest(clean).files
    partial_files = runtime.snapshots.manifest(partial).files
    assert partial_files == clean_files
    assert runtime.live.read_view("recommendations").num_rows == runtime.snapshots.manifest(clean).rows()[
        "recommendations"] > 0


class _RecordedReads:
    """A Parquet file whose reads are recorded as (path, columns asked for: None for all)."""

    def __init__(self, file: pq.ParquetFile, path: str, reads: list[tuple[str, list[str] | None]]):
        self.file, self.path, self.reads = file, path, reads
        self.schema_arrow = file.schema_arrow

    def read(self, columns: list[str] | None = None) -> pa.Table:
        self.reads.append((self.path, columns))
        return self.file.read(columns=columns)


def test_the_checks_read_each_file_once_and_only_live_columns_of_the_batch_that_changed(runtime, monkeypatch):
    live = publish(runtime)
    resync = stage(runtime, SyntheticSource(doctors=1500, seed=8), batches=[2], thresholds=NEW_POPULATION)
    monkeypatch.setattr(snapshots, "SMALL_FILE_ROWS", 0)  # read as a national sync's files are: by column
    monkeypatch.setattr(snapshots, "_RECENT", snapshots._RecentTables(0))  # live was written by an earlier sync
    tables: list[str] = []
    live_reads: list[tuple[str, list[str] | None]] = []
    read_table, parquet_file = runtime.snapshots.read_table, runtime.snapshots._parquet_file
    monkeypatch.setattr(runtime.snapshots, "read_table", lambda ref, **kw: tables.append(ref.sha256)
                        or read_table(ref, **kw))
    monkeypatch.setattr(runtime.snapshots, "_parquet_file",
                        lambda ref: _RecordedReads(parquet_file(ref), ref.path, live_reads))
    manifest, live_manifest = runtime.snapshots.manifest(resync), runtime.snapshots.manifest(live)
    data = operations.candidate_data(runtime, manifest)
    assert data.live_version == live
    assert sorted(tables) == sorted({ref.sha256 for ref in manifest.all_files()})  # the candidate's files, once each
    assert all([pair.same for pair in data.layout[e]] == [b != 2 for b in range(16)] for e in GUARDED_ENTITIES)
    assert not live_reads  # live is read when a check asks
    run_checks(data)
    # Live's other 45 files are the candidate's, read already; batch 2's old ones, a column at a time, never whole.
    assert {path for path, _ in live_reads} == {refs[2].path for e, refs in live_manifest.files.items()
                                                if refs[2].sha256 != manifest.files[e][2].sha256}
    assert all(columns is not None and len(columns) == 1 for _, columns in live_reads)
    drift = next(c for c in json.loads(runtime.live.version(resync)["checks"]) if c["name"] == "drift")
    assert drift_changes(drift["metadata"]) == operations.diff(runtime, live, resync)

