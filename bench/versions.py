"""Publish and rollback latency as the number of retained versions grows (1, 10, 100, 500, 1,000).

One real sync builds the first version. Further versions re-stage the same batch files
(`stage_candidate`: a new manifest and catalog rows, plus the version's views on PostgreSQL;
nothing reloaded), are marked as passing the checks (their files are the first version's, which
passed the real checks) and published. At each milestone:

- publish: stage one more candidate (untimed), publish it (timed), drop the oldest retired
  version (untimed), so the count stays at the milestone;
- rollback: alternate between the two newest published versions (at 1 version: re-point to
  the only one).

Timed three ways, one block each: `LiveStore.publish/rollback` as shipped (the one transaction,
on a new connection: SQLite uses NullPool), `operations.publish/rollback` (what `live_release`
and `reval rollback` call; rollback re-hashes every file of the target version first), and
`LiveStore.publish/rollback` through one persistent connection (what pooling SQLite connections
would add; the shipped store opens one per operation).
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import summary

PASSED = [
    {
        "name": "bench_same_files",
        "passed": True,
        "blocking": True,
        "description": "same files as the first version, which passed the real checks",
        "metadata": {},
    }
]


def pooled_live_store(url: str):  # type: ignore[no-untyped-def]
    """A `LiveStore` whose engine keeps one connection open.

    The shipped store uses `NullPool` on SQLite: every operation opens a connection, whose first
    statement parses the whole schema, and closing the last connection checkpoints the WAL.
    Used here to build versions cheaply and to time a kept-open connection beside the shipped code.
    """
    import sqlalchemy as sa

    from reval_assets.store import live as live_module

    original = sa.create_engine

    def create_engine(target, **kwargs):  # type: ignore[no-untyped-def]
        if str(target).startswith("sqlite"):
            kwargs["poolclass"] = sa.pool.SingletonThreadPool
        return original(target, **kwargs)

    live_module.sa.create_engine = create_engine
    try:
        return live_module.LiveStore(url)
    finally:
        live_module.sa.create_engine = original


def _ms(values: list[float]) -> dict:
    return summary([v * 1000 for v in values], percentiles=True)


def run_versions(
    *, url: str, home: str, doctors: int, milestones: list[int], publish_samples: int, rollback_samples: int
) -> dict:
    from reval_assets.pipeline import operations
    from reval_assets.pipeline.runtime import Runtime
    from reval_assets.pipeline.steps import build_batch, land, land_batch, stage_candidate
    from reval_assets.settings import Settings
    from reval_assets.sources.synthetic import SyntheticSource

    settings = Settings(home=Path(home), live_url=url, doctors=doctors, seed=0, batches=16)
    runtime = Runtime(settings)  # as shipped: what `reval` and the assets use
    live = runtime.live
    landing = land(SyntheticSource(doctors=doctors, seed=0), runtime.snapshots, settings.batches)
    for b in range(settings.batches):
        land_batch(runtime.snapshots, landing, b)
        build_batch(runtime.snapshots, b)
    # The first version loads the batch tables through ADBC, before any persistent connection
    # exists: ADBC's SQLite is a second copy of the library in this process, and closing its
    # connection while ours is open would checkpoint and delete the WAL under ours (POSIX locks
    # are per process), giving "disk I/O error". Later versions reuse the tables: no ADBC.
    first = stage_candidate(runtime, actor="bench", reason="bench version", run_id=None).manifest.version
    results = operations.check_candidate(runtime, runtime.snapshots.manifest(first))
    if not all(r.passed for r in results):
        raise RuntimeError(f"first version blocked: {[(r.name, r.description) for r in results if not r.passed]}")
    operations.publish(runtime, first, actor="bench", reason="bench")
    published = [first]
    builder = Runtime(settings)  # same store through one persistent connection: cheap set-up
    builder.__dict__["live"] = pooled_live_store(url)
    pooled = builder.live

    def stage() -> str:
        candidate = stage_candidate(builder, actor="bench", reason="bench version", run_id=None)
        assert candidate.load.tables_loaded == 0
        return candidate.manifest.version

    out: dict = {"doctors": doctors, "milestones": {}}
    for milestone in milestones:
        started, built = time.perf_counter(), 0
        while len(published) < milestone:
            version = stage()
            pooled.record_checks(version, PASSED, actor="bench", env="dev")
            operations.publish(builder, version, actor="bench", reason="bench")
            published.append(version)
            built += 1
        build_seconds = (time.perf_counter() - started) / built if built else None

        timings: dict[str, list[float]] = {}
        # One block per way of timing, so a persistent connection is not invalidated by DDL from
        # the shipped store's connections in between (each would force a full schema re-parse).
        for kind in ("publish", "operations_publish", "publish_persistent"):
            timings[kind] = []
            for _ in range(publish_samples):
                version = stage()
                pooled.record_checks(version, PASSED, actor="bench", env="dev")
                t0 = time.perf_counter()
                if kind == "publish":
                    live.publish(version, actor="bench", reason="bench", env="dev", expected_live=published[-1])
                elif kind == "operations_publish":
                    operations.publish(runtime, version, actor="bench", reason="bench")
                else:
                    pooled.publish(version, actor="bench", reason="bench", env="dev", expected_live=published[-1])
                timings[kind].append(time.perf_counter() - t0)
                published.append(version)
                if len(published) > milestone:
                    oldest = published.pop(0)
                    pooled.drop_version(oldest)
                    runtime.snapshots.delete_manifest(oldest)

        current = published[-1]
        for kind in ("rollback", "operations_rollback", "rollback_persistent"):
            timings[kind] = []
            for _ in range(rollback_samples):
                target = published[-2] if len(published) > 1 and current == published[-1] else published[-1]
                t0 = time.perf_counter()
                if kind == "rollback":
                    live.rollback(target, actor="bench", reason="bench", env="dev")
                elif kind == "operations_rollback":
                    operations.rollback(runtime, target, actor="bench", reason="bench")
                else:
                    pooled.rollback(target, actor="bench", reason="bench", env="dev")
                timings[kind].append(time.perf_counter() - t0)
                current = target
        if current != published[-1]:
            pooled.rollback(published[-1], actor="bench", reason="bench", env="dev")

        out["milestones"][str(milestone)] = {
            "versions": len(live.versions()),
            "seconds_per_version_built": build_seconds,
            **{f"{k}_ms": _ms(v) for k, v in timings.items()},
        }
    pooled.close()
    runtime.close()
    return out
