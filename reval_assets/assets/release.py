"""Write-audit-publish: stage a candidate beside live, check it, then publish it."""


from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from reval_assets.assets.common import SYNC_POOL, actor_of, describe
from reval_assets.domain.schemas import ENTITIES
from reval_assets.pipeline.guard import GuardRefused
from reval_assets.pipeline.operations import check_candidate, publish
from reval_assets.pipeline.steps import MissingBatchError, stage_candidate
from reval_assets.quality.checks import CHECKS, CheckResult, Thresholds, drift_changes, parse_time
from reval_assets.resources import RevalResource
from reval_assets.store.live import PublishError
from reval_assets.store.snapshots import CorruptFileError

_DEFAULT = Thresholds()
_DOC = Thresholds.docs()


class ThresholdsConfig(dg.Config):
    """The blocking checks' thresholds (`reval_assets.quality.checks.Thresholds`), for this run only."""

    min_rows: int = Field(default=_DEFAULT.min_rows, description=_DOC["min_rows"])
    min_mapping_coverage: float = Field(default=_DEFAULT.min_mapping_coverage, description=_DOC["min_mapping_coverage"])
    min_under_notice_coverage: float = Field(
        default=_DEFAULT.min_under_notice_coverage, description=_DOC["min_under_notice_coverage"])
    max_coverage_drop_points: float = Field(
        default=_DEFAULT.max_coverage_drop_points, description=_DOC["max_coverage_drop_points"])
    max_drift_loss_share: float = Field(default=_DEFAULT.max_drift_loss_share, description=_DOC["max_drift_loss_share"])
    min_drift_rows: int = Field(default=_DEFAULT.min_drift_rows, description=_DOC["min_drift_rows"])
    max_unknown_enum_records: int = Field(
        default=_DEFAULT.max_unknown_enum_records, description=_DOC["max_unknown_enum_records"])
    max_duplicate_key_records: int = Field(
        default=_DEFAULT.max_duplicate_key_records, description=_DOC["max_duplicate_key_records"])
    max_unmatched_records: int = Field(
        default=_DEFAULT.max_unmatched_records, description=_DOC["max_unmatched_records"])
    max_export_age_hours: float = Field(default=_DEFAULT.max_export_age_hours, description=_DOC["max_export_age_hours"])
    max_quarantine_share: float = Field(default=_DEFAULT.max_quarantine_share, description=_DOC["max_quarantine_share"])

    def to_thresholds(self, allow_drift_reason: str = "") -> Thresholds:
        """Raises ValueError naming a threshold out of range."""
        return Thresholds(**self.model_dump(), allow_drift_reason=allow_drift_reason.strip())


class CandidateConfig(dg.Config):
    reason: str = Field(default="sync from Dagster", description="Why this sync runs; recorded on the version.")
    fresh_batches: list[int] | None = Field(
        default=None,
        description="A partial re-sync: only these batches take their newest files, the others stay as live. "
        "Empty means every batch's newest materialisation.",
    )
    allow_drift_reason: str = Field(
        default="",
        description="Only to publish a known large change: why it is expected. Lets the drift check pass (its "
        "numbers are still shown) and is recorded in the check's metadata and the audit. Empty: drift blocks.",
    )
    thresholds: ThresholdsConfig = Field(
        default_factory=ThresholdsConfig, description="The blocking checks' thresholds, for this run only.")


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
        thresholds = config.thresholds.to_thresholds(config.allow_drift_reason)
    except ValueError as error:
        raise dg.Failure(description=f"release_candidate config: {error}") from None
    try:
        candidate = stage_candidate(runtime, actor=actor_of(context), reason=config.reason, run_id=context.run.run_id,
                                    fresh_batches=config.fresh_batches)
    except (MissingBatchError, CorruptFileError) as error:
        raise dg.Failure(description=str(error)) from None
    manifest = candidate.manifest
    results = check_candidate(runtime, manifest, thresholds)
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
        "checks_failed": sum(not r.passed for r in results),  # a number, so the UI can plot it over time
        **_ages(manifest.exported_at, "export"),
        **_live_age(runtime),
    }
    drift = next(r for r in results if r.name == "drift")
    if manifest.parent and "doctors_added" in drift.metadata:
        changes = drift_changes(drift.metadata)
        metadata["diff_vs_live"] = dg.MetadataValue.md(_diff_markdown(manifest.parent, changes))
        # the same figures as numbers, which Dagster plots across materialisations
        metadata.update({f"{kind}_{e}": n for e, c in changes.items() for kind, n in c.items()})
    yield dg.MaterializeResult(metadata=metadata)
    for result in results:
        yield dg.AssetCheckResult(
            check_name=result.name,
            passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=result.description,
            metadata=_check_metadata(manifest.version, result),
        )


def _check_metadata(version: str, result: CheckResult) -> dict:
    metadata: dict = {"version": version, **result.metadata}
    if result.table:
        metadata["details"] = dg.MetadataValue.md(result.table)
    return metadata


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
    kinds={"sql"},
    description=describe("Publishes the candidate: views, live pointer and audit row in one transaction."),
)
def live_release(context: dg.AssetExecutionContext, config: PublishConfig, reval: RevalResource):
    runtime = reval.runtime()
    version = config.version or runtime.live.candidate_for_run(context.run.run_id) or runtime.live.latest_candidate()
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
        **_ages(runtime.snapshots.manifest(version).exported_at, "export"),  # how old the data now live is
    })


def _diff_markdown(parent: str, changes: dict[str, dict[str, int]]) -> str:
    lines = [f"Against live `{parent}`:", "", "| entity | added | removed | changed |", "|---|---|---|---|"]
    lines += [f"| {e} | {c['added']} | {c['removed']} | {c['changed']} |" for e, c in changes.items()]
    return "\n".join(lines)
