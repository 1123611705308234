"""Carrying doctors forward reads the landing's quarantine once per landing, however many batches it builds,
and not at all when no batch has a live doctor to carry (what is carried: `test_carry_forward.py`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from reval_assets.domain.batching import batch_of_one
from reval_assets.sources.export import write_export
from reval_assets.sources.files import FileSource
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.snapshots import FileRef, SnapshotStore
from reval_assets_tests.core_sync import publish, stage


def _quarantine_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    reads: list[str] = []
    read_table = SnapshotStore.read_table

    def counted(self: SnapshotStore, ref: FileRef, **options: bool):
        if ref.path.startswith("files/quarantine/"):
            reads.append(ref.path)
        return read_table(self, ref, **options)

    monkeypatch.setattr(SnapshotStore, "read_table", counted)
    return reads


def test_the_quarantine_is_read_once_per_landing_and_only_when_a_doctor_is_carried(
        runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    population = SyntheticSource(doctors=600, seed=7).extract()
    publish(runtime, FileSource(write_export(population, tmp_path / "day1")))
    reads = _quarantine_reads(monkeypatch)
    stage(runtime, FileSource(write_export(population, tmp_path / "again")))  # every live doctor still there
    assert reads == []

    batches = runtime.settings.batches
    table = population["gmc_doctors"].table
    first_of_batch = {batch_of_one(n, batches): n for n in reversed(table["gmcReferenceNumber"].to_pylist())}
    assert len(first_of_batch) == batches  # one doctor gone from the GMC in every batch
    gone = pc.is_in(table["gmcReferenceNumber"], value_set=pa.array(list(first_of_batch.values())))
    later = {**population, "gmc_doctors": dataclasses.replace(population["gmc_doctors"],
                                                              table=table.filter(pc.invert(gone)))}
    stage(runtime, FileSource(write_export(later, tmp_path / "day2")))
    assert len(reads) == 1
