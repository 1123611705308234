"""Publish and rollback latency as the number of retained versions grows: how, in bench/README.md."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

from bench.common import seconds_of, summary
from bench.stages import runtime_for, sync_in_process
from reval_assets.pipeline import operations
from reval_assets.pipeline.steps import stage_candidate
from reval_assets.sources.synthetic import SyntheticSource

PASSED = [{"name": "bench_same_files", "passed": True, "blocking": True, "metadata": {},
           "description": "same files as the first version, which passed the real checks"}]
BENCH = {"actor": "bench", "reason": "bench"}


def run_versions(*, url: str, home: str, doctors: int, milestones: list[int], publish_samples: int,
                 rollback_samples: int) -> dict:
    runtime = runtime_for(url, home, doctors)  # as shipped: what `reval` and the assets use
    live = runtime.live
    published = [sync_in_process(runtime, SyntheticSource(doctors=doctors, seed=0)).manifest.version]
    reader = sqlite3.connect(url.removeprefix("sqlite:///")) if live.dialect == "sqlite" else None
    if reader:  # connected from here on, after the first version's ADBC load: why, in bench/README.md
        reader.execute("SELECT 1 FROM sqlite_master").fetchall()

    def stage_passed() -> str:
        """A version of the same batch files (no load), its checks recorded as passed."""
        candidate = stage_candidate(runtime, actor="bench", reason="bench version", run_id=None)
        assert candidate.load.tables_loaded == 0
        live.record_checks(candidate.manifest.version, PASSED, actor="bench", env="dev")
        return candidate.manifest.version

    def publish_one(publish: Callable[[str], object], milestone: int) -> float:
        """Time one publish; then drop the oldest retired version (untimed), so the count stays at the milestone."""
        seconds = seconds_of(publish, version := stage_passed())
        published.append(version)
        if len(published) > milestone:
            live.drop_version(oldest := published.pop(0))
            runtime.snapshots.delete_manifest(oldest)
        return seconds

    publishes: dict[str, Callable[[str], object]] = {
        "publish": lambda v: live.publish(v, **BENCH, env="dev", expected_live=published[-1]),
        "operations_publish": lambda v: operations.publish(runtime, v, **BENCH),
    }
    rollbacks: dict[str, Callable[[str], object]] = {
        "rollback": lambda v: live.rollback(v, **BENCH, env="dev"),
        "operations_rollback": lambda v: operations.rollback(runtime, v, **BENCH),
    }
    out: dict = {"doctors": doctors, "milestones": {}}
    for milestone in milestones:
        started, built = time.perf_counter(), 0
        while len(published) < milestone:
            published.append(version := stage_passed())
            operations.publish(runtime, version, **BENCH)
            built += 1
        build_seconds = (time.perf_counter() - started) / built if built else None
        timings = {kind: [publish_one(publish, milestone) for _ in range(publish_samples)]
                   for kind, publish in publishes.items()}
        if _time_rollbacks(rollbacks, published, rollback_samples, timings) != published[-1]:
            live.rollback(published[-1], **BENCH, env="dev")  # the newest live again for the next milestone
        out["milestones"][str(milestone)] = {
            "versions": len(live.versions()), "seconds_per_version_built": build_seconds,
            **{f"{k}_ms": summary([t * 1000 for t in v], percentiles=True) for k, v in timings.items()}}
    if reader:
        reader.close()
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
