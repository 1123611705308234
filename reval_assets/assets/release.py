"""Write-audit-publish: stage a candidate beside live, check it, then publish it."""


import dagster as dg
from pydantic import Field

from reval_assets.assets.common import SYNC_POOL, actor_of, describe
from reval_assets.domain.schemas import ENTITIES
from reval_assets.pipeline.guard import GuardRefused
from reval_assets.pipeline.operations import check_candidate, diff_manifests, publish
from reval_assets.pipeline.steps import MissingBatchError, stage_candidate
from reval_assets.quality.checks import CHECKS
from reval_assets.resources import RevalResource
from reval_assets.store.live import PublishError
from reval_assets.store.snapshots import CorruptFileError


class CandidateConfig(dg.Config):
    reason: str = Field(default="sync from Dagster", description="Why this sync runs; recorded on the version.")


class PublishConfig(dg.Config):
    confirm: str = Field(
        default="",
        description="In staging and prod, type the environment's name (e.g. `prod`) to publish. Ignored in dev.",
    )
    reason: str = Field(default="published from Dagster", description="Recorded in the audit log.")
    version: str = Field(
        default="", description="A staged candidate to publish; empty means this run's candidate, else the newest."
    )


@dg.asset(
    deps=list(ENTITIES),
    group_name="release",
    pool=SYNC_POOL,
    kinds={"sql"},
    description=describe("A staged version: manifest of every entity x batch file, loaded beside live (not live)."),
    check_specs=[
        dg.AssetCheckSpec(name, asset="release_candidate", blocking=True, description=describe(check.__doc__ or name))
        for name, check in CHECKS.items()
    ],
)
def release_candidate(context: dg.AssetExecutionContext, config: CandidateConfig, reval: RevalResource):
    runtime = reval.runtime()
    try:
        candidate = stage_candidate(runtime, actor=actor_of(context), reason=config.reason, run_id=context.run_id)
    except (MissingBatchError, CorruptFileError) as error:
        raise dg.Failure(description=str(error)) from None
    manifest = candidate.manifest
    results = check_candidate(runtime, manifest)
    rows = manifest.rows()
    metadata: dict = {
        "version": manifest.version,
        "live_version": manifest.parent or "none yet",
        "dagster/row_count": sum(rows.values()),
        **{f"rows_{entity}": n for entity, n in rows.items()},
        "tables_loaded": candidate.load.tables_loaded,
        "tables_reused": candidate.load.tables_reused,
        "rows_loaded": candidate.load.rows_loaded,
        "seconds_load": round(candidate.seconds["load"], 3),
        "checks_passed": all(r.passed for r in results),
    }
    if manifest.parent:
        changes = diff_manifests(runtime, runtime.snapshots.manifest(manifest.parent), manifest)
        metadata["diff_vs_live"] = dg.MetadataValue.md(_diff_markdown(manifest.parent, changes))
    yield dg.MaterializeResult(metadata=metadata)
    for result in results:
        yield dg.AssetCheckResult(
            check_name=result.name,
            passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=result.description,
            metadata={"version": manifest.version, **result.metadata},
        )


@dg.asset(
    deps=[release_candidate],
    group_name="release",
    pool=SYNC_POOL,
    kinds={"sql"},
    description=describe("Publishes the candidate: views, live pointer and audit row in one transaction."),
)
def live_release(context: dg.AssetExecutionContext, config: PublishConfig, reval: RevalResource):
    runtime = reval.runtime()
    version = config.version or runtime.live.candidate_for_run(context.run_id) or runtime.live.latest_candidate()
    if not version:
        raise dg.Failure(description="there is no staged candidate to publish; materialise release_candidate first")
    try:
        publish(runtime, version, actor=actor_of(context), reason=config.reason, confirm=config.confirm)
    except (GuardRefused, PublishError, KeyError) as error:
        raise dg.Failure(description=str(error)) from None
    row = runtime.live.version(version) or {}
    return dg.MaterializeResult(metadata={
        "live_version": version,
        "env": runtime.settings.env.value,
        "published_by": actor_of(context),
        "reason": config.reason,
        **{f"rows_{e}": row.get(f"rows_{e}") or 0 for e in ENTITIES},
    })


def _diff_markdown(parent: str, changes: dict[str, dict[str, int]]) -> str:
    lines = [f"Against live `{parent}`:", "", "| entity | added | removed | changed |", "|---|---|---|---|"]
    lines += [f"| {e} | {c['added']} | {c['removed']} | {c['changed']} |" for e, c in changes.items()]
    return "\n".join(lines)
