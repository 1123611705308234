"""gc prunes the GMC evidence folders (`$REVAL_HOME/gmc/<UTC time>/`, a live pull's saved answers) by its own
rules: a folder a kept version or landing names survives, as does one inside the grace period; an old one
nothing names is deleted, and its bytes counted.

`_gc` runs gc as `reval gc` is to: the evidence is planned beside `plan_gc`'s plan (from the versions it keeps
and the landings it leaves), and deleted after the rest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reval_assets.pipeline import operations
from reval_assets.pipeline.runtime import Runtime
from reval_assets.sources.gmc_server import GmcServer, population, serve
from reval_assets.sources.gmc_service import GmcClient, GmcSoapSource
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.live_gc import (
    EVIDENCE_NAME_FORMAT,
    EvidencePlan,
    delete_evidence,
    evidence_folders,
    plan_evidence,
)
from reval_assets_tests.core_sync import publish, stage

DOCTORS = 300
HOUR = 3600.0


@pytest.fixture
def gmc(runtime: Runtime) -> Iterator[GmcServer]:
    with serve(0, doctors=DOCTORS, seed=1, designated_bodies=runtime.settings.designated_bodies) as server:
        yield server


def _pulled(runtime: Runtime, server: GmcServer, seed: int) -> tuple[GmcSoapSource, Path]:
    """A source pulling GMC doctors from `server` into a new evidence folder, as `Runtime.source` makes it."""
    folder = runtime.evidence_root / datetime.now(UTC).strftime(EVIDENCE_NAME_FORMAT)
    server.doctors = population(DOCTORS, seed, runtime.settings.designated_bodies)
    base = SyntheticSource(DOCTORS, seed, designated_bodies=runtime.settings.designated_bodies)
    source = GmcSoapSource(base, GmcClient(server.url, "u", "p", timeout=5),
                           designated_bodies=runtime.settings.designated_bodies, evidence_dir=folder)
    return source, folder


def _age(*paths: Path, seconds: float = HOUR) -> None:
    then = time.time() - seconds
    for path in paths:
        for item in [*path.rglob("*"), path] if path.is_dir() else [path]:
            os.utime(item, (then, then), follow_symlinks=False)


def _unnamed_folder(runtime: Runtime, name: str, size: int) -> Path:
    folder = runtime.evidence_root / name
    folder.mkdir(parents=True)
    (folder / "1-1RUZV1D.xml").write_bytes(b"x" * size)
    return folder


def _gc(runtime: Runtime, keep: int, grace_seconds: float, *, dry_run: bool = False) -> tuple[dict, EvidencePlan]:
    plan = operations.plan_gc(runtime, keep, grace_seconds)
    kept_landings = [p for p in runtime.snapshots.landings() if p not in set(plan.landings)]
    evidence = plan_evidence(runtime.snapshots, runtime.evidence_root, [*plan.retained, *plan.unseen_manifests],
                             kept_landings, grace_seconds)
    report = operations.gc(runtime, keep=keep, dry_run=dry_run, grace_seconds=grace_seconds)
    if not dry_run:
        delete_evidence(evidence, grace_seconds)
    return report, evidence


def test_an_old_folder_nothing_names_is_deleted_and_a_named_or_fresh_one_kept(runtime: Runtime,
                                                                              gmc: GmcServer) -> None:
    source, named = _pulled(runtime, gmc, seed=1)
    publish(runtime, source)
    old = _unnamed_folder(runtime, "20250101T000000.000000Z", 1234)
    fresh = _unnamed_folder(runtime, "20990101T000000.000000Z", 99)
    other = _unnamed_folder(runtime, "notes", 5)  # not a pull's folder: never gc's to judge
    _age(named, old, other)

    _, dry = _gc(runtime, keep=10, grace_seconds=600, dry_run=True)
    assert (dry.folders, dry.bytes) == ([old], 1234)
    assert old.exists()
    _, done = _gc(runtime, keep=10, grace_seconds=600)
    assert (done.folders, done.bytes) == ([old], 1234)
    assert not old.exists()
    assert named.exists() and fresh.exists() and other.exists()
    assert evidence_folders(runtime.evidence_root) == [named, fresh]


def test_a_folder_is_kept_while_a_kept_version_or_landing_names_it(runtime: Runtime, gmc: GmcServer) -> None:
    first, live_folder = _pulled(runtime, gmc, seed=1)
    publish(runtime, first)
    second, blocked_folder = _pulled(runtime, gmc, seed=2)
    stage(runtime, second)  # another population: blocked by the drift check, a candidate gc may drop
    third, newest_folder = _pulled(runtime, gmc, seed=3)
    stage(runtime, third)
    _age(live_folder, blocked_folder, newest_folder)
    landings = runtime.snapshots.landings()
    for n, landing in enumerate(landings):  # old, in the order they were written: gc keeps the newest
        _age(landing, seconds=HOUR + len(landings) - n)

    _, kept = _gc(runtime, keep=2, grace_seconds=0)  # keeps both candidates: each names its folder
    assert kept.folders == [] and blocked_folder.exists()
    report, pruned = _gc(runtime, keep=0, grace_seconds=0)
    assert len(report["versions_dropped"]) == 2 and len(runtime.snapshots.landings()) == 1
    # live's manifest names its folder (its landing is gone), the newest landing its own
    assert pruned.folders == [blocked_folder] and pruned.bytes > 0
    assert not blocked_folder.exists()
    assert live_folder.exists() and newest_folder.exists()


def test_a_folder_written_or_gone_since_the_plan_is_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "gmc"
    touched, gone, old = (root / f"2025010{i}T000000.000000Z" for i in (1, 2, 3))
    for folder in (touched, gone, old):
        folder.mkdir(parents=True)
        (folder / "A.xml").write_bytes(b"<x/>")
    _age(touched, gone, old)
    plan = EvidencePlan(folders=[touched, gone, old], bytes=12)
    (touched / "B.xml").write_bytes(b"<y/>")  # a sync wrote in it since
    for file in gone.iterdir():
        file.unlink()
    gone.rmdir()
    assert delete_evidence(plan, grace_seconds=600) == 1
    assert touched.exists() and not old.exists()


def test_only_folders_named_as_a_pull_is_are_judged(tmp_path: Path) -> None:
    root = tmp_path / "gmc"
    assert evidence_folders(root) == []  # no pull yet
    real = root / "20250101T000000.000000Z"
    real.mkdir(parents=True)
    (root / "20250102T000000.000000Z").symlink_to(real)
    (root / "20250103T000000.000000Z").write_bytes(b"a file")
    (root / "20250104T000000.000000Z.bak").mkdir()
    assert evidence_folders(root) == [real]
