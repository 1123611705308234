"""Drive the core steps without Dagster, for tests of the stores and operations."""

from __future__ import annotations

from reval_assets.pipeline import operations
from reval_assets.pipeline.runtime import Runtime
from reval_assets.pipeline.steps import build_batch, land, land_batch, live_manifest, stage_candidate
from reval_assets.quality.checks import Thresholds
from reval_assets.sources.base import Source

# A different synthetic population replaces every row: the drift check (rightly) blocks that
# unless a reason is given. Tests that use another population as "new data" pass this.
NEW_POPULATION = Thresholds(allow_drift_reason="test: a different synthetic population replaces live")


def stage(runtime: Runtime, source: Source | None = None, *, batches: list[int] | None = None,
          reason: str = "test", thresholds: Thresholds | None = None) -> str:
    """Land, build and stage a candidate; check it; return its version id (not published)."""
    store = runtime.snapshots
    landing = land(source or runtime.source(), store, runtime.settings.batches)
    live = live_manifest(runtime)  # as the entities asset: doctors the GMC records lack are carried from live
    for b in batches if batches is not None else range(runtime.settings.batches):
        land_batch(store, landing, b)
        build_batch(store, b, live=live)
    candidate = stage_candidate(runtime, actor="tester", reason=reason, run_id=None, fresh_batches=batches)
    operations.check_candidate(runtime, candidate.manifest, thresholds)
    return candidate.manifest.version


def publish(runtime: Runtime, source: Source | None = None, **kwargs: object) -> str:
    version = stage(runtime, source, **kwargs)
    operations.publish(runtime, version, actor="tester", reason="test")
    return version
