"""Jobs with typed config (required config opens the launchpad), the nightly schedule and the new-export sensor."""


import dagster as dg
from pydantic import Field

from reval_assets.assets.checks import candidate_checks
from reval_assets.assets.common import ENV_LABEL, SETTINGS_AT_LOAD, OperatorConfig, actor_of
from reval_assets.assets.failures import translated
from reval_assets.assets.release import live_release_metadata
from reval_assets.domain.schemas import ENTITIES, RAW_SPECS
from reval_assets.pipeline import operations
from reval_assets.pipeline.export_watch import ExportWatch
from reval_assets.resources import RevalResource
from reval_assets.settings import Settings

SYNC_TAGS = {"reval/sync": "true"}

full_sync = dg.define_asset_job(
    "full_sync",
    selection=dg.AssetSelection.all(),
    description=f"[{ENV_LABEL}] Sync every batch, stage a candidate, check it and publish it.",
    tags=SYNC_TAGS,
)

check_again = dg.define_asset_job(
    "check_again",
    selection=dg.AssetSelection.checks(*candidate_checks.check_keys),
    description=f"[{ENV_LABEL}] Run the blocking checks again on a staged or blocked candidate (config `version`), "
    "with other thresholds if need be; a blocked one that passes can then be published. Publishes nothing.",
    tags=SYNC_TAGS,
)


def all_batches_tags() -> dict[str, str]:
    keys = SETTINGS_AT_LOAD.partition_keys
    return {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}


def unattended_sync(reason: str, actor: str, run_key: str | None = None) -> dg.RunRequest:
    """A sync nobody launched by hand: in dev it publishes; in staging and prod it stages and checks, and a person
    publishes (`reval publish`, or live_release in the UI)."""
    config = {"config": {"reason": reason}}
    tags = {**all_batches_tags(), "reval/actor": actor}
    if SETTINGS_AT_LOAD.env.needs_confirmation:
        unattended = [dg.AssetKey(name) for name in (*RAW_SPECS, *ENTITIES, "release_candidate")]
        return dg.RunRequest(run_key=run_key, tags=tags, asset_selection=unattended,
                             asset_check_keys=list(candidate_checks.check_keys),  # staged and checked
                             run_config={"ops": {"release_candidate": config}})
    return dg.RunRequest(run_key=run_key, tags=tags,
                         run_config={"ops": {"release_candidate": config, "live_release": config}})


@dg.schedule(job=full_sync, cron_schedule="0 2 * * *", default_status=dg.DefaultScheduleStatus.STOPPED,
             description=f"[{ENV_LABEL}] Nightly full sync at 02:00; off until an operator turns it on.")
def nightly_full_sync(_context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """In dev it publishes; in staging and prod it stages and checks, and a person publishes."""
    return unattended_sync("nightly full sync", "schedule")


@dg.sensor(job=full_sync, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.STOPPED,
           description=f"[{ENV_LABEL}] A new complete export in REVAL_SOURCE_DIR starts a sync (stage-only in "
                       "staging and prod, as the schedule); off until an operator turns it on.")
def new_export(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    """Waits for the export's files to stop changing (one evaluation with the same sizes and times), then syncs
    once per new content: the run key is the export's fingerprint."""
    seen = ExportWatch.from_cursor(context.cursor)
    outcome = seen.look(Settings.from_env())
    if outcome.fingerprint is None:
        return dg.SensorResult(skip_reason=outcome.why, cursor=outcome.watch.cursor())
    request = unattended_sync(f"new export {outcome.fingerprint[:12]}", "sensor", run_key=outcome.fingerprint)
    return dg.SensorResult(run_requests=[request], cursor=outcome.watch.cursor())


class RollbackConfig(OperatorConfig):
    version: str = Field(description="The version to make live again (see `reval versions`).")
    reason: str = Field(description="Why; recorded in the audit log.")
    confirm: str = Field(default="", description="In staging and prod, type the environment's name to proceed.")


@dg.op(description=f"[{ENV_LABEL}] Re-point live to a retained version in one transaction.")
def rollback_op(context: dg.OpExecutionContext, config: RollbackConfig, reval: RevalResource) -> None:
    with translated(context, retry=False):
        runtime, who = reval.runtime(partitioned=False), actor_of(context, config.operator)
        previous = operations.rollback(runtime, config.version, actor=who.name, reason=config.reason,
                                       confirm=config.confirm, named=who.named)
        context.log.info(f"live is now {config.version} (was {previous})")
        # Shown on the live_release asset, so the UI says which version is live after a rollback too.
        context.log_event(dg.AssetMaterialization(
            asset_key="live_release",
            description=f"rolled back from {previous} to {config.version}",
            metadata=live_release_metadata(runtime, config.version, published_by=who.name,
                                           reason=config.reason, previous=str(previous)),
        ))


class GcConfig(OperatorConfig):
    keep: int = Field(ge=0, description="How many most recently published versions to keep (plus live and pinned).")
    dry_run: bool = Field(default=False, description="Only report what would be deleted.")
    confirm: str = Field(default="", description="In staging and prod, type the environment's name to delete.")


@dg.op(description=f"[{ENV_LABEL}] Delete versions, files and tables no retained version reaches.")
def gc_op(context: dg.OpExecutionContext, config: GcConfig, reval: RevalResource):
    who = actor_of(context, config.operator)
    with translated(context, retry=False):
        report = operations.gc(reval.runtime(partitioned=False), keep=config.keep, dry_run=config.dry_run,
                               actor=who.name, confirm=config.confirm, named=who.named)
    context.log.info(f"gc: {report}")
    yield dg.Output(None, metadata={
        "dry_run": config.dry_run,
        "versions_dropped": len(report["versions_dropped"]),
        "files_deleted": report["files_deleted"],
        "bytes_freed": report["bytes_freed"],
        "tables_dropped": report["tables_dropped"],
        "evidence_folders_deleted": report["evidence_folders_deleted"],
        "evidence_bytes_freed": report["evidence_bytes_freed"],
        "versions_retained": len(report["retained"]),
    })


@dg.job(tags=SYNC_TAGS, description=f"[{ENV_LABEL}] Roll live back to a retained version.")
def rollback() -> None:
    rollback_op()


@dg.job(tags=SYNC_TAGS, description=f"[{ENV_LABEL}] Garbage-collect unreachable versions, files and tables.")
def gc() -> None:
    gc_op()
