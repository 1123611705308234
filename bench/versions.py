"""Publish and rollback latency as the number of retained versions grows: how, in bench/README.md."""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa

from bench.common import seconds_of, summary
from bench.stages import runtime_for, sync_in_process
from reval_assets.pipeline import operations
from reval_assets.pipeline.steps import stage_candidate
from reval_assets.sources.synthetic import SyntheticSource
from reval_assets.store.live import LiveStore

PASSED = [{"name": "bench_same_files", "passed": True, "blocking": True, "metadata": {},
           "description": "same files as the first version, which passed the real checks"}]
BENCH = {"actor": "bench", "reason": "bench"}


class PersistentLiveStore(LiveStore):
    """A `LiveStore` whose SQLite engine keeps one connection open per thread. The shipped store uses `NullPool`:
    every operation opens a connection, whose first statement parses the whole schema."""

    def _make_engine(self, url: str, *, create: bool) -> sa.Engine:
        engine = super()._make_engine(url, create=create)
        if self.dialect == "sqlite":  # the same engine and its connect/begin listeners, on another pool
            shipped = engine.pool
            engine.pool = sa.pool.SingletonThreadPool(shipped._creator, _dispatch=shipped.dispatch,
                                                      dialect=shipped._dialect)
        return engine


def run_versions(*, url: str, home: str, doctors: int, milestones: list[int], publish_samples: int,
                 rollback_samples: int) -> dict:
    runtime = runtime_for(url, home, doctors)  # as shipped: what `reval` and the assets use
    live = runtime.live
    # The first version loads the batch tables through ADBC, before any persistent connection
    # exists: ADBC's SQLite is a second copy of the library in this process, and closing its
    # connection while ours is open would checkpoint and delete the WAL under ours (POSIX locks
    # are per process), giving "disk I/O error". Later versions reuse the tables: no ADBC.
    published = [sync_in_process(runtime, SyntheticSource(doctors=doctors, seed=0)).manifest.version]
    builder = runtime_for(url, home, doctors)  # same store through one persistent connection: cheap set-up
    builder.__dict__["live"] = pooled = PersistentLiveStore(url)

    def stage_passed() -> str:
        candidate = stage_candidate(builder, actor="bench", reason="bench version", run_id=None)
        assert candidate.load.tables_loaded == 0
        pooled.record_checks(candidate.manifest.version, PASSED, actor="bench", env="dev")
        return candidate.manifest.version

    def publish_one(publish: Callable[[str], object], milestone: int) -> float:
        """Time one publish; then drop the oldest retired version (untimed), so the count stays at the milestone."""
        seconds = seconds_of(publish, version := stage_passed())
        published.append(version)
        if len(published) > milestone:
            pooled.drop_version(oldest := published.pop(0))
            runtime.snapshots.delete_manifest(oldest)
        return seconds

    # One block per way of timing, so a persistent connection is not invalidated by DDL from
    # the shipped store's connections in between (each would force a full schema re-parse).
    publishes: dict[str, Callable[[str], object]] = {
        "publish": lambda v: live.publish(v, **BENCH, env="dev", expected_live=published[-1]),
        "operations_publish": lambda v: operations.publish(runtime, v, **BENCH),
        "publish_persistent": lambda v: pooled.publish(v, **BENCH, env="dev", expected_live=published[-1]),
    }
    rollbacks: dict[str, Callable[[str], object]] = {
        "rollback": lambda v: live.rollback(v, **BENCH, env="dev"),
        "operations_rollback": lambda v: operations.rollback(runtime, v, **BENCH),
        "rollback_persistent": lambda v: pooled.rollback(v, **BENCH, env="dev"),
    }
    out: dict = {"doctors": doctors, "milestones": {}}
    for milestone in milestones:
        started, built = time.perf_counter(), 0
        while len(published) < milestone:
            published.append(version := stage_passed())
            operations.publish(builder, version, **BENCH)
            built += 1
        build_seconds = (time.perf_counter() - started) / built if built else None
        timings = {kind: [publish_one(publish, milestone) for _ in range(publish_samples)]
                   for kind, publish in publishes.items()}
        if _time_rollbacks(rollbacks, published, rollback_samples, timings) != published[-1]:
            pooled.rollback(published[-1], **BENCH, env="dev")  # the newest live again for the next milestone
        out["milestones"][str(milestone)] = {
            "versions": len(live.versions()), "seconds_per_version_built": build_seconds,
            **{f"{k}_ms": summary([t * 1000 for t in v], percentiles=True) for k, v in timings.items()}}
    pooled.close()
    runtime.close()
    return out


def _time_rollbacks(rollbacks: dict[str, Callable[[str], object]], published: list[str], samples: int,
                    timings: dict[str, list[float]]) -> str:
    """Each way in turn, `samples` rollbacks alternating between the two newest published versions, into
    `timings`; returns the version left live."""
    current = published[-1]
    for kind, rollback in rollbacks.items():
        timings[kind] = []
        for _ in range(samples):
            current = published[-2] if len(published) > 1 and current == published[-1] else published[-1]
            timings[kind].append(seconds_of(rollback, current))
    return current
