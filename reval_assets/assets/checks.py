"""The blocking checks of a staged candidate, as one blocking multi-asset check on release_candidate.

In the release run they check the candidate that run staged, and a failure stops live_release in the
same run. On their own ("Execute checks" in the UI, or a run of `candidate_checks`) they check a named
staged or blocked version again, with other thresholds if need be, without staging it again.
"""

import dataclasses
from typing import get_type_hints

import dagster as dg
from pydantic import Field, create_model

from reval_assets.assets.common import SYNC_POOL, actor_of, describe, writing
from reval_assets.assets.failures import failure_of, translated
from reval_assets.assets.release import alert_on_failure
from reval_assets.domain.enums import VersionStatus
from reval_assets.errors import ReleaseBlocked, RevalError
from reval_assets.pipeline.guard import require_operator
from reval_assets.pipeline.operations import check_candidate
from reval_assets.pipeline.runtime import Runtime
from reval_assets.quality.checks import CHECKS, CheckResult, drift_changes
from reval_assets.quality.thresholds import Thresholds
from reval_assets.resources import RevalResource

CHECKABLE = (VersionStatus.STAGED.value, VersionStatus.BLOCKED.value)


class _ThresholdsConfigBase(dg.Config):
    def to_thresholds(self, allow_drift_reason: str = "") -> Thresholds:
        """Raises ValueError naming a threshold out of range."""
        return Thresholds(**self.model_dump(), allow_drift_reason=allow_drift_reason.strip())


def _thresholds_config() -> type[_ThresholdsConfigBase]:
    """A config field per threshold of `Thresholds`, with its name, type, default and doc: a new threshold is one
    edit there. `allow_drift_reason` is not a threshold but CheckConfig's own field."""
    types = get_type_hints(Thresholds)
    limits = {f.name: (types[f.name], Field(default=f.default, description=f.metadata["doc"]))
              for f in dataclasses.fields(Thresholds) if f.name != "allow_drift_reason"}
    return create_model("ThresholdsConfig", __base__=_ThresholdsConfigBase, __module__=__name__,
                        __doc__="The blocking checks' thresholds (`reval_assets.quality.thresholds.Thresholds`), "
                        "for this run only.", **limits)


ThresholdsConfig = _thresholds_config()


class CheckConfig(dg.Config):
    version: str = Field(
        default="", description="A staged or blocked candidate to check again (`reval versions` lists them); "
        "empty: the candidate this run (or the run it re-executes) staged.")
    allow_drift_reason: str = Field(
        default="",
        description="Only to publish a known large change: why it is expected. Lets the drift check pass (its "
        "numbers are still shown) and is recorded in the check's metadata and the audit. Empty: drift blocks.",
    )
    thresholds: ThresholdsConfig = Field(
        default_factory=ThresholdsConfig, description="The blocking checks' thresholds, for this run only.")
    operator: str = Field(default="", description="Your name, recorded in the audit. Required in staging and prod "
                          "to check a named candidate again from the UI (it can unblock it).")


@dg.multi_asset_check(
    name="candidate_checks",
    specs=[dg.AssetCheckSpec(name, asset="release_candidate", blocking=True,
                             description=describe(check.__doc__ or name)) for name, check in CHECKS.items()],
    description=describe("The blocking checks of a staged candidate: this run's, or a named one (config "
                         "`version`), checked again with this run's thresholds."),
    pool=SYNC_POOL,
)
def candidate_checks(context: dg.AssetCheckExecutionContext, config: CheckConfig, reval: RevalResource):
    with alert_on_failure(context, "candidate_checks", "", config.version, config.operator), translated(context):
        blocked = yield from _check(context, config, reval)
    if blocked is not None:  # not alerted as a failure: check_candidate alerted on the block
        raise failure_of(blocked)  # the run's failure says what `reval sync` says, not only which checks failed


def _check(context: dg.AssetCheckExecutionContext, config: CheckConfig, reval: RevalResource):
    runtime = reval.runtime()
    try:
        thresholds = config.thresholds.to_thresholds(config.allow_drift_reason)
    except ValueError as error:
        raise RevalError(f"candidate_checks config: {error}") from None
    who = actor_of(context, config.operator)
    version = config.version.strip() or _candidate_of_run(runtime, context.run, context.instance)
    if config.version.strip() and not who.named:  # checking a named one again, from the UI: it can unblock it
        require_operator(runtime, "checking a candidate again", version, who.name, "candidate_checks")
    manifest = runtime.snapshots.manifest(_checkable(runtime, version))
    with writing(runtime, "check a candidate", context):
        results = check_candidate(runtime, manifest, thresholds, actor=who.name)
    for result in results:
        yield dg.AssetCheckResult(asset_key="release_candidate", check_name=result.name, passed=result.passed,
                                  severity=dg.AssetCheckSeverity.ERROR, description=result.description,
                                  metadata=_check_metadata(manifest.version, manifest.parent, result))
    failed = [(r.name, r.description) for r in results if not r.passed and r.blocking]
    return ReleaseBlocked(failed, live=manifest.parent, version=manifest.version) if failed else None


def _candidate_of_run(runtime: Runtime, run: dg.DagsterRun, instance: dg.DagsterInstance) -> str:
    """The candidate this run staged, or the run it re-executes (a re-execution from the failed checks
    checks the same candidate again)."""
    while run is not None:
        version = runtime.live.candidate_for_run(run.run_id)
        if version:
            return version
        run = instance.get_run_by_id(run.parent_run_id) if run.parent_run_id else None
    raise RevalError("this run staged no candidate to check: materialise release_candidate with its checks, or "
                     f"name one in candidate_checks' config `version` ({_checkable_list(runtime)})")


def _checkable(runtime: Runtime, version: str) -> str:
    row = runtime.live.version(version)
    if row is None or row["status"] not in CHECKABLE:
        state = "not a version of this store" if row is None else f"{row['status']}"
        raise RevalError(f"{version} is {state}: checks run again only on a staged or blocked candidate, so a "
                         f"published version's record stays as it was ({_checkable_list(runtime)})")
    return version


def _checkable_list(runtime: Runtime) -> str:
    rows = [r["version"] for r in runtime.live.versions() if r["status"] in CHECKABLE]
    return f"staged or blocked: {', '.join(rows[-5:])}" if rows else "no staged or blocked candidate now"


def _check_metadata(version: str, live: str | None, result: CheckResult) -> dict:
    metadata: dict = {"version": version, **result.metadata}
    if result.table:
        metadata["details"] = dg.MetadataValue.md(result.table)
    if result.name == "drift" and live and "doctors_added" in result.metadata:
        changes = drift_changes(result.metadata)
        metadata["diff_vs_live"] = dg.MetadataValue.md(_diff_markdown(live, changes))
        # the same figures as numbers, which Dagster plots across evaluations
        metadata.update({f"{kind}_{e}": n for e, c in changes.items() for kind, n in c.items()})
    return metadata


def _diff_markdown(parent: str, changes: dict[str, dict[str, int]]) -> str:
    lines = [f"Against live `{parent}`:", "", "| entity | added | removed | changed |", "|---|---|---|---|"]
    lines += [f"| {e} | {c['added']} | {c['removed']} | {c['changed']} |" for e, c in changes.items()]
    return "\n".join(lines)
