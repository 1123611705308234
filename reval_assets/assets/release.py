"""Write-audit-publish: stage a candidate beside live, check it, then publish it."""


import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import Field

from reval_assets.alerts import Alert, send_alert, short_error
from reval_assets.assets.common import (
    OWNERS,
    SETTINGS_AT_LOAD,
    SYNC_POOL,
    TAGS,
    OperatorConfig,
    StepContext,
    actor_of,
    describe,
    run_group,
    writing,
)
from reval_assets.assets.failures import translated
from reval_assets.domain.schemas import ENTITIES
from reval_assets.errors import RevalError
from reval_assets.pipeline.operations import guarded, publish
from reval_assets.pipeline.room import require_room
from reval_assets.pipeline.runtime import Runtime
from reval_assets.pipeline.steps import batches_built_by, live_manifest, stage_candidate
from reval_assets.quality.checks import parse_time
from reval_assets.resources import RevalResource
from reval_assets.settings import Settings


class CandidateConfig(dg.Config):
    reason: str = Field(default="sync from Dagster", description="Why this sync runs; recorded on the version.")
    fresh_batches: list[int] | None = Field(
        default=None,
        description="The batches to take fresh (their newest files); every other batch stays as live, whatever was "
        "materialised since. Unset or empty: the batches this run, or the backfill it is part of, built (a backfill "
        "of partitions 2 and 5 takes 2 and 5 fresh); if it built none, every batch's newest materialisation, which "
        "may be a staged or blocked run's. Before anything is live, the other batches are the newest too.",
    )
    operator: str = Field(
        default="", description="Your name, recorded in the audit as who staged it (optional: staging changes "
        "nothing admins see); `reval` commands record their user, Dagster+ its signed-in one.")


class PublishConfig(OperatorConfig):
    confirm: str = Field(
        default="",
        description="In staging and prod, type the environment's name (e.g. `prod`) to publish. Ignored in dev.",
    )
    reason: str = Field(default="published from Dagster", description="Recorded in the audit log.")
    version: str = Field(
        default="", description="A staged candidate to publish (`reval versions` lists them); empty: this run's own."
    )


# With the batches' own single-run policy, a backfill of the whole graph is one run (`dagster asset materialize
# --select '*' --partition-range 0...15` needs it of every asset it selects).
ONE_RUN = dg.BackfillPolicy.single_run()
# On an unpartitioned @asset the parameter is "beta": said once per process, to every `reval` user. It is stable in
# use (the partitioned multi-assets have it too), so not said at all.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy` of function `asset`", category=dg.BetaWarning)


@dg.asset(
    deps=list(ENTITIES),
    group_name="release",
    pool=SYNC_POOL,
    backfill_policy=ONE_RUN,
    kinds={"sql"},
    owners=OWNERS,
    tags=TAGS,
    description=describe(
        "A staged version: manifest of every entity x batch file, loaded beside live (not live). The batches this "
        "run or its backfill built (or config fresh_batches) are fresh, every other batch is live's, as with "
        "`reval sync --batches`; a run that built none takes every batch's newest materialisation, and says so. "
        "Its blocking checks are `candidate_checks`."),
)
def release_candidate(context: dg.AssetExecutionContext, config: CandidateConfig,
                      reval: RevalResource) -> dg.MaterializeResult:
    with alert_on_failure(context, "release_candidate", config.reason, operator=config.operator), translated(context):
        return _stage(context, config, reval)


def _stage(context: dg.AssetExecutionContext, config: CandidateConfig, reval: RevalResource) -> dg.MaterializeResult:
    runtime = reval.runtime()
    fresh = _fresh_batches(context, config, runtime)
    with writing(runtime, "stage a candidate", context):
        require_room(runtime)
        candidate = stage_candidate(runtime, actor=actor_of(context, config.operator).name, reason=config.reason,
                                    run_id=context.run.run_id, fresh_batches=fresh)
    manifest = candidate.manifest
    rows = manifest.rows()
    metadata: dict = {
        "version": manifest.version,
        "live_version": manifest.parent or "none yet",
        **_batch_origin(runtime, fresh),
        "dagster/row_count": sum(rows.values()),
        **{f"rows_{entity}": n for entity, n in rows.items()},
        "tables_loaded": candidate.load.tables_loaded,
        "tables_reused": candidate.load.tables_reused,
        "rows_loaded": candidate.load.rows_loaded,
        "seconds_load": round(candidate.seconds["load"], 3),
        **_ages(manifest.exported_at, "export"),
        **_live_age(runtime),
    }
    return dg.MaterializeResult(metadata=metadata)


def _fresh_batches(context: dg.AssetExecutionContext, config: CandidateConfig, runtime: Runtime) -> list[int] | None:
    """The config's, else the batches this run's sync built; None (every batch's newest) if it built none."""
    if config.fresh_batches:
        return config.fresh_batches
    built = batches_built_by(runtime.snapshots, runtime.settings.batches, run_group(context.run, context.instance))
    if not built:
        context.log.warning(
            "this run (and its backfill, if any) built no batch, so every batch takes its newest materialisation, "
            "which may be a staged or blocked run's; to take some batches fresh and the others as live, backfill "
            "those partitions together with release_candidate, or set fresh_batches")
    return built or None


def _batch_origin(runtime: Runtime, fresh: list[int] | None) -> dict[str, str]:
    """Which batches the candidate took fresh (their newest files), and where it took the others from."""
    batches = runtime.settings.batches
    if fresh is None:
        return {"fresh_batches": f"all {batches}: this run built none, so each batch's newest materialisation",
                "other_batches_from": "none"}
    fresh = sorted(set(fresh) & set(range(batches)))
    if len(fresh) == batches:
        return {"fresh_batches": f"all {batches}", "other_batches_from": "none: every batch is fresh"}
    live = live_manifest(runtime)
    return {"fresh_batches": ", ".join(map(str, fresh)),
            "other_batches_from": f"live {live.version}" if live else "their newest: nothing is live yet"}


def _ages(iso: str | None, label: str) -> dict:
    """`<label>ed_at` as a timestamp and `<label>_age_hours` now, or "unknown"."""
    when = parse_time(iso)
    if when is None:
        return {f"{label}ed_at": "unknown", f"{label}_age_hours": "unknown"}
    return {f"{label}ed_at": dg.MetadataValue.timestamp(when),
            f"{label}_age_hours": round((datetime.now(UTC) - when).total_seconds() / 3600, 2)}


def _live_age(runtime) -> dict:  # type: ignore[no-untyped-def]
    """How old the live version is (published when, from an export made when), shown in the UI."""
    live = runtime.live.live_row()
    if not live["version"]:
        return {}
    published = live["published_at"].replace(tzinfo=UTC)
    exported = runtime.snapshots.manifest(live["version"]).exported_at
    return {"live_published_at": dg.MetadataValue.timestamp(published),
            "live_age_hours": round((datetime.now(UTC) - published).total_seconds() / 3600, 2),
            **{f"live_{k}": v for k, v in _ages(exported, "export").items()}}


@dg.asset(
    deps=[release_candidate],
    group_name="release",
    pool=SYNC_POOL,
    backfill_policy=ONE_RUN,
    owners=OWNERS,
    tags=TAGS,
    # A nightly sync that stopped publishing: live goes stale (a warning after a day, failing after two).
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=50), warn_window=timedelta(hours=26)),
    kinds={"sql"},
    description=describe("Publishes the candidate: views, live pointer and audit row in one transaction."),
)
def live_release(context: dg.AssetExecutionContext, config: PublishConfig, reval: RevalResource):
    with alert_on_failure(context, "live_release", config.reason, config.version, config.operator), \
            translated(context):
        return _publish(context, config, reval)


def _publish(context: dg.AssetExecutionContext, config: PublishConfig, reval: RevalResource):
    runtime, who = reval.runtime(), actor_of(context, config.operator)
    version = config.version or runtime.live.candidate_for_run(context.run.run_id)
    if not version:  # in staging and prod the refusal comes first, whatever there is to publish
        guarded(runtime, "publishing", None, who.name, config.reason, config.confirm, named=who.named)
        raise RevalError(_nothing_to_publish(runtime))
    if context.retry_number and runtime.live.live_version() == version:
        # A retry after the repoint committed (a connection lost after its transaction): published once.
        context.log.info(f"{version} was published by the attempt before this retry")
    else:
        publish(runtime, version, actor=who.name, reason=config.reason, confirm=config.confirm, named=who.named)
    return dg.MaterializeResult(metadata=live_release_metadata(
        runtime, version, published_by=who.name, reason=config.reason))


def live_release_metadata(runtime: Runtime, version: str, *, published_by: str, reason: str,
                          **extra: object) -> dict:
    """What live_release shows of the version live now: after a publish, and after a rollback (`jobs`)."""
    row = runtime.live.version(version) or {}
    return {
        "live_version": version,
        **extra,
        "env": runtime.settings.env.value,
        "published_by": published_by,
        "reason": reason,
        **{f"rows_{e}": row.get(f"rows_{e}") or 0 for e in ENTITIES},
        **_ages(runtime.snapshots.manifest(version).exported_at, "export"),  # how old the data now live is
    }


def _nothing_to_publish(runtime: Runtime) -> str:
    """Why live_release has no candidate of its own, and which staged ones could be published by name."""
    ready = [r["version"] for r in runtime.live.versions() if r["status"] == "staged" and r["checks_passed"]]
    named = (f"staged candidates whose checks passed: {', '.join(ready[-5:])}; publish one by setting `version` in "
             "live_release's config (or `reval publish VERSION`)" if ready else "no staged candidate has passed its "
             "checks; materialise release_candidate with live_release")
    return f"this run staged no candidate, and live_release publishes only its own run's or a named one: {named}"


@contextmanager
def alert_on_failure(context: StepContext, step: str, reason: str, version: str = "",
                      operator: str = "") -> Iterator[None]:
    """A release step that fails sends a `failed` alert (`reval_assets.alerts`), then fails as before.

    In the step itself, so a run from the UI, the schedule, a sensor or `reval sync` alerts alike. A blocked
    candidate is not a failure (check_candidate alerts on it); an interrupt (BaseException) is not alerted here.
    """
    try:
        yield
    except dg.RetryRequested:  # not failed yet: the step runs again
        raise
    except Exception as error:
        _alert_failed(context, step, reason, version, error, operator)
        raise


def _alert_failed(context: StepContext, step: str, reason: str, version: str, error: Exception,
                  operator: str) -> None:
    run_id = context.run.run_id
    env, live = SETTINGS_AT_LOAD.env.value, None
    try:  # what the catalog says now; the catalog may be what failed
        runtime = Runtime(Settings.from_env())
        try:
            env = runtime.settings.env.value
            version = version or runtime.live.candidate_for_run(run_id) or ""
            live = runtime.live.live_version()
        finally:
            runtime.close()
    except Exception:  # noqa: BLE001 - the alert goes out with what is known
        pass
    message = error.description if isinstance(error, dg.Failure) and error.description else error
    send_alert(Alert("failed", env=env, version=version or None, live_version=live,
                     actor=actor_of(context, operator).name, reason=reason, error=short_error(message),
                     step=step, run_id=run_id))
