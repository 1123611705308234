"""The sync's core steps timed one by one by the core's own spans, in one process, without Dagster.

What each stage covers is in bench/README.md.
"""

from __future__ import annotations

import resource
import time
from collections import defaultdict
from pathlib import Path

from bench.common import STAGES, seconds_of
from reval_assets import spans
from reval_assets.pipeline import operations
from reval_assets.pipeline.runtime import Runtime
from reval_assets.pipeline.steps import BatchBuild, Candidate, build_batch, land, land_batch, stage_candidate
from reval_assets.settings import Settings
from reval_assets.sources.base import Source
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.snapshots import SnapshotStore

Intervals = list[tuple[float, float]]
FIRST = ("staging_load", "index_build")  # where two stages overlap on different threads, the time is the first's
TRANSFORMS = ("transforms_conform", "transforms_split", "transforms_build")  # spans in pipeline.steps


def runtime_for(url: str, home: str, doctors: int) -> Runtime:
    return Runtime(Settings(home=Path(home), live_url=url, doctors=doctors, seed=0, batches=16))


def land_and_build(snapshots: SnapshotStore, source: Source) -> list[BatchBuild]:
    """Land `source` and build its 16 batches, through the core's own steps."""
    landing = land(source, snapshots, 16)
    builds = []
    for b in range(16):
        land_batch(snapshots, landing, b)
        builds.append(build_batch(snapshots, b))
    return builds


def sync_in_process(runtime: Runtime, source: Source) -> Candidate:
    """land → land_batch → build_batch → stage_candidate → check_candidate → publish; the checks must pass."""
    land_and_build(runtime.snapshots, source)
    candidate = stage_candidate(runtime, actor="bench", reason="bench", run_id=None)
    with spans.span("checks"):
        results = operations.check_candidate(runtime, candidate.manifest)
    if not all(r.passed for r in results):
        raise RuntimeError(f"bench candidate blocked: {[(r.name, r.description) for r in results if not r.passed]}")
    with spans.span("publish"):
        operations.publish(runtime, candidate.manifest.version, actor="bench", reason="bench")
    return candidate


def run_stages(*, url: str, home: str, doctors: int) -> dict:
    """One full sync through the core steps on a fresh store, each stage timed."""
    runtime, source = runtime_for(url, home, doctors), SyntheticSource(doctors=doctors, seed=0)
    intervals: dict[str, Intervals] = defaultdict(list)
    started = time.perf_counter()
    with spans.recording(lambda name, begun, ended: intervals[name].append((begun, ended))):
        with spans.span("source"):
            source.extract()
        candidate = sync_in_process(runtime, source)
    total, files = time.perf_counter() - started, list(candidate.manifest.all_files())
    rehash = seconds_of(lambda: [runtime.snapshots.read_bytes(ref) for ref in files])  # `reval rollback` adds it
    rows = candidate.manifest.rows()
    result = {"doctors": doctors, **_stage_seconds(intervals, candidate.seconds["views"], total),
              "load_files_seconds": candidate.seconds["load"], "rollback_verify_seconds": rehash, "rows": rows,
              "rows_total": sum(rows.values()), "rows_loaded": candidate.load.rows_loaded, "total_seconds": total,
              "snapshot_bytes": sum(ref.bytes for ref in files),
              "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    runtime.close()
    return result


def _stage_seconds(intervals: dict[str, Intervals], views: float, total: float) -> dict:
    """Wall seconds per stage: the union of the intervals in which some thread was in it (raw-file writes and
    PostgreSQL's two load connections run on threads, so summing calls would count overlaps twice)."""
    timed, counted = {"views": views}, []
    for key in sorted(intervals, key=lambda k: FIRST.index(k) if k in FIRST else len(FIRST)):
        merged = _union(intervals[key])
        overlap = [(max(s1, s2), min(e1, e2)) for s1, e1 in merged for s2, e2 in counted if max(s1, s2) < min(e1, e2)]
        timed[key] = _length(merged) - _length(overlap)
        counted = _union(counted + merged)
    detail = {stage: timed.get(stage, 0.0) for stage in TRANSFORMS}
    timed["transforms"] = sum(detail.values())
    seconds = {k: timed.get(k, 0.0) for k in STAGES}
    seconds["other"] = max(0.0, total - sum(seconds.values()))
    return {"seconds": seconds, "transforms_detail": detail}


def _union(intervals: Intervals) -> Intervals:
    merged: Intervals = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _length(intervals: Intervals) -> float:
    return sum(end - start for start, end in intervals)
